"""The audit's live rules (kms_rescue/audit/findings.py; docs/audit.md, "Findings"): one case per rule, each naming
the AWS page and the fact it rests on, with the engine's real management analysis and report."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from kms_rescue.audit.findings import LIVE_RULES, SUPERSEDES, lint_findings, live_findings
from kms_rescue.audit.model import Manager
from kms_rescue.contract import PathEntry, PrincipalEntry
from kms_rescue.policy.lint.findings import RULES

A = "111122223333"
ROOT = f"arn:aws:iam::{A}:root"
ADMIN = f"arn:aws:iam::{A}:role/KeyAdmin"
SSO = f"arn:aws:iam::{A}:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_KeyAdmins_0123456789abcdef"


def entry(value: str, kind: str, exists: bool | None = True, *, in_condition: bool = False) -> PrincipalEntry:
    return PrincipalEntry(value, kind, A, exists, "", ('"S"',), in_condition)


def path(principal: str, kind: str = "named_principal", *, closes_at: str | None = None) -> PathEntry:
    return PathEntry(kind, principal, '"S"', can_manage=True, closes_at=closes_at)


ACCOUNT = entry(ROOT, "account")


@dataclass
class Case:
    name: str
    page: str  # the AWS page
    fact: str  # what it says that the rule rests on
    kwargs: dict[str, Any]
    fires: str | None  # the rule that must fire (None: no live finding)
    absent: tuple[str, ...] = ()


def base(**over: Any) -> dict[str, Any]:
    kw: dict[str, Any] = dict(verdict="recoverable", managers=(Manager(ROOT, "root", True),), principals=(ACCOUNT,),
                              paths=(path("root user", "root_user"),), key_state="Enabled", deletion_date=None,
                              policy_read=True)
    kw.update(over)
    return kw


CASES = [
    Case("single named manager, no root",
         "KMS Developer Guide, Default key policy (key-policy-default.html)",
         "without the statement for the account principal, only the principals the policy names can manage the key; "
         "if that one is deleted the key becomes unmanageable",
         base(managers=(Manager(ADMIN, "named", True),), principals=(entry(ADMIN, "role"),), paths=(path(ADMIN),)),
         "KA001"),
    Case("two named managers are not one deletion away",
         "KMS Developer Guide, Default key policy (key-policy-default.html)",
         "one of two administrators can still manage the key after the other is deleted",
         base(managers=(Manager(ADMIN, "named", True), Manager(f"arn:aws:iam::{A}:role/Other", "named", True)),
              principals=(entry(ADMIN, "role"),), paths=(path(ADMIN),)),
         None, ("KA001",)),
    Case("root manages: never KA001",
         "KMS Developer Guide, Default key policy (key-policy-default.html)",
         "the account principal lets the root user in, and the root user cannot be deleted",
         base(), None, ("KA001",)),
    Case("a unique id where an ARN was",
         "IAM User Guide, Policy elements: Principal (reference_policies_elements_principal.html)",
         "a deleted user or role named in a resource policy shows as its unique id, and a new one of the same name "
         "does not match it",
         base(principals=(ACCOUNT, entry("AROARTX3GSDS5RQUOSFZY", "unique_id", False))), "KA002"),
    Case("an ARN in a condition IAM does not know",
         "IAM User Guide, Policy elements: Principal (reference_policies_elements_principal.html)",
         "an ARN in aws:PrincipalArn is compared as text: it matches nobody once the role is gone",
         base(principals=(ACCOUNT, entry(ADMIN, "role", False, in_condition=True))), "KA002"),
    Case("an Identity Center role by ARN",
         "IAM Identity Center User Guide, Referencing permission sets in resource policies, Amazon EKS Cluster "
         "config maps, and AWS KMS key policies (referencingpermissionsets.html)",
         "when every assignment of the permission set is removed the role is deleted, and a new assignment creates "
         "a new role whose name has a different unique suffix",
         base(principals=(ACCOUNT, entry(SSO, "role"))), "KA003"),
    Case("no account principal",
         "KMS Developer Guide, Default key policy (key-policy-default.html)",
         "the account principal statement lets IAM policies and the root user manage the key",
         base(principals=(entry(ADMIN, "role"),), managers=(Manager(ADMIN, "named", True),
                                                            Manager(f"arn:aws:iam::{A}:user/b", "named", True))),
         "KA004"),
    Case("an account principal only in a condition is not one",
         "KMS Developer Guide, Default key policy (key-policy-default.html)",
         "delegation to IAM needs the account in the Principal element",
         base(principals=(entry(ROOT, "account", in_condition=True),)), "KA004"),
    Case("a way in that a date shuts",
         "IAM User Guide, AWS global condition context keys (reference_policies_condition-keys.html)",
         "aws:CurrentTime is in every request, so a DateLessThan window closes for good on its date",
         base(paths=(path(ADMIN, closes_at="2099-01-01T00:00:00Z"),), managers=(Manager(ADMIN, "named", True),),
              principals=(entry(ADMIN, "role"),)), "KA005"),
    Case("scheduled for deletion",
         "KMS Developer Guide, Schedule key deletion (deleting-keys-scheduling-key-deletion.html)",
         "a key pending deletion is deleted when its waiting period ends unless the deletion is cancelled",
         base(key_state="PendingDeletion", deletion_date="2027-01-01T00:00:00Z"), "KA006"),
    Case("a policy nobody could read",
         "KMS API Reference, GetKeyPolicy (API_GetKeyPolicy.html)",
         "GetKeyPolicy needs kms:GetKeyPolicy in the key policy; a denial leaves the policy's risks unchecked",
         base(policy_read=False, principals=(), paths=(), managers=()), "KA007"),
    Case("locked out",
         "KMS Developer Guide, Default key policy (key-policy-default.html)",
         "if the only principals that can manage the key are gone, only AWS Support can restore access",
         base(verdict="locked_out", managers=(), principals=(entry("AROARTX3GSDS5RQUOSFZY", "unique_id", False),),
              paths=()), "KA008", ("KA001",)),
    Case("the healthy default policy",
         "KMS Developer Guide, Default key policy (key-policy-default.html)",
         "the default key policy's account principal statement keeps the root user and IAM administrators in",
         base(), None),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_live_rule(case: Case):
    assert case.page and case.fact
    rules = [f.rule for f in live_findings(**case.kwargs)]
    if case.fires is None:
        assert not rules or set(rules).isdisjoint(case.absent), rules
        if case.name == "the healthy default policy":
            assert rules == []
    else:
        assert case.fires in rules, rules
    for absent in case.absent:
        assert absent not in rules


def test_every_live_rule_has_a_case_and_an_aws_page():
    covered = {c.fires for c in CASES if c.fires}
    assert covered == set(LIVE_RULES)
    for rule in LIVE_RULES.values():
        assert rule.help_uri.startswith("https://docs.aws.amazon.com/")
        assert rule.severity in ("critical", "high", "medium", "low")


def test_severities_come_from_the_rule():
    for f in live_findings(**base(key_state="PendingDeletion", policy_read=False)):
        assert f.severity == LIVE_RULES[f.rule].severity


def test_superseded_lint_rules_do_not_reach_the_audit():
    """KR001/KR002/KR003/KR005 say what KA008/KA004/KA002/KA003 say with what the account showed."""
    assert set(SUPERSEDES) <= set(RULES) and set(SUPERSEDES.values()) <= set(LIVE_RULES)
    policy = {"Version": "2012-10-17", "Statement": [
        {"Sid": "Admin", "Effect": "Allow", "Principal": {"AWS": "AROARTX3GSDS5RQUOSFZY"}, "Action": "kms:*",
         "Resource": "*"},
        {"Sid": "Sso", "Effect": "Allow", "Principal": {"AWS": SSO}, "Action": "kms:Decrypt", "Resource": "*"},
        {"Sid": "Any", "Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "kms:Decrypt", "Resource": "*"},
    ]}
    rules = {f.rule for f in lint_findings(policy, A)}
    assert rules.isdisjoint(SUPERSEDES), rules
    assert "KR007" in rules  # the other lint rules still run on the live policy


def test_audit_key_says_why_the_policy_was_not_read():
    """A throttled GetKeyPolicy is not a denial (KMS API Reference, GetKeyPolicy, Errors): KA007 names each
    identity's outcome, and the verdict is undetermined, decided by report's build_report."""
    from kms_rescue.audit.keys import audit_key
    from kms_rescue.observations import CallResult, HistoryLookup, IdentityProbe, IdentitySpec, Investigation, KeyFacts

    arn = f"arn:aws:kms:us-east-1:{A}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    probes = [
        IdentityProbe(IdentitySpec("auditor", "profile", profile="auditor"), status="ok",
                      arn=f"arn:aws:sts::{A}:assumed-role/Auditor/a", account=A,
                      calls=[CallResult("kms:GetKeyPolicy", "throttled", "ThrottlingException", "slow down", 0, "",
                                        arn)]),
        IdentityProbe(IdentitySpec("intern", "profile", profile="intern"), status="ok",
                      arn=f"arn:aws:iam::{A}:user/intern", account=A,
                      calls=[CallResult("kms:GetKeyPolicy", "access_denied", "AccessDeniedException", "no", 0, "",
                                        arn)]),
    ]
    inv = Investigation(key=KeyFacts(input=arn, arn=arn, key_id=arn.rsplit("/", 1)[1], account=A, region="us-east-1"),
                        identities=probes, history=HistoryLookup(False, "us-east-1"))
    k = audit_key(inv)
    assert k.verdict == "undetermined"
    ka007 = next(f for f in k.findings if f.rule == "KA007")
    assert "auditor: throttled" in ka007.message and "intern: access_denied" in ka007.message


def test_grants_are_listed_only_when_they_could_change_a_decision():
    """KMS Developer Guide, "Grant operations": a grant can allow DescribeKey, never GetKeyPolicy or
    PutKeyPolicy. So a successful DescribeKey constrains an identity's candidate worlds only once the grants are
    known, and only an identity the engine left undecided can gain from it: then, and only then, the audit makes
    report's kms:ListGrants."""
    import datetime as dt

    from kms_rescue.audit.keys import decide, grants_would_matter
    from kms_rescue.observations import (
        CallResult,
        HistoryLookup,
        IdentityPolicies,
        IdentityProbe,
        IdentitySpec,
        Investigation,
        KeyFacts,
    )

    arn = f"arn:aws:kms:us-east-1:{A}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    policy = {"Version": "2012-10-17", "Statement": [
        {"Sid": "Root", "Effect": "Allow", "Principal": {"AWS": ROOT}, "Action": "kms:*", "Resource": "*"}]}
    allow_read = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["kms:GetKeyPolicy", "kms:DescribeKey"], "Resource": "*"}]}
    from kms_rescue.observations import PolicyDoc

    def inv(describe: str, *, read: bool = True) -> Investigation:
        reader = IdentityProbe(
            IdentitySpec("auditor", "profile", profile="auditor"), status="ok",
            arn=f"arn:aws:sts::{A}:assumed-role/Auditor/a", account=A,
            identity_policies=IdentityPolicies("read", [PolicyDoc("inline role/Auditor:Read", allow_read)],
                                               read_by="auditor"),
            calls=[CallResult("kms:GetKeyPolicy", "ok" if read else "access_denied", target=arn)],
            key_policy=policy if read else None)
        app = IdentityProbe(
            IdentitySpec("app", "profile", profile="app"), status="ok", arn=f"arn:aws:sts::{A}:assumed-role/App/b",
            account=A, identity_policies=IdentityPolicies("unknown", reason="denied"),
            calls=[CallResult("kms:DescribeKey", describe, target=arn),
                   CallResult("kms:GetKeyPolicy", "access_denied", "AccessDeniedException", "denied", target=arn)])
        return Investigation(key=KeyFacts(input=arn, arn=arn, key_id=arn.rsplit("/", 1)[1], account=A,
                                          region="us-east-1"),
                             identities=[reader, app], history=HistoryLookup(False, "us-east-1"))

    now = dt.datetime(2026, 12, 1, tzinfo=dt.timezone.utc)
    undecided = inv("ok")
    report = decide(undecided, now)
    assert {i.name: i.can_manage for i in report.identities}["app"] is None  # its IAM policies are unknown
    assert {i.name: i.can_manage for i in report.identities}["auditor"] is False
    assert grants_would_matter(undecided, report)
    denied = inv("access_denied")
    assert not grants_would_matter(denied, decide(denied, now))
    unread = inv("ok", read=False)
    assert not grants_would_matter(unread, decide(unread, now))
