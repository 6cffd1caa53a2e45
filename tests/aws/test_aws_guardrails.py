"""Reads of the guardrails beyond the key, through real boto3 clients against the lab: permissions boundaries
(iam:GetRole/GetUser, GetPolicy, GetPolicyVersion) and the organization's SCPs and RCPs (DescribeOrganization,
ListRoots, ListParents, ListPoliciesForTarget, DescribePolicy), turned into the engine's guardrails."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kms_rescue.aws.investigate import InvestigateOptions, investigate
from kms_rescue.aws.results import Investigation, OrganizationGuardrails, PermissionsBoundary
from kms_rescue.lab import Lab, load_scenario
from kms_rescue.lab.scenario import builtin_text
from kms_rescue.policy import Decision, evaluate
from kms_rescue.policy.guardrails import (
    PERMISSIONS_BOUNDARY,
    RESOURCE_CONTROL_POLICIES,
    SERVICE_CONTROL_POLICIES,
    UNREAD,
)

pytest.importorskip("moto")


@pytest.fixture
def run(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    labs: list[Lab] = []

    def go(name: str | dict[str, Any], profiles: list[str] | None = None) -> tuple[Lab, Investigation]:
        lab = Lab(load_scenario(name))
        lab.__enter__()
        labs.append(lab)
        monkeypatch.setenv("AWS_CONFIG_FILE", str(lab.config_path))
        key = lab.key_arn(lab.scenario.keys[0].id)
        return lab, investigate(key, InvestigateOptions(profiles=profiles or list(lab.profiles), history=False))

    yield go
    for lab in labs:
        assert lab.admin.internal_errors == []
        lab.__exit__(None, None, None)


def put_key_policy(inv: Investigation, identity: str) -> Any:
    """The engine's decision for PutKeyPolicy by ``identity``, from what the investigation read."""
    probe = next(p for p in inv.identities if p.name == identity)
    policy = next(p.key_policy for p in inv.identities if p.key_policy is not None)
    pols = probe.identity_policies
    docs = [d.document for d in pols.documents] if pols is not None and pols.status != "unknown" else None
    context = {"aws:PrincipalArn": probe.role_arn} if probe.role_arn else None
    assert probe.arn is not None and inv.key.arn is not None
    return evaluate(principal=probe.arn, action="kms:PutKeyPolicy", resource=inv.key.arn, key_policy=policy,
                    identity_policies=docs, context=context, guardrails=inv.guardrails_for(identity))


def org_calls(inv: Investigation) -> list[tuple[str, str, str]]:
    return [(p.name, c.operation, c.outcome) for p in inv.identities for c in p.calls
            if c.operation.startswith("organizations:")]


def test_scps_are_read_from_the_management_account(run: Any) -> None:
    lab, inv = run("scp-break-glass-only")
    org = inv.organization
    assert isinstance(org, OrganizationGuardrails)
    assert (org.status, org.read_by, org.management_account) == ("read", "org-reader", "444455556666")
    assert org.scps_enabled is True and org.rcps_enabled is False
    assert [lv.kind for lv in org.levels] == ["root", "ou", "account"]
    assert org.levels[-1].target == lab.account
    assert [p.name for p in org.levels[0].scps] == ["FullAWSAccess", "DenyKeyPolicyChangesButBreakGlass"]
    assert org.levels[0].scps[1].document["Statement"][0]["Action"] == "kms:PutKeyPolicy"
    # The member account asked DescribeOrganization once; the management account read the rest.
    calls = org_calls(inv)
    assert [c for c in calls if c[1] == "organizations:DescribeOrganization"] == [
        ("root", "organizations:DescribeOrganization", "ok")]
    assert {c[0] for c in calls if c[1] != "organizations:DescribeOrganization"} == {"org-reader"}
    # The organization's condition keys come with the guardrails (aws:PrincipalOrgID, aws:PrincipalOrgPaths).
    g = inv.guardrails_for("admin")
    assert g.principal_org is not None and g.principal_org == g.resource_org
    assert g.principal_org.org_id == org.organization_id
    assert g.principal_org.path == f"{org.organization_id}/{org.levels[0].target}/{org.levels[1].target}/"
    # What the lab enforces, the engine now decides from the reads: the SCP denies admin and the root user.
    for identity in ("admin", "root"):
        ev = put_key_policy(inv, identity)
        assert (ev.decision, ev.guardrail, ev.assumed) == (Decision.EXPLICIT_DENY, SERVICE_CONTROL_POLICIES, ())


def test_rcps_are_read_too(run: Any) -> None:
    _lab, inv = run("rcp-denies-key-policy-changes")
    org = inv.organization
    assert org is not None and org.status == "read" and org.rcps_enabled and not org.scps_enabled
    assert [p.name for p in org.levels[1].rcps] == ["RCPFullAWSAccess", "KeyPolicyChangesBySecurityOnly"]
    ev = put_key_policy(inv, "admin")
    assert (ev.decision, ev.guardrail) == (Decision.EXPLICIT_DENY, RESOURCE_CONTROL_POLICIES)


def test_a_boundary_is_read_with_the_get_role_that_gives_the_path(run: Any) -> None:
    lab, inv = run("boundary-blocks-admin")
    admin = inv.identities[0]
    pb = admin.permissions_boundary
    assert isinstance(pb, PermissionsBoundary)
    assert (pb.status, pb.policy_arn, pb.read_by) == (
        "read", f"arn:aws:iam::{lab.account}:policy/KmsReadOnlyBoundary", "admin")
    assert pb.document is not None and "kms:Get*" in pb.document["Statement"][0]["Action"]
    assert admin.role_arn == f"arn:aws:iam::{lab.account}:role/KeyAdmin"
    assert [c.operation for c in admin.calls].count("iam:GetRole") == 1
    ev = put_key_policy(inv, "admin")
    assert (ev.decision, ev.guardrail) == (Decision.IMPLICIT_DENY, PERMISSIONS_BOUNDARY)
    # Nobody here can ask Organizations (admin's policies do not allow it): unread, but a denial rests on nothing
    # unread (guardrails only take permissions away), so nothing is assumed.
    assert inv.organization is not None and inv.organization.status == "unknown"
    g = inv.guardrails_for("admin")
    assert g.scps is UNREAD and g.rcps is UNREAD and ev.assumed == ()
    assert org_calls(inv) == []  # its policies were read and do not allow the call: not spent


def test_unreadable_guardrails_are_assumed_by_name(run: Any) -> None:
    _lab, inv = run("guardrails-unreadable")
    org = inv.organization
    assert org is not None and org.status == "unknown" and org.management_account == "444455556666"
    assert org.reason is not None and "no identity of the management account 444455556666" in org.reason
    g = inv.guardrails_for("admin")
    assert g.scps is UNREAD and g.rcps is UNREAD and g.permissions_boundary is None
    ev = put_key_policy(inv, "admin")
    assert ev.decision is Decision.ALLOW
    assert ev.assumed == (RESOURCE_CONTROL_POLICIES, SERVICE_CONTROL_POLICIES)


def test_an_account_in_no_organization_costs_one_call(run: Any) -> None:
    _lab, inv = run("healthy-default")
    assert inv.organization is not None
    assert (inv.organization.status, inv.organization.read_by) == ("none", "root")
    assert org_calls(inv) == [("root", "organizations:DescribeOrganization", "error")]
    g = inv.guardrails_for("admin")
    assert g.scps is None and g.rcps is None
    assert put_key_policy(inv, "admin").assumed == ()


def test_each_identity_reads_its_own_boundary(run: Any) -> None:
    _lab, inv = run("healthy-default")
    by_name = {p.name: p.permissions_boundary for p in inv.identities}
    root = by_name["root"]
    assert root is not None and root.status == "none" and root.reason == "the root user has no permissions boundary"
    for name in ("admin", "auditor"):  # a role (iam:GetRole) and a user (iam:GetUser) that may read IAM: none
        got = by_name[name]
        assert got is not None and (got.status, got.read_by) == ("none", name), name
    intern = by_name["intern"]  # a role without any policy: GetRole is refused, and its boundary cannot matter
    assert intern is not None and intern.status == "unknown" and intern.reason == "iam:GetRole: access_denied"
    assert put_key_policy(inv, "intern").assumed == ()  # denied: nothing unread changes that
    for probe in inv.identities:  # one GetRole/GetUser each at most: the path comes from the same answer
        assert sum(c.operation in ("iam:GetRole", "iam:GetUser") for c in probe.calls) <= 1, probe.name


def _admin_without_iam(keep: tuple[str, ...]) -> dict[str, Any]:
    doc = json.loads(builtin_text("healthy-default"))
    admin = next(i for i in doc["identities"] if i["profile"] == "admin")
    admin["policies"] = [{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "kms:*",
                                                                  "Resource": "*"}]}]
    doc["identities"] = [i for i in doc["identities"] if i["profile"] in ("admin", *keep)]
    return doc


def _put_in_the_allowing_world(inv: Investigation) -> Any:
    probe = inv.identities[0]
    assert probe.name == "admin" and probe.arn is not None and inv.key.arn is not None
    allow = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "kms:*", "Resource": "*"}]}
    return evaluate(principal=probe.arn, action="kms:PutKeyPolicy", resource=inv.key.arn,
                    key_policy=probe.key_policy, identity_policies=[allow], guardrails=inv.guardrails_for("admin"))


def test_a_boundary_that_matters_is_read_by_another_identity(run: Any) -> None:
    """admin may not read IAM (not even its own role): the key policy and its identity policies (which the auditor
    reads for it) let it call PutKeyPolicy, so its boundary decides, and the auditor reads that too."""
    _lab, inv = run(_admin_without_iam(("auditor",)))
    pb = inv.identities[0].permissions_boundary
    assert pb is not None and (pb.status, pb.read_by) == ("none", "auditor")
    ev = _put_in_the_allowing_world(inv)
    assert ev.decision is Decision.ALLOW and PERMISSIONS_BOUNDARY not in ev.assumed


def test_a_boundary_nobody_may_read_is_assumed(run: Any) -> None:
    """Nobody may read admin's IAM: in the world where its unread identity policies allow, the unread boundary is
    assumed, and said so."""
    _lab, inv = run(_admin_without_iam(("intern",)))
    pols = inv.identities[0].identity_policies
    assert pols is not None and pols.status == "unknown"
    pb = inv.identities[0].permissions_boundary
    assert pb is not None and pb.status == "unknown" and pb.reason == "iam:GetRole: access_denied"
    ev = _put_in_the_allowing_world(inv)
    assert ev.decision is Decision.ALLOW and PERMISSIONS_BOUNDARY in ev.assumed


def test_organization_reads_can_be_turned_off(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with Lab(load_scenario("guardrails-unreadable")) as lab:
        monkeypatch.setenv("AWS_CONFIG_FILE", str(lab.config_path))
        inv = investigate(lab.key_arn(lab.scenario.keys[0].id),
                          InvestigateOptions(profiles=["admin"], history=False, organization=False))
    assert inv.organization is None
    assert inv.guardrails_for("admin").scps is UNREAD


def test_a_refused_organizations_read_leaves_the_guardrails_unknown_with_the_reason(run: Any) -> None:
    doc = json.loads(builtin_text("scp-break-glass-only"))
    reader = next(i for i in doc["identities"] if i["profile"] == "org-reader")
    reader["policies"] = [{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Resource": "*", "Action": [
        "organizations:DescribeOrganization", "organizations:ListRoots", "organizations:ListParents"]}]}]
    _lab, inv = run(doc)
    org = inv.organization
    assert org is not None and org.status == "unknown" and org.levels == ()
    assert org.reason == ("org-reader: organizations:ListPoliciesForTarget r-426c SERVICE_CONTROL_POLICY: "
                          "access_denied (AccessDeniedException)")
    assert inv.guardrails_for("admin").scps is UNREAD
    ev = put_key_policy(inv, "admin")
    assert ev.decision is Decision.ALLOW and SERVICE_CONTROL_POLICIES in ev.assumed  # assumed, and said so
