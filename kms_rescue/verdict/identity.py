"""Can this identity call kms:PutKeyPolicy? Decided in every candidate world the probes' observations leave.

1. Build the candidate worlds of the identity's unknowns (:mod:`kms_rescue.verdict.worlds`).
2. Each observed call outcome on the key (DescribeKey, GetKeyPolicy, ListGrants: allowed, or denied with AWS's
   reason) is a constraint: a world in which the engine would have decided that call differently is dropped
   (:func:`consistent`).
3. PutKeyPolicy is decided in each world left: ``True`` when allowed in all of them, ``False`` when in none,
   otherwise ``None``, naming the one unknown that decides it (:func:`decide_identity`).

What no world models is an assumption, stated with the decision: guardrails (SCPs, RCPs, permissions boundaries)
and session policies that were not read, and explicit denies in identity policies that could not be read.
See docs/engine.md, "Deciding under uncertainty".
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from kms_rescue.observations import CallResult, IdentityProbe
from kms_rescue.policy.errors import PolicyInputError
from kms_rescue.policy.evaluate import Evaluation, evaluate
from kms_rescue.policy.guardrails import UNREAD, Guardrails
from kms_rescue.policy.model import Policy
from kms_rescue.policy.principals import Caller, parse_caller
from kms_rescue.verdict.worlds import (
    KEY_METADATA_KEYS,
    Dimension,
    Space,
    World,
    build_space,
    describe_value,
    parse_documents,
)

MANAGE_ACTION = "kms:PutKeyPolicy"

#: Calls on the key whose outcome the key policy decides. kms:DescribeKey can also be allowed by a grant (KMS
#: Developer Guide, "Grant operations"), so its success constrains only when no grant could explain it.
OBSERVED_KEY_CALLS = ("kms:DescribeKey", "kms:GetKeyPolicy", "kms:ListGrants")
GRANTABLE = frozenset({"kms:DescribeKey"})

#: Phrases of AWS's AccessDenied messages that put the denial outside the policies the engine was given
#: (IAM User Guide, "Troubleshooting access denied error messages").
OUTSIDE_MODEL = ("service control policy", "resource control policy", "permissions boundary", "session policy",
                 "vpc endpoint policy")

Tri = Literal["yes", "no", "depends"]


@dataclass(frozen=True)
class Observation:
    """One observed call used as a constraint: what happened, and how many worlds it left."""

    operation: str
    outcome: str
    kept: int
    before: int
    note: str = ""

    def describe(self, identity: str) -> str:
        verb = "succeeded" if self.outcome == "ok" else "was denied"
        text = f"{self.operation} by {identity} {verb}"
        if self.before != self.kept:
            text += f": {self.before - self.kept} of {self.before} candidate worlds contradict it"
        if self.note:
            text += f" ({self.note})"
        return text


@dataclass(frozen=True)
class IdentityDecision:
    """The decision for one identity."""

    can_manage: bool | None
    decision: str | None  # the engine's decision in the worlds left: allow | explicit_deny | implicit_deny | mixed
    grant: str | None  # direct | delegated | None
    why: str
    statement: str | None = None  # the key-policy statement that lets it in
    assumption: str | None = None  # the one unknown that decides it, when can_manage is None
    assumed: tuple[str, ...] = ()  # what the decision takes for granted (not read)
    observations: tuple[Observation, ...] = ()
    worlds: int = 1
    worlds_left: int = 1
    principal_arn: str | None = None  # aws:PrincipalArn in every world left, when that is known


@dataclass
class _Inputs:
    caller: Caller
    key_arn: str
    key_policy: Policy
    identity_docs: list[Any] | None  # None: not read (some may be partly read: see partial)
    partial: list[Any] = field(default_factory=list)
    base_context: dict[str, Any] = field(default_factory=dict)
    guardrails: Guardrails | None = None


def request_time_context(now: _dt.datetime) -> dict[str, str]:
    """``aws:CurrentTime`` and ``aws:EpochTime``: always in the request context (IAM User Guide, "AWS global
    condition context keys")."""
    now = now.astimezone(_dt.timezone.utc)
    return {"aws:CurrentTime": now.strftime("%Y-%m-%dT%H:%M:%SZ"), "aws:EpochTime": str(int(now.timestamp()))}


def key_context(key_region: str | None, metadata: Mapping[str, Any] | None) -> dict[str, str]:
    """Request-context keys the key itself fixes: the Region asked, and kms: resource keys from DescribeKey."""
    out: dict[str, str] = {}
    if key_region:
        out["aws:RequestedRegion"] = key_region
    for key, field_name in KEY_METADATA_KEYS.items():
        value = (metadata or {}).get(field_name)
        if isinstance(value, str):
            out[key] = value
    if metadata and isinstance(metadata.get("MultiRegion"), bool):
        out["kms:MultiRegion"] = "true" if metadata["MultiRegion"] else "false"
    return out


def _evaluate(inp: _Inputs, world: World, action: str, with_allow: bool) -> Evaluation:
    docs = list(inp.identity_docs) if inp.identity_docs is not None else list(inp.partial)
    if with_allow:
        docs.append({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": action, "Resource": "*"}]})
    context = {**inp.base_context, **world.context()}
    return evaluate(principal=inp.caller.arn, action=action, resource=inp.key_arn, key_policy=inp.key_policy,
                    identity_policies=docs, context=context or None, guardrails=inp.guardrails)


def _tri(inp: _Inputs, world: World, action: str) -> tuple[Tri, Evaluation]:
    """Whether ``action`` is allowed in ``world``: for unread identity policies, with and without an allow."""
    without = _evaluate(inp, world, action, with_allow=False)
    if inp.identity_docs is not None:
        return ("yes" if without.allowed else "no"), without
    with_allow = _evaluate(inp, world, action, with_allow=True)
    if without.allowed:
        return "yes", without
    if with_allow.allowed:
        return "depends", with_allow
    return "no", without


#: Phrases of AccessDenied messages that name a key policy or identity policy as the reason (the engine's model).
IN_MODEL = ("no resource-based policy allows", "no identity-based policy allows",
            "explicit deny in a resource-based policy", "explicit deny in an identity-based policy")


#: AccessDenied phrases naming a guardrail, and the field of :class:`Guardrails` that holds it.
GUARDRAIL_PHRASES = (("service control policy", "scps"), ("resource control policy", "rcps"),
                     ("permissions boundary", "permissions_boundary"))


def _outside_model(call: CallResult, guardrails: Guardrails | None) -> bool:
    """A denial whose reason AWS does not give, or gives as a policy the engine was not given (a guardrail that
    was not read, a session policy, a VPC endpoint policy)."""
    text = (call.message or "").lower()
    for phrase, attribute in GUARDRAIL_PHRASES:
        if phrase in text:
            return guardrails is None or getattr(guardrails, attribute) is UNREAD
    return any(phrase in text for phrase in OUTSIDE_MODEL) or not any(phrase in text for phrase in IN_MODEL)


def _grant_may_allow(probe: IdentityProbe, operation: str, grants: Sequence[Mapping[str, Any]] | None) -> bool:
    if operation not in GRANTABLE:
        return False
    if grants is None:
        return True  # nobody could list the grants: one may exist
    name = operation.split(":", 1)[1]
    return any(name in (g.get("Operations") or []) and g.get("GranteePrincipal") in (probe.arn, _role_of(probe.arn))
               for g in grants)


def _role_of(arn: str | None) -> str | None:
    if not arn:
        return None
    try:
        return parse_caller(arn).role_arn
    except PolicyInputError:
        return None


def consistent(inp: _Inputs, worlds: Sequence[World], call: CallResult) -> list[World]:
    """The worlds in which the engine decides ``call`` as it was observed to end."""
    kept = []
    for w in worlds:
        tri, _ = _tri(inp, w, call.operation)
        allowed_somewhere = tri in ("yes", "depends")
        denied_somewhere = tri in ("no", "depends")
        if (call.outcome == "ok" and allowed_somewhere) or (call.outcome == "access_denied" and denied_somewhere):
            kept.append(w)
    return kept


def key_calls(probe: IdentityProbe, key_arn: str, key_id: str | None, aliases: Sequence[str]) -> list[CallResult]:
    """The identity's calls on this key whose outcome a policy decided (allowed, or denied)."""
    targets = {key_arn, key_id, *aliases}
    return [c for c in probe.calls
            if c.operation in OBSERVED_KEY_CALLS and c.outcome in ("ok", "access_denied")
            and (c.target in targets or c.target is None)]


def decide_identity(
    probe: IdentityProbe,
    *,
    key_policy: Policy,
    key_arn: str,
    key_account: str,
    key_id: str | None = None,
    aliases: Sequence[str] = (),
    grants: Sequence[Mapping[str, Any]] | None = None,
    context: Mapping[str, str] | None = None,
    policy_is_live: bool = True,
    action: str = MANAGE_ACTION,
    guardrails: Guardrails | None = None,
) -> IdentityDecision:
    """The decision for ``probe`` calling PutKeyPolicy on the key (see the module docstring). ``context`` holds
    what is known of every request (time, Region, key metadata). ``policy_is_live``: the policy was read now
    (otherwise it comes from history, and observations may reflect a newer policy: they are not constraints)."""
    assert probe.arn is not None
    caller = parse_caller(probe.arn)
    if probe.account != key_account:
        return IdentityDecision(False, "implicit_deny", None,
                                f"PutKeyPolicy cannot be called on a key in another account ({key_account})")
    pols = probe.identity_policies
    docs: list[Any] | None = [d.document for d in pols.documents] if pols is not None and pols.complete else None
    partial = [d.document for d in pols.documents] if pols is not None and not pols.complete else []
    base = dict(context or {})
    path_known = caller.kind != "assumed_role" or probe.role_arn is not None
    if probe.role_arn and caller.kind == "assumed_role":
        base["aws:PrincipalArn"] = probe.role_arn
    inp = _Inputs(caller, key_arn, key_policy, docs, partial, base, guardrails)
    assumed = _assumptions(caller, docs)

    policies = [key_policy, *parse_documents(docs if docs is not None else partial)]
    space = build_space(caller, policies, path_known=path_known, known=base)
    if space.too_many:
        return IdentityDecision(None, None, None, f"unknown: {space.too_many}", assumed=assumed, worlds=0,
                                worlds_left=0)
    worlds = list(space.worlds)
    observations: list[Observation] = []
    if policy_is_live:
        for call in key_calls(probe, key_arn, key_id, aliases):
            if call.outcome == "ok" and _grant_may_allow(probe, call.operation, grants):
                continue
            if call.outcome == "access_denied" and _outside_model(call, guardrails):
                continue
            kept = consistent(inp, worlds, call)
            observations.append(Observation(call.operation, call.outcome, len(kept), len(worlds)))
            worlds = kept
            if not worlds:
                break
    total = len(space.worlds)
    if not worlds:
        last = observations[-1]
        return IdentityDecision(
            None, None, None,
            f"unknown: {last.operation} {'succeeded' if last.outcome == 'ok' else 'was denied'}, which the policies "
            "read cannot explain in any candidate world (a grant, a session policy, a guardrail, or a policy "
            "changed during the probe may explain it)",
            assumed=assumed, observations=tuple(observations), worlds=total, worlds_left=0)
    return _decide(inp, space, worlds, observations, assumed, total, action)


def _assumptions(caller: Caller, docs: list[Any] | None) -> tuple[str, ...]:
    """What no world models for this caller: denies in identity policies that could not be read, and session
    policies (never readable). Guardrails that were not read are added from the engine's ``assumed``."""
    out = []
    if docs is None and caller.kind != "root":
        out.append("no explicit Deny in its identity policies, which could not be read")
    if caller.kind == "assumed_role":
        out.append("no session policy that denies it (session policies cannot be read)")
    return tuple(out)


def _guardrail_assumptions(evaluations: Sequence[Evaluation]) -> tuple[str, ...]:
    """The guardrails an allow took for granted because they were not read (Evaluation.assumed)."""
    names = dict.fromkeys(name for ev in evaluations for name in ev.assumed)
    return tuple(f"no {name.removesuffix('ies') + 'y' if name.endswith('policies') else name} that denies it "
                 "(not read)" for name in names)


def _decide(
    inp: _Inputs, space: Space, worlds: list[World], observations: list[Observation], assumed: tuple[str, ...],
    total: int, action: str,
) -> IdentityDecision:
    results = [(w, *_tri(inp, w, action)) for w in worlds]
    assumed = (*assumed, *_guardrail_assumptions([e for _, t, e in results if t != "no"]))
    tris = {t for _, t, _ in results}
    principal_arns = {w.principal_arn for w in worlds}
    principal_arn = next(iter(principal_arns)) if len(principal_arns) == 1 else None
    sample = results[0][2]
    statement = _allowing_statement(sample)
    grant = sample.key_policy_grant
    evidence_note = ""
    narrowing = list(dict.fromkeys(o.operation for o in observations if o.kept != o.before))
    if total > 1 and narrowing:
        evidence_note = (f" (its observed {', '.join(narrowing)} leave{'s' if len(narrowing) == 1 else ''} "
                         f"{len(worlds)} of {total} candidate worlds)")
    elif total > 1:
        evidence_note = f" (in each of {len(worlds)} candidate worlds)"
    common: dict[str, Any] = dict(assumed=assumed, observations=tuple(observations), worlds=total,
                                  worlds_left=len(worlds),
                  principal_arn=principal_arn)
    if tris == {"yes"}:
        why = _rule(sample)
        return IdentityDecision(True, "allow", grant, why + evidence_note, statement=statement, **common)
    if tris == {"no"}:
        decisions = {e.decision.value for _, _, e in results}
        decision = decisions.pop() if len(decisions) == 1 else "mixed"
        return IdentityDecision(False, decision, grant, _rule(sample) + evidence_note, **common)
    if tris == {"depends"}:
        return IdentityDecision(
            None, "implicit_deny", grant,
            "unknown: the key policy delegates to IAM, and this identity's own IAM policies could not be read (they "
            f"may allow {action})",
            assumption=f"its identity policies allow {action} on this key", **common)
    assumption = _deciding_assumption(space.dimensions, results, inp.caller)
    return IdentityDecision(None, "mixed", grant,
                            f"unknown: manageable only if {assumption}{evidence_note}", assumption=assumption,
                            **common)


def _rule(ev: Evaluation) -> str:
    return next((r.detail for r in reversed(ev.reasons) if r.policy == "rule"), ev.rule)


def _allowing_statement(ev: Evaluation) -> str | None:
    return next((r.statement for r in ev.reasons if r.policy == "key policy" and r.effect == "Allow" and r.matched),
                None)


def _deciding_assumption(dims: Sequence[Dimension], results: Sequence[tuple[World, Tri, Evaluation]],
                         caller: Caller) -> str:
    """The one unknown whose value alone decides PutKeyPolicy, worded as the condition under which it is
    allowed; or the list of unknowns when no single one does."""
    for dim in dims:
        groups: dict[str | None, set[Tri]] = {}
        for world, tri, _ in results:
            groups.setdefault(_value_of(world, dim), set()).add(tri)
        if all(len(g) == 1 for g in groups.values()):
            good = [v for v, g in groups.items() if g <= {"yes", "depends"}]
            subject = f"role {caller.name}'s path is" if dim.name == "path" else ""
            shown = " or ".join(_shown(dim, v, subject) for v in good)
            if any(g == {"depends"} for v, g in groups.items() if v in good):
                shown += " and its identity policies allow kms:PutKeyPolicy"
            return shown
    return "the unknowns (" + ", ".join(d.name for d in dims) + ") take the right values"


def _value_of(world: World, dim: Dimension) -> str | None:
    if dim.name == "path":
        return world.principal_arn
    return dict(world.values).get(dim.name)


def _shown(dim: Dimension, value: str | None, subject: str) -> str:
    text = describe_value(dim, value)
    if dim.name == "path":
        return f"{subject} {text.removeprefix('the path ')}" if text.startswith("the path ") else f"{subject} {text}"
    return text
