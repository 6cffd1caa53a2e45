"""The repair plan: additive fixes that restore manageability, the diff's reasons, and the engine check that the
apply step runs before any write (docs/engine.md rules 2 and 4, and the lockout check)."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from typing import Any

import pytest

from kms_rescue.errors import UsageError
from kms_rescue.plan import (
    ADMIN_SID,
    DELEGATION_SID,
    check_keeps_management,
    delegation_statement,
    policy_text,
    propose_fix,
    validate_admin_role,
)
from kms_rescue.policy import analyze_management, evaluate
from kms_rescue.policy.actions import ADMIN_ACTIONS
from kms_rescue.policy.model import KEY_POLICY_MAX_BYTES
from tests.helpers.plans import ACCOUNT, APP_ROLE, BREAK_GLASS, KEY, ROLE_ONLY, SOLE_ADMIN_DELETED

OTHER = "444455556666"
ROOT = f"arn:aws:iam::{ACCOUNT}:root"
ADMIN_ROLE = f"arn:aws:iam::{ACCOUNT}:role/KeyAdmin"
BREAK_GLASS_SESSION = f"arn:aws:sts::{ACCOUNT}:assumed-role/BreakGlass/oncall"
ALICE = f"arn:aws:iam::{ACCOUNT}:user/alice"

DEFAULT = {"Version": "2012-10-17", "Id": "key-default-1", "Statement": [delegation_statement(ACCOUNT)]}
DENY_TRAP = {
    "Version": "2012-10-17",
    "Statement": [
        delegation_statement(ACCOUNT),
        {"Sid": "OnlyBreakGlassManages", "Effect": "Deny",
         "NotPrincipal": {"AWS": [ROOT, BREAK_GLASS, BREAK_GLASS_SESSION]},
         "Action": "kms:PutKeyPolicy", "Resource": "*"},
        {"Sid": "BreakGlass", "Effect": "Allow", "Principal": {"AWS": BREAK_GLASS}, "Action": "kms:*",
         "Resource": "*"},
    ],
}
ADMIN_IDENTITY_POLICY = {"Version": "2012-10-17",
                         "Statement": [{"Effect": "Allow", "Action": "kms:*", "Resource": "*"}]}


@dataclass
class FixCase:
    id: str
    fact: str
    current: dict[str, Any]
    admin: str | None
    adds: list[str]  # Sids added, in order
    locked_before: bool
    locked_after: bool
    removes: tuple[str, ...] = ()  # Sids of statements removed (they named only principals KMS refuses)


FIX_CASES = [
    FixCase("sole-admin-deleted", "a deleted principal's unique id matches nobody; the account principal delegates "
            "to IAM and covers root (rules 2 and 5)", SOLE_ADMIN_DELETED, None, [DELEGATION_SID], True, False,
            ("KeyAdministrators",)),
    FixCase("role-only-with-admin", "a named role is granted directly, no identity policy needed (rule 3)",
            ROLE_ONLY, ADMIN_ROLE, [DELEGATION_SID, ADMIN_SID], False, False),
    FixCase("default-already", "the default policy already delegates to the account: nothing to add",
            DEFAULT, None, [], False, False),
    FixCase("default-plus-admin", "only the administrator statement is added when delegation is there",
            DEFAULT, ADMIN_ROLE, [ADMIN_SID], False, False),
]


@pytest.mark.parametrize("case", FIX_CASES, ids=lambda c: c.id)
def test_fix_is_additive_and_restores_manageability(case: FixCase) -> None:
    before = copy.deepcopy(case.current)
    plan = propose_fix(case.current, key_arn=KEY, admin_role_arn=case.admin)
    assert case.current == before, "the plan must not modify its input"
    assert [a.statement["Sid"] for a in plan.additions] == case.adds
    kept = [s for s in case.current["Statement"] if s.get("Sid") not in case.removes]
    n = len(kept)
    assert plan.proposed["Statement"][:n] == kept, "every other statement is kept as is"
    assert [r.statement for r in plan.removals if r.statement_removed] == list(case.removes)
    assert plan.proposed["Statement"][n:] == [a.statement for a in plan.additions]
    assert analyze_management(case.current, key_account=ACCOUNT, key_arn=KEY).locked_out is case.locked_before
    assert analyze_management(plan.proposed, key_account=ACCOUNT, key_arn=KEY).locked_out is case.locked_after
    assert plan.changed is bool(case.adds)
    assert json.loads(plan.proposed_text) == plan.proposed
    if case.adds:
        # After the fix the root user can manage the key: the account principal covers it (rules 2 and 7).
        assert evaluate(principal=ROOT, action="kms:PutKeyPolicy", resource=KEY, key_policy=plan.proposed).allowed


def test_delegation_statement_is_aws_default() -> None:
    """The added statement is exactly AWS's default key policy statement (KMS Developer Guide, "Default key
    policy": Allow, the account principal, kms:*, Resource "*")."""
    plan = propose_fix(SOLE_ADMIN_DELETED, key_arn=KEY)
    assert plan.additions[0].statement == {
        "Sid": "Enable IAM User Permissions", "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "kms:*", "Resource": "*",
    }


def test_admin_statement_is_least_privilege() -> None:
    """The named administrator manages the key (PutKeyPolicy, ScheduleKeyDeletion) but cannot use it (Encrypt,
    Decrypt): the admin action set has no cryptographic operation."""
    plan = propose_fix(ROLE_ONLY, key_arn=KEY, admin_role_arn=ADMIN_ROLE)
    admin = plan.additions[-1].statement
    assert admin["Principal"] == {"AWS": ADMIN_ROLE}
    assert admin["Action"] == list(ADMIN_ACTIONS)
    session = f"arn:aws:sts::{ACCOUNT}:assumed-role/KeyAdmin/oncall"
    for action, allowed in (("kms:PutKeyPolicy", True), ("kms:ScheduleKeyDeletion", True),
                            ("kms:Encrypt", False), ("kms:Decrypt", False)):
        # identity_policies=[]: a directly named role needs none; delegation does not help it without one.
        got = evaluate(principal=session, action=action, resource=KEY, key_policy=plan.proposed, identity_policies=[])
        assert got.allowed is allowed, action


def test_sid_collisions_get_a_new_name() -> None:
    current = {"Version": "2012-10-17", "Statement": [
        {"Sid": DELEGATION_SID, "Effect": "Allow", "Principal": {"AWS": ROOT}, "Action": "kms:Describe*",
         "Resource": "*"},
        {"Sid": "Admin", "Effect": "Allow", "Principal": {"AWS": BREAK_GLASS}, "Action": "kms:*", "Resource": "*"},
    ]}
    plan = propose_fix(current, key_arn=KEY)
    assert [a.statement["Sid"] for a in plan.additions] == [f"{DELEGATION_SID} 2"]
    sids = [s["Sid"] for s in plan.proposed["Statement"]]
    assert len(sids) == len(set(sids))


def test_single_statement_object_is_kept() -> None:
    """IAM accepts a single statement object for "Statement"; the plan keeps it and adds after it."""
    current = {"Version": "2012-10-17", "Statement": ROLE_ONLY["Statement"][0]}
    plan = propose_fix(current, key_arn=KEY)
    assert plan.proposed["Statement"][0] == ROLE_ONLY["Statement"][0]
    assert plan.proposed["Statement"][1]["Sid"] == DELEGATION_SID


def test_every_added_line_has_a_reason_and_nothing_is_removed() -> None:
    plan = propose_fix(ROLE_ONLY, key_arn=KEY, admin_role_arn=ADMIN_ROLE)
    added = [line for line in plan.diff if line.added]
    removed = [line for line in plan.diff if line.removed]
    assert added and all(line.reason for line in added)
    # Nothing is removed (at most the old last statement's closing brace, re-added with a comma).
    assert all(r.text[1:].strip() == "}" for r in removed)
    text = plan.unified_diff()
    assert text.startswith("--- current key policy\n+++ proposed key policy\n")
    assert f'+        "AWS": "arn:aws:iam::{ACCOUNT}:root"' in text
    reasons = {line.text[1:].strip().rstrip(","): line.reason for line in added}
    assert "account principal" in (reasons[f'"AWS": "arn:aws:iam::{ACCOUNT}:root"'] or "")
    assert "PutKeyPolicy" in (reasons['"kms:Put*"'] or "")
    assert "#   ^" in plan.annotated_diff()


def test_the_diff_applies_to_the_current_text() -> None:
    """Applying the diff's + and context lines gives exactly the proposed text (the diff is what is sent)."""
    plan = propose_fix(SOLE_ADMIN_DELETED, key_arn=KEY)
    rebuilt: list[str] = []
    current = policy_text(plan.current).splitlines()
    i = 0
    for line in plan.diff:
        t = line.text
        if t.startswith(("---", "+++")):
            continue
        if t.startswith("@@"):
            start = int(t.split()[1].split(",")[0][1:]) - 1
            rebuilt.extend(current[i:start])
            i = start
        elif t.startswith("-"):
            i += 1
        elif t.startswith("+"):
            rebuilt.append(t[1:])
        else:
            rebuilt.append(t[1:])
            i += 1
    rebuilt.extend(current[i:])
    assert "\n".join(rebuilt) == plan.proposed_text


def test_kept_deny_is_reported() -> None:
    """Explicit deny wins (rule 4): a Deny the owner wrote is kept and still covers the principals it covers; a
    NotPrincipal exempts a role session only when every layer (account, role, session) is listed."""
    plan = propose_fix(DENY_TRAP, key_arn=KEY, admin_role_arn=ADMIN_ROLE)
    assert plan.proposed["Statement"][1] == DENY_TRAP["Statement"][1]
    assert [a.statement["Sid"] for a in plan.additions] == [ADMIN_SID]  # delegation already present
    checks = check_keeps_management(plan.proposed, key_arn=KEY, applier=BREAK_GLASS_SESSION,
                                    applier_identity_policies=[], administrators=[ADMIN_ROLE])
    by_role = {c.role: c for c in checks}
    assert by_role["applier"].allowed is True
    assert by_role["administrator"].allowed is False and by_role["administrator"].decision == "explicit_deny"


@dataclass
class CheckCase:
    id: str
    fact: str
    policy: dict[str, Any]
    applier: str
    identity: list[dict[str, Any]] | None
    allowed: bool
    unknown: bool = False


CHECK_CASES = [
    CheckCase("root-through-account", "the account principal covers the root user without identity policy (rule 2)",
              DEFAULT, ROOT, None, True, unknown=True),
    CheckCase("user-through-delegation", "delegation: an IAM user is allowed when its identity policy allows (rule 2)",
              DEFAULT, ALICE, [ADMIN_IDENTITY_POLICY], True),
    CheckCase("user-identity-unknown", "delegation with unread identity policies is not assumed to allow",
              DEFAULT, ALICE, None, False, unknown=True),
    CheckCase("named-role-session", "a role named directly covers its sessions (rule 3)", ROLE_ONLY,
              f"arn:aws:sts::{ACCOUNT}:assumed-role/BreakGlass/oncall", [], True),
    CheckCase("policy-without-applier", "the key policy is the gatekeeper: a policy that drops the applier "
              "locks it out (rule 1, lockout check)", ROLE_ONLY, ALICE, [ADMIN_IDENTITY_POLICY], False),
]


@pytest.mark.parametrize("case", CHECK_CASES, ids=lambda c: c.id)
def test_check_keeps_management(case: CheckCase) -> None:
    [check] = check_keeps_management(case.policy, key_arn=KEY, applier=case.applier,
                                     applier_identity_policies=case.identity)
    assert check.role == "applier"
    assert check.allowed is case.allowed, check.detail
    assert check.identity_unknown is case.unknown


@pytest.mark.parametrize(("value", "problem"), [
    (f"arn:aws:iam::{OTHER}:role/KeyAdmin", "key's account"),
    (ALICE, "not a role ARN"),
    ("KeyAdmin", "not a role ARN"),
    ("", "not a role ARN"),
])
def test_admin_role_must_be_a_role_of_the_key_account(value: str, problem: str) -> None:
    """Only principals of the key's account can manage it (rule 6), so the administrator must be one."""
    with pytest.raises(UsageError, match=problem):
        validate_admin_role(value, ACCOUNT)
    if value:
        with pytest.raises(UsageError):
            propose_fix(ROLE_ONLY, key_arn=KEY, admin_role_arn=value)


def test_role_with_path_is_accepted() -> None:
    role = f"arn:aws:iam::{ACCOUNT}:role/admins/KeyAdmin"
    plan = propose_fix(DEFAULT, key_arn=KEY, admin_role_arn=role)
    [check] = [c for c in check_keeps_management(plan.proposed, key_arn=KEY, applier=ROOT,
                                                 applier_identity_policies=None, administrators=[role])
               if c.role == "administrator"]
    assert check.allowed


def test_bad_key_arn_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="not a KMS key ARN"):
        propose_fix(DEFAULT, key_arn="alias/payments")


def test_policy_over_the_size_limit_is_refused() -> None:
    """KMS key policies are limited to 32 KB; the plan says so instead of sending a policy KMS would reject."""
    filler: dict[str, Any] = {"Effect": "Allow", "Principal": {"AWS": BREAK_GLASS}, "Action": "kms:Describe*",
                              "Resource": "*"}
    statements = [dict(filler, Sid=f"F{i}") for i in range(200)]
    current: dict[str, Any] = {"Version": "2012-10-17", "Statement": statements}
    while len(policy_text(current).encode()) > KEY_POLICY_MAX_BYTES - 100:
        statements.pop()
    with pytest.raises(UsageError, match="over KMS's limit"):
        propose_fix(current, key_arn=KEY)


# --- principals KMS refuses (issue 10) ------------------------------------------------------------------------------
# AWS Knowledge Center, "kms-policy-error-invalid-principals": PutKeyPolicy fails with MalformedPolicyDocumentException
# "Policy contains a statement with one or more invalid principals" when a principal does not exist; a deleted
# principal shows as its unique id (AIDA…, AROA…); remove orphaned unique ids.

OLD_ID = "AIDAEXAMPLEID0000000002"


@dataclass
class RemovalCase:
    id: str
    fact: str
    statement: dict[str, Any]
    deleted: dict[str, str]
    kept_principal: Any  # the statement's Principal after the fix; None when the statement is removed
    removed: list[str]


REMOVAL_CASES = [
    RemovalCase("unique-id-alone", "a statement whose only principal is a unique id goes",
                {"Sid": "Old", "Effect": "Allow", "Principal": {"AWS": OLD_ID}, "Action": "kms:*", "Resource": "*"},
                {}, None, [OLD_ID]),
    RemovalCase("unique-id-in-a-list", "only the unique id leaves the list; the live principal stays",
                {"Sid": "Use", "Effect": "Allow", "Principal": {"AWS": [OLD_ID, APP_ROLE]}, "Action": "kms:Decrypt",
                 "Resource": "*"}, {}, {"AWS": [APP_ROLE]}, [OLD_ID]),
    RemovalCase("deleted-arn", "an ARN IAM says does not exist (iam:GetRole NoSuchEntity) is refused too",
                {"Sid": "Gone", "Effect": "Allow", "Principal": {"AWS": ADMIN_ROLE}, "Action": "kms:*",
                 "Resource": "*"}, {ADMIN_ROLE: "iam:GetRole by admin: no such entity"}, None, [ADMIN_ROLE]),
    RemovalCase("service-stays", "a service principal beside a unique id keeps the statement",
                {"Sid": "Svc", "Effect": "Allow", "Principal": {"AWS": OLD_ID, "Service": "logs.amazonaws.com"},
                 "Action": "kms:Encrypt", "Resource": "*"}, {}, {"Service": "logs.amazonaws.com"}, [OLD_ID]),
    RemovalCase("not-principal-kept", "a NotPrincipal left empty would widen its Deny: kept as it is, with a note",
                {"Sid": "DenyAllBut", "Effect": "Deny", "NotPrincipal": {"AWS": OLD_ID}, "Action": "kms:Decrypt",
                 "Resource": "*"}, {}, "unchanged", []),
]


@pytest.mark.parametrize("case", REMOVAL_CASES, ids=lambda c: c.id)
def test_principals_kms_refuses_are_removed_with_their_reason(case: RemovalCase) -> None:
    current = {"Version": "2012-10-17", "Statement": [delegation_statement(ACCOUNT), case.statement]}
    plan = propose_fix(current, key_arn=KEY, deleted_principals=case.deleted)
    assert [r.value for r in plan.removals] == case.removed
    sid = case.statement["Sid"]
    after = [s for s in plan.proposed["Statement"] if s.get("Sid") == sid]
    if case.kept_principal is None:
        assert after == [] and all(r.statement_removed for r in plan.removals)
    elif case.kept_principal == "unchanged":
        assert after == [case.statement] and any("NotPrincipal" in n for n in plan.notes)
    else:
        assert after[0].get("Principal") == case.kept_principal
    for r in plan.removals:
        line = next(d for d in plan.diff if d.removed and json.dumps(r.value) in d.text)
        assert line.reason and r.value in line.reason and r.reason in line.reason
    assert plan.changed is bool(case.removed)


def test_the_plan_is_idempotent() -> None:
    """Applying the plan and planning again proposes nothing (no "... 2" statements)."""
    first = propose_fix(SOLE_ADMIN_DELETED, key_arn=KEY, admin_role_arn=ADMIN_ROLE)
    second = propose_fix(first.proposed, key_arn=KEY, admin_role_arn=ADMIN_ROLE)
    assert not second.changed and second.proposed == first.proposed
    assert second.changes() == []
