"""The engine's decisions, one case per documented AWS fact (docs/engine.md, "Where each rule comes from")."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import pytest

from kms_rescue.policy import Decision, PolicyInputError, evaluate, parse_policy
from tests.helpers.engine import (
    ACCOUNT,
    ADMIN_OTHER_SESSION,
    ADMIN_ROLE,
    ADMIN_SESSION,
    ALICE,
    BOB,
    BREAK_GLASS,
    BREAK_GLASS_SESSION,
    DEFAULT,
    EXT_ROOT,
    EXT_USER,
    KEY,
    OTHER,
    OTHER_KEY,
    ROLE_ONLY,
    ROOT,
    allow,
    deny,
    identity,
    policy,
)

ALLOW = Decision.ALLOW
EXPLICIT = Decision.EXPLICIT_DENY
IMPLICIT = Decision.IMPLICIT_DENY


@dataclass
class Case:
    id: str
    fact: str
    principal: str
    key_policy: dict[str, Any] | None
    expected: Decision
    action: str = "kms:PutKeyPolicy"
    resource: str = KEY
    identity: list[dict[str, Any]] | None = field(default_factory=list)
    context: dict[str, Any] = field(default_factory=dict)
    now: datetime | None = None


#: A fixed clock for the time cases (evaluate(now=)).
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)
GLOBAL_KEYS = "IAM User Guide, AWS global condition context keys: aws:CurrentTime/aws:EpochTime are always present"
REENCRYPT = "KMS API Reference, ReEncrypt: Cross-account use: Yes (authorized as ReEncryptFrom and ReEncryptTo)"
CROSS_ACCOUNT_LOGIC = ("IAM User Guide, Cross-account policy evaluation logic: the resource's policy and the "
                       "identity policy must both allow")
ALIASES = "KMS Developer Guide, Create aliases: the alias/aws/ prefix is reserved for AWS managed keys"
CALLER_IDENTITY = "STS API Reference, GetCallerIdentity: no permission needed, an explicit deny does not block it"
OTHER_QUEUE = f"arn:aws:sqs:us-east-1:{OTHER}:jobs"
OWN_QUEUE = f"arn:aws:sqs:us-east-1:{ACCOUNT}:jobs"


CASES = [
    # rule 1 the key policy is the gatekeeper
    Case("root-not-in-policy", "rule 1 root has no access unless the key policy allows it", ROOT, ROLE_ONLY, IMPLICIT),
    Case("creator-with-iam-admin", "rule 1 an IAM admin the key policy does not cover has no access", ALICE,
         ROLE_ONLY, IMPLICIT, identity=[identity()]),
    Case("no-key-policy", "rule 1 without a key policy nothing is allowed", ALICE, None, IMPLICIT,
         identity=[identity()]),
    # rule 2 the account principal delegates to IAM
    Case("delegation-without-identity", "rule 2 the account principal grants nobody by itself", ALICE, DEFAULT,
         IMPLICIT),
    Case("delegation-with-identity", "rule 2 with delegation, an identity policy allow suffices", ALICE, DEFAULT,
         ALLOW, identity=[identity("kms:PutKeyPolicy")]),
    Case("delegation-bare-account-id", "rule 2 the bare account id is the account principal too", ALICE,
         policy(allow({"AWS": ACCOUNT})), ALLOW, identity=[identity("kms:*")]),
    Case("delegation-root-needs-no-identity", "rule 2 the root user is covered by the account principal", ROOT,
         DEFAULT, ALLOW),
    Case("delegation-identity-other-key", "rule 2 the identity allow must cover this key", ALICE, DEFAULT,
         IMPLICIT, identity=[identity("kms:*", OTHER_KEY)]),
    Case("delegation-identity-wrong-action", "rule 2 the identity allow must cover the action", ALICE, DEFAULT,
         IMPLICIT, identity=[identity(["kms:Encrypt", "kms:Decrypt"])]),
    Case("delegation-session-role-policy", "rule 2 a session uses its role's identity policies", ADMIN_SESSION,
         DEFAULT, ALLOW, identity=[identity("kms:PutKeyPolicy")]),
    # rule 3 direct grants
    Case("direct-user", "rule 3 a key policy naming the user grants without an identity policy", ALICE,
         policy(allow({"AWS": ALICE})), ALLOW),
    Case("direct-user-other-user", "rule 3 naming one user does not grant another", BOB,
         policy(allow({"AWS": ALICE})), IMPLICIT),
    Case("direct-role-covers-sessions", "rule 3 a role ARN covers every session of that role", ADMIN_SESSION,
         ROLE_ONLY, ALLOW),
    Case("direct-role-covers-other-session", "rule 3 a role ARN covers every session of that role",
         ADMIN_OTHER_SESSION, ROLE_ONLY, ALLOW),
    Case("direct-session-only-that-session", "rule 3 a session ARN grants that session only", ADMIN_OTHER_SESSION,
         policy(allow({"AWS": ADMIN_SESSION})), IMPLICIT),
    Case("direct-session-itself", "rule 3 a session ARN grants that session", ADMIN_SESSION,
         policy(allow({"AWS": ADMIN_SESSION})), ALLOW),
    Case("direct-wildcard", 'rule 3 "*" grants a same-account caller without identity policy', BOB,
         policy(allow("*")), ALLOW),
    Case("direct-wildcard-aws-star", 'rule 3 {"AWS": "*"} is the same wildcard', BOB, policy(allow({"AWS": "*"})),
         ALLOW),
    Case("direct-wildcard-condition-met", 'rule 3 "*" narrowed by a condition that holds', ADMIN_SESSION,
         policy(allow("*", Condition={"StringEquals": {"aws:PrincipalArn": ADMIN_ROLE}})), ALLOW),
    Case("direct-wildcard-condition-account", 'rule 3 "*" narrowed to the account', BOB,
         policy(allow("*", Condition={"StringEquals": {"kms:CallerAccount": ACCOUNT}})), ALLOW),
    Case("direct-wildcard-condition-not-met", 'rule 3 "*" narrowed by a condition that fails', BOB,
         policy(allow("*", Condition={"StringEquals": {"aws:PrincipalArn": ADMIN_ROLE}})), IMPLICIT),
    # rule 4 explicit deny wins
    Case("deny-key-policy-wins", "rule 4 an explicit deny in the key policy beats a direct allow", ADMIN_SESSION,
         policy(allow({"AWS": ADMIN_ROLE}), deny("*")), EXPLICIT),
    Case("deny-identity-wins", "rule 4 an explicit deny in an identity policy beats the key policy", ADMIN_SESSION,
         ROLE_ONLY, EXPLICIT, identity=[identity("kms:PutKeyPolicy", effect="Deny")]),
    Case("deny-root", "rule 4 an explicit deny covers the root user too", ROOT, policy(allow({"AWS": ROOT}),
         deny({"AWS": ROOT})), EXPLICIT),
    Case("deny-account-principal-covers-users", "rule 4 a Deny naming the account covers its users", ALICE,
         policy(allow({"AWS": ALICE}), deny({"AWS": ACCOUNT})), EXPLICIT),
    Case("deny-other-action", "rule 4 a deny of another action does not apply", ADMIN_SESSION,
         policy(allow({"AWS": ADMIN_ROLE}), deny("*", "kms:ScheduleKeyDeletion")), ALLOW),
    Case("notprincipal-role-arn-only", "rule 4 NotPrincipal must list the session too: role ARN alone does not "
         "exempt its sessions", BREAK_GLASS_SESSION,
         policy(allow({"AWS": BREAK_GLASS}), deny(None, NotPrincipal={"AWS": [ROOT, BREAK_GLASS]})), EXPLICIT),
    Case("notprincipal-all-layers", "rule 4 account, role and session listed: that session is exempt",
         BREAK_GLASS_SESSION, policy(allow({"AWS": BREAK_GLASS}),
                                     deny(None, NotPrincipal={"AWS": [ROOT, BREAK_GLASS, BREAK_GLASS_SESSION]})),
         ALLOW),
    Case("notprincipal-user-without-account", "rule 4 a user is exempt only when its account is listed too", ALICE,
         policy(allow({"AWS": ALICE}), deny(None, NotPrincipal={"AWS": [ALICE]})), EXPLICIT),
    Case("notprincipal-user-with-account", "rule 4 a user listed with its account is exempt", ALICE,
         policy(allow({"AWS": ALICE}), deny(None, NotPrincipal={"AWS": [ACCOUNT, ALICE]})), ALLOW),
    Case("notprincipal-account-alone", "rule 4 listing the account alone does not exempt its users", ALICE,
         policy(allow({"AWS": ALICE}), deny(None, NotPrincipal={"AWS": [ROOT]})), EXPLICIT),
    Case("notprincipal-account-exempts-root", "rule 4 listing the account exempts the root user", ROOT,
         policy(allow({"AWS": ROOT}), deny(None, NotPrincipal={"AWS": [ROOT]})), ALLOW),
    # rule 5 deleted principals
    Case("unique-id-never-matches", "rule 5 a unique id left by a deleted role matches no live principal",
         ADMIN_SESSION, policy(allow({"AWS": "AROAEXAMPLEID0000000001"})), IMPLICIT),
    Case("unique-id-user", "rule 5 a unique id left by a deleted user matches no live user", ALICE,
         policy(allow({"AWS": "AIDAEXAMPLEID0000000001"})), IMPLICIT),
    # rule 6 cross-account
    Case("cross-account-both-sides", "rule 6 another account needs the key policy and its identity policy",
         EXT_USER, policy(allow({"AWS": EXT_ROOT})), ALLOW, action="kms:Decrypt",
         identity=[identity("kms:Decrypt")]),
    Case("cross-account-no-identity", "rule 6 the key policy alone does not grant another account's user",
         EXT_USER, policy(allow({"AWS": EXT_ROOT})), IMPLICIT, action="kms:Decrypt"),
    Case("cross-account-named-user-needs-identity", "rule 6 naming an external user still needs its identity policy",
         EXT_USER, policy(allow({"AWS": EXT_USER})), IMPLICIT, action="kms:Encrypt"),
    Case("cross-account-named-user-with-identity", "rule 6 naming an external user plus its identity policy",
         EXT_USER, policy(allow({"AWS": EXT_USER})), ALLOW, action="kms:Encrypt",
         identity=[identity("kms:Encrypt")]),
    Case("cross-account-putkeypolicy-never", "rule 6 PutKeyPolicy is not offered across accounts", EXT_USER,
         policy(allow({"AWS": EXT_ROOT})), IMPLICIT, identity=[identity("kms:*")]),
    Case("cross-account-getkeypolicy-never", "rule 6 GetKeyPolicy is not offered across accounts", EXT_ROOT,
         policy(allow("*")), IMPLICIT, action="kms:GetKeyPolicy"),
    Case("cross-account-describekey-ok", "rule 6 DescribeKey is offered across accounts", EXT_ROOT,
         policy(allow({"AWS": EXT_ROOT})), ALLOW, action="kms:DescribeKey"),
    # rule 7 root rescue only when the policy lets root in
    Case("root-via-wildcard", 'rule 7 "*" without a condition lets root in', ROOT, policy(allow("*")), ALLOW),
    Case("root-excluded-by-condition", "rule 7 a PrincipalArn condition naming roles excludes root", ROOT,
         policy(allow("*", Condition={"StringLike": {"aws:PrincipalArn": f"arn:aws:iam::{ACCOUNT}:role/Admin*"}})),
         IMPLICIT),
    Case("root-via-principalarn", "rule 7 aws:PrincipalArn = the root ARN lets root in", ROOT,
         policy(allow("*", Condition={"ArnEquals": {"aws:PrincipalArn": ROOT}})), ALLOW),
    # rule 8 the request context
    Case("principalarn-of-session-is-role", "rule 8 a session's aws:PrincipalArn is its role's ARN", ADMIN_SESSION,
         policy(allow("*", Condition={"StringEquals": {"aws:PrincipalArn": ADMIN_SESSION}})), IMPLICIT),
    Case("principaltype-user", "rule 8 aws:PrincipalType follows from the principal", ALICE,
         policy(allow("*", Condition={"StringEquals": {"aws:PrincipalType": "User"}})), ALLOW),
    Case("username-of-user", "rule 8 aws:username is the user's name", ALICE,
         policy(allow("*", Condition={"StringEquals": {"aws:username": "alice"}})), ALLOW),
    Case("viaservice-absent-on-direct-call", "rule 8 a direct call carries no kms:ViaService", ALICE,
         policy(allow({"AWS": ALICE}, Condition={"StringEquals": {"kms:ViaService": "ec2.us-east-1.amazonaws.com"}})),
         IMPLICIT),
    Case("viaservice-present-when-given", "rule 8 kms:ViaService matches when the request carries it", ALICE,
         policy(allow({"AWS": ALICE}, Condition={"StringEquals": {"kms:ViaService": "ec2.us-east-1.amazonaws.com"}})),
         ALLOW, context={"kms:ViaService": "ec2.us-east-1.amazonaws.com"}),
    Case("ifexists-absent", "rule 8 ...IfExists matches when the key is absent", ALICE,
         policy(allow({"AWS": ALICE}, Condition={"StringEqualsIfExists": {"kms:ViaService": "x.amazonaws.com"}})),
         ALLOW),
    Case("context-overrides-derived", "rule 8 a supplied context value overrides the derived one", ALICE,
         policy(allow("*", Condition={"StringEquals": {"aws:PrincipalTag/team": "security"}})), ALLOW,
         context={"aws:PrincipalTag/team": "security"}),
    # rule 9 statements without Action or Resource have no effect
    Case("no-action-no-effect", "rule 9 a statement without Action has no effect", ALICE,
         policy({"Effect": "Allow", "Principal": {"AWS": ALICE}, "Resource": "*"}), IMPLICIT),
    Case("no-resource-no-effect", "rule 9 a statement without Resource has no effect", ALICE,
         policy({"Effect": "Allow", "Principal": {"AWS": ALICE}, "Action": "kms:*"}), IMPLICIT),
    Case("no-resource-deny-no-effect", "rule 9 a Deny without Resource has no effect either", ALICE,
         policy(allow({"AWS": ALICE}), {"Effect": "Deny", "Principal": "*", "Action": "kms:*"}), ALLOW),
    Case("resource-key-arn", "rule 9 a key policy Resource naming the key ARN is this key", ALICE,
         policy({"Effect": "Allow", "Principal": {"AWS": ALICE}, "Action": "kms:*", "Resource": KEY}), ALLOW),
    Case("resource-other-key", "rule 9 a key policy Resource naming another key does not apply", ALICE,
         policy({"Effect": "Allow", "Principal": {"AWS": ALICE}, "Action": "kms:*", "Resource": OTHER_KEY}),
         IMPLICIT),
    # Action matching (IAM: action names are case-insensitive; wildcards; NotAction)
    Case("action-case-insensitive", "IAM: actions are case-insensitive", ALICE,
         policy(allow({"AWS": ALICE}, "KMS:putkeypolicy")), ALLOW),
    Case("action-wildcard-prefix", "IAM: action wildcards", ALICE, policy(allow({"AWS": ALICE}, "kms:Put*")), ALLOW),
    Case("action-wildcard-question", "IAM: ? matches one character", ALICE,
         policy(allow({"AWS": ALICE}, "kms:PutKeyPolic?")), ALLOW),
    Case("notaction-allows-the-rest", "IAM: NotAction allows everything it does not list", ALICE,
         policy({"Effect": "Allow", "Principal": {"AWS": ALICE}, "NotAction": "kms:Decrypt", "Resource": "*"}),
         ALLOW),
    Case("notaction-excludes", "IAM: NotAction excludes what it lists", ALICE,
         policy({"Effect": "Allow", "Principal": {"AWS": ALICE}, "NotAction": "kms:Put*", "Resource": "*"}),
         IMPLICIT),
    # Identity policies with variables; plain identity logic for other resources
    Case("identity-resource-variable", "IAM: policy variables in Resource", ALICE, DEFAULT, ALLOW,
         identity=[identity("kms:*", "arn:aws:kms:*:${aws:PrincipalAccount}:key/*")]),
    Case("identity-only-resource", "IAM: a resource without a resource policy follows identity policies", ALICE,
         None, ALLOW, action="s3:GetObject", resource="arn:aws:s3:::example-bucket/report.csv",
         identity=[identity("s3:GetObject", "arn:aws:s3:::example-bucket/*")]),
    Case("identity-only-resource-deny", "IAM: no identity allow, implicit deny", ALICE, None, IMPLICIT,
         action="s3:GetObject", resource="arn:aws:s3:::example-bucket/report.csv"),
    # Time: the request context always has aws:CurrentTime and aws:EpochTime (here from a fixed clock).
    Case("time-window-closed", f"{GLOBAL_KEYS}: an Allow with DateLessThan 2020 no longer holds", ALICE,
         policy(allow({"AWS": ALICE}, Condition={"DateLessThan": {"aws:CurrentTime": "2020-01-01T00:00:00Z"}})),
         IMPLICIT, now=NOW),
    Case("time-window-open", f"{GLOBAL_KEYS}: an Allow with DateGreaterThan 2020 holds", ALICE,
         policy(allow({"AWS": ALICE}, Condition={"DateGreaterThan": {"aws:CurrentTime": "2020-01-01T00:00:00Z"}})),
         ALLOW, now=NOW),
    Case("time-epoch", f"{GLOBAL_KEYS}: aws:EpochTime is the same instant in seconds", ALICE,
         policy(allow({"AWS": ALICE}, Condition={"NumericGreaterThan": {"aws:EpochTime": "1577836800"}})),
         ALLOW, now=NOW),
    Case("time-deny-until-date", f"{GLOBAL_KEYS}: a Deny with DateLessThan a future date blocks until then",
         ALICE, policy(allow({"AWS": ALICE}),
                       deny("*", Condition={"DateLessThan": {"aws:CurrentTime": "2027-03-01T00:00:00Z"}})),
         EXPLICIT, now=NOW),
    Case("time-deny-after-date", f"{GLOBAL_KEYS}: the same Deny no longer applies once the date has passed",
         ALICE, policy(allow({"AWS": ALICE}),
                       deny("*", Condition={"DateLessThan": {"aws:CurrentTime": "2027-03-01T00:00:00Z"}})),
         ALLOW, now=datetime(2027, 3, 2, tzinfo=timezone.utc)),
    Case("time-context-wins", f"{GLOBAL_KEYS}: an explicit context value wins over the clock", ALICE,
         policy(allow({"AWS": ALICE}, Condition={"DateLessThan": {"aws:CurrentTime": "2020-01-01T00:00:00Z"}})),
         ALLOW, now=NOW, context={"aws:CurrentTime": "2019-06-01T00:00:00Z"}),
    # Permission-only actions across accounts.
    Case("cross-account-reencryptfrom", REENCRYPT, EXT_USER, policy(allow({"AWS": EXT_ROOT})), ALLOW,
         action="kms:ReEncryptFrom", identity=[identity("kms:ReEncrypt*")]),
    Case("cross-account-reencryptto", REENCRYPT, EXT_USER, policy(allow({"AWS": EXT_ROOT})), ALLOW,
         action="kms:ReEncryptTo", identity=[identity("kms:ReEncrypt*")]),
    Case("cross-account-reencrypt-needs-identity", f"{REENCRYPT}; the identity policy must allow too", EXT_USER,
         policy(allow({"AWS": EXT_ROOT})), IMPLICIT, action="kms:ReEncryptFrom"),
    Case("cross-account-synchronize-mrk-never", "KMS Developer Guide, Authorizing AWS KMS to synchronize "
         "multi-Region keys: only the key account's service-linked role", EXT_USER, policy(allow({"AWS": EXT_ROOT})),
         IMPLICIT, action="kms:SynchronizeMultiRegionKey", identity=[identity("kms:*")]),
    # Identity-only requests across accounts.
    Case("identity-only-other-account", f"{CROSS_ACCOUNT_LOGIC}: without a resource policy, an identity policy "
         "alone is an implicit deny", ALICE, None, IMPLICIT, action="sqs:SendMessage", resource=OTHER_QUEUE,
         identity=[identity("sqs:SendMessage")]),
    Case("identity-only-same-account", f"{CROSS_ACCOUNT_LOGIC}: in the caller's own account the identity policy "
         "suffices", ALICE, None, ALLOW, action="sqs:SendMessage", resource=OWN_QUEUE,
         identity=[identity("sqs:SendMessage")]),
    # Aliases reserved for AWS managed keys.
    Case("alias-aws-create", ALIASES, ALICE, policy(allow({"AWS": ALICE})), IMPLICIT, action="kms:CreateAlias",
         resource=f"arn:aws:kms:us-east-1:{ACCOUNT}:alias/aws/ebs", identity=[identity("kms:*")]),
    Case("alias-aws-update", ALIASES, ALICE, policy(allow({"AWS": ALICE})), IMPLICIT, action="kms:UpdateAlias",
         resource=f"arn:aws:kms:us-east-1:{ACCOUNT}:alias/aws/s3", identity=[identity("kms:*")]),
    Case("alias-aws-delete-identity-only", ALIASES, ALICE, None, IMPLICIT, action="kms:DeleteAlias",
         resource=f"arn:aws:kms:us-east-1:{ACCOUNT}:alias/aws/rds", identity=[identity("kms:*")]),
    Case("alias-customer-create", f"{ALIASES}; other alias names are the customer's", ALICE, None, ALLOW,
         action="kms:CreateAlias", resource=f"arn:aws:kms:us-east-1:{ACCOUNT}:alias/payments",
         identity=[identity("kms:CreateAlias")]),
    # sts:GetCallerIdentity needs no permission.
    Case("getcalleridentity-no-policy", CALLER_IDENTITY, ALICE, None, ALLOW, action="sts:GetCallerIdentity",
         resource="*"),
    Case("getcalleridentity-explicit-deny", CALLER_IDENTITY, ALICE, None, ALLOW, action="sts:GetCallerIdentity",
         resource="*", identity=[identity("sts:GetCallerIdentity", effect="Deny")]),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_decision(case: Case) -> None:
    result = evaluate(
        principal=case.principal,
        action=case.action,
        resource=case.resource,
        key_policy=case.key_policy,
        identity_policies=case.identity,
        context=case.context,
        now=case.now,
    )
    assert result.decision == case.expected, f"{case.fact}\n" + "\n".join(map(str, result.reasons))
    assert result.reasons, "every decision carries its reasons"


def test_bad_clock_is_a_policy_input_error() -> None:
    with pytest.raises(PolicyInputError, match="now must be a datetime"):
        evaluate(principal=ALICE, action="kms:PutKeyPolicy", resource=KEY, key_policy=DEFAULT,
                 now="2026-12-01")  # type: ignore[arg-type]


def test_naive_clock_is_utc() -> None:
    doc = policy(allow({"AWS": ALICE}, Condition={"DateLessThan": {"aws:CurrentTime": "2026-12-01T12:30:00Z"}}))
    naive = evaluate(principal=ALICE, action="kms:PutKeyPolicy", resource=KEY, key_policy=doc,
                     now=datetime(2026, 12, 1, 12, 0))
    assert naive.decision == ALLOW


def test_decision_values_are_the_documented_strings() -> None:
    assert {d.value for d in Decision} == {"allow", "explicit_deny", "implicit_deny"}
    result = evaluate(principal=ROOT, action="kms:PutKeyPolicy", resource=KEY, key_policy=DEFAULT)
    assert json.loads(json.dumps(result.to_dict()))["decision"] == "allow"


def test_reasons_name_the_deciding_statement() -> None:
    result = evaluate(principal=ALICE, action="kms:PutKeyPolicy", resource=KEY, key_policy=DEFAULT,
                      identity_policies=[identity("kms:PutKeyPolicy")])
    labels = [r.statement for r in result.reasons if r.matched]
    assert '"Enable IAM User Permissions"' in labels
    assert result.key_policy_grant == "delegated"
    assert result.identity_allowed


def test_unknown_identity_policies_are_flagged() -> None:
    result = evaluate(principal=ALICE, action="kms:PutKeyPolicy", resource=KEY, key_policy=DEFAULT,
                      identity_policies=None)
    assert result.decision == IMPLICIT
    assert result.identity_unknown and result.key_policy_grant == "delegated"
    assert "unknown" in result.reasons[-1].detail


def test_parsed_policy_and_json_text_give_the_same_decision() -> None:
    text = json.dumps(ROLE_ONLY)
    a = evaluate(principal=ADMIN_SESSION, action="kms:PutKeyPolicy", resource=KEY, key_policy=text)
    b = evaluate(principal=ADMIN_SESSION, action="kms:PutKeyPolicy", resource=KEY, key_policy=parse_policy(text))
    assert a.decision == b.decision == ALLOW


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"principal": "alice"}, "not a principal ARN"),
        ({"action": "PutKeyPolicy"}, "service:Name"),
        ({"key_policy": "{not json"}, "invalid JSON"),
        ({"key_policy": {"Version": "2012-10-17"}}, "no Statement"),
        ({"key_policy": {"Statement": [{"Effect": "Permit"}]}}, "Effect"),
        ({"key_policy": "[]"}, "not a policy"),
        ({"key_policy": json.dumps(policy(*[allow("*")] * 600))}, "32,768 bytes"),
        ({"identity_policies": [policy(allow("*"))]}, "Principal"),
    ],
)
def test_bad_input_is_one_line_policy_input_error(kwargs: dict[str, Any], message: str) -> None:
    args: dict[str, Any] = {"principal": ALICE, "action": "kms:PutKeyPolicy", "resource": KEY,
                            "key_policy": DEFAULT}
    args.update(kwargs)
    if "identity_policies" in kwargs:
        # A statement with Principal in an identity policy is ignored by the engine but must not be silent in lint;
        # evaluation treats it as not applying.
        result = evaluate(**args)
        assert result.decision == IMPLICIT
        return
    with pytest.raises(PolicyInputError) as err:
        evaluate(**args)
    assert message in str(err.value)
    assert "\n" not in str(err.value)
