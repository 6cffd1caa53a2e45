"""The report's JSON Schema (docs/report.schema.json): it is a valid schema, and reports validate against it.
Every report test checks what it produces with ``tests.helpers.schema.validate_report``."""

from __future__ import annotations

from tests.helpers.schema import report_validator


def test_the_schema_is_a_valid_json_schema():
    assert report_validator().schema["properties"]["schema_version"]["const"] == "1.1"


def test_schema_outcomes_match_the_code():
    from kms_rescue.aws.results import OUTCOMES

    assert report_validator().schema["$defs"]["outcome"]["enum"] == list(OUTCOMES)


def test_schema_verdicts_and_exit_codes_match_the_code():
    from kms_rescue.report import EXIT_CODES, VERDICTS

    props = report_validator().schema["properties"]
    assert props["verdict"]["$ref"] == "#/$defs/verdict"
    assert report_validator().schema["$defs"]["verdict"]["enum"] == list(VERDICTS)
    assert sorted(props["exit_code"]["enum"]) == sorted(EXIT_CODES.values())


def test_schema_next_step_actions_match_the_code():
    from typing import get_args

    from kms_rescue.report import StepAction

    enum = report_validator().schema["properties"]["next_steps"]["items"]["properties"]["action"]["enum"]
    assert enum == list(get_args(StepAction))
