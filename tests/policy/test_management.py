"""Management analysis: who can ever call PutKeyPolicy, and the lockout verdict (docs/engine.md; docs/report.md,
"The verdict")."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import pytest

from kms_rescue.policy import PolicyInputError, analyze_management
from tests.helpers.engine import (
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
    opens_at: str | None = None  # the analysis' opens_at (the earliest date a path opens, none managing now)


#: The fixed clock of the time cases (IAM User Guide, "AWS global condition context keys": aws:CurrentTime and
#: aws:EpochTime are in every request; analyze_management(now=) injects them).
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)
PAST = "2020-01-01T00:00:00Z"
FUTURE = "2027-03-01T00:00:00Z"
GLOBAL_KEYS = "IAM User Guide, AWS global condition context keys: aws:CurrentTime is always in the request"
CONDITION_OPERATORS = "IAM User Guide, Condition operators: StringEquals is exact, StringLike has wildcards"
ROLE_NAMES = "IAM API Reference, CreateRole: a role name holds only letters, digits and _+=,.@- (a path may hold *)"


CASES = [
    Case("default-policy", "rule 2 the default policy lets root and IAM admins in", DEFAULT, False,
         {"root_user", "account_delegation"}, True),
    Case("named-role", "rule 3 a named existing role can manage; root cannot (rule 7)", ROLE_ONLY, False,
         {"named_principal"}, False),
    Case("named-role-deleted", "rule 5 a named role known to be deleted cannot manage", ROLE_ONLY, True, set(), False,
         existing={ADMIN_ROLE: False}),
    Case("named-role-unknown-existence", "existence unknown is not treated as deleted", ROLE_ONLY, False,
         {"named_principal"}, existing={ADMIN_ROLE: None}),
    Case("orphaned-unique-id", "rule 5 only the unique id of a deleted admin remains: locked out",
         policy(allow({"AWS": "AROAEXAMPLEID0000000001"})), True, set(), False, other_kinds={"orphaned_unique_id"}),
    Case("other-account-only", "rule 6 only another account is named: locked out", policy(allow({"AWS": EXT_ROOT})),
         True, set(), False, other_kinds={"other_account"}),
    Case("wildcard-unconditioned", 'rules 3 and 7 "*" without conditions: anyone of the account, root included',
         policy(allow("*")), False, {"wildcard", "root_user"}, True),
    Case("wildcard-principalarn-pattern", "runbook: * with aws:PrincipalArn StringLike: matching roles, not root",
         policy(allow("*", Condition={"StringLike": {"aws:PrincipalArn": ADMIN_PATTERN}})), False, {"wildcard"},
         False),
    Case("wildcard-principalarn-root", "rule 7 aws:PrincipalArn = root ARN lets root in",
         policy(allow("*", Condition={"ArnEquals": {"aws:PrincipalArn": ROOT}})), False, {"root_user"}, True),
    Case("wildcard-principalarn-session", "rule 8 aws:PrincipalArn equal to a session ARN never holds",
         policy(allow("*", Condition={"StringEquals": {"aws:PrincipalArn": ADMIN_SESSION}})), True, set(), False),
    Case("wildcard-principalarn-other-account", "rule 6 a condition naming another account's role cannot manage",
         policy(allow("*", Condition={"StringEquals": {"aws:PrincipalArn": "arn:aws:iam::444455556666:role/A"}})),
         True, set(), False, other_kinds={"other_account"}),
    Case("viaservice-only", "rule 8 kms:ViaService never holds on a direct PutKeyPolicy call",
         policy(allow({"AWS": ADMIN_ROLE},
                      Condition={"StringEquals": {"kms:ViaService": "s3.us-east-1.amazonaws.com"}})),
         True, set(), False),
    Case("encryption-context-only", "rule 8 kms:EncryptionContext keys are absent on PutKeyPolicy",
         policy(allow({"AWS": ROOT}, Condition={"StringEquals": {"kms:EncryptionContext:app": "payments"}})),
         True, set(), False),
    Case("source-ip-condition-satisfiable", "a condition that can hold on a direct call keeps the path open",
         policy(allow({"AWS": ADMIN_ROLE}, Condition={"IpAddress": {"aws:SourceIp": "192.0.2.0/24"}})), False,
         {"named_principal"}),
    Case("explicit-deny-everyone", "rule 4 an explicit deny of PutKeyPolicy to everyone locks the key",
         policy(allow({"AWS": ROOT}), allow({"AWS": ADMIN_ROLE}), deny("*")), True, set(), False),
    Case("deny-notprincipal-role-only", "rule 4 a NotPrincipal with the role but not its session denies the sessions",
         policy(allow({"AWS": BREAK_GLASS}), deny(None, NotPrincipal={"AWS": [ROOT, BREAK_GLASS]})), True, set(),
         False),
    Case("deny-notprincipal-session", "rule 4 with account, role and session listed, that session can manage",
         policy(allow({"AWS": BREAK_GLASS}),
                deny(None, NotPrincipal={"AWS": [ROOT, BREAK_GLASS, BREAK_GLASS_SESSION]})),
         False, {"named_principal"}, False),
    Case("deny-other-action-ignored", "rule 4 a deny of other actions leaves PutKeyPolicy open",
         policy(allow({"AWS": ROOT}), deny("*", "kms:ScheduleKeyDeletion")), False,
         {"root_user", "account_delegation"}, True),
    Case("no-effect-statement", "rule 9 an admin statement without Resource has no effect",
         policy({"Effect": "Allow", "Principal": {"AWS": ADMIN_ROLE}, "Action": "kms:*"}), True, set(), False),
    Case("use-only-policy", "a policy that grants only cryptographic use cannot manage",
         policy(allow({"AWS": ROOT}, ["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey*"])), True, set(), False),
    Case("session-principal", "rule 3 a session ARN principal: only that role session can manage",
         policy(allow({"AWS": ADMIN_SESSION})), False, {"session"}, False),
    Case("service-principal", "a service principal never repairs the policy",
         policy(allow({"Service": "cloudtrail.amazonaws.com"})), True, set(), False, other_kinds={"service"}),
    # Time: aws:CurrentTime / aws:EpochTime are in every request, judged at NOW and at every later boundary.
    Case("time-deny-after-2020-beside-account", f"{GLOBAL_KEYS}: a Deny of PutKeyPolicy for * dated after 2020 "
         "blocks every principal for good", policy(allow({"AWS": ROOT}),
                                                  deny("*", Condition={"DateGreaterThan": {"aws:CurrentTime": PAST}})),
         True, set(), False),
    Case("time-admin-window-closed-2020", f"{GLOBAL_KEYS}: an Allow whose window closed in 2020 is no way in",
         policy(allow({"AWS": ADMIN_ROLE}, Condition={"DateLessThan": {"aws:CurrentTime": PAST}})), True, set(),
         False),
    Case("time-admin-window-open", f"{GLOBAL_KEYS}: an Allow whose window is open now manages",
         policy(allow({"AWS": ADMIN_ROLE}, Condition={"DateGreaterThan": {"aws:CurrentTime": PAST}})), False,
         {"named_principal"}, False),
    Case("time-admin-window-opens-later", f"{GLOBAL_KEYS}: an Allow that opens in 2027 does not manage now, but "
         "the key is not locked out: it opens on that date",
         policy(allow({"AWS": ADMIN_ROLE}, Condition={"DateGreaterThan": {"aws:CurrentTime": FUTURE}})), False,
         set(), False, opens_at="2027-03-01T00:00:01Z"),
    Case("time-deny-until-later", f"{GLOBAL_KEYS}: a Deny with DateLessThan a future date blocks until that date",
         policy(allow({"AWS": ADMIN_ROLE}), deny("*", Condition={"DateLessThan": {"aws:CurrentTime": FUTURE}})),
         False, set(), False, opens_at=FUTURE),
    Case("time-epoch-numeric", f"{GLOBAL_KEYS}: aws:EpochTime with a numeric operator is the same clock",
         policy(allow({"AWS": ADMIN_ROLE}, Condition={"NumericLessThan": {"aws:EpochTime": "1577836800"}})), True,
         set(), False),
    Case("time-window-closes-later-manages-now", f"{GLOBAL_KEYS}: a window open now and closing later manages now",
         policy(allow({"AWS": ADMIN_ROLE}, Condition={"DateLessThan": {"aws:CurrentTime": FUTURE}})), False,
         {"named_principal"}, False),
    # Literals: exact operators compare literally; no principal ARN can hold * in a name.
    Case("literal-stringequals-role-star", f"{CONDITION_OPERATORS}; {ROLE_NAMES}: role/* is no role",
         policy(allow("*", Condition={"StringEquals": {"aws:PrincipalArn": f"arn:aws:iam::{ACCOUNT}:role/*"}})),
         True, set(), False, other_kinds={"wildcard"}),
    Case("literal-stringequalsignorecase-user-star", f"{CONDITION_OPERATORS}; {ROLE_NAMES}: user/* is no user",
         policy(allow("*", Condition={"StringEqualsIgnoreCase": {
             "aws:PrincipalArn": f"arn:aws:iam::{ACCOUNT}:user/*"}})), True, set(), False),
    Case("literal-stringlike-role-star", f"{CONDITION_OPERATORS}: StringLike role/* is any role",
         policy(allow("*", Condition={"StringLike": {"aws:PrincipalArn": f"arn:aws:iam::{ACCOUNT}:role/*"}})),
         False, {"wildcard"}, False),
    Case("literal-star-in-path", f"{ROLE_NAMES}: role/*/Admin is the role Admin under the path /*/",
         policy(allow("*", Condition={"StringEquals": {"aws:PrincipalArn": f"arn:aws:iam::{ACCOUNT}:role/*/Admin"}})),
         False, {"wildcard"}, False),
    Case("literal-deny-except-impossible-role", f"{CONDITION_OPERATORS}; {ROLE_NAMES}: a Deny for everyone whose "
         "ARN is not literally role/* exempts nobody", policy(allow({"AWS": ROOT}), deny("*", Condition={
             "StringNotEquals": {"aws:PrincipalArn": f"arn:aws:iam::{ACCOUNT}:role/*"}})), True, set(), False),
    Case("literal-deny-only-impossible-role", f"{CONDITION_OPERATORS}; {ROLE_NAMES}: a Deny only for the ARN "
         "role/* denies nobody", policy(allow({"AWS": ROOT}), deny("*", Condition={
             "StringEquals": {"aws:PrincipalArn": f"arn:aws:iam::{ACCOUNT}:role/*"}})), False,
         {"root_user", "account_delegation"}, True),
    Case("literal-arnequals-keeps-wildcards", "IAM User Guide, Condition operators: ArnEquals matches each ARN part "
         "with * and ? wildcards, like ArnLike",
         policy(allow("*", Condition={"ArnEquals": {"aws:PrincipalArn": f"arn:aws:iam::{ACCOUNT}:role/*"}})),
         False, {"wildcard"}, False),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_management(case: Case) -> None:
    result = analyze_management(case.key_policy, key_account=ACCOUNT, key_arn=KEY, existing=case.existing, now=NOW)
    explanation = case.fact + "\n" + "\n".join(f"{p.kind} {p.principal} can={p.can_manage}: {p.why}"
                                                for p in result.paths)
    assert result.locked_out is case.locked, explanation
    assert result.opens_at == case.opens_at, explanation
    assert result.manageable_now is bool(case.managing_kinds), explanation
    assert {p.kind for p in result.managing_paths} == case.managing_kinds, explanation
    if case.root_can_manage is not None:
        assert result.root_can_manage is case.root_can_manage, explanation
    assert case.other_kinds <= {p.kind for p in result.paths}, explanation


def test_a_path_that_opens_later_says_when_and_does_not_manage_now() -> None:
    doc = policy(allow({"AWS": ADMIN_ROLE}, Condition={"DateGreaterThan": {"aws:CurrentTime": FUTURE}}))
    (path,) = analyze_management(doc, key_account=ACCOUNT, now=NOW).paths
    assert not path.can_manage and path.satisfiable and path.opens_at == "2027-03-01T00:00:01Z"
    assert path.to_dict()["opens_at"] == path.opens_at and "opens at 2027-03-01" in path.why
    # The same policy analysed after the date: the path manages, with nothing left to open.
    (later,) = analyze_management(doc, key_account=ACCOUNT, now=datetime(2027, 6, 1, tzinfo=timezone.utc)).paths
    assert later.can_manage and later.opens_at is None


def test_a_path_open_now_says_when_a_date_shuts_it() -> None:
    """IAM User Guide, global condition keys: a Deny with DateGreaterThan a future date blocks from that date on."""
    doc = policy(allow({"AWS": ADMIN_ROLE}), deny("*", Condition={"DateGreaterThan": {"aws:CurrentTime": FUTURE}}))
    (path,) = analyze_management(doc, key_account=ACCOUNT, now=NOW).paths
    assert path.can_manage and path.opens_at is None
    assert path.closes_at == "2027-03-01T00:00:01Z" and "until 2027-03-01T00:00:01Z" in path.why
    assert path.to_dict()["closes_at"] == path.closes_at


def test_a_closed_window_says_it_never_opens_again() -> None:
    doc = policy(allow({"AWS": ADMIN_ROLE}, Condition={"DateLessThan": {"aws:CurrentTime": PAST}}))
    result = analyze_management(doc, key_account=ACCOUNT, now=NOW)
    (path,) = result.paths
    assert path.opens_at is None and not path.satisfiable and "never opens again" in path.why
    assert result.to_dict()["opens_at"] is None and result.to_dict()["locked_out"] is True


def test_the_clock_defaults_to_now() -> None:
    # No now=: the analysis uses the current UTC time, so a window that closed in 2020 is closed today too.
    doc = policy(allow({"AWS": ADMIN_ROLE}, Condition={"DateLessThan": {"aws:CurrentTime": PAST}}))
    assert analyze_management(doc, key_account=ACCOUNT).locked_out


def test_a_literal_no_principal_can_take_says_why() -> None:
    doc = policy(allow("*", Condition={"StringEquals": {"aws:PrincipalArn": f"arn:aws:iam::{ACCOUNT}:role/*"}}))
    (path,) = analyze_management(doc, key_account=ACCOUNT, now=NOW).paths
    assert not path.satisfiable and "no role name can be '*'" in path.why


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
