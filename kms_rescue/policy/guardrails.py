"""Guardrails beyond the key: a caller's permissions boundary, the organization's SCPs and RCPs.

What the engine applies, from AWS's documentation (each rule has a case in ``tests/policy/test_guardrails.py``; the
evaluation order is in docs/engine.md):

- IAM User Guide, "Policy evaluation logic" ("How AWS enforcement code logic evaluates requests"): an explicit
  Deny in any policy that applies (SCPs, RCPs, resource-based policies, identity-based policies, permissions
  boundaries) ends the evaluation with a deny. Then RCPs, then SCPs must allow; then the resource-based and
  identity-based policies decide; a permissions boundary limits what identity-based policies grant.
- AWS Organizations User Guide, "SCP evaluation" / "RCP evaluation": to allow a permission for an account, every
  level on the path from the organization root through each OU to the account itself must have an SCP (or RCP)
  that allows it. "Service control policies (SCPs)": SCPs do not affect users or roles in the management account,
  nor service-linked roles. "Resource control policies (RCPs)": RCPs do not affect resources in the management
  account; they apply only to the services that support them (S3, STS, KMS, SQS, Secrets Manager, ...); KMS
  Developer Guide, "Resource control policies in AWS KMS": they do not apply to AWS managed keys.
- IAM User Guide, "Permissions boundaries for IAM entities": an entity may do only what both its identity-based
  policies and its boundary allow. Within an account, a resource-based policy that names an IAM user's ARN or a
  role session's ARN grants without the boundary; one that names a role's ARN is limited by the role's boundary.
  A Deny with ``NotPrincipal`` in a resource-based policy always denies a principal that has a boundary.

A guardrail that was not read is :data:`UNREAD`: the decision is made as if it allowed, and the evaluation names it
in ``assumed``. ``None`` means "there is none" (no boundary attached; no organization, or no policies of that type).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Literal

from kms_rescue.policy.model import Policy, PrincipalSpec, Statement
from kms_rescue.policy.principals import Caller, classify_aws_value, match_value

#: The names reports and ``Evaluation.assumed`` use for each guardrail.
PERMISSIONS_BOUNDARY = "permissions boundary"
SERVICE_CONTROL_POLICIES = "service control policies"
RESOURCE_CONTROL_POLICIES = "resource control policies"
#: How one policy of each organization type is named in reasons ("SCP 2 at ou-ab12-11111111").
_SHORT = {"service control policies": "SCP", "resource control policies": "RCP"}
_SINGULAR = {
    "service control policies": "service control policy",
    "resource control policies": "resource control policy",
}
GuardrailName = Literal["permissions boundary", "service control policies", "resource control policies"]

#: Services RCPs apply to (AWS Organizations User Guide, "Resource control policies": "List of AWS services that
#: support RCPs"; the five of AWS Control Tower's RCP controls). Other services are not restricted by RCPs.
RCP_SERVICES = frozenset({"s3", "sts", "kms", "sqs", "secretsmanager"})
#: IAM User Guide, "Using service-linked roles": their path is /aws-service-role/.
SERVICE_LINKED_ROLE_PATH = "/aws-service-role/"


class Unread(Enum):
    """A guardrail that could not be read."""

    UNREAD = "unread"


UNREAD = Unread.UNREAD


@dataclass(frozen=True)
class OrgLevel:
    """One level of the organization on the path to an account: the root, an OU, or the account itself, with the
    policies (of one type) attached to it. ``policies`` are parsed :class:`Policy` objects, dicts or JSON text."""

    target: str  # "r-ab12", "ou-ab12-11111111", "111122223333": how reports name the level
    policies: tuple[object, ...]
    name: str = ""  # the root's, OU's or account's name, when known


@dataclass(frozen=True)
class OrgMembership:
    """An account's place in its organization, for the organization's global condition keys (IAM User Guide,
    "AWS global condition context keys": ``aws:PrincipalOrgID``, ``aws:PrincipalOrgPaths``, ``aws:ResourceOrgID``,
    ``aws:ResourceOrgPaths``). ``path`` is ``o-…/r-…/ou-…/`` down to the account's parent, None when not known."""

    org_id: str
    path: str | None = None


@dataclass(frozen=True)
class Guardrails:
    """The guardrails that apply to one request, for :func:`kms_rescue.policy.evaluate`.

    ``scps`` are the levels from the organization root down to the *caller's* account; ``rcps`` those down to the
    *resource's* account. Each is a sequence of :class:`OrgLevel`, ``None`` (none apply: no organization, or the
    policy type is not enabled) or :data:`UNREAD`. ``permissions_boundary`` is the caller's boundary policy,
    ``None`` when it has none, or :data:`UNREAD`. ``management_account``: SCPs do not apply to its principals nor
    RCPs to its resources (None when not known). ``aws_managed_key``: RCPs do not apply to AWS managed keys.
    """

    permissions_boundary: object | Unread | None = None
    scps: Sequence[OrgLevel] | Unread | None = None
    rcps: Sequence[OrgLevel] | Unread | None = None
    management_account: str | None = None
    service_linked_role: bool = False
    aws_managed_key: bool = False
    #: The organization of the caller's account and of the resource's account (None: not in one, or not known).
    principal_org: OrgMembership | None = None
    resource_org: OrgMembership | None = None


def org_context(guardrails: Guardrails) -> dict[str, str | list[str]]:
    """The organization's global condition keys the guardrails know: an RCP's usual ``aws:PrincipalOrgID``
    condition needs them (KMS Developer Guide, "Resource control policies in AWS KMS")."""
    out: dict[str, str | list[str]] = {}
    for prefix, member in (("aws:Principal", guardrails.principal_org), ("aws:Resource", guardrails.resource_org)):
        if member is None:
            continue
        out[f"{prefix}OrgID"] = member.org_id
        if member.path:
            out[f"{prefix}OrgPaths"] = [member.path]
    return out


#: The statements of one parsed policy that apply to the request: (policy, its name, resource-based?) ->
#: (Allow statements, Deny statements).
Matcher = Callable[[Policy, str, bool], tuple[list[Statement], list[Statement]]]
#: Parses a policy document (dict, JSON text or Policy), naming it in errors.
Parser = Callable[[object, str], Policy]


@dataclass(frozen=True)
class GuardrailOutcome:
    """What the guardrails decided for one request, before the key and identity policies are combined."""

    explicit_deny: str | None = None  # the guardrail whose Deny applies
    implicit_deny: str | None = None  # the guardrail (RCPs or SCPs) with a level that allows nothing here
    deny_detail: str = ""
    boundary: Policy | None = None
    boundary_allows: bool = True
    assumed: tuple[str, ...] = ()
    matched: tuple[tuple[str, Statement], ...] = ()


def is_service_linked(caller: Caller, declared: bool) -> bool:
    return declared or (caller.kind in ("role", "assumed_role") and caller.path.startswith(SERVICE_LINKED_ROLE_PATH))


def _levels(
    levels: Sequence[OrgLevel], label: str, resource_policy: bool, match: Matcher, parse: Parser
) -> tuple[str | None, str | None, list[tuple[str, Statement]]]:
    """For one policy type across its levels: the Deny that applies (as "policy N at TARGET, statement S"), the
    first level where nothing allows, and every statement that matched."""
    matched: list[tuple[str, Statement]] = []
    missing: str | None = None
    for level in levels:
        allowed = False
        for i, doc in enumerate(level.policies):
            name = f"{_SHORT[label]} {i + 1} at {level.target}"
            allows, denies = match(parse(doc, name), name, resource_policy)
            matched.extend((name, st) for st in (*denies, *allows))
            if denies:
                return f"{name}, statement {denies[0].label}", None, matched
            allowed = allowed or bool(allows)
        if not allowed and missing is None:
            missing = level.target
    return None, missing, matched


def check(
    guardrails: Guardrails,
    *,
    caller: Caller,
    action: str,
    resource_account: str | None,
    match: Matcher,
    parse: Parser,
) -> GuardrailOutcome:
    """Apply the guardrails' own rules (their Deny statements and the every-level rule). The boundary's Allow is
    only judged here; :func:`kms_rescue.policy.evaluate` decides whether it limits the grant that applies."""
    assumed: list[str] = []
    matched: list[tuple[str, Statement]] = []
    slr = is_service_linked(caller, guardrails.service_linked_role)
    mgmt = guardrails.management_account
    explicit: str | None = None
    explicit_detail = ""
    implicit: str | None = None
    implicit_detail = ""

    service = action.split(":", 1)[0].lower()
    rcps_apply = not slr and service in RCP_SERVICES and not guardrails.aws_managed_key and (
        mgmt is None or resource_account != mgmt
    )
    scps_apply = not slr and caller.kind not in ("service", "anonymous") and (mgmt is None or caller.account != mgmt)

    for label, levels, applies, resource_policy in (
        (RESOURCE_CONTROL_POLICIES, guardrails.rcps, rcps_apply, True),
        (SERVICE_CONTROL_POLICIES, guardrails.scps, scps_apply, False),
    ):
        if not applies or levels is None:
            continue
        if levels is UNREAD:
            assumed.append(label)
            continue
        deny, missing, found = _levels(levels, label, resource_policy, match, parse)
        matched.extend(found)
        if deny and explicit is None:
            explicit, explicit_detail = label, deny
        if missing and implicit is None:
            implicit = label
            implicit_detail = f"no {_SINGULAR[label]} attached to {missing} allows {action}"

    boundary: Policy | None = None
    boundary_allows = True
    pb = guardrails.permissions_boundary
    if pb is UNREAD:
        if caller.kind in ("user", "role", "assumed_role"):
            assumed.append(PERMISSIONS_BOUNDARY)
    elif pb is not None and caller.kind in ("user", "role", "assumed_role"):
        boundary = parse(pb, PERMISSIONS_BOUNDARY)
        allows, denies = match(boundary, PERMISSIONS_BOUNDARY, False)
        matched.extend((PERMISSIONS_BOUNDARY, st) for st in (*denies, *allows))
        if denies and explicit is None:
            explicit, explicit_detail = PERMISSIONS_BOUNDARY, f"{PERMISSIONS_BOUNDARY}, statement {denies[0].label}"
        boundary_allows = bool(allows)

    return GuardrailOutcome(
        explicit_deny=explicit,
        implicit_deny=implicit,
        deny_detail=explicit_detail if explicit else implicit_detail,
        boundary=boundary,
        boundary_allows=boundary_allows,
        assumed=tuple(dict.fromkeys(assumed)),
        matched=tuple(matched),
    )


def names_caller_itself(principal: PrincipalSpec | None, caller: Caller) -> Literal["user", "session", "role", None]:
    """Which ARN of the caller a key-policy Principal names directly: the user's, the role session's or the role's
    (None when it names only the account or ``"*"``). Decides whether a boundary limits the grant."""
    if principal is None:
        return None
    best: Literal["user", "session", "role", None] = None
    for raw in principal.aws:
        value = classify_aws_value(raw)
        if match_value(value, caller) != "direct":
            continue
        if value.kind == "user":
            return "user"
        if value.kind == "session":
            return "session"
        if value.kind == "role":
            best = "role"
    return best


def not_principal_ignored(statement: Statement) -> Statement:
    """The statement as it applies to a principal with a boundary: its NotPrincipal exempts nobody (IAM User
    Guide, "Permissions boundaries for IAM entities")."""
    return dataclasses.replace(statement, not_principal=None, principal=PrincipalSpec(wildcard=True))


__all__ = [
    "PERMISSIONS_BOUNDARY",
    "RCP_SERVICES",
    "RESOURCE_CONTROL_POLICIES",
    "SERVICE_CONTROL_POLICIES",
    "UNREAD",
    "GuardrailOutcome",
    "Guardrails",
    "OrgLevel",
    "OrgMembership",
    "Unread",
    "check",
    "names_caller_itself",
    "org_context",
]
