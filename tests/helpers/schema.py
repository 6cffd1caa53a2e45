"""The report's JSON Schema (docs/report.schema.json) as a check every report test runs on what it produces."""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

import jsonschema

from kms_rescue.aws.results import OUTCOMES
from tests.helpers.paths import DOCS

SCHEMA_PATH = DOCS / "report.schema.json"


@lru_cache(maxsize=1)
def report_validator() -> jsonschema.protocols.Validator:
    """The schema's validator; the schema itself is checked against its metaschema first."""
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def validate_report(document: dict[str, Any]) -> None:
    """Raise if ``document`` does not follow docs/report.schema.json."""
    errors = sorted(report_validator().iter_errors(document), key=lambda e: list(e.path))
    if errors:
        raise AssertionError("; ".join(f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors[:5]))


def check_classified(doc: dict[str, Any]) -> None:
    """A valid report in which every identity and every call has one of the documented outcomes."""
    validate_report(doc)
    for ident in doc["identities"]:
        assert ident["status"] in OUTCOMES
        assert ident["calls"], f"{ident['name']} made no call"
        assert all(c["outcome"] in OUTCOMES for c in ident["calls"])
