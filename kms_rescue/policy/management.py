"""Management analysis: from a key policy alone, every way in to kms:PutKeyPolicy, and the lockout verdict.

A key is locked out when no principal of the key's account can ever call PutKeyPolicy (DESIGN.md §2): principals
of other accounts never can, because KMS does not offer PutKeyPolicy across accounts (DESIGN.md §1.6). A path
through a condition counts unless the condition can never hold on a direct PutKeyPolicy call: keys KMS only sets
when a service calls on the principal's behalf (``kms:ViaService``), for cryptographic operations
(``kms:EncryptionContext:*``), for grants, for Nitro Enclaves attestation, or ``aws:PrincipalArn`` equal to a session
ARN (a session's ``aws:PrincipalArn`` is its role's ARN, DESIGN.md §1.8).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from kms_rescue.policy.actions import action_matches, canonical_action, cross_account_allowed
from kms_rescue.policy.conditions import RequestContext
from kms_rescue.policy.evaluate import PolicyDocument, _as_policy, key_arn_parts, match_statement
from kms_rescue.policy.model import Statement
from kms_rescue.policy.principals import (
    ACCOUNT_RE,
    Caller,
    classify_aws_value,
    parse_caller,
    role_caller,
)

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
        return not (low in self._known or low in self._absent or never_on_direct_call(low))


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
        return not any(p.can_manage for p in self.paths)

    @property
    def managing_paths(self) -> tuple[ManagementPath, ...]:
        return tuple(p for p in self.paths if p.can_manage)

    @property
    def root_can_manage(self) -> bool:
        """Whether signing in as the root user helps (DESIGN.md §1.7)."""
        return any(p.can_manage and p.kind == "root_user" for p in self.paths)

    def to_dict(self) -> dict[str, Any]:
        return {
            "key_account": self.key_account,
            "action": self.action,
            "locked_out": self.locked_out,
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


def _principal_arn_patterns(statement: Statement) -> list[str] | None:
    """Values of positive conditions on aws:PrincipalArn (StringEquals/Like, ArnEquals/Like and IfExists forms),
    or None when the statement has none."""
    found: list[str] | None = None
    for c in statement.conditions:
        op = c.operator.lower().removeprefix("forallvalues:").removeprefix("foranyvalue:").removesuffix("ifexists")
        if c.key.lower() == "aws:principalarn" and op in ("stringequals", "stringlike", "arnequals", "arnlike",
                                                          "stringequalsignorecase"):
            found = (found or []) + list(c.values)
    return found


# --- the analysis ---------------------------------------------------------------------------------------------


def analyze_management(
    key_policy: PolicyDocument,
    *,
    key_account: str,
    key_arn: str | None = None,
    action: str = "kms:PutKeyPolicy",
    existing: Mapping[str, bool | None] | None = None,
) -> ManagementAnalysis:
    """Every way in to ``action`` (PutKeyPolicy by default) that the key policy opens, and whether any works.

    ``existing`` maps principal ARNs to what is known of their existence (True, False = deleted, None = unknown);
    a path through a principal known not to exist cannot manage. Principals shown as unique ids are deleted.
    """
    if not ACCOUNT_RE.match(key_account or ""):
        from kms_rescue.policy.errors import PolicyInputError

        raise PolicyInputError(f"the key's account must be a 12-digit account id, not {key_account!r}")
    policy = _as_policy(key_policy, "key policy", key_policy=True)
    action = canonical_action(action)
    resource = key_arn or "*"
    if key_arn and key_arn_parts(key_arn) is None:
        from kms_rescue.policy.errors import PolicyInputError

        raise PolicyInputError(f"not a KMS key ARN: {key_arn!r}")
    existing = existing or {}
    paths: list[ManagementPath] = []
    notes: list[str] = []
    denies = [s for s in policy.statements if s.effect == "Deny" and s.has_effect]

    def deny_check(cand: _Candidate) -> tuple[list[str], list[str]]:
        always: list[str] = []
        maybe: list[str] = []
        for d in denies:
            m = match_statement(d, caller=cand.caller, action=action, resource=resource, ctx=cand.ctx,
                                resource_policy=True)
            if m.applies is True:
                always.append(d.label)
            elif m.applies is None:
                maybe.append(d.label)
        return always, maybe

    def conditions_of(m_conditions: Any) -> tuple[str, ...]:
        if not m_conditions:
            return ()
        return tuple(c.detail for c in m_conditions.checks if c.result is not True)

    def evaluate_candidate(
        st: Statement, cand: _Candidate, kind: PathKind, *, needs_identity: bool = False,
        exists: bool | None = None, principal: str | None = None,
    ) -> ManagementPath:
        m = match_statement(st, caller=cand.caller, action=action, resource=resource, ctx=cand.ctx,
                            resource_policy=True)
        label = st.label
        shown = principal or cand.description
        if m.applies is False:
            return ManagementPath(kind, shown, label, satisfiable=False, can_manage=False, exists=exists,
                                  why=f"never on a direct {action} call: {m.why_not}")
        always, maybe = deny_check(cand)
        conds = conditions_of(m.conditions)
        if always:
            return ManagementPath(kind, shown, label, conds, True, False, needs_identity, exists, tuple(always),
                                  tuple(maybe), why=f"an explicit Deny ({', '.join(always)}) always applies")
        if exists is False:
            return ManagementPath(kind, shown, label, conds, True, False, needs_identity, exists, (), tuple(maybe),
                                  why="the principal no longer exists")
        why = {
            "named_principal": "named in the key policy; needs no identity policy",
            "session": "only that role session (assume the role with this session name)",
            "root_user": "the root user is covered and needs no identity policy",
            "account_delegation": f"any IAM principal of {key_account} whose identity policies allow {action}",
            "wildcard": 'a "*" principal: any principal that meets the conditions, no identity policy needed',
        }.get(kind, "")
        if conds:
            why += "; only when: " + "; ".join(conds)
        if maybe:
            why += f"; unless Deny {', '.join(maybe)} applies"
        return ManagementPath(kind, shown, label, conds, True, True, needs_identity, exists, (), tuple(maybe),
                              why=why)

    root = parse_caller(key_account)
    for st in policy.statements:
        if st.effect != "Allow" or not st.has_effect:
            continue
        if st.actions is not None and not any(action_matches(p, action) for p in st.actions):
            continue
        if st.not_actions is not None and any(action_matches(p, action) for p in st.not_actions):
            continue
        if st.principal is None and st.not_principal is None:
            continue
        if st.not_principal is not None or (st.principal is not None and st.principal.wildcard):
            patterns = _principal_arn_patterns(st)
            candidates: list[tuple[_Candidate, PathKind]] = [(_named_candidate(root), "root_user")]
            if patterns is None:
                candidates.append((_generic_candidate(key_account), "wildcard"))
            else:
                for pattern in patterns:
                    value = classify_aws_value(pattern) if "*" not in pattern and "?" not in pattern else None
                    if value is not None and value.kind == "session":
                        paths.append(ManagementPath(
                            "wildcard", pattern, st.label, (f"aws:PrincipalArn = {pattern}",), False, False,
                            why="never true: for a role session aws:PrincipalArn is the role's ARN, not the session's",
                        ))
                        continue
                    if value is not None and value.kind == "account":
                        continue  # the root candidate covers it
                    if value is not None and value.kind in ("user", "role") and value.account == key_account:
                        caller = parse_caller(pattern)
                        cand = _named_candidate(role_caller(pattern) if caller.kind == "role" else caller)
                        # Shown as the role (or user) the condition names, never as an invented session.
                        candidates.append((_Candidate(cand.caller, cand.ctx, pattern), "wildcard"))
                        continue
                    pattern_account = pattern.split(":")[4] if pattern.count(":") >= 5 else None
                    if pattern_account and ACCOUNT_RE.match(pattern_account) and pattern_account != key_account:
                        paths.append(ManagementPath(
                            "other_account", pattern, st.label, satisfiable=True, can_manage=False,
                            why=f"principals of another account cannot call {action} on this key",
                        ))
                        continue
                    candidates.append((_generic_candidate(key_account, pattern), "wildcard"))
            for cand, kind in candidates:
                exists = existing.get(cand.caller.principal_arn) if kind == "wildcard" else True
                path = evaluate_candidate(st, cand, kind, exists=exists,
                                          principal="root user" if kind == "root_user" else None)
                if kind == "root_user" and not path.satisfiable:
                    continue  # the root candidate is tried for every "*" statement; report it only when it works
                paths.append(path)
            continue
        assert st.principal is not None
        for raw in st.principal.aws:
            value = classify_aws_value(raw)
            if value.kind == "unique_id":
                paths.append(ManagementPath(
                    "orphaned_unique_id", raw, st.label, can_manage=False, exists=False,
                    why="a unique id in a key policy means the principal it named was deleted; a new principal "
                        "with the same name does not match it",
                ))
                continue
            if value.kind == "invalid":
                paths.append(ManagementPath(
                    "named_principal", raw, st.label, can_manage=False, satisfiable=False,
                    why="not a valid principal (Principal does not accept partial wildcards); it matches nobody",
                ))
                continue
            if value.account != key_account:
                paths.append(ManagementPath(
                    "other_account", raw, st.label, can_manage=False,
                    why=(f"{action} cannot be called on a key in another account"
                         if not cross_account_allowed(action) else
                         f"another account ({value.account}) needs its own identity policy to allow {action}"),
                ))
                continue
            if value.kind == "account":
                paths.append(evaluate_candidate(st, _named_candidate(root), "root_user", principal="root user",
                                                exists=True))
                generic = _generic_candidate(key_account)
                paths.append(evaluate_candidate(st, generic, "account_delegation", needs_identity=True,
                                                principal=f"IAM principals of {key_account}"))
                continue
            caller = parse_caller(raw)
            if caller.kind == "role":
                cand = _named_candidate(role_caller(raw, _session_exempted(denies, caller) or "session"))
                path_kind: PathKind = "named_principal"
            elif caller.kind == "assumed_role":
                cand = _named_candidate(caller)
                path_kind = "session"
            else:
                cand = _named_candidate(caller)
                path_kind = "named_principal"
            paths.append(evaluate_candidate(st, cand, path_kind, exists=existing.get(raw), principal=raw))
        for service in st.principal.service:
            paths.append(ManagementPath(
                "service", service, st.label, can_manage=False,
                why=f"an AWS service principal does not call {action} on your behalf",
            ))

    # IAM principals named only in a Deny's NotPrincipal may still come in through delegation: say so.
    if any(p.kind == "account_delegation" and p.blocked_by for p in paths):
        notes.append("the delegation path is blocked for principals a Deny covers; principals its NotPrincipal "
                     "exempts (every layer listed) are analysed by name when the policy names them")

    intentional = (not any(p.can_manage for p in paths)) and any(
        c.key.lower().startswith(NITRO_PREFIX) for s in policy.statements for c in s.conditions
    )
    if intentional:
        notes.append("the key policy uses Nitro Enclaves attestation conditions: the key is locked on purpose")
    return ManagementAnalysis(key_account=key_account, action=action, paths=tuple(paths),
                              intentional_lock=intentional, notes=tuple(notes))


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
