"""Management analysis: who can ever call PutKeyPolicy, and the lockout verdict (DESIGN.md §1, §2)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from kms_rescue.policy import PolicyInputError, analyze_management
from tests.test_evaluate import (
    ACCOUNT,
    ADMIN_ROLE,
    ADMIN_SESSION,
    BREAK_GLASS,
    BREAK_GLASS_SESSION,
    DEFAULT,
    EXT_ROOT,
    KEY,
    ROLE_ONLY,
    ROOT,
    allow,
    deny,
    policy,
)

ADMIN_PATTERN = f"arn:aws:iam::{ACCOUNT}:role/Admin*"


@dataclass
class Case:
    id: str
    fact: str
    key_policy: dict[str, Any]
    locked: bool
    managing_kinds: set[str] = field(default_factory=set)  # kinds of the paths that can manage
    root_can_manage: bool | None = None
    existing: dict[str, bool | None] = field(default_factory=dict)
    other_kinds: set[str] = field(default_factory=set)  # kinds that must also be listed (not managing)


CASES = [
    Case("default-policy", "§1.2 the default policy lets root and IAM admins in", DEFAULT, False,
         {"root_user", "account_delegation"}, True),
    Case("named-role", "§1.3 a named existing role can manage; root cannot (§1.7)", ROLE_ONLY, False,
         {"named_principal"}, False),
    Case("named-role-deleted", "§1.5 a named role known to be deleted cannot manage", ROLE_ONLY, True, set(), False,
         existing={ADMIN_ROLE: False}),
    Case("named-role-unknown-existence", "existence unknown is not treated as deleted", ROLE_ONLY, False,
         {"named_principal"}, existing={ADMIN_ROLE: None}),
    Case("orphaned-unique-id", "§1.5 only the unique id of a deleted admin remains: locked out",
         policy(allow({"AWS": "AROAEXAMPLEID0000000001"})), True, set(), False, other_kinds={"orphaned_unique_id"}),
    Case("other-account-only", "§1.6 only another account is named: locked out", policy(allow({"AWS": EXT_ROOT})),
         True, set(), False, other_kinds={"other_account"}),
    Case("wildcard-unconditioned", '§1.3/§1.7 "*" without conditions: anyone of the account, root included',
         policy(allow("*")), False, {"wildcard", "root_user"}, True),
    Case("wildcard-principalarn-pattern", "runbook: * with aws:PrincipalArn StringLike: matching roles, not root",
         policy(allow("*", Condition={"StringLike": {"aws:PrincipalArn": ADMIN_PATTERN}})), False, {"wildcard"},
         False),
    Case("wildcard-principalarn-root", "§1.7 aws:PrincipalArn = root ARN lets root in",
         policy(allow("*", Condition={"ArnEquals": {"aws:PrincipalArn": ROOT}})), False, {"root_user"}, True),
    Case("wildcard-principalarn-session", "§1.8 aws:PrincipalArn equal to a session ARN never holds",
         policy(allow("*", Condition={"StringEquals": {"aws:PrincipalArn": ADMIN_SESSION}})), True, set(), False),
    Case("wildcard-principalarn-other-account", "§1.6 a condition naming another account's role cannot manage",
         policy(allow("*", Condition={"StringEquals": {"aws:PrincipalArn": "arn:aws:iam::444455556666:role/A"}})),
         True, set(), False, other_kinds={"other_account"}),
    Case("viaservice-only", "§1.8 kms:ViaService never holds on a direct PutKeyPolicy call",
         policy(allow({"AWS": ADMIN_ROLE},
                      Condition={"StringEquals": {"kms:ViaService": "s3.us-east-1.amazonaws.com"}})),
         True, set(), False),
    Case("encryption-context-only", "§1.8 kms:EncryptionContext keys are absent on PutKeyPolicy",
         policy(allow({"AWS": ROOT}, Condition={"StringEquals": {"kms:EncryptionContext:app": "payments"}})),
         True, set(), False),
    Case("source-ip-condition-satisfiable", "a condition that can hold on a direct call keeps the path open",
         policy(allow({"AWS": ADMIN_ROLE}, Condition={"IpAddress": {"aws:SourceIp": "192.0.2.0/24"}})), False,
         {"named_principal"}),
    Case("explicit-deny-everyone", "§1.4 an explicit deny of PutKeyPolicy to everyone locks the key",
         policy(allow({"AWS": ROOT}), allow({"AWS": ADMIN_ROLE}), deny("*")), True, set(), False),
    Case("deny-notprincipal-role-only", "§1.4 a NotPrincipal with the role but not its session denies the sessions",
         policy(allow({"AWS": BREAK_GLASS}), deny(None, NotPrincipal={"AWS": [ROOT, BREAK_GLASS]})), True, set(),
         False),
    Case("deny-notprincipal-session", "§1.4 with account, role and session listed, that session can manage",
         policy(allow({"AWS": BREAK_GLASS}),
                deny(None, NotPrincipal={"AWS": [ROOT, BREAK_GLASS, BREAK_GLASS_SESSION]})),
         False, {"named_principal"}, False),
    Case("deny-other-action-ignored", "§1.4 a deny of other actions leaves PutKeyPolicy open",
         policy(allow({"AWS": ROOT}), deny("*", "kms:ScheduleKeyDeletion")), False,
         {"root_user", "account_delegation"}, True),
    Case("no-effect-statement", "§1.9 an admin statement without Resource has no effect",
         policy({"Effect": "Allow", "Principal": {"AWS": ADMIN_ROLE}, "Action": "kms:*"}), True, set(), False),
    Case("use-only-policy", "a policy that grants only cryptographic use cannot manage",
         policy(allow({"AWS": ROOT}, ["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey*"])), True, set(), False),
    Case("session-principal", "§1.3 a session ARN principal: only that role session can manage",
         policy(allow({"AWS": ADMIN_SESSION})), False, {"session"}, False),
    Case("service-principal", "a service principal never repairs the policy",
         policy(allow({"Service": "cloudtrail.amazonaws.com"})), True, set(), False, other_kinds={"service"}),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_management(case: Case) -> None:
    result = analyze_management(case.key_policy, key_account=ACCOUNT, key_arn=KEY, existing=case.existing)
    explanation = case.fact + "\n" + "\n".join(f"{p.kind} {p.principal} can={p.can_manage}: {p.why}"
                                                for p in result.paths)
    assert result.locked_out is case.locked, explanation
    assert {p.kind for p in result.managing_paths} == case.managing_kinds, explanation
    if case.root_can_manage is not None:
        assert result.root_can_manage is case.root_can_manage, explanation
    assert case.other_kinds <= {p.kind for p in result.paths}, explanation


def test_conditions_a_path_depends_on_are_named() -> None:
    result = analyze_management(
        policy(allow({"AWS": ADMIN_ROLE}, Condition={"Bool": {"aws:MultiFactorAuthPresent": "true"}})),
        key_account=ACCOUNT,
    )
    (path,) = result.managing_paths
    assert any("aws:MultiFactorAuthPresent" in c for c in path.conditions)
    assert "only when" in path.why


def test_conditional_deny_is_reported_as_may_block() -> None:
    result = analyze_management(
        policy(allow({"AWS": ADMIN_ROLE}), deny("*", Condition={"NotIpAddress": {"aws:SourceIp": "192.0.2.0/24"}})),
        key_account=ACCOUNT,
    )
    (path,) = result.managing_paths
    assert path.may_be_blocked_by and not path.blocked_by


def test_blocked_path_names_the_deny() -> None:
    result = analyze_management(policy(allow({"AWS": ADMIN_ROLE}), {"Sid": "NoChanges", **deny("*")}),
                                key_account=ACCOUNT)
    (path,) = result.paths
    assert path.blocked_by == ('"NoChanges"',)


def test_nitro_enclave_lock_is_intentional() -> None:
    nitro = policy(allow({"AWS": f"arn:aws:iam::{ACCOUNT}:role/EnclaveApp"}, "kms:Decrypt",
                         Condition={"StringEqualsIgnoreCase": {"kms:RecipientAttestation:ImageSha384": "abc"}}))
    result = analyze_management(nitro, key_account=ACCOUNT)
    assert result.locked_out and result.intentional_lock


def test_ordinary_lockout_is_not_intentional() -> None:
    result = analyze_management(policy(allow({"AWS": "AROAEXAMPLEID0000000001"})), key_account=ACCOUNT)
    assert result.locked_out and not result.intentional_lock


def test_to_dict_is_json_ready() -> None:
    import json

    data = analyze_management(DEFAULT, key_account=ACCOUNT).to_dict()
    assert json.loads(json.dumps(data))["locked_out"] is False


@pytest.mark.parametrize("account", ["12345", "not-an-account", ""])
def test_bad_account_is_an_input_error(account: str) -> None:
    with pytest.raises(PolicyInputError):
        analyze_management(DEFAULT, key_account=account)
