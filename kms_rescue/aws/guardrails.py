"""Reads of the guardrails beyond the key: a caller's permissions boundary, and the organization's SCPs and RCPs.

- Permissions boundary (IAM User Guide, "Permissions boundaries for IAM entities"): ``iam:GetRole`` /
  ``iam:GetUser`` show ``PermissionsBoundary.PermissionsBoundaryArn``; ``iam:GetPolicy`` names the default
  version and ``iam:GetPolicyVersion`` returns it. The GetRole answer also gives a session's role ARN with its path,
  so the probe keeps it rather than calling GetRole twice.
- SCPs and RCPs (AWS Organizations API reference): ``DescribeOrganization`` (any member account may call it;
  ``AWSOrganizationsNotInUseException`` when the account is in no organization: one call settles that),
  then, only from the management account, ``ListRoots`` (which policy types are enabled), ``ListParents`` from the
  account up to the root, ``ListPoliciesForTarget`` per level and type, ``DescribePolicy`` per policy.

Every call goes through a recorder (``call(operation, target, thunk)``), so each one is classified, redacted and
listed with the identity that made it; nothing here raises an AWS exception.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Sequence
from typing import Any, Literal

from kms_rescue.aws.iam import Recorder, policy_document
from kms_rescue.aws.results import OrganizationGuardrails, OrganizationLevel, OrgPolicyDoc, PermissionsBoundary
from kms_rescue.policy.errors import PolicyInputError
from kms_rescue.policy.principals import parse_caller

SCP = "SERVICE_CONTROL_POLICY"
RCP = "RESOURCE_CONTROL_POLICY"
NOT_IN_USE = "AWSOrganizationsNotInUseException"
#: Levels between an account and the root: an account, at most five nested OUs, the root (Organizations quotas).
MAX_DEPTH = 8


def boundary_from_entity(
    iam: Any, entity: dict[str, Any], call: Recorder, read_by: str
) -> PermissionsBoundary:
    """The boundary of the user or role ``entity`` (a GetUser/GetRole answer's ``User`` or ``Role``)."""
    arn = ((entity.get("PermissionsBoundary") or {}).get("PermissionsBoundaryArn"))
    if not arn:
        return PermissionsBoundary("none", read_by=read_by)
    meta, rec = call("iam:GetPolicy", arn, functools.partial(iam.get_policy, PolicyArn=arn))
    version = ((meta or {}).get("Policy") or {}).get("DefaultVersionId")
    if not version:
        return PermissionsBoundary("unknown", arn, read_by=read_by, reason=f"iam:GetPolicy {arn}: {rec.outcome}")
    got, rec = call("iam:GetPolicyVersion", arn,
                    functools.partial(iam.get_policy_version, PolicyArn=arn, VersionId=version))
    doc = policy_document(((got or {}).get("PolicyVersion") or {}).get("Document"))
    if doc is None:
        return PermissionsBoundary("unknown", arn, read_by=read_by,
                                   reason=f"iam:GetPolicyVersion {arn}: {rec.outcome}")
    return PermissionsBoundary("read", arn, doc, read_by=read_by)


def read_boundary(
    iam: Any, caller_arn: str, call: Recorder, *, read_by: str
) -> tuple[PermissionsBoundary, str | None]:
    """The caller's permissions boundary, and (for a role session) its role's ARN from the same GetRole answer."""
    try:
        caller = parse_caller(caller_arn)
    except PolicyInputError:
        return PermissionsBoundary("unknown", read_by=read_by, reason=f"unrecognised caller ARN {caller_arn}"), None
    if caller.kind == "root":
        return PermissionsBoundary("none", read_by=read_by, reason="the root user has no permissions boundary"), None
    name = caller.name
    if caller.kind in ("role", "assumed_role") and name:
        got, rec = call("iam:GetRole", f"role/{name}", lambda: iam.get_role(RoleName=name))
        entity = (got or {}).get("Role")
    elif caller.kind == "user" and name:
        got, rec = call("iam:GetUser", f"user/{name}", lambda: iam.get_user(UserName=name))
        entity = (got or {}).get("User")
    else:
        return PermissionsBoundary("unknown", read_by=read_by,
                                   reason=f"a {caller.kind.replace('_', ' ')} has no readable boundary"), None
    if not isinstance(entity, dict):
        return PermissionsBoundary("unknown", read_by=read_by, reason=f"{rec.operation}: {rec.outcome}"), None
    role_arn = None
    found = entity.get("Arn")
    if caller.kind == "assumed_role" and isinstance(found, str):
        try:
            role = parse_caller(found)
        except PolicyInputError:
            role = None
        if role is not None and role.kind == "role" and role.name == name and role.account == caller.account:
            role_arn = found
    return boundary_from_entity(iam, entity, call, read_by), role_arn


# --- the organization ------------------------------------------------------------------------------------------


class _Failed(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _pages(client: Any, operation: str, key: str, call: Recorder, target: str, **kwargs: Any) -> list[Any]:
    def thunk() -> list[Any]:
        out: list[Any] = []
        for page in client.get_paginator(operation).paginate(**kwargs):
            out.extend(page.get(key, []))
        return out

    got, rec = call(f"organizations:{_camel(operation)}", target, thunk)
    if got is None:
        raise _Failed(f"organizations:{_camel(operation)} {target}: {rec.outcome}"
                      + (f" ({rec.error_code})" if rec.error_code else ""))
    return list(got)


def _camel(snake: str) -> str:
    return "".join(part.capitalize() for part in snake.split("_"))


def describe_organization(
    candidates: Sequence[tuple[str, Any, Recorder]],
) -> tuple[OrganizationGuardrails | None, dict[str, Any] | None, str | None]:
    """DescribeOrganization by the first identity that gets an answer: (settled result, organization, by whom).
    The result is set when the question is settled without the organization (no organization, or nobody could
    ask)."""
    failures: list[str] = []
    for name, client, call in candidates:
        got, rec = call("organizations:DescribeOrganization", None, client.describe_organization)
        if got is not None:
            return None, got.get("Organization") or {}, name
        if rec.error_code == NOT_IN_USE:
            return OrganizationGuardrails("none", read_by=name,
                                          reason=f"{name}: the account is not a member of an organization"), None, name
        failures.append(f"{name}: {rec.outcome}")
    reason = "organizations:DescribeOrganization failed for every identity (" + "; ".join(failures[:3]) + ")" \
        if failures else ("no identity of the key's account that may call organizations:DescribeOrganization "
                          "(none connected, or their identity policies do not allow it)")
    return OrganizationGuardrails("unknown", reason=reason), None, None


def read_levels(client: Any, call: Recorder, account: str, *, read_by: str, org_id: str | None,
                management_account: str) -> OrganizationGuardrails:
    """The SCPs and RCPs on each level from the root to ``account``, read from the management account."""
    try:
        roots = _pages(client, "list_roots", "Roots", call, "roots")
        types = {t.get("Type"): t.get("Status") for r in roots[:1] for t in r.get("PolicyTypes", [])}
        scps_on, rcps_on = types.get(SCP) == "ENABLED", types.get(RCP) == "ENABLED"
        path: list[tuple[str, Literal["root", "ou", "account"]]] = [(account, "account")]
        child = account
        for _ in range(MAX_DEPTH):
            parents = _pages(client, "list_parents", "Parents", call, child, ChildId=child)
            if not parents:
                raise _Failed(f"organizations:ListParents {child}: no parent")
            child = parents[0]["Id"]
            is_root = parents[0].get("Type") == "ROOT"
            path.append((child, "root" if is_root else "ou"))
            if is_root:
                break
        else:
            raise _Failed(f"organizations:ListParents: no root within {MAX_DEPTH} levels of {account}")
        path.reverse()
        described: dict[str, OrgPolicyDoc] = {}

        def policies(target: str, kind: str) -> tuple[OrgPolicyDoc, ...]:
            out = []
            for summary in _pages(client, "list_policies_for_target", "Policies", call, f"{target} {kind}",
                                  TargetId=target, Filter=kind):
                pid = summary["Id"]
                if pid not in described:
                    got, rec = call("organizations:DescribePolicy", pid,
                                    functools.partial(client.describe_policy, PolicyId=pid))
                    content = ((got or {}).get("Policy") or {}).get("Content")
                    try:
                        doc = json.loads(content) if isinstance(content, str) else None
                    except ValueError:
                        doc = None
                    if not isinstance(doc, dict):
                        raise _Failed(f"organizations:DescribePolicy {pid}: {rec.outcome}")
                    described[pid] = OrgPolicyDoc(pid, summary.get("Name", pid), kind,  # type: ignore[arg-type]
                                                  doc, bool(summary.get("AwsManaged")))
                out.append(described[pid])
            return tuple(out)

        levels = tuple(
            OrganizationLevel(target, kind, policies(target, SCP) if scps_on else (),
                              policies(target, RCP) if rcps_on else ())
            for target, kind in path
        )
    except _Failed as exc:
        return OrganizationGuardrails("unknown", org_id, management_account, read_by, exc.reason)
    return OrganizationGuardrails("read", org_id, management_account, read_by, None, scps_on, rcps_on, levels)


#: A usable identity, as ``(name, account, organizations client factory, recorder)``.
Asker = tuple[str, str | None, Callable[[], Any], Recorder]


def ask_organization(askers: Sequence[Asker], key_account: str | None) -> OrganizationGuardrails | dict[str, Any]:
    """DescribeOrganization by the first asker of the key's account: the settled result, or the organization.
    One identity asks: the answer is the same for every principal of the account, so an account in no organization
    costs one call."""
    if key_account is None:
        return OrganizationGuardrails("unknown", reason="the key's account is not known")
    own = [(n, make(), rec) for n, acct, make, rec in askers if acct == key_account][:1]
    settled, org, _by = describe_organization(own)
    if settled is not None:
        return settled
    assert org is not None
    return org


def read_organization(askers: Sequence[Asker], key_account: str | None,
                      described: OrganizationGuardrails | dict[str, Any] | None = None) -> OrganizationGuardrails:
    """The organization's guardrails for ``key_account``. ``askers`` are the usable identities, those most likely
    allowed to call DescribeOrganization first; ``described`` is :func:`ask_organization`'s answer when it was
    asked already."""
    if described is None:
        described = ask_organization(askers, key_account)
    if isinstance(described, OrganizationGuardrails):
        return described
    assert key_account is not None
    org = described
    mgmt = str(org.get("MasterAccountId") or "")
    org_id = org.get("Id")
    if mgmt == key_account:
        return OrganizationGuardrails("management_account", org_id, mgmt, reason=(
            "the key's account is the organization's management account: SCPs and RCPs do not apply to it"))
    readers = [(n, make, rec) for n, acct, make, rec in askers if acct == mgmt]
    if not readers:
        return OrganizationGuardrails("unknown", org_id, mgmt, reason=(
            f"no identity of the management account {mgmt}: the organization's SCPs and RCPs can be listed only "
            "from it"))
    reasons = []
    for name, make, rec in readers:
        got = read_levels(make(), rec, key_account, read_by=name, org_id=org_id, management_account=mgmt)
        if got.status == "read":
            return got
        reasons.append(f"{name}: {got.reason}")
    return OrganizationGuardrails("unknown", org_id, mgmt, reason="; ".join(reasons[:3]))
