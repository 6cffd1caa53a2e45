"""Guardrails beyond the key: permissions boundaries, SCPs and RCPs, one case per documented AWS fact.

Pages: IAM User Guide, "Policy evaluation logic" (and "How AWS enforcement code logic evaluates requests to allow or
deny access"), "Permissions boundaries for IAM entities"; AWS Organizations User Guide, "Service control policies
(SCPs)", "SCP evaluation", "Resource control policies (RCPs)", "RCP evaluation"; KMS Developer Guide, "Resource
control policies in AWS KMS".
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import pytest

from kms_rescue.policy import Decision, evaluate
from kms_rescue.policy.guardrails import (
    PERMISSIONS_BOUNDARY,
    RESOURCE_CONTROL_POLICIES,
    SERVICE_CONTROL_POLICIES,
    UNREAD,
    Guardrails,
    OrgLevel,
    OrgMembership,
)
from tests.helpers.paths import DOCS

ACCOUNT = "111122223333"
MGMT = "444455556666"
KEY = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
MGMT_KEY = f"arn:aws:kms:us-east-1:{MGMT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
ROOT = f"arn:aws:iam::{ACCOUNT}:root"
ALICE = f"arn:aws:iam::{ACCOUNT}:user/alice"
ADMIN_ROLE = f"arn:aws:iam::{ACCOUNT}:role/KeyAdmin"
ADMIN_SESSION = f"arn:aws:sts::{ACCOUNT}:assumed-role/KeyAdmin/oncall"
BREAK_GLASS = f"arn:aws:iam::{ACCOUNT}:role/BreakGlass"
BREAK_GLASS_SESSION = f"arn:aws:sts::{ACCOUNT}:assumed-role/BreakGlass/oncall"
MGMT_ADMIN = f"arn:aws:iam::{MGMT}:user/org-admin"
SLR = f"arn:aws:iam::{ACCOUNT}:role/aws-service-role/kms.amazonaws.com/AWSServiceRoleForKeyManagement"

ALLOW = Decision.ALLOW
EXPLICIT = Decision.EXPLICIT_DENY
IMPLICIT = Decision.IMPLICIT_DENY


def policy(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def stmt(effect: str = "Allow", action: Any = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": effect, "Action": action, "Resource": "*", **extra}


DEFAULT = policy({"Sid": "Enable IAM User Permissions", **stmt(action="kms:*", Principal={"AWS": ROOT})})
NAMES_ROLE = policy(stmt(action="kms:*", Principal={"AWS": ADMIN_ROLE}))
NAMES_SESSION = policy(stmt(action="kms:*", Principal={"AWS": ADMIN_SESSION}))
NAMES_ALICE = policy(stmt(action="kms:*", Principal={"AWS": ALICE}))
ADMIN_IDENTITY = policy(stmt(action="kms:*"))
FULL_ACCESS = policy(stmt())  # FullAWSAccess, attached to every level when SCPs are enabled
RCP_FULL_ACCESS = policy(stmt(Principal="*"))  # RCPFullAWSAccess
DENY_PUT = policy(stmt("Deny", "kms:PutKeyPolicy"))
DENY_PUT_EXCEPT_BREAK_GLASS = policy(stmt(
    "Deny", "kms:PutKeyPolicy",
    Condition={"ArnNotLike": {"aws:PrincipalArn": f"arn:aws:iam::{ACCOUNT}:role/BreakGlass"}},
))
ONLY_S3 = policy(stmt(action="s3:*"))
RCP_DENY_PUT = policy(stmt("Deny", "kms:PutKeyPolicy", Principal="*"))
BOUNDARY_READ_ONLY = policy(stmt(action=["kms:Describe*", "kms:Get*", "kms:List*"]))
BOUNDARY_DENY_PUT = policy(stmt(action="*"), stmt("Deny", "kms:PutKeyPolicy"))


def levels(*per_level: tuple[dict[str, Any], ...]) -> tuple[OrgLevel, ...]:
    targets = ["r-ab12", "ou-ab12-11111111", ACCOUNT]
    return tuple(OrgLevel(target=t, policies=p) for t, p in zip(targets, per_level, strict=False))


SCP_ALL_ALLOW = levels((FULL_ACCESS,), (FULL_ACCESS,), (FULL_ACCESS,))
RCP_ALL_ALLOW = levels((RCP_FULL_ACCESS,), (RCP_FULL_ACCESS,), (RCP_FULL_ACCESS,))


@dataclass
class Case:
    id: str
    fact: str  # the page and the fact the case demonstrates
    principal: str
    key_policy: dict[str, Any]
    guardrails: Guardrails | None
    expected: Decision
    identity: list[dict[str, Any]] = field(default_factory=list)
    guardrail: str | None = None
    assumed: tuple[str, ...] = ()
    resource: str = KEY
    action: str = "kms:PutKeyPolicy"


CASES = [
    Case("no-guardrails-keeps-todays-behaviour",
         "kms_rescue: evaluate() without guardrails applies none of them",
         ALICE, DEFAULT, None, ALLOW, [ADMIN_IDENTITY]),
    Case("scp-explicit-deny-wins-over-direct-grant",
         "IAM User Guide, Policy evaluation logic: an explicit Deny in any policy, SCPs included, ends in deny",
         ADMIN_SESSION, NAMES_ROLE, Guardrails(scps=levels((FULL_ACCESS,), (FULL_ACCESS, DENY_PUT), (FULL_ACCESS,))),
         EXPLICIT, guardrail=SERVICE_CONTROL_POLICIES),
    Case("scp-deny-applies-to-member-root-user",
         "Organizations User Guide, Service control policies: SCPs restrict the root user of member accounts",
         ROOT, DEFAULT, Guardrails(scps=levels((FULL_ACCESS, DENY_PUT),)), EXPLICIT,
         guardrail=SERVICE_CONTROL_POLICIES),
    Case("scp-condition-exempts-break-glass",
         "IAM User Guide, Policy evaluation logic: a Deny applies only when its conditions hold",
         BREAK_GLASS_SESSION, policy(stmt(action="kms:*", Principal={"AWS": BREAK_GLASS})),
         Guardrails(scps=levels((FULL_ACCESS, DENY_PUT_EXCEPT_BREAK_GLASS),)), ALLOW),
    Case("scp-every-level-must-allow",
         "Organizations User Guide, SCP evaluation: every level from the root through each OU to the account must "
         "allow; an OU that allows only s3:* denies kms:PutKeyPolicy",
         ADMIN_SESSION, NAMES_ROLE, Guardrails(scps=levels((FULL_ACCESS,), (ONLY_S3,), (FULL_ACCESS,))),
         IMPLICIT, guardrail=SERVICE_CONTROL_POLICIES),
    Case("scp-all-levels-allow",
         "Organizations User Guide, SCP evaluation: FullAWSAccess at every level lets the key and IAM policies decide",
         ALICE, DEFAULT, Guardrails(scps=SCP_ALL_ALLOW), ALLOW, [ADMIN_IDENTITY]),
    Case("scp-grants-nothing",
         "Organizations User Guide, Service control policies: an SCP never grants; the key policy still must",
         ALICE, NAMES_ROLE, Guardrails(scps=SCP_ALL_ALLOW), IMPLICIT, [ADMIN_IDENTITY]),
    Case("scp-not-applied-to-management-account",
         "Organizations User Guide, Service control policies: SCPs do not affect users or roles in the management "
         "account",
         MGMT_ADMIN, policy(stmt(action="kms:*", Principal={"AWS": MGMT_ADMIN})),
         Guardrails(scps=levels((FULL_ACCESS, DENY_PUT),), management_account=MGMT), ALLOW, resource=MGMT_KEY),
    Case("scp-not-applied-to-service-linked-role",
         "Organizations User Guide, Service control policies: SCPs do not affect service-linked roles",
         SLR, policy(stmt(action="kms:*", Principal={"AWS": SLR})),
         Guardrails(scps=levels((FULL_ACCESS, DENY_PUT),)), ALLOW),
    Case("scp-unread-is-assumed",
         "kms_rescue: an SCP that was not read is decided as allowing, and named as assumed",
         ALICE, DEFAULT, Guardrails(scps=UNREAD), ALLOW, [ADMIN_IDENTITY], assumed=(SERVICE_CONTROL_POLICIES,)),
    Case("rcp-explicit-deny-wins",
         "IAM User Guide, Policy evaluation logic: an explicit Deny in an RCP ends in deny",
         ADMIN_SESSION, NAMES_ROLE, Guardrails(rcps=levels((RCP_FULL_ACCESS,), (RCP_FULL_ACCESS, RCP_DENY_PUT))),
         EXPLICIT, guardrail=RESOURCE_CONTROL_POLICIES),
    Case("rcp-every-level-must-allow",
         "Organizations User Guide, RCP evaluation: a level without an allowing RCP denies (RCPFullAWSAccess "
         "detached)",
         ADMIN_SESSION, NAMES_ROLE, Guardrails(rcps=levels((RCP_FULL_ACCESS,), ())), IMPLICIT,
         guardrail=RESOURCE_CONTROL_POLICIES),
    Case("rcp-all-levels-allow",
         "Organizations User Guide, RCP evaluation: RCPFullAWSAccess at every level lets the other policies decide",
         ADMIN_SESSION, NAMES_ROLE, Guardrails(rcps=RCP_ALL_ALLOW), ALLOW),
    Case("rcp-not-applied-to-management-account-resources",
         "Organizations User Guide, Resource control policies: RCPs do not affect resources in the management "
         "account",
         MGMT_ADMIN, policy(stmt(action="kms:*", Principal={"AWS": MGMT_ADMIN})),
         Guardrails(rcps=levels((RCP_FULL_ACCESS, RCP_DENY_PUT),), management_account=MGMT), ALLOW,
         resource=MGMT_KEY),
    Case("rcp-not-applied-to-aws-managed-keys",
         "KMS Developer Guide, Resource control policies in AWS KMS: RCPs do not apply to AWS managed keys",
         ADMIN_SESSION, NAMES_ROLE, Guardrails(rcps=levels((RCP_FULL_ACCESS, RCP_DENY_PUT),), aws_managed_key=True),
         ALLOW),
    Case("rcp-not-applied-to-unsupported-service",
         "Organizations User Guide, Resource control policies: RCPs apply only to the services that support them "
         "(IAM is not one)",
         ALICE, DEFAULT, Guardrails(rcps=levels(((policy(stmt("Deny", "iam:*", Principal="*"))),),)), ALLOW,
         [policy(stmt(action="iam:GetRole"))], resource=ADMIN_ROLE, action="iam:GetRole"),
    Case("rcp-unread-is-assumed",
         "kms_rescue: an RCP that was not read is decided as allowing, and named as assumed",
         ADMIN_SESSION, NAMES_ROLE, Guardrails(rcps=UNREAD), ALLOW, assumed=(RESOURCE_CONTROL_POLICIES,)),
    Case("boundary-limits-identity-grant",
         "IAM User Guide, Permissions boundaries for IAM entities: an entity may do only what both its identity "
         "policies and its boundary allow",
         ALICE, DEFAULT, Guardrails(permissions_boundary=BOUNDARY_READ_ONLY), IMPLICIT, [ADMIN_IDENTITY],
         guardrail=PERMISSIONS_BOUNDARY),
    Case("boundary-allows-identity-grant",
         "IAM User Guide, Permissions boundaries for IAM entities: a boundary that allows the action lets the "
         "identity policy grant it",
         ALICE, DEFAULT, Guardrails(permissions_boundary=policy(stmt(action="kms:*"))), ALLOW, [ADMIN_IDENTITY]),
    Case("boundary-grants-nothing",
         "IAM User Guide, Permissions boundaries for IAM entities: a boundary does not grant permissions",
         ALICE, DEFAULT, Guardrails(permissions_boundary=policy(stmt())), IMPLICIT),
    Case("boundary-limits-key-policy-naming-the-role",
         "IAM User Guide, Permissions boundaries for IAM entities: a resource-based policy that names a role ARN "
         "is limited by the role's boundary",
         ADMIN_SESSION, NAMES_ROLE, Guardrails(permissions_boundary=BOUNDARY_READ_ONLY), IMPLICIT,
         guardrail=PERMISSIONS_BOUNDARY),
    Case("boundary-does-not-limit-key-policy-naming-the-session",
         "IAM User Guide, Permissions boundaries for IAM entities: a resource-based policy that names the role "
         "session ARN grants without the boundary",
         ADMIN_SESSION, NAMES_SESSION, Guardrails(permissions_boundary=BOUNDARY_READ_ONLY), ALLOW),
    Case("boundary-does-not-limit-key-policy-naming-the-user",
         "IAM User Guide, Permissions boundaries for IAM entities: within an account, a resource-based policy "
         "that names an IAM user ARN is not limited by an implicit deny in the boundary",
         ALICE, NAMES_ALICE, Guardrails(permissions_boundary=BOUNDARY_READ_ONLY), ALLOW),
    Case("boundary-explicit-deny-wins-over-user-grant",
         "IAM User Guide, Policy evaluation logic: an explicit Deny in a permissions boundary ends in deny",
         ALICE, NAMES_ALICE, Guardrails(permissions_boundary=BOUNDARY_DENY_PUT), EXPLICIT,
         guardrail=PERMISSIONS_BOUNDARY),
    Case("boundary-not-principal-deny-always-denies",
         "IAM User Guide, Permissions boundaries for IAM entities: a Deny with NotPrincipal always denies a "
         "principal that has a boundary, whatever NotPrincipal lists",
         ALICE, policy(stmt(action="kms:*", Principal={"AWS": ALICE}),
                       stmt("Deny", "kms:PutKeyPolicy", NotPrincipal={"AWS": [ROOT, ALICE]})),
         Guardrails(permissions_boundary=policy(stmt(action="kms:*"))), EXPLICIT),
    Case("not-principal-exempts-without-boundary",
         "IAM User Guide, NotPrincipal: listing the account and the user exempts the user (no boundary)",
         ALICE, policy(stmt(action="kms:*", Principal={"AWS": ALICE}),
                       stmt("Deny", "kms:PutKeyPolicy", NotPrincipal={"AWS": [ROOT, ALICE]})),
         Guardrails(), ALLOW),
    Case("boundary-unread-is-assumed",
         "kms_rescue: a boundary that was not read is decided as allowing, and named as assumed",
         ADMIN_SESSION, DEFAULT, Guardrails(permissions_boundary=UNREAD), ALLOW, [ADMIN_IDENTITY],
         assumed=(PERMISSIONS_BOUNDARY,)),
    Case("root-has-no-boundary",
         "IAM User Guide, Permissions boundaries for IAM entities: boundaries are set on users and roles only",
         ROOT, DEFAULT, Guardrails(permissions_boundary=UNREAD), ALLOW),
    Case("unread-guardrails-are-not-assumed-for-a-denial",
         "kms_rescue: guardrails only take permissions away, so one not read cannot have changed a denial",
         ALICE, NAMES_ROLE, Guardrails(permissions_boundary=UNREAD, scps=UNREAD, rcps=UNREAD), IMPLICIT,
         [ADMIN_IDENTITY]),
    Case("all-unread-are-all-assumed",
         "kms_rescue: each guardrail not read is named",
         ADMIN_SESSION, NAMES_ROLE, Guardrails(permissions_boundary=UNREAD, scps=UNREAD, rcps=UNREAD), ALLOW,
         assumed=(RESOURCE_CONTROL_POLICIES, SERVICE_CONTROL_POLICIES, PERMISSIONS_BOUNDARY)),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_guardrail_rule(case: Case) -> None:
    result = evaluate(principal=case.principal, action=case.action, resource=case.resource,
                      key_policy=case.key_policy if case.action.startswith("kms:") else None,
                      identity_policies=case.identity, guardrails=case.guardrails)
    assert result.decision is case.expected, f"{case.fact}: {result.rule}"
    assert result.guardrail == case.guardrail, case.fact
    assert result.assumed == case.assumed, case.fact
    assert result.to_dict()["assumed"] == list(case.assumed)


def test_guardrail_denial_names_the_level() -> None:
    ev = evaluate(principal=ADMIN_SESSION, action="kms:PutKeyPolicy", resource=KEY, key_policy=NAMES_ROLE,
                  guardrails=Guardrails(scps=levels((FULL_ACCESS,), (ONLY_S3,))))
    assert "ou-ab12-11111111" in ev.rule
    assert "no service control policy attached to ou-ab12-11111111 allows kms:PutKeyPolicy" in ev.rule
    assert [r.policy for r in ev.reasons if r.statement] == ["key policy", "SCP 1 at r-ab12"]


def test_explicit_deny_in_key_policy_is_reported_before_guardrails() -> None:
    key = policy(stmt(action="kms:*", Principal={"AWS": ADMIN_ROLE}), stmt("Deny", "kms:PutKeyPolicy", Principal="*"))
    ev = evaluate(principal=ADMIN_SESSION, action="kms:PutKeyPolicy", resource=KEY, key_policy=key,
                  guardrails=Guardrails(scps=levels((DENY_PUT,),)))
    assert ev.decision is EXPLICIT and ev.guardrail is None


def test_default_is_unchanged_for_every_case() -> None:
    """Without guardrails, the decision is what it was before guardrails existed, whatever the other inputs."""
    for case in CASES:
        a = evaluate(principal=case.principal, action=case.action, resource=case.resource,
                     key_policy=case.key_policy if case.action.startswith("kms:") else None,
                     identity_policies=case.identity)
        b = evaluate(principal=case.principal, action=case.action, resource=case.resource,
                     key_policy=case.key_policy if case.action.startswith("kms:") else None,
                     identity_policies=case.identity, guardrails=Guardrails())
        assert (a.decision, a.assumed, a.guardrail) == (b.decision, (), None), case.id


def test_the_engine_docs_guardrails_example_runs(capsys: pytest.CaptureFixture[str]) -> None:
    """docs/engine.md's guardrails example runs and prints what its comments say."""
    text = (DOCS / "engine.md").read_text()
    section = text.split("## Guardrails", 1)[1]
    (code,) = re.findall(r"```python\n(.*?)```", section.split("\n## ", 1)[0], flags=re.S)
    exec(compile(code, "docs/engine.md", "exec"), {})
    out = capsys.readouterr().out.splitlines()
    expected = [line.split("# ", 1)[1].strip() for line in code.splitlines() if line.startswith("print(")]
    assert out == expected


RCP_ORG_PERIMETER = policy(stmt(  # KMS Developer Guide, "Resource control policies in AWS KMS": the example RCP
    "Deny", "kms:*", Principal="*",
    Condition={"StringNotEqualsIfExists": {"aws:PrincipalOrgID": "o-exampleorg"},
               "Bool": {"aws:PrincipalIsAWSService": "false"}}))


@pytest.mark.parametrize("member, expected", [
    (OrgMembership("o-exampleorg", "o-exampleorg/r-ab12/"), ALLOW),
    (OrgMembership("o-otherorg1"), EXPLICIT),
    (None, EXPLICIT),
])
def test_the_organization_feeds_its_condition_keys(member: OrgMembership | None, expected: Decision) -> None:
    """IAM User Guide, AWS global condition context keys: aws:PrincipalOrgID is the caller's organization, so the
    KMS guide's perimeter RCP denies only callers outside it (absent: the IfExists condition holds)."""
    ev = evaluate(principal=ADMIN_SESSION, action="kms:PutKeyPolicy", resource=KEY, key_policy=NAMES_ROLE,
                  context={"aws:PrincipalIsAWSService": "false"},
                  guardrails=Guardrails(rcps=levels((RCP_FULL_ACCESS, RCP_ORG_PERIMETER),), principal_org=member))
    assert ev.decision is expected, ev.rule


def test_org_paths_are_multivalued_keys() -> None:
    member = OrgMembership("o-exampleorg", "o-exampleorg/r-ab12/ou-ab12-11111111/")
    key_policy = policy(stmt(action="kms:*", Principal="*", Condition={
        "ForAnyValue:StringLike": {"aws:PrincipalOrgPaths": "o-exampleorg/r-ab12/ou-ab12-11111111/*"}}))
    ev = evaluate(principal=ALICE, action="kms:PutKeyPolicy", resource=KEY, key_policy=key_policy,
                  guardrails=Guardrails(principal_org=member, resource_org=member))
    assert ev.decision is ALLOW, ev.rule
    given = evaluate(principal=ALICE, action="kms:PutKeyPolicy", resource=KEY, key_policy=key_policy,
                     context={"aws:PrincipalOrgPaths": ["o-exampleorg/r-ab12/"]},
                     guardrails=Guardrails(principal_org=member))
    assert given.decision is IMPLICIT  # a context the caller gives wins
