"""The gate's decisions: who may do what, decided by the policy engine with the key policy, the caller's identity
policies and the guardrails (permissions boundary, SCPs, RCPs) that apply, and the AccessDenied message AWS would
give. The WSGI gate (:mod:`kms_rescue.lab.gate`) and the service handlers (``kms_api``, ``iam_api``, ``org_api``,
``ec2_api``) both import this module; the gate imports the handlers, and no handler imports the gate.

Denials read as AWS's do (IAM User Guide, "Troubleshoot access denied error messages": ``User: ARN is not
authorized to perform: ACTION on resource: RESOURCE because no <type> policy allows the ACTION action`` for an
implicit deny, ``... with an explicit deny in a <type> policy`` for an explicit one; ``<type>`` is
``resource-based`` for a key policy and ``identity-based`` for IAM policies; a guardrail is named as
``service control policy``, ``resource control policy`` or ``permissions boundary``).

Guardrails: the caller's permissions boundary and the scenario organization's SCPs (for the caller's account) and
RCPs (for the resource's account) go to the engine with every decision (docs/lab.md, "Guardrails").
"""

from __future__ import annotations

import threading
from collections import Counter, OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

from kms_rescue.lab.identity import Principal
from kms_rescue.lab.organization import RCP, SCP, PolicyType
from kms_rescue.lab.runtime import LabRuntime
from kms_rescue.policy import Decision, Evaluation, Policy, evaluate, parse_policy
from kms_rescue.policy.actions import cross_account_allowed
from kms_rescue.policy.guardrails import (
    PERMISSIONS_BOUNDARY,
    RESOURCE_CONTROL_POLICIES,
    SERVICE_CONTROL_POLICIES,
    Guardrails,
    OrgLevel,
    OrgMembership,
)
from kms_rescue.policy.model import KEY_POLICY_MAX_BYTES

_POLICY_CACHE_SIZE = 1024


class Decisions:
    """Decides requests for the lab's state (:attr:`rt`) and counts what happened (:attr:`stats`). One per gate;
    the service handlers receive it with each request."""

    def __init__(self, runtime: LabRuntime) -> None:
        self.rt = runtime
        self.stats: Counter[str] = Counter()
        self._stats_lock = threading.Lock()
        self._in_flight = 0
        self._policies: OrderedDict[str, Policy] = OrderedDict()
        self._org_levels: dict[tuple[PolicyType, str], tuple[OrgLevel, ...] | None] = {}

    def count(self, what: str) -> None:
        with self._stats_lock:
            self.stats[what] += 1

    def enter(self) -> None:
        """A request is being served: ``stats["max_in_flight"]`` keeps the most served at once."""
        with self._stats_lock:
            self._in_flight += 1
            if self._in_flight > self.stats["max_in_flight"]:
                self.stats["max_in_flight"] = self._in_flight

    def leave(self) -> None:
        with self._stats_lock:
            self._in_flight -= 1


    def parsed(self, text: str, *, key_policy: bool = False) -> Policy:
        cached = self._policies.get(text)
        if cached is not None:
            self._policies.move_to_end(text)
            return cached
        policy = parse_policy(text, max_bytes=KEY_POLICY_MAX_BYTES if key_policy else None)
        self._policies[text] = policy
        if len(self._policies) > _POLICY_CACHE_SIZE:
            self._policies.popitem(last=False)
        return policy

    def context(self, p: Principal, *, region: str | None, extra: Mapping[str, Any] | None = None
                ) -> dict[str, str | Sequence[str]]:
        """The request context of a call by ``p`` (IAM User Guide, "AWS global condition context keys")."""
        now = self.rt.clock()
        ctx: dict[str, str | Sequence[str]] = {
            "aws:PrincipalArn": p.principal_arn,
            "aws:PrincipalAccount": p.account,
            "aws:userid": p.unique_id,
            "aws:SourceIp": "127.0.0.1",
            "aws:SecureTransport": "false",
            "aws:CurrentTime": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "aws:EpochTime": str(int(now.timestamp())),
            "aws:RequestedRegion": region or self.rt.region,
            "aws:PrincipalIsAWSService": "false",
            "aws:ViaAWSService": "false",
            "kms:CallerAccount": p.account,
        }
        if p.kind == "user" and p.name:
            ctx["aws:username"] = p.name
        for k, v in self.rt.principal_tags(p).items():
            ctx[f"aws:PrincipalTag/{k}"] = v
        if extra:
            ctx.update(extra)
        return ctx

    def _levels(self, kind: PolicyType, account: str | None) -> tuple[OrgLevel, ...] | None:
        """The SCPs or RCPs at each level from the root to ``account``, None when none apply to it."""
        org = self.rt.scenario.organization
        if org is None or account is None or not org.is_member(account) or not org.policies(kind):
            return None
        cache_key = (kind, account)
        if cache_key not in self._org_levels:
            self._org_levels[cache_key] = tuple(
                OrgLevel(target=t, policies=tuple(self.parsed(pol.content) for pol in org.attached(kind, t)))
                for t in org.path(account)
            )
        return self._org_levels[cache_key]

    def guardrails(self, p: Principal, resource: str) -> Guardrails | None:
        """The caller's permissions boundary and the SCPs and RCPs that apply, None when there are none."""
        org = self.rt.scenario.organization
        boundary = self.rt.permissions_boundary(p)
        if org is None and boundary is None:
            return None
        parts = resource.split(":")
        resource_account = parts[4] if len(parts) > 5 and parts[4] else None
        return Guardrails(
            permissions_boundary=self.parsed(boundary) if boundary is not None else None,
            scps=self._levels(SCP, p.account),
            rcps=self._levels(RCP, resource_account),
            management_account=org.management_account if org is not None else None,
            principal_org=self._membership(p.account),
            resource_org=self._membership(resource_account),
        )

    def _membership(self, account: str | None) -> OrgMembership | None:
        """The account's place in the scenario's organization (aws:PrincipalOrgID, aws:PrincipalOrgPaths, ...)."""
        org = self.rt.scenario.organization
        if org is None or account is None or not (org.is_member(account) or account == org.management_account):
            return None
        return OrgMembership(org.id, org.id + "/" + "".join(f"{t}/" for t in org.path(account)[:-1]))

    def evaluate(
        self,
        p: Principal,
        action: str,
        resource: str,
        *,
        policy: str | None = None,
        extra: Mapping[str, Any] | None = None,
        region: str | None = None,
    ) -> Evaluation | None:
        """The engine's decision, or None for the root user acting on its own account without a resource policy
        (the root user needs no identity policy there)."""
        if policy is None and p.kind == "root" and (resource == "*" or f":{p.account}:" in resource):
            return None
        identity = [self.parsed(doc) for doc in self.rt.identity_policies(p)]
        return evaluate(
            principal=p.arn,
            action=action,
            resource=resource,
            key_policy=self.parsed(policy, key_policy=True) if policy is not None else None,
            identity_policies=identity,
            context=self.context(p, region=region, extra=extra),
            guardrails=self.guardrails(p, resource),
        )

    def denial(
        self,
        p: Principal,
        action: str,
        resource: str,
        *,
        policy: str | None = None,
        extra: Mapping[str, Any] | None = None,
        region: str | None = None,
    ) -> str | None:
        """None when ``p`` may perform ``action``; otherwise the AccessDenied message AWS would give."""
        ev = self.evaluate(p, action, resource, policy=policy, extra=extra, region=region)
        if ev is None or ev.decision is Decision.ALLOW:
            return None
        self.count("denied")
        return denial_message(p, action, resource, ev, resource_policy=policy is not None)


#: How AWS's AccessDenied messages name each guardrail (IAM User Guide, "Troubleshoot access denied error messages").
_GUARDRAIL_WORDS = {
    SERVICE_CONTROL_POLICIES: "service control policy",
    RESOURCE_CONTROL_POLICIES: "resource control policy",
    PERMISSIONS_BOUNDARY: "permissions boundary",
}


def denial_message(p: Principal, action: str, resource: str, ev: Evaluation, *, resource_policy: bool) -> str:
    head = f"User: {p.arn} is not authorized to perform: {action} on resource: {resource}"
    if ev.guardrail is not None:
        words = _GUARDRAIL_WORDS[ev.guardrail]
        if ev.decision is Decision.EXPLICIT_DENY:
            return f"{head} with an explicit deny in a {words}"
        return f"{head} because no {words} allows the {action} action"
    if ev.decision is Decision.EXPLICIT_DENY:
        in_resource_policy = any(r.policy == "key policy" and r.effect == "Deny" for r in ev.reasons)
        kind = "a resource-based" if in_resource_policy else "an identity-based"
        return f"{head} with an explicit deny in {kind} policy"
    blocked_by_resource = resource_policy and (
        ev.key_policy_grant is None or (ev.cross_account and not cross_account_allowed(action))
    )
    kind = "resource-based" if blocked_by_resource else "identity-based"
    return f"{head} because no {kind} policy allows the {action} action"
