"""The report's JSON Schema (docs/report.schema.json): it is a valid schema, and reports validate against it.
Other report tests import :func:`validate_report` so that every report they produce is checked."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "docs" / "report.schema.json"


@lru_cache(maxsize=1)
def _validator() -> jsonschema.protocols.Validator:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def validate_report(document: dict[str, Any]) -> None:
    """Raise if ``document`` does not follow docs/report.schema.json."""
    errors = sorted(_validator().iter_errors(document), key=lambda e: list(e.path))
    if errors:
        raise AssertionError("; ".join(f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors[:5]))


def test_the_schema_is_a_valid_json_schema():
    assert _validator().schema["properties"]["schema_version"]["const"] == "1.1"


def test_schema_outcomes_match_the_code():
    from kms_rescue.aws.results import OUTCOMES

    assert _validator().schema["$defs"]["outcome"]["enum"] == list(OUTCOMES)


def test_schema_verdicts_and_exit_codes_match_the_code():
    from kms_rescue.report import EXIT_CODES, VERDICTS

    props = _validator().schema["properties"]
    assert props["verdict"]["$ref"] == "#/$defs/verdict"
    assert _validator().schema["$defs"]["verdict"]["enum"] == list(VERDICTS)
    assert sorted(props["exit_code"]["enum"]) == sorted(EXIT_CODES.values())


def test_schema_next_step_actions_match_the_code():
    from typing import get_args

    from kms_rescue.report import StepAction

    enum = _validator().schema["properties"]["next_steps"]["items"]["properties"]["action"]["enum"]
    assert enum == list(get_args(StepAction))


def test_a_report_missing_a_field_is_rejected():
    from tests.test_report import make_report

    doc = make_report("manageable").to_dict()
    del doc["key"]
    with pytest.raises(AssertionError, match="key"):
        validate_report(doc)
