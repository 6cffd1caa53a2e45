"""audit --terraform-plan: which principals a Terraform plan deletes (kms_rescue.audit.terraform_plan).

Each case names its source: HashiCorp's "JSON Output Format" for the plan's shape and actions, the IAM User Guide
("AWS JSON policy elements: Principal") for why a replaced user or role is a deleted one, and the IAM Identity
Center User Guide ("Referencing permission sets in resource policies, Amazon EKS Cluster config maps, and AWS KMS
key policies") for the roles a permission set provisions. The fixtures are plans written by hand in that format.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kms_rescue.audit.terraform_plan import (
    IDENTITY_CENTER_PATH,
    PlannedDeletion,
    deleted_principals,
    if_deleted_principals,
    load_plan,
    read_plan,
)
from kms_rescue.policy.errors import PolicyInputError
from tests.helpers.paths import FIXTURES

FIXTURES = FIXTURES / "terraform_plan"
TF_JSON = "https://developer.hashicorp.com/terraform/internals/json-format"
IAM_PRINCIPAL = "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_principal.html"
SSO_ROLES = "https://docs.aws.amazon.com/singlesignon/latest/userguide/referencingpermissionsets.html"


def _by_address(plan: str, **kwargs: str) -> dict[str, PlannedDeletion]:
    return {d.address: d for d in deleted_principals(read_plan(str(FIXTURES / plan)), **kwargs)}


# (address, expected exact ARN or None, source, the fact)
IAM_CASES = [
    ("aws_iam_role.key_admin", "arn:aws:iam::111122223333:role/KeyAdmin", TF_JSON,
     'actions ["delete"] destroys the object; change.before.arn is its ARN'),
    ("module.people.aws_iam_user.alice", "arn:aws:iam::111122223333:user/people/alice", IAM_PRINCIPAL,
     '["delete","create"] replaces the user: the new one has a new unique id, so the key policy loses it'),
    ("aws_iam_role.ops", None, TF_JSON,
     '["create","delete"] (create_before_destroy) replaces too; no ARN in before and no --account: unknown'),
]


@pytest.mark.parametrize(("address", "arn", "source", "fact"), IAM_CASES, ids=[c[0] for c in IAM_CASES])
def test_iam_deletions(address: str, arn: str | None, source: str, fact: str) -> None:
    found = _by_address("deletes-admins.json")
    assert address in found, fact
    assert found[address].arn == arn, fact
    assert found[address].known is (arn is not None), fact


def test_only_deleting_actions_count() -> None:
    """HashiCorp, "JSON Output Format": "update", "create", "read" (data sources) and "forget" (removed from state,
    not destroyed) delete nothing; a KMS key is not a principal."""
    found = _by_address("deletes-admins.json")
    assert set(found) == {"aws_iam_role.key_admin", "module.people.aws_iam_user.alice", "aws_iam_role.ops"}
    assert found["aws_iam_role.key_admin"].action == "delete"
    assert found["module.people.aws_iam_user.alice"].action == "replace"
    assert found["aws_iam_role.ops"].action == "replace"


def test_arn_built_from_name_path_and_account() -> None:
    """No ARN in the plan: IAM's ARN format arn:aws:iam::ACCOUNT:role/PATH/NAME, from --account (IAM User Guide,
    "IAM identifiers"); the note says it was built, not read."""
    ops = _by_address("deletes-admins.json", account="111122223333")["aws_iam_role.ops"]
    assert ops.arn == "arn:aws:iam::111122223333:role/ops/Ops"
    assert "built" in ops.note


def test_account_must_be_twelve_digits() -> None:
    with pytest.raises(PolicyInputError, match="12 digits"):
        deleted_principals(read_plan(str(FIXTURES / "deletes-admins.json")), account="1111")


# Identity Center: (address, account, a role ARN that must match, one that must not, the fact)
SSO_CASES = [
    ('aws_ssoadmin_account_assignment.key_admins["444455556666"]', "444455556666",
     f"arn:aws:iam::444455556666:role{IDENTITY_CENTER_PATH}eu-west-2/AWSReservedSSO_KeyAdmins_1234567890abcdef",
     f"arn:aws:iam::111122223333:role{IDENTITY_CENTER_PATH}eu-west-2/AWSReservedSSO_KeyAdmins_1234567890abcdef",
     "the role is in the assignment's target account, with the instance's Region in its path"),
    ("aws_ssoadmin_account_assignment.readonly", "111122223333",
     f"arn:aws:iam::111122223333:role{IDENTITY_CENTER_PATH}AWSReservedSSO_ReadOnly_abcdef0123456789",
     f"arn:aws:iam::111122223333:role{IDENTITY_CENTER_PATH}AWSReservedSSO_ReadOnly_Extra_abcdef0123456789",
     "no Region segment for an instance in us-east-1; the name is read from the prior state's data source; the "
     "permission set ReadOnly_Extra's role is another role"),
    ("aws_ssoadmin_permission_set.auditors", None,
     f"arn:aws:iam::444455556666:role{IDENTITY_CENTER_PATH}AWSReservedSSO_Auditors_abcdef0123456789",
     "arn:aws:iam::444455556666:role/AWSReservedSSO_Auditors_abcdef0123456789",
     "a deleted permission set with no assignment in the plan: its role in any account, always under the path"),
]


@pytest.mark.parametrize(("address", "account", "hit", "miss", "fact"), SSO_CASES, ids=[c[0] for c in SSO_CASES])
def test_identity_center_roles(address: str, account: str | None, hit: str, miss: str, fact: str) -> None:
    """IAM Identity Center User Guide (SSO_ROLES): assigning a permission set creates
    AWSReservedSSO_<name>_<unique-suffix> under /aws-reserved/sso.amazonaws.com/[region/]; a new assignment gets a
    different suffix, so these roles are matched by name, and say so."""
    d = _by_address("identity-center.json")[address]
    assert d.arn is None and d.pattern is not None, fact
    assert d.account == account, fact
    assert d.matches(hit), fact
    assert not d.matches(miss), fact
    assert "matched by name" in d.note


def test_replaced_permission_set_removes_its_roles_everywhere() -> None:
    """A replaced permission set: its role goes in every account it is assigned to, listed in the plan or not;
    its assignment's note says the role goes for certain (its permission set goes)."""
    found = _by_address("identity-center.json")
    ps = found["aws_ssoadmin_permission_set.key_admins"]
    assert ps.account is None and "444455556666" in ps.note
    assert ps.matches(f"arn:aws:iam::111122223333:role{IDENTITY_CENTER_PATH}AWSReservedSSO_KeyAdmins_0123456789abcdef")
    note = found['aws_ssoadmin_account_assignment.key_admins["444455556666"]'].note
    assert "permission set is deleted or replaced too" in note
    assert "assumed" in found["aws_ssoadmin_account_assignment.readonly"].note


def test_unknown_permission_set_is_said_not_guessed() -> None:
    d = _by_address("identity-center.json")["aws_ssoadmin_account_assignment.mystery"]
    assert not d.known
    assert "cannot be known" in d.note
    assert not d.matches(f"arn:aws:iam::111122223333:role{IDENTITY_CENTER_PATH}AWSReservedSSO_Anything_0123")


def test_if_deleted_principals() -> None:
    """Exact ARNs pass through; patterns pick the live principals they match; unknown deletions add nothing."""
    deletions = deleted_principals(read_plan(str(FIXTURES / "identity-center.json")))
    deletions += deleted_principals(read_plan(str(FIXTURES / "deletes-admins.json")))
    live = [
        f"arn:aws:iam::111122223333:role{IDENTITY_CENTER_PATH}AWSReservedSSO_ReadOnly_abcdef0123456789",
        f"arn:aws:iam::111122223333:role{IDENTITY_CENTER_PATH}AWSReservedSSO_Other_abcdef0123456789",
        "arn:aws:iam::111122223333:role/Survivor",
    ]
    assert if_deleted_principals(deletions, live) == (
        "arn:aws:iam::111122223333:role/KeyAdmin",
        "arn:aws:iam::111122223333:user/people/alice",
        live[0],
    )


BAD_PLANS = [
    ("", "empty file"),
    ("[]", "not a Terraform plan"),
    ('{"resource_changes": []}', "no format_version"),
    ('{"format_version": "2.0", "resource_changes": []}', "not supported"),
    ('{"format_version": "1.0", "values": {}}', "a Terraform state, not a plan"),
    ('{"format_version": "1.0"}', "no resource_changes"),
    ('{"format_version": "1.0", "resource_changes": {}}', "not a list"),
    ('{"format_version": "1.0", "resource_changes": [', "invalid JSON"),
    ("[" * 200 + "]" * 200, "nested more than"),
]


@pytest.mark.parametrize(("text", "message"), BAD_PLANS)
def test_bad_plans_are_one_line_errors(text: str, message: str) -> None:
    """HashiCorp, "JSON Output Format": reject an unsupported major format_version; everything else a plan is
    not is one line naming the file (docs/limits.md)."""
    with pytest.raises(PolicyInputError, match=message) as caught:
        load_plan(text, "plan.json")
    assert "\n" not in str(caught.value) and str(caught.value).startswith("plan.json")


def test_bounded_reading(tmp_path: Path) -> None:
    """A directory or device is refused without reading (docs/limits.md, the same reader as lint's)."""
    with pytest.raises(PolicyInputError, match="directory"):
        read_plan(str(tmp_path))
    with pytest.raises(PolicyInputError, match="regular file"):
        read_plan("/dev/zero")


def test_a_plan_that_changes_nothing() -> None:
    assert deleted_principals(load_plan(json.dumps({"format_version": "1.2", "planned_values": {}}), "p")) == []


def test_hostile_shapes_never_crash() -> None:
    """Values of the wrong type anywhere in resource_changes are skipped, not a traceback."""
    plan = {"format_version": "1.2", "resource_changes": [
        1, None, {"type": "aws_iam_role"}, {"type": "aws_iam_role", "change": []},
        {"type": "aws_iam_role", "change": {"actions": "delete", "before": {}}},
        {"type": "aws_iam_role", "change": {"actions": ["delete"], "before": {"name": 7, "arn": ["x"]}}},
        {"type": "aws_iam_user", "change": {"actions": ["delete"], "before": {"name": "bob", "path": "no-slash"}}},
        {"type": "aws_ssoadmin_account_assignment",
         "change": {"actions": ["delete"], "before": {"target_id": "ou-abcd", "target_type": "OU"}}},
        {"type": "aws_ssoadmin_permission_set", "change": {"actions": ["delete"], "before": {}}},
    ]}
    found = deleted_principals(load_plan(json.dumps(plan), "p"), account="111122223333")
    assert [d.known for d in found] == [False, False, False, False]
    assert all(d.note for d in found)
