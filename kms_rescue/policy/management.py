"""Management analysis: from a key policy alone, every way in to kms:PutKeyPolicy, and the lockout verdict.

A key is locked out when no principal of the key's account can ever call PutKeyPolicy (``docs/engine.md``):
principals of other accounts never can, because KMS does not offer PutKeyPolicy across accounts. A path
through a condition counts unless the condition can never hold on a direct PutKeyPolicy call: keys KMS only sets
when a service calls on the principal's behalf (``kms:ViaService``), for cryptographic operations
(``kms:EncryptionContext:*``), for grants, for Nitro Enclaves attestation, or ``aws:PrincipalArn`` equal to a session
ARN (a session's ``aws:PrincipalArn`` is its role's ARN).

Time is part of every request (``aws:CurrentTime``, ``aws:EpochTime``): the analysis judges date conditions at
``now`` and at each later instant where one can change, so a window already past never counts, and a path that
only a date keeps shut says when it opens (``opens_at``); such a key is not locked out, it is recoverable on that
date.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal

from kms_rescue.policy.actions import action_matches, canonical_action, cross_account_allowed
from kms_rescue.policy.condition_check import ConditionOutcome
from kms_rescue.policy.condition_operators import operator_info
from kms_rescue.policy.errors import PolicyInputError
from kms_rescue.policy.evaluate import (
    PolicyDocument,
    _as_policy,
    _epoch_second,
    key_arn_parts,
    match_statement,
    time_context,
)
from kms_rescue.policy.model import Condition, Policy, Statement
from kms_rescue.policy.principals import (
    ACCOUNT_RE,
    Caller,
    classify_aws_value,
    parse_caller,
    principal_arn_never,
    role_caller,
)
from kms_rescue.policy.request_context import RequestContext
from kms_rescue.policy.time_windows import time_boundaries

PathKind = Literal[
    "named_principal",
    "account_delegation",
    "root_user",
    "wildcard",
    "orphaned_unique_id",
    "other_account",
    "service",
    "session",
]

#: Condition keys a direct PutKeyPolicy call never carries (KMS Developer Guide, "AWS KMS condition keys": each
#: is documented for cryptographic operations, grant operations, calls made through an AWS service, or enclave
#: attestation; IAM User Guide, "Global condition context keys": aws:CalledVia*/aws:Source* are set only when a
#: service makes the request).
ABSENT_ON_DIRECT_CALL = frozenset(
    k.lower()
    for k in (
        "kms:ViaService",
        "kms:EncryptionContextKeys",
        "kms:GrantOperations",
        "kms:GrantConstraintType",
        "kms:GrantIsForAWSResource",
        "kms:GranteePrincipal",
        "kms:RetiringPrincipal",
        "kms:RequestAlias",
        "kms:ReEncryptOnSameKey",
        "kms:SigningAlgorithm",
        "kms:EncryptionAlgorithm",
        "kms:MacAlgorithm",
        "kms:DataKeyPairSpec",
        "kms:KeyAgreementAlgorithm",
        "kms:WrappingAlgorithm",
        "kms:WrappingKeySpec",
        "kms:ReplicaRegion",
        "kms:PrimaryRegion",
        "kms:ScheduleKeyDeletionPendingWindowInDays",
        "kms:RotationPeriodInDays",
        "kms:ExpirationModel",
        "kms:ValidTo",
        "aws:CalledVia",
        "aws:CalledViaFirst",
        "aws:CalledViaLast",
        "aws:SourceArn",
        "aws:SourceAccount",
        "aws:SourceOrgID",
        "aws:SourceOrgPaths",
        "aws:SourceOwner",
    )
)
ABSENT_PREFIXES = ("kms:encryptioncontext:", "kms:recipientattestation:")
#: Keys whose value on a direct call is fixed.
FIXED_ON_DIRECT_CALL = {"aws:ViaAWSService": "false", "aws:PrincipalIsAWSService": "false"}
#: Keys derived from the principal: known for a named candidate, unknown for "some principal of the account".
PRINCIPAL_KEYS = frozenset(
    k.lower()
    for k in ("aws:PrincipalArn", "aws:PrincipalType", "aws:username", "aws:userid")
)
NITRO_PREFIX = "kms:recipientattestation:"


def never_on_direct_call(key: str) -> bool:
    low = key.lower()
    return low in ABSENT_ON_DIRECT_CALL or low.startswith(ABSENT_PREFIXES)


class DirectCallContext(RequestContext):
    """A request context for "some direct call by this candidate": the candidate's known keys have values, keys a
    direct call never carries are absent, and every other key is unknown (it may or may not hold)."""

    def __init__(self, values: Mapping[str, str | Sequence[str]], known_absent: Iterable[str] = ()) -> None:
        merged: dict[str, str | Sequence[str]] = dict(FIXED_ON_DIRECT_CALL)
        merged.update(values)
        super().__init__(merged)
        self._known = {k.lower() for k in merged}
        self._absent = {k.lower() for k in known_absent}

    def is_unknown(self, key: str) -> bool:
        low = key.lower()
        return not (
            low in self._known
            or self.values_for(low) is not None
            or low in self._absent
            or never_on_direct_call(low)
        )


@dataclass(frozen=True)
class ManagementPath:
    kind: PathKind
    principal: str  # an ARN, an account, "*", or a description of who qualifies
    statement: str  # the label of the Allow statement that opens the path
    conditions: tuple[str, ...] = ()  # conditions the path depends on (human descriptions)
    satisfiable: bool = True  # the statement's conditions can hold on a direct call
    can_manage: bool = False  # this path can lead to a successful PutKeyPolicy
    needs_identity_policy: bool = False  # IAM delegation: the principal also needs an identity-policy allow
    exists: bool | None = None  # for named principals: known to exist (True), deleted (False), unknown (None)
    blocked_by: tuple[str, ...] = ()  # labels of Deny statements that always apply to this path
    may_be_blocked_by: tuple[str, ...] = ()  # Deny statements that apply under conditions
    why: str = ""
    #: ISO 8601 UTC instant at which this path first manages, when a date condition is all that keeps it from
    #: managing now (it does not manage now: ``can_manage`` is False).
    opens_at: str | None = None
    #: ISO 8601 UTC instant at which this path, managing now, stops managing because of a date condition.
    closes_at: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "principal": self.principal,
            "statement": self.statement,
            "conditions": list(self.conditions),
            "satisfiable": self.satisfiable,
            "can_manage": self.can_manage,
            "needs_identity_policy": self.needs_identity_policy,
            "exists": self.exists,
            "blocked_by": list(self.blocked_by),
            "may_be_blocked_by": list(self.may_be_blocked_by),
            "why": self.why,
            "opens_at": self.opens_at,
            "closes_at": self.closes_at,
        }


@dataclass(frozen=True)
class ManagementAnalysis:
    key_account: str
    action: str
    paths: tuple[ManagementPath, ...]
    intentional_lock: bool = False
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def locked_out(self) -> bool:
        """No path can ever manage: none manages now and none opens on a later date."""
        return not any(p.can_manage or p.opens_at for p in self.paths)

    @property
    def manageable_now(self) -> bool:
        return any(p.can_manage for p in self.paths)

    @property
    def opens_at(self) -> str | None:
        """When no path manages now: the earliest date (ISO 8601 UTC) on which one opens, else None."""
        if self.manageable_now:
            return None
        dates = sorted(p.opens_at for p in self.paths if p.opens_at)
        return dates[0] if dates else None

    @property
    def managing_paths(self) -> tuple[ManagementPath, ...]:
        return tuple(p for p in self.paths if p.can_manage)

    @property
    def root_can_manage(self) -> bool:
        """Whether signing in as the root user helps now (``docs/engine.md``, rule 7)."""
        return any(p.can_manage and p.kind == "root_user" for p in self.paths)

    def to_dict(self) -> dict[str, Any]:
        return {
            "key_account": self.key_account,
            "action": self.action,
            "locked_out": self.locked_out,
            "opens_at": self.opens_at,
            "intentional_lock": self.intentional_lock,
            "root_can_manage": self.root_can_manage,
            "paths": [p.to_dict() for p in self.paths],
            "notes": list(self.notes),
        }


# --- candidates -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Candidate:
    caller: Caller
    ctx: DirectCallContext
    description: str


def _named_candidate(caller: Caller) -> _Candidate:
    values: dict[str, str | Sequence[str]] = dict(caller.context())
    return _Candidate(caller, DirectCallContext(values, known_absent=_absent_principal_keys(caller)), caller.arn)


def _absent_principal_keys(caller: Caller) -> list[str]:
    # aws:username exists only for IAM users (IAM User Guide, aws:username).
    return [] if caller.kind == "user" else ["aws:username"]


def _generic_candidate(account: str, principal_arn: str | None = None) -> _Candidate:
    """Some IAM principal of ``account`` (its ARN unknown unless a condition pattern names it)."""
    values: dict[str, str | Sequence[str]] = {"aws:PrincipalAccount": account, "kms:CallerAccount": account}
    if principal_arn:
        values["aws:PrincipalArn"] = principal_arn
    caller = Caller(arn=principal_arn or f"arn:aws:iam::{account}:role/*", kind="role", account=account, name="*")
    desc = f"any principal of {account} whose ARN matches {principal_arn}" if principal_arn else (
        f"any IAM principal of {account}"
    )
    return _Candidate(caller, DirectCallContext(values), desc)


#: Operators that compare a value literally: ``*`` and ``?`` are plain characters (IAM User Guide, "Condition
#: operators", String: StringEquals is an exact match; StringLike is the one with wildcards). ArnEquals is not
#: among them: the same page gives ArnEquals and ArnLike the same wildcard match of each ARN part.
EXACT_OPERATORS = frozenset({"stringequals", "stringequalsignorecase"})


def _principal_arn_patterns(statement: Statement) -> list[tuple[str, bool]] | None:
    """Values of positive conditions on aws:PrincipalArn (StringEquals/Like, ArnEquals/Like and IfExists forms),
    each with whether its operator compares it literally; None when the statement has none."""
    found: list[tuple[str, bool]] | None = None
    for c in statement.conditions:
        op = c.operator.lower().removeprefix("forallvalues:").removeprefix("foranyvalue:").removesuffix("ifexists")
        if c.key.lower() == "aws:principalarn" and op in ("stringequals", "stringlike", "arnequals", "arnlike",
                                                          "stringequalsignorecase"):
            found = (found or []) + [(v, op in EXACT_OPERATORS) for v in c.values]
    return found


def _literal_result(condition: Condition) -> bool | None:
    """For an exact condition on aws:PrincipalArn whose every value no principal's ARN can take (``StringEquals
    aws:PrincipalArn arn:…:role/*``): False for StringEquals, True for StringNotEquals, whoever the principal.
    None otherwise (it depends on who calls)."""
    info = operator_info(condition.operator)
    if (info is None or info.family != "String" or info.kind not in ("eq", "eqi") or info.set_op is not None
            or condition.key.lower() != "aws:principalarn" or not condition.values):
        return None
    if any("${" in v or principal_arn_never(v) is None for v in condition.values):
        return None
    return info.negated


def _settle_literals(outcome: ConditionOutcome) -> bool | None:
    """A statement's undecided conditions, settled where a literal no principal's ARN can take decides them."""
    result: bool | None = True
    for check in outcome.checks:
        value = check.result if check.result is not None else _literal_result(check.condition)
        if value is False:
            return False
        if value is None:
            result = None
    return result


# --- time ---------------------------------------------------------------------------------------------------


def _later_instants(statements: Iterable[Statement], after: int | None) -> list[int]:
    """Epoch seconds after ``after`` (every one when None) at which a date condition of these statements can
    change its result: each boundary itself and the second after it (``DateGreaterThan T`` first holds just after
    T). Between two of them, every such condition keeps its value, so trying these instants tries every case."""
    out: set[int] = set()
    for st in statements:
        for boundary in time_boundaries(st.conditions):
            second = int(boundary)
            for instant in (second, second + 1):
                if after is None or instant > after:
                    out.add(instant)
    return sorted(out)


def _iso(instant: int) -> str:
    return time_context(instant)["aws:CurrentTime"]


# --- the analysis ---------------------------------------------------------------------------------------------


def analyze_management(
    key_policy: PolicyDocument,
    *,
    key_account: str,
    key_arn: str | None = None,
    action: str = "kms:PutKeyPolicy",
    existing: Mapping[str, bool | None] | None = None,
    now: datetime | None = None,
) -> ManagementAnalysis:
    """Every way in to ``action`` (PutKeyPolicy by default) that the key policy opens, and whether any works.

    ``existing`` maps principal ARNs to what is known of their existence (True, False = deleted, None = unknown);
    a path through a principal known not to exist cannot manage. Principals shown as unique ids are deleted.
    ``now`` is the time the analysis is for (default: the current UTC time). Date conditions on
    ``aws:CurrentTime``/``aws:EpochTime`` are judged at ``now`` and at every later instant where one of them can
    change: a window already past never holds again, and a path that a date alone keeps shut gets ``opens_at``.
    """
    if not ACCOUNT_RE.match(key_account or ""):
        raise PolicyInputError(f"the key's account must be a 12-digit account id, not {key_account!r}")
    policy = _as_policy(key_policy, "key policy", key_policy=True)
    if key_arn and key_arn_parts(key_arn) is None:
        raise PolicyInputError(f"not a KMS key ARN: {key_arn!r}")
    return _Analysis(policy, key_account, key_arn, canonical_action(action), existing or {}, now).run()


_WHY_BY_KIND: dict[str, str] = {
    "named_principal": "named in the key policy; needs no identity policy",
    "session": "only that role session (assume the role with this session name)",
    "root_user": "the root user is covered and needs no identity policy",
    "account_delegation": "any IAM principal of {account} whose identity policies allow {action}",
    "wildcard": 'a "*" principal: any principal that meets the conditions, no identity policy needed',
}


class _Analysis:
    """One analysis: each method applies one rule of who can reach ``action`` (docs/engine.md)."""

    def __init__(self, policy: Policy, key_account: str, key_arn: str | None, action: str,
                 existing: Mapping[str, bool | None], now: datetime | None) -> None:
        self.policy = policy
        self.key_account = key_account
        self.resource = key_arn or "*"
        self.action = action
        self.existing = existing
        self.denies = [st for st in policy.statements if st.effect == "Deny" and st.has_effect]
        self.start = _epoch_second(now)
        self.deny_times = _later_instants(self.denies, self.start)
        self.root = parse_caller(key_account)
        self.paths: list[ManagementPath] = []
        self.notes: list[str] = []

    # -- the whole policy ---------------------------------------------------------------------------------------

    def run(self) -> ManagementAnalysis:
        for st in self.policy.statements:
            if not self._allows_the_action(st):
                continue
            if st.not_principal is not None or (st.principal is not None and st.principal.wildcard):
                self._any_principal_paths(st)
                continue
            assert st.principal is not None
            for raw in st.principal.aws:
                self.paths.append(self._named_path(st, raw))
            for service in st.principal.service:
                self.paths.append(ManagementPath(
                    "service", service, st.label, can_manage=False,
                    why=f"an AWS service principal does not call {self.action} on your behalf",
                ))
        # IAM principals named only in a Deny's NotPrincipal may still come in through delegation: say so.
        if any(p.kind == "account_delegation" and p.blocked_by for p in self.paths):
            self.notes.append("the delegation path is blocked for principals a Deny covers; principals its "
                              "NotPrincipal exempts (every layer listed) are analysed by name when the policy "
                              "names them")
        intentional = self._locked_to_enclaves()
        if intentional:
            self.notes.append("the key policy uses Nitro Enclaves attestation conditions: the key is locked on "
                              "purpose")
        return ManagementAnalysis(key_account=self.key_account, action=self.action, paths=tuple(self.paths),
                                  intentional_lock=intentional, notes=tuple(self.notes))

    def _allows_the_action(self, st: Statement) -> bool:
        """An Allow with an effect (Action and Resource; docs/engine.md rule 9) whose Action covers the action and
        that names a principal (a key policy statement needs one)."""
        if st.effect != "Allow" or not st.has_effect:
            return False
        if st.actions is not None and not any(action_matches(p, self.action) for p in st.actions):
            return False
        if st.not_actions is not None and any(action_matches(p, self.action) for p in st.not_actions):
            return False
        return st.principal is not None or st.not_principal is not None

    def _locked_to_enclaves(self) -> bool:
        """Nothing manages the key and its policy uses Nitro Enclaves attestation: locked on purpose."""
        return (not any(p.can_manage for p in self.paths)) and any(
            c.key.lower().startswith(NITRO_PREFIX) for s in self.policy.statements for c in s.conditions
        )

    # -- "*" (or NotPrincipal) statements: who can the conditions admit? ---------------------------------------

    def _any_principal_paths(self, st: Statement) -> None:
        candidates: list[tuple[_Candidate, PathKind]] = [(_named_candidate(self.root), "root_user")]
        patterns = _principal_arn_patterns(st)
        if patterns is None:
            candidates.append((_generic_candidate(self.key_account), "wildcard"))
        else:
            for pattern, exact in patterns:
                found = self._candidate_for_pattern(st, pattern, exact)
                if found is not None:
                    candidates.append((found, "wildcard"))
        for cand, kind in candidates:
            exists = self.existing.get(cand.caller.principal_arn) if kind == "wildcard" else True
            path = self._path(st, cand, kind, exists=exists, principal="root user" if kind == "root_user" else None)
            if kind == "root_user" and not path.satisfiable:
                continue  # the root candidate is tried for every "*" statement; report it only when it works
            self.paths.append(path)

    def _candidate_for_pattern(self, st: Statement, pattern: str, exact: bool) -> _Candidate | None:
        """The principal an ``aws:PrincipalArn`` value admits, or None (recording why it admits nobody here)."""
        literal = exact and "${" not in pattern
        never = principal_arn_never(pattern) if literal else None
        if never is not None:
            # StringEquals compares literally: a value no principal's ARN can take never matches.
            self._never(st, pattern, f"never true: {never}")
            return None
        if literal and ("*" in pattern or "?" in pattern) and pattern.split(":")[4] == self.key_account:
            return self._principal_named_by(pattern)  # a path may hold "*" or "?": this exact principal only
        value = classify_aws_value(pattern) if "*" not in pattern and "?" not in pattern else None
        if value is not None and value.kind == "session":
            self._never(st, pattern, "never true: for a role session aws:PrincipalArn is the role's ARN, not the "
                                     "session's")
            return None
        if value is not None and value.kind == "account":
            return None  # the root candidate covers it
        if value is not None and value.kind in ("user", "role") and value.account == self.key_account:
            return self._principal_named_by(pattern)
        pattern_account = pattern.split(":")[4] if pattern.count(":") >= 5 else None
        if pattern_account and ACCOUNT_RE.match(pattern_account) and pattern_account != self.key_account:
            self.paths.append(ManagementPath(
                "other_account", pattern, st.label, satisfiable=True, can_manage=False,
                why=f"principals of another account cannot call {self.action} on this key",
            ))
            return None
        return _generic_candidate(self.key_account, pattern)

    def _principal_named_by(self, arn: str) -> _Candidate:
        """The user or role an ARN names (a role as one of its sessions, which keep its path), shown as that ARN,
        never as an invented session."""
        caller = parse_caller(arn)
        cand = _named_candidate(role_caller(arn) if caller.kind == "role" else caller)
        return _Candidate(cand.caller, cand.ctx, arn)

    def _never(self, st: Statement, pattern: str, why: str) -> None:
        self.paths.append(ManagementPath("wildcard", pattern, st.label, (f"aws:PrincipalArn = {pattern}",), False,
                                         False, why=why))

    # -- named principals -------------------------------------------------------------------------------------

    def _named_path(self, st: Statement, raw: str) -> ManagementPath:
        value = classify_aws_value(raw)
        if value.kind == "unique_id":
            return ManagementPath(
                "orphaned_unique_id", raw, st.label, can_manage=False, exists=False,
                why="a unique id in a key policy means the principal it named was deleted; a new principal "
                    "with the same name does not match it",
            )
        if value.kind == "invalid":
            return ManagementPath(
                "named_principal", raw, st.label, can_manage=False, satisfiable=False,
                why="not a valid principal (Principal does not accept partial wildcards); it matches nobody",
            )
        if value.account != self.key_account:
            return ManagementPath(
                "other_account", raw, st.label, can_manage=False,
                why=(f"{self.action} cannot be called on a key in another account"
                     if not cross_account_allowed(self.action) else
                     f"another account ({value.account}) needs its own identity policy to allow {self.action}"),
            )
        if value.kind == "account":
            # The account principal: the root user, and delegation to the account's IAM policies.
            self.paths.append(self._path(st, _named_candidate(self.root), "root_user", principal="root user",
                                         exists=True))
            return self._path(st, _generic_candidate(self.key_account), "account_delegation", needs_identity=True,
                              principal=f"IAM principals of {self.key_account}")
        caller = parse_caller(raw)
        kind: PathKind = "session" if caller.kind == "assumed_role" else "named_principal"
        if caller.kind == "role":
            # A role covers every session; a Deny's NotPrincipal may exempt only one session name.
            caller = role_caller(raw, _session_exempted(self.denies, caller) or "session")
        return self._path(st, _named_candidate(caller), kind, exists=self.existing.get(raw), principal=raw)

    # -- one path, now and later --------------------------------------------------------------------------------

    def _path(
        self, st: Statement, cand: _Candidate, kind: PathKind, *, needs_identity: bool = False,
        exists: bool | None = None, principal: str | None = None,
    ) -> ManagementPath:
        """The path at ``now``; when it does not manage now, the first later instant at which it does; when it
        manages now, the first later instant at which a date condition shuts it."""
        def at(instant: int) -> ManagementPath:
            return self._path_at(st, cand, kind, instant, needs_identity=needs_identity, exists=exists,
                                 principal=principal)

        path = at(self.start)
        later = sorted(set(self.deny_times) | set(_later_instants([st], self.start)))
        if path.can_manage:
            shut = next((i for i in later if not at(i).can_manage), None)
            if shut is None:
                return path
            when = _iso(shut)
            return replace(path, closes_at=when, why=f"{path.why}; until {when}, when a date condition shuts it")
        opens = next((i for i in later if at(i).can_manage), None)
        if opens is not None:
            when = _iso(opens)
            return replace(path, satisfiable=True, opens_at=when,
                           why=f"not now ({path.why}); opens at {when}, when its date conditions first allow")
        dated = [st, *(d for d in self.denies if d.label in path.blocked_by)]
        if any(time_boundaries(x.conditions) for x in dated):
            return replace(path, why=f"{path.why} (a date window: after {_iso(self.start)} it never opens again)")
        return path

    def _path_at(
        self, st: Statement, cand: _Candidate, kind: PathKind, instant: int, *, needs_identity: bool,
        exists: bool | None, principal: str | None,
    ) -> ManagementPath:
        ctx = cand.ctx.with_values(time_context(instant))
        m = match_statement(st, caller=cand.caller, action=self.action, resource=self.resource, ctx=ctx,
                            resource_policy=True)
        shown = principal or cand.description
        if m.applies is False:
            return ManagementPath(kind, shown, st.label, satisfiable=False, can_manage=False, exists=exists,
                                  why=f"never on a direct {self.action} call: {m.why_not}")
        always, maybe = self._denies_for(cand, ctx)
        conds = _open_conditions(m.conditions)
        if always:
            return ManagementPath(kind, shown, st.label, conds, True, False, needs_identity, exists, tuple(always),
                                  tuple(maybe), why=f"an explicit Deny ({', '.join(always)}) always applies")
        if exists is False:
            return ManagementPath(kind, shown, st.label, conds, True, False, needs_identity, exists, (),
                                  tuple(maybe), why="the principal no longer exists")
        why = _WHY_BY_KIND.get(kind, "").format(account=self.key_account, action=self.action)
        if conds:
            why += "; only when: " + "; ".join(conds)
        if maybe:
            why += f"; unless Deny {', '.join(maybe)} applies"
        return ManagementPath(kind, shown, st.label, conds, True, True, needs_identity, exists, (), tuple(maybe),
                              why=why)

    def _denies_for(self, cand: _Candidate, ctx: RequestContext) -> tuple[list[str], list[str]]:
        """Explicit deny wins (docs/engine.md rule 4): the Denies that always apply to the candidate, and those
        that may (they depend on what the request carries)."""
        always: list[str] = []
        maybe: list[str] = []
        for d in self.denies:
            m = match_statement(d, caller=cand.caller, action=self.action, resource=self.resource, ctx=ctx,
                                resource_policy=True)
            applies = m.applies if m.applies is not None or m.conditions is None else _settle_literals(m.conditions)
            if applies is True:
                always.append(d.label)
            elif applies is None:
                maybe.append(d.label)
        return always, maybe


def _open_conditions(outcome: ConditionOutcome | None) -> tuple[str, ...]:
    """The conditions that are not known to hold (what the path still depends on)."""
    if not outcome:
        return ()
    return tuple(c.detail for c in outcome.checks if c.result is not True)


def _session_exempted(denies: Sequence[Statement], role: Caller) -> str | None:
    """The session name a Deny's NotPrincipal exempts for this role, if it lists one."""
    for d in denies:
        if d.not_principal is None:
            continue
        for raw in d.not_principal.aws:
            v = classify_aws_value(raw)
            if v.kind == "session" and v.account == role.account and v.name == role.name:
                return v.session_name
    return None


__all__ = ["DirectCallContext", "ManagementAnalysis", "ManagementPath", "analyze_management",
           "never_on_direct_call"]
