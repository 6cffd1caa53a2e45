"""Bounded fuzzing of what the audit past one machine reads from others: Terraform plans (--terraform-plan) and
JSON lines (--merge). Whatever the shape, the result is deletions or items, or a one-line PolicyInputError;
never another exception."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kms_rescue.audit.merge import parse_line
from kms_rescue.audit.model import AuditError, KeyAudit
from kms_rescue.audit.terraform_plan import PlannedDeletion, deleted_principals, load_plan
from kms_rescue.policy.errors import PolicyInputError

FUZZ = settings(max_examples=150, deadline=2000, suppress_health_check=[HealthCheck.too_slow], derandomize=True)

scalars = st.none() | st.booleans() | st.integers(-5, 5) | st.sampled_from(
    ["", "delete", "create", "update", "aws_iam_role", "aws_iam_user", "aws_ssoadmin_permission_set",
     "aws_ssoadmin_account_assignment", "AWS_ACCOUNT", "111122223333", "arn:aws:iam::111122223333:role/R", "/",
     "Admin", "key_arn", "stage"])
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
    st.sampled_from(["type", "mode", "address", "change", "actions", "before", "after", "name", "arn", "path",
                     "target_id", "target_type", "permission_set_arn", "key_arn", "stage", "verdict"]),
    inner, max_size=5), max_leaves=25)


@FUZZ
@given(st.lists(json_values, max_size=6), st.sampled_from([None, "111122223333"]))
def test_any_plan_shape(changes: list[object], account: str | None) -> None:
    plan = load_plan(json.dumps({"format_version": "1.2", "resource_changes": changes}), "plan.json")
    found = deleted_principals(plan, account=account)
    assert all(isinstance(d, PlannedDeletion) and (d.known or d.note) for d in found)


@FUZZ
@given(json_values)
def test_any_document_as_a_plan(document: object) -> None:
    try:
        load_plan(json.dumps(document), "plan.json")
    except PolicyInputError as exc:
        assert "\n" not in str(exc)


@FUZZ
@given(json_values | st.binary(max_size=64).map(lambda b: b))
def test_any_line_for_merge(value: object) -> None:
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    item = parse_line(raw, "f.jsonl:1")
    assert isinstance(item, (KeyAudit, AuditError))
    if isinstance(item, AuditError) and item.stage == "merge":
        assert item.message.startswith("f.jsonl:1: ") and "\n" not in item.message
