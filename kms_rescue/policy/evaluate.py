"""Decide, as AWS KMS does, whether a principal may perform an action on a key.

The logic follows the IAM User Guide ("Policy evaluation logic", "Cross-account policy evaluation logic") with the
KMS specifics of the KMS Developer Guide ("Key policies", "Default key policy", "Permissions reference"); the rules
are listed, with their pages, in ``docs/engine.md``:

1. ``sts:GetCallerIdentity`` is always allowed (STS API Reference), even against an explicit deny.
2. An explicit Deny in the key policy or in an identity policy wins.
3. The alias operations are never allowed on an alias under the reserved ``alias/aws/`` prefix.
4. For a KMS key, the key policy must allow. A key-policy Allow that names the caller's account delegates to
   IAM: the caller is allowed only when its identity policies allow too; the account's root user needs none.
   An Allow that names the caller itself (user, role for its sessions, session ARN, ``*``) grants a caller of the
   key's account on its own.
5. A caller of another account needs both the key policy and its own identity policy, and only for actions KMS
   offers across accounts.
6. A resource that is not a KMS key and has no resource policy follows plain identity-policy logic, and only for a
   resource of the caller's own account: across accounts an identity policy alone is an implicit deny.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import Enum
from functools import cached_property, lru_cache
from typing import Any, Literal

from kms_rescue.policy.actions import canonical_action, cross_account_allowed
from kms_rescue.policy.condition_check import (
    ConditionOutcome,
    PreparedCondition,
    evaluate_conditions,
    judge_all,
    prepare_conditions,
)
from kms_rescue.policy.errors import PolicyInputError
from kms_rescue.policy.guardrails import (
    PERMISSIONS_BOUNDARY,
    GuardrailOutcome,
    Guardrails,
    check,
    names_caller_itself,
    not_principal_ignored,
    org_context,
)
from kms_rescue.policy.like_patterns import like_match
from kms_rescue.policy.model import KEY_POLICY_MAX_BYTES, Policy, Statement, parse_policy
from kms_rescue.policy.principals import Caller, MatchKind, exempt_by_not_principal, match_spec, parse_caller
from kms_rescue.policy.request_context import RequestContext
from kms_rescue.policy.wildcard import WildcardPattern, compile_text, fold

PolicyDocument = Mapping[str, Any] | str | bytes | Policy

_KEY_ARN_RE = re.compile(
    r"^arn:(?P<partition>aws[a-zA-Z-]*):kms:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):key/(?P<id>.+)$"
)


class Decision(str, Enum):
    ALLOW = "allow"
    EXPLICIT_DENY = "explicit_deny"
    IMPLICIT_DENY = "implicit_deny"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Reason:
    """One step of the evaluation: a statement that matched (or a rule that decided), and why."""

    policy: str  # "key policy", "identity policy 1", or "rule"
    statement: str | None  # the statement's label, None for a rule
    effect: str | None  # "Allow" / "Deny", None for a rule
    matched: bool
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "policy": self.policy,
            "statement": self.statement,
            "effect": self.effect,
            "matched": self.matched,
            "detail": self.detail,
        }

    def __str__(self) -> str:
        where = f"{self.policy} {self.statement}" if self.statement else self.policy
        return f"{where}: {self.detail}"


@dataclass(frozen=True)
class Evaluation:
    decision: Decision
    principal: str
    action: str
    resource: str
    key_policy_grant: Literal["direct", "delegated"] | None = None
    identity_allowed: bool = False
    identity_unknown: bool = False
    cross_account: bool = False
    rule: str = ""  # the rule that decided, in words
    # Guardrails (permissions boundary, SCPs, RCPs) that were not read and were assumed to allow; see
    # kms_rescue.policy.guardrails. Empty when none were given, all were read, or the decision is a denial.
    assumed: tuple[str, ...] = ()
    # The guardrail whose Deny (or missing Allow) decided a denial, e.g. "service control policies"; None otherwise.
    guardrail: str | None = None
    # The statements that applied, as (policy name, match): reasons are worded only when asked for, so that
    # callers that need just the decision (the lab's gate) do not pay for the words.
    matches: tuple[tuple[str, StatementMatch], ...] = field(default=(), repr=False, compare=False)
    caller: Caller | None = field(default=None, repr=False, compare=False)

    @property
    def allowed(self) -> bool:
        return self.decision is Decision.ALLOW

    @cached_property
    def reasons(self) -> tuple[Reason, ...]:
        """Each statement that applied, then the rule that decided."""
        out = [
            Reason(name, m.statement.label, m.statement.effect, True, _describe_match(m, self.caller))
            for name, m in self.matches
            if self.caller is not None
        ]
        out.append(Reason("rule", None, None, self.allowed, self.rule))
        return tuple(out)

    def to_dict(self) -> dict[str, Any]:
        return {
            "decision": self.decision.value,
            "principal": self.principal,
            "action": self.action,
            "resource": self.resource,
            "key_policy_grant": self.key_policy_grant,
            "identity_allowed": self.identity_allowed,
            "identity_unknown": self.identity_unknown,
            "cross_account": self.cross_account,
            "assumed": list(self.assumed),
            "guardrail": self.guardrail,
            "reasons": [r.to_dict() for r in self.reasons],
        }


@dataclass
class StatementMatch:
    """How one statement relates to one request. ``applies`` is three-valued: None when it depends on condition
    keys the context marks unknown (static analysis only)."""

    statement: Statement
    applies: bool | None
    principal_match: MatchKind | None = None
    conditions: ConditionOutcome | None = None
    why_not: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@lru_cache(maxsize=4096)
def _action_patterns(patterns: tuple[str, ...]) -> tuple[WildcardPattern, ...]:
    """A statement's action list compiled once (IAM: action names are case-insensitive; ``*`` and ``?`` are
    wildcards): the hot path of every decision. Linear-time matching, whatever the policy says."""
    return tuple(compile_text(fold(p)) for p in patterns)  # matched against the folded action


def actions_cover(patterns: tuple[str, ...], action: str) -> bool:
    low = fold(action)
    return any(p.matches(low) for p in _action_patterns(patterns))


def _action_applies(statement: Statement, action: str) -> bool:
    if statement.actions is not None:
        return actions_cover(statement.actions, action)
    return statement.not_actions is not None and not actions_cover(statement.not_actions, action)


@lru_cache(maxsize=2048)
def statements_for(policy: Policy, action: str) -> tuple[Statement, ...]:
    """The statements of ``policy`` that have an effect and whose Action/NotAction covers ``action``."""
    return tuple(st for st in policy.statements if st.has_effect and _action_applies(st, action))


_NO_CONTEXT = RequestContext()


def _uses_variables(patterns: tuple[str, ...] | None) -> bool:
    return patterns is not None and any("${" in p for p in patterns)


@dataclass(frozen=True)
class _Candidate:
    """A statement that can apply to a caller, action and resource, whatever the request context."""

    statement: Statement
    principal_match: MatchKind | None
    full: bool  # Resource uses policy variables: the whole statement is matched per request
    conditions: tuple[PreparedCondition, ...]  # prepared once (empty when ``full``)


@lru_cache(maxsize=4096)
def _candidates(
    policy: Policy, action: str, caller_arn: str, resource: str, resource_policy: bool
) -> tuple[_Candidate, ...]:
    """The statements that can apply to this caller, action and resource, whatever the request context. The full
    check is needed when Resource uses policy variables (their values come from the context); otherwise only the
    conditions remain to be judged, and they are prepared here once for every later request. Raises
    :class:`PolicyInputError` for an unknown condition operator in a statement that applies."""
    caller = parse_caller(caller_arn)
    out: list[_Candidate] = []
    for st in statements_for(policy, action):
        if _uses_variables(st.resources) or _uses_variables(st.not_resources):
            out.append(_Candidate(st, None, True, ()))
            continue
        m = match_statement(st, caller=caller, action=action, resource=resource, ctx=_NO_CONTEXT,
                            resource_policy=resource_policy, action_checked=True, check_conditions=False)
        if m.applies:
            out.append(_Candidate(st, m.principal_match, False, prepare_conditions(st.conditions)))
    return tuple(out)


def _applicable(
    policy: Policy, caller: Caller, action: str, resource: str, ctx: RequestContext, resource_policy: bool
) -> list[StatementMatch]:
    """The statements of ``policy`` that apply to this request (conditions judged against ``ctx``)."""
    found = []
    for cand in _candidates(policy, action, caller.arn, resource, resource_policy):
        st = cand.statement
        if cand.full:
            m = match_statement(st, caller=caller, action=action, resource=resource, ctx=ctx,
                                resource_policy=resource_policy, action_checked=True)
            if m.applies:
                found.append(m)
        elif not cand.conditions:
            found.append(StatementMatch(st, True, cand.principal_match))
        else:
            outcome = judge_all(cand.conditions, ctx, stop_at_false=True)
            if outcome.result:
                found.append(StatementMatch(st, True, cand.principal_match, outcome))
    return found


#: STS API Reference, GetCallerIdentity: "No permissions are required to perform this operation", and an explicit
#: deny of sts:GetCallerIdentity does not stop it.
ALWAYS_ALLOWED = "sts:getcalleridentity"
#: The alias operations (KMS Developer Guide, "Create aliases": an alias name of a customer managed key cannot
#: begin with alias/aws/, which is reserved for AWS managed keys).
ALIAS_ACTIONS = frozenset({"kms:createalias", "kms:updatealias", "kms:deletealias"})
_RESOURCE_ACCOUNT_RE = re.compile(r"^arn:aws[a-zA-Z-]*:[a-z0-9-]+:[a-z0-9-]*:(?P<account>\d{12}):")


def reserved_alias(resource: str) -> bool:
    """Whether ``resource`` is an alias ARN (or alias name) under the reserved ``alias/aws/`` prefix."""
    name = resource.split(":", 5)[5] if resource.startswith("arn:") and resource.count(":") >= 5 else resource
    return name.lower().startswith("alias/aws/")


def resource_account(resource: str) -> str | None:
    """The account of a resource ARN, or None when the ARN names none (``*``, S3 buckets, ...)."""
    m = _RESOURCE_ACCOUNT_RE.match(resource)
    return m["account"] if m else None


def key_arn_parts(arn: str) -> dict[str, str] | None:
    """``{partition, region, account, id}`` of a KMS key ARN, or None."""
    m = _KEY_ARN_RE.match(arn)
    return m.groupdict() if m else None


def _matches_any(patterns: Sequence[str], value: str, ctx: RequestContext, *, key_resource: bool) -> bool:
    for pattern in patterns:
        if pattern == "*":
            return True
        if key_resource and value == "*":  # the key is not known (static analysis): assume the statement is about it
            return True
        if like_match(pattern, value, ctx):
            return True
    return False


def match_statement(
    statement: Statement,
    *,
    caller: Caller,
    action: str,
    resource: str,
    ctx: RequestContext,
    resource_policy: bool,
    action_checked: bool = False,
    check_conditions: bool = True,
) -> StatementMatch:
    """Relate one statement to a request: action, resource, principal (resource policies), then conditions.
    ``action_checked`` skips the effect and action tests for statements taken from :func:`statements_for`;
    ``check_conditions=False`` stops before the conditions (what is left depends on the request context)."""
    if action_checked:
        pass
    elif not statement.has_effect:
        return StatementMatch(statement, False, why_not="no effect: the statement has no Action or no Resource")
    elif statement.actions is not None:
        if not actions_cover(statement.actions, action):
            return StatementMatch(statement, False, why_not=f"Action does not include {action}")
    elif statement.not_actions is not None and actions_cover(statement.not_actions, action):
        return StatementMatch(statement, False, why_not=f"NotAction excludes {action}")
    if statement.resources is not None:
        if not _matches_any(statement.resources, resource, ctx, key_resource=resource_policy):
            return StatementMatch(statement, False, why_not=f"Resource does not match {resource}")
    elif statement.not_resources is not None and _matches_any(
        statement.not_resources, resource, ctx, key_resource=False
    ):
        return StatementMatch(statement, False, why_not=f"NotResource excludes {resource}")
    principal_match: MatchKind | None = None
    if resource_policy:
        if statement.principal is not None:
            principal_match = match_spec(statement.principal, caller)
            if principal_match is None:
                return StatementMatch(statement, False, why_not=f"Principal does not cover {caller.arn}")
        elif statement.not_principal is not None:
            if exempt_by_not_principal(statement.not_principal, caller):
                return StatementMatch(
                    statement, False, why_not=f"NotPrincipal lists every layer of {caller.arn} (exempt)"
                )
            principal_match = "wildcard"
        else:
            return StatementMatch(statement, False, why_not="no Principal: a key policy statement needs one")
    elif statement.principal is not None or statement.not_principal is not None:
        return StatementMatch(statement, False, why_not="Principal is not allowed in an identity policy")
    if statement.conditions and check_conditions:
        outcome = evaluate_conditions(statement.conditions, ctx, stop_at_false=True)
        if outcome.result is False:
            failed = next((c.detail for c in outcome.checks if c.result is False), "a condition is false")
            return StatementMatch(statement, False, principal_match, outcome, why_not=f"Condition not met: {failed}")
        return StatementMatch(statement, outcome.result, principal_match, outcome)
    return StatementMatch(statement, True, principal_match)


def _describe_match(m: StatementMatch, caller: Caller) -> str:
    st = m.statement
    verb = "denies" if st.effect == "Deny" else "allows"
    who = {
        "direct": f"names {caller.arn if caller.kind != 'assumed_role' else caller.principal_arn + ' (this session)'}",
        "account": f"names the account {caller.account} (delegates to its IAM policies)",
        "wildcard": 'covers every principal ("*")' if st.principal is not None else "does not exempt the caller",
        None: "",
    }[m.principal_match]
    parts = [verb]
    if who:
        parts.append(f"({who})")
    if m.conditions and m.conditions.checks:
        parts.append("when " + "; ".join(c.detail for c in m.conditions.checks))
    return " ".join(parts)


def _as_policy(doc: PolicyDocument, source: str, *, key_policy: bool = False) -> Policy:
    return parse_policy(doc, source=source, max_bytes=KEY_POLICY_MAX_BYTES if key_policy else None)


@lru_cache(maxsize=4096)
def _principal_context(caller: Caller, epoch_second: int) -> RequestContext:
    values: dict[str, str | Sequence[str]] = dict(caller.context())
    values.update(time_context(epoch_second))
    return RequestContext(values)


def time_context(when: datetime | int) -> dict[str, str]:
    """``aws:CurrentTime`` and ``aws:EpochTime`` for an instant (IAM User Guide, "AWS global condition context
    keys": both are in every request's context). A naive datetime is taken as UTC."""
    if isinstance(when, datetime):
        aware = when if when.tzinfo is not None else when.replace(tzinfo=timezone.utc)
        second = int(aware.timestamp())
    else:
        second = int(when)
    stamp = datetime.fromtimestamp(second, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"aws:CurrentTime": stamp, "aws:EpochTime": str(second)}


def _epoch_second(now: datetime | None) -> int:
    if now is None:
        return int(time.time())
    if not isinstance(now, datetime):
        raise PolicyInputError(f"now must be a datetime, not {type(now).__name__}")
    aware = now if now.tzinfo is not None else now.replace(tzinfo=timezone.utc)
    return int(aware.timestamp())


def build_context(
    caller: Caller, context: Mapping[str, str | Sequence[str]] | None, now: datetime | None = None
) -> RequestContext:
    """The request context: keys derived from the principal (``docs/engine.md``, rule 8) and the request time
    (``now``, default the current UTC time), overridden by what the caller gave."""
    base = _principal_context(caller, _epoch_second(now))
    return base.with_values(context) if context else base


def evaluate(
    *,
    principal: str,
    action: str,
    resource: str,
    key_policy: PolicyDocument | None = None,
    identity_policies: Sequence[PolicyDocument] | None = (),
    context: Mapping[str, str | Sequence[str]] | None = None,
    now: datetime | None = None,
    guardrails: Guardrails | None = None,
) -> Evaluation:
    """Decide whether ``principal`` may perform ``action`` on ``resource``.

    ``resource`` is a key ARN for KMS decisions (its account decides delegation and cross-account rules).
    ``key_policy`` is the key's policy (dict, JSON text or a parsed :class:`Policy`; pass a parsed one to
    evaluate many requests fast). ``identity_policies`` are the caller's identity policies; ``None`` means they are
    unknown (the decision is then made as if there were none, and ``identity_unknown`` is set).
    ``context`` adds or overrides request-context keys (``aws:SourceIp``, ``kms:ViaService``, ...).
    ``now`` is the time of the request (``aws:CurrentTime``, ``aws:EpochTime``); None means the current UTC time,
    and a value for either key in ``context`` still wins.
    ``guardrails`` are the caller's permissions boundary and the organization's SCPs and RCPs
    (:class:`kms_rescue.policy.guardrails.Guardrails`); without them none are applied (today's behaviour). One that
    was not read is decided as if it allowed, and named in ``Evaluation.assumed``.
    Raises :class:`PolicyInputError` for malformed input.
    """
    caller = parse_caller(principal)
    action = canonical_action(action)
    if not resource or not isinstance(resource, str):
        raise PolicyInputError("the resource must be an ARN (for KMS decisions, the key ARN)")
    if guardrails is not None and (guardrails.principal_org or guardrails.resource_org):
        context = {**org_context(guardrails), **(context or {})}  # what the caller gave wins
    ctx = build_context(caller, context, now)
    key_parts = key_arn_parts(resource)
    is_key = key_policy is not None or (key_parts is not None and action.lower().startswith("kms:"))
    key_account = key_parts["account"] if key_parts else None

    identity_unknown = identity_policies is None
    parsed_identity = [
        _as_policy(doc, f"identity policy {i + 1}") for i, doc in enumerate(identity_policies or ())
    ]
    matches: list[tuple[str, StatementMatch]] = []

    # Identity policies: collect Allow and Deny matches.
    identity_allow: list[StatementMatch] = []
    identity_deny: list[StatementMatch] = []
    for i, pol in enumerate(parsed_identity):
        name = f"identity policy {i + 1}"
        for m in _applicable(pol, caller, action, resource, ctx, False):
            (identity_deny if m.statement.effect == "Deny" else identity_allow).append(m)
            matches.append((name, m))

    # Key policy.
    key_allow: list[StatementMatch] = []
    key_deny: list[StatementMatch] = []
    parsed_key = _as_policy(key_policy, "key policy", key_policy=True) if key_policy is not None else None
    if parsed_key is not None:
        for m in _applicable(parsed_key, caller, action, resource, ctx, True):
            (key_deny if m.statement.effect == "Deny" else key_allow).append(m)
            matches.append(("key policy", m))

    g: GuardrailOutcome | None = None
    if guardrails is not None:
        def match(pol: Policy, name: str, resource_policy: bool) -> tuple[list[Statement], list[Statement]]:
            found = _applicable(pol, caller, action, resource, ctx, resource_policy)
            matches.extend((name, m) for m in found)
            return ([m.statement for m in found if m.statement.effect != "Deny"],
                    [m.statement for m in found if m.statement.effect == "Deny"])

        g = check(guardrails, caller=caller, action=action, resource_account=key_account, match=match,
                  parse=lambda doc, name: _as_policy(doc, name))  # type: ignore[arg-type]
        if g.boundary is not None and parsed_key is not None:
            key_deny.extend(_not_principal_denies(parsed_key, caller, action, resource, ctx, key_deny, matches))

    grant: Literal["direct", "delegated"] | None = None
    if any(m.principal_match in ("direct", "wildcard") for m in key_allow):
        grant = "direct"
    elif any(m.principal_match == "account" for m in key_allow):
        grant = "delegated"
    cross_account = bool(key_account and caller.account and caller.account != key_account)

    def done(decision: Decision, detail: str, guardrail: str | None = None) -> Evaluation:
        return Evaluation(
            decision=decision,
            principal=caller.arn,
            action=action,
            resource=resource,
            key_policy_grant=grant,
            identity_allowed=bool(identity_allow),
            identity_unknown=identity_unknown,
            cross_account=cross_account,
            rule=detail,
            # Guardrails only take permissions away: one not read cannot have changed a denial.
            assumed=g.assumed if g is not None and decision is Decision.ALLOW else (),
            guardrail=guardrail,
            matches=tuple(matches),
            caller=caller,
        )

    def allow(detail: str, *, escapes_boundary: bool = False) -> Evaluation:
        """ALLOW, unless the caller's permissions boundary does not allow the action and the grant is one a
        boundary limits (identity-based, or a resource-based policy naming a role rather than its session)."""
        if g is not None and g.boundary is not None and not g.boundary_allows and not escapes_boundary:
            return done(
                Decision.IMPLICIT_DENY,
                f"{detail}, but the caller's permissions boundary does not allow {action}, and a boundary limits "
                "this grant",
                PERMISSIONS_BOUNDARY,
            )
        return done(Decision.ALLOW, detail)
    if action.lower() == ALWAYS_ALLOWED:
        return done(Decision.ALLOW, "sts:GetCallerIdentity needs no permission, and even an explicit deny does not "
                                    "block it (STS API Reference, GetCallerIdentity)")

    if key_deny or identity_deny:
        where = "the key policy" if key_deny else "an identity policy"
        return done(Decision.EXPLICIT_DENY, f"an explicit Deny in {where} applies, and an explicit deny always wins")
    if g is not None and g.explicit_deny:
        return done(
            Decision.EXPLICIT_DENY,
            f"an explicit Deny in the {g.deny_detail} applies, and an explicit deny always wins",
            g.explicit_deny,
        )
    if g is not None and g.implicit_deny:
        return done(
            Decision.IMPLICIT_DENY,
            f"{g.deny_detail}; every level from the organization root to the account must allow",
            g.implicit_deny,
        )

    if action.lower() in ALIAS_ACTIONS and reserved_alias(resource):
        return done(Decision.IMPLICIT_DENY, f"{action} is never allowed on an alias that begins with alias/aws/: "
                                            "the prefix is reserved for AWS managed keys (KMS Developer Guide, "
                                            "Create aliases)")

    if not is_key:
        owner = resource_account(resource)
        if owner and caller.account and owner != caller.account:
            return done(Decision.IMPLICIT_DENY,
                        f"the resource belongs to another account ({owner}) and has no resource policy here: an "
                        "identity policy alone never grants access across accounts (IAM User Guide, "
                        "Cross-account policy evaluation logic)")
        if identity_allow:
            return allow("an identity policy allows and no policy denies")
        unknown = " (the caller's identity policies are unknown)" if identity_unknown else ""
        return done(Decision.IMPLICIT_DENY, f"no identity policy allows {action}{unknown}")

    if parsed_key is None:
        return done(Decision.IMPLICIT_DENY, "no key policy was given, and KMS allows nothing its key policy does not")
    if grant is None:
        return done(
            Decision.IMPLICIT_DENY,
            f"no key policy statement allows {action} to {caller.arn}; without that, nobody has access, "
            "not even the account's root user",
        )
    if cross_account:
        if not cross_account_allowed(action):
            return done(
                Decision.IMPLICIT_DENY,
                f"{action} cannot be called on a key in another account ({key_account}); only principals of "
                "the key's account can",
            )
        if caller.kind == "root" or identity_allow:
            return allow("the key policy allows the caller's account and its identity policy allows",
                         escapes_boundary=caller.kind == "root")
        return done(
            Decision.IMPLICIT_DENY,
            f"a caller from another account needs its own identity policy to allow {action} on this key too"
            + (" (its identity policies are unknown)" if identity_unknown else ""),
        )
    if grant == "direct":
        return allow("the key policy allows the caller directly; no identity policy is needed",
                     escapes_boundary=_grant_escapes_boundary(key_allow, caller))
    if caller.kind == "root":
        return done(
            Decision.ALLOW, "the key policy allows the account, which covers its root user without an identity policy"
        )
    if identity_allow:
        return allow("the key policy delegates to IAM and an identity policy allows")
    return done(
        Decision.IMPLICIT_DENY,
        f"the key policy delegates to IAM, but no identity policy of the caller allows {action}"
        + (" (its identity policies are unknown)" if identity_unknown else ""),
    )


def _grant_escapes_boundary(key_allow: Sequence[StatementMatch], caller: Caller) -> bool:
    """A key-policy Allow that names the IAM user's ARN or the role session's ARN grants without the caller's
    permissions boundary; one naming the role's ARN, the account or ``"*"`` does not (IAM User Guide,
    "Permissions boundaries for IAM entities", resource-based policies)."""
    for m in key_allow:
        if m.principal_match != "direct":
            continue
        named = names_caller_itself(m.statement.principal, caller)
        if named == "session" or (named == "user" and caller.kind == "user"):
            return True
    return False


def _not_principal_denies(
    policy: Policy,
    caller: Caller,
    action: str,
    resource: str,
    ctx: RequestContext,
    already: Sequence[StatementMatch],
    matches: list[tuple[str, StatementMatch]],
) -> list[StatementMatch]:
    """Deny statements with NotPrincipal that exempted the caller, but apply to it because it has a permissions
    boundary (IAM User Guide, "Permissions boundaries for IAM entities": such a Deny "will always deny any IAM
    principal that has a permissions boundary policy attached")."""
    seen = {id(m.statement) for m in already}
    out = []
    for st in statements_for(policy, action):
        if st.effect != "Deny" or st.not_principal is None or id(st) in seen:
            continue
        m = match_statement(not_principal_ignored(st), caller=caller, action=action, resource=resource, ctx=ctx,
                            resource_policy=True, action_checked=True)
        if m.applies:
            found = StatementMatch(st, True, "wildcard", m.conditions)
            out.append(found)
            matches.append(("key policy", found))
    return out


__all__ = ["Decision", "Evaluation", "Reason", "StatementMatch", "build_context", "evaluate", "match_statement"]
