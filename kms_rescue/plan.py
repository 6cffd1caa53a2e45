"""The repair plan: from the key's current policy to a proposed one that restores manageability, with a diff that
says why each added line is there. Pure: no AWS calls, no printing.

The fix is additive. Every existing statement is kept as it is (a Deny the owner wrote keeps applying), and the
plan adds what AWS's own default key policy has (KMS Developer Guide, "Default key policy"):

* the statement that allows access to the key's account and enables IAM policies ("Enable IAM User Permissions"):
  the account principal delegates to IAM, so an IAM administrator of the account can always grant access again, and
  the root user is covered without any identity policy (docs/engine.md, rules 2 and 7);
* optionally, a named key administrator ("Allow access for Key Administrators") with the least-privilege
  administration actions of :data:`kms_rescue.policy.actions.ADMIN_ACTIONS`: management, no cryptographic use.

:func:`check_keeps_management` is the engine check the apply step runs before writing: the identity applying the
policy and the named administrator must keep ``kms:PutKeyPolicy`` under the new policy.
"""

from __future__ import annotations

import copy
import difflib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kms_rescue.default_policy import DELEGATION_SID, delegation_statement
from kms_rescue.errors import UsageError
from kms_rescue.policy import analyze_management, evaluate, parse_policy
from kms_rescue.policy.actions import ADMIN_ACTIONS
from kms_rescue.policy.errors import PolicyInputError
from kms_rescue.policy.evaluate import PolicyDocument, key_arn_parts
from kms_rescue.policy.model import KEY_POLICY_MAX_BYTES
from kms_rescue.policy.partitions import DEFAULT_PARTITION, account_root_arn
from kms_rescue.policy.principals import classify_aws_value, parse_caller, role_caller

#: The Sid of the key administrators statement in the console's default key policy.
ADMIN_SID = "Allow access for Key Administrators"
#: The session name used when the engine checks a role (any session of a role named in a policy is covered).
CHECK_SESSION = "kms-rescue-check"
PUT_KEY_POLICY = "kms:PutKeyPolicy"


def _admin_actions() -> tuple[str, ...]:
    return tuple(ADMIN_ACTIONS)


@dataclass(frozen=True)
class Addition:
    """One statement the plan adds, and why."""

    statement: dict[str, Any]
    why: str
    #: Reasons for the statement's lines, keyed by the line's text without indentation and trailing comma.
    line_reasons: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Removal:
    """One principal the plan takes out of the policy because KMS would refuse the policy with it
    ("MalformedPolicyDocumentException: Policy contains a statement with one or more invalid principals": AWS
    Knowledge Center, "kms-policy-error-invalid-principals": remove orphaned unique ids; the users and roles a
    policy names must exist). ``statement_removed``: it was the statement's only principal, so the statement goes."""

    statement: str  # the statement's Sid, or "#N" (1-based) without one
    value: str
    reason: str
    statement_removed: bool = False


@dataclass(frozen=True)
class DiffLine:
    """One line of the unified diff; ``reason`` explains an added line (None for context and headers)."""

    text: str
    reason: str | None = None

    @property
    def added(self) -> bool:
        return self.text.startswith("+") and not self.text.startswith("+++")

    @property
    def removed(self) -> bool:
        return self.text.startswith("-") and not self.text.startswith("---")


@dataclass(frozen=True)
class FixPlan:
    """The proposed policy for one key."""

    key_arn: str
    key_account: str
    current: dict[str, Any]
    proposed: dict[str, Any]
    additions: tuple[Addition, ...]
    diff: tuple[DiffLine, ...]
    admin_role_arn: str | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)
    removals: tuple[Removal, ...] = ()

    @property
    def changed(self) -> bool:
        return bool(self.additions or self.removals)

    def changes(self) -> list[dict[str, Any]]:
        """Every change, each with its reason (the ``changes`` of ``kms-rescue fix --format json``)."""
        out: list[dict[str, Any]] = [
            {"change": "remove_principal" if not r.statement_removed else "remove_statement",
             "statement": r.statement, "principal": r.value, "reason": r.reason}
            for r in self.removals
        ]
        out += [{"change": "add_statement", "statement": str(a.statement.get("Sid")), "reason": a.why}
                for a in self.additions]
        return out

    @property
    def proposed_text(self) -> str:
        """The policy document to send to PutKeyPolicy (the text the diff shows)."""
        return policy_text(self.proposed)

    @property
    def current_text(self) -> str:
        return policy_text(self.current)

    def unified_diff(self) -> str:
        return "".join(line.text + "\n" for line in self.diff)

    def annotated_diff(self) -> str:
        """The diff with the reason for each added line after it (``#`` lines, not part of the policy)."""
        out: list[str] = []
        for line in self.diff:
            out.append(line.text)
            if line.reason:
                out.append(f"#   ^ {line.reason}")
        return "\n".join(out) + ("\n" if out else "")


def policy_text(policy: Mapping[str, Any]) -> str:
    """The canonical rendering used for the diff, the backup comparison and PutKeyPolicy: 2-space JSON, the
    document's own key order."""
    return json.dumps(policy, indent=2, ensure_ascii=False)


# --- the statements ------------------------------------------------------------------------------------------


def admin_statement(role_arn: str, sid: str = ADMIN_SID) -> dict[str, Any]:
    """A key administrators statement naming one role, with the least-privilege administration actions."""
    return {
        "Sid": sid,
        "Effect": "Allow",
        "Principal": {"AWS": role_arn},
        "Action": list(_admin_actions()),
        "Resource": "*",
    }


def _delegation_reasons(account: str, partition: str = DEFAULT_PARTITION) -> tuple[tuple[str, str], ...]:
    return (
        (f'"Sid": "{DELEGATION_SID}"', "the name AWS's default key policy gives this statement"),
        ('"Effect": "Allow"', "it grants; it cannot override any Deny already in the policy"),
        ('"Principal": {', "who: the key's own account"),
        (f'"AWS": "{account_root_arn(account, partition)}"',
         f"the account principal: IAM policies in {account} can grant access to the key again, and the root "
         "user is covered without one"),
        ("}", "end of Principal"),
        ('"Action": "kms:*"', "every KMS operation, so an IAM administrator can grant exactly what is needed"),
        ('"Resource": "*"', 'in a key policy "*" means this key'),
    )


_ACTION_REASONS = {
    "kms:Create*": "CreateAlias, CreateGrant: name the key, delegate its use",
    "kms:Describe*": "DescribeKey: see the key's metadata and state",
    "kms:Enable*": "EnableKey, EnableKeyRotation: turn the key or its rotation on",
    "kms:List*": "ListGrants, ListKeyPolicies, ListResourceTags: see what is attached to the key",
    "kms:Put*": "PutKeyPolicy: change this policy again (what keeps the key manageable)",
    "kms:Update*": "UpdateAlias, UpdateKeyDescription: keep names and the description current",
    "kms:Revoke*": "RevokeGrant: take grants back",
    "kms:Disable*": "DisableKey, DisableKeyRotation: turn the key or its rotation off",
    "kms:Get*": "GetKeyPolicy, GetKeyRotationStatus: read the policy and settings",
    "kms:Delete*": "DeleteAlias, DeleteImportedKeyMaterial",
    "kms:TagResource": "add tags to the key",
    "kms:UntagResource": "remove tags from the key",
    "kms:ScheduleKeyDeletion": "schedule the key's deletion (KMS enforces a waiting period)",
    "kms:CancelKeyDeletion": "cancel a scheduled deletion",
}


def _admin_reasons(role_arn: str) -> tuple[tuple[str, str], ...]:
    reasons: list[tuple[str, str]] = [
        (f'"Sid": "{ADMIN_SID}"', "the name AWS's console gives the key administrators statement"),
        ('"Effect": "Allow"', "it grants; it cannot override any Deny already in the policy"),
        ('"Principal": {', "who: the administrator role you chose"),
        (f'"AWS": "{role_arn}"', "named directly: every session of this role may administer the key, no identity "
                                "policy needed"),
        ("}", "end of Principal"),
        ('"Action": [', "key administration only: no Encrypt, Decrypt or other cryptographic use"),
    ]
    for action in _admin_actions():
        reasons.append((f'"{action}"', _ACTION_REASONS.get(action, f"key administration: {action}")))
    reasons.append(("]", "end of the administration actions"))
    reasons.append(('"Resource": "*"', 'in a key policy "*" means this key'))
    return tuple(reasons)


# --- the plan ------------------------------------------------------------------------------------------------


def _unique_sid(wanted: str, taken: set[str]) -> str:
    if wanted not in taken:
        return wanted
    n = 2
    while f"{wanted} {n}" in taken:
        n += 1
    return f"{wanted} {n}"


def _has_full_delegation(policy: Mapping[str, Any], account: str, partition: str = DEFAULT_PARTITION) -> bool:
    """Whether an existing statement already is the default one: Allow, the account principal, kms:*, "*", no
    condition."""
    parsed = parse_policy(dict(policy), source="key policy", max_bytes=KEY_POLICY_MAX_BYTES)
    for st in parsed.statements:
        if st.effect != "Allow" or st.conditions or st.principal is None or st.not_principal is not None:
            continue
        names_account = any(v in (account, account_root_arn(account, partition)) for v in st.principal.aws)
        if not names_account:
            continue
        if st.actions is not None and any(a.lower() in ("kms:*", "*") for a in st.actions) and (
            st.resources is not None and "*" in st.resources
        ):
            return True
    return False


UNIQUE_ID_REASON = ("a unique id in place of an ARN: the user or role it named was deleted, and KMS refuses a policy "
                    "that names it (MalformedPolicyDocumentException: invalid principals)")


def _principal_values(block: Any) -> list[str] | None:
    """The AWS values of a Principal/NotPrincipal block, or None when it has none (or is "*")."""
    if not isinstance(block, dict):
        return None
    aws = block.get("AWS")
    if isinstance(aws, str):
        return [aws]
    if isinstance(aws, list) and all(isinstance(v, str) for v in aws):
        return list(aws)
    return None


def _refused_reason(value: str, deleted: Mapping[str, str]) -> str | None:
    if classify_aws_value(value).kind == "unique_id":
        return UNIQUE_ID_REASON
    if value in deleted:
        return f"{deleted[value]}: KMS refuses a policy that names a principal that does not exist"
    return None


def drop_invalid_principals(
    statements: Sequence[Any], deleted: Mapping[str, str]
) -> tuple[list[Any], list[Removal], list[str]]:
    """The statements without the principals KMS would refuse (see :class:`Removal`), what was removed, and notes
    for what could not be removed safely (a NotPrincipal left empty would widen a Deny: kept, and said)."""
    out: list[Any] = []
    removals: list[Removal] = []
    notes: list[str] = []
    for n, st in enumerate(statements, 1):
        if not isinstance(st, dict):
            out.append(st)
            continue
        name = str(st.get("Sid")) if st.get("Sid") is not None else f"#{n}"
        st = copy.deepcopy(st)
        drop_statement = False
        for element in ("Principal", "NotPrincipal"):
            values = _principal_values(st.get(element))
            if values is None:
                continue
            bad = [(v, r) for v in values if (r := _refused_reason(v, deleted)) is not None]
            if not bad:
                continue
            keep = [v for v in values if _refused_reason(v, deleted) is None]
            other_kinds = [k for k in st[element] if k != "AWS"]
            if not keep and element == "NotPrincipal":
                notes.append(f"statement {name} excludes only deleted principals ({', '.join(v for v, _ in bad)}) "
                             "in NotPrincipal; it is kept as it is (removing them would widen its Deny): edit it "
                             "by hand, KMS refuses it as written")
                continue
            if not keep and not other_kinds:
                drop_statement = True
                removals += [Removal(name, v, r, statement_removed=True) for v, r in bad]
                continue
            removals += [Removal(name, v, r) for v, r in bad]
            if keep:
                st[element]["AWS"] = keep if isinstance(st[element]["AWS"], list) else keep[0]
            else:
                del st[element]["AWS"]
        if not drop_statement:
            out.append(st)
    return out, removals, notes


def deleted_principals(entries: Iterable[Any]) -> dict[str, str]:
    """ARN → evidence, for the report's principal entries known not to exist (``exists is False``), outside
    conditions: what :func:`propose_fix` takes out (a condition's ARN is a string comparison, KMS does not check
    it)."""
    return {e.value: e.evidence for e in entries
            if e.exists is False and not e.in_condition and e.kind in ("user", "role", "unique_id")}


def _names_admin(statements: Sequence[Any], role_arn: str) -> bool:
    """Whether an unconditional Allow already names ``role_arn`` with every key administration action."""
    wanted = set(_admin_actions())
    for st in statements:
        if not isinstance(st, dict) or st.get("Effect") != "Allow" or st.get("Condition"):
            continue
        if role_arn not in (_principal_values(st.get("Principal")) or []):
            continue
        actions = st.get("Action")
        listed = {actions} if isinstance(actions, str) else set(actions) if isinstance(actions, list) else set()
        if "kms:*" in listed or "*" in listed or wanted <= listed:
            return True
    return False


def validate_admin_role(role_arn: str, key_account: str, partition: str = DEFAULT_PARTITION) -> str:
    """A role ARN of the key's account (and partition), or :class:`UsageError`."""
    text = (role_arn or "").strip()
    expected = f"expected arn:{partition}:iam::{key_account}:role/NAME"
    try:
        caller = parse_caller(text)
    except PolicyInputError:
        raise UsageError(f"not a role ARN: {text!r} ({expected})") from None
    if caller.kind != "role":
        raise UsageError(f"not a role ARN: {text!r} ({expected})")
    if caller.partition != partition:
        raise UsageError(f"the administrator role is in partition {caller.partition}, the key in {partition} "
                         f"({expected})")
    if caller.account != key_account:
        raise UsageError(
            f"the administrator role must be in the key's account {key_account}: only principals of that account "
            "can manage the key"
        )
    return text


def propose_fix(
    current: Mapping[str, Any],
    *,
    key_arn: str,
    admin_role_arn: str | None = None,
    add_delegation: bool = True,
    deleted_principals: Mapping[str, str] | None = None,
) -> FixPlan:
    """The proposed policy: ``current`` with every statement kept, plus the account-principal delegation statement
    (unless an equivalent one is already there) and, when ``admin_role_arn`` is given, a key administrators
    statement naming it (unless a statement already names it with those actions: the plan is idempotent).

    Every principal KMS would refuse is taken out first: unique ids (what KMS shows in place of a deleted user's or
    role's ARN) always, and the ARNs in ``deleted_principals`` (ARN → the evidence that it no longer exists). A
    statement left without a principal is removed.

    Raises :class:`UsageError` for a key ARN or role ARN that does not fit, and
    :class:`~kms_rescue.policy.errors.PolicyInputError` for a malformed current policy."""
    parts = key_arn_parts(key_arn)
    if parts is None:
        raise UsageError(f"not a KMS key ARN: {key_arn!r}")
    account = parts["account"]
    partition = parts["partition"]
    parse_policy(dict(current), source="current key policy", max_bytes=KEY_POLICY_MAX_BYTES)
    proposed = copy.deepcopy(dict(current))
    statements = proposed.get("Statement")
    if isinstance(statements, dict):
        statements = [statements]
    elif not isinstance(statements, list):
        statements = []
    statements = list(statements)
    proposed["Statement"] = statements
    proposed.setdefault("Version", "2012-10-17")
    statements, removals, removal_notes = drop_invalid_principals(statements, deleted_principals or {})
    proposed["Statement"] = statements
    taken = {str(s.get("Sid")) for s in statements if isinstance(s, dict) and s.get("Sid") is not None}
    additions: list[Addition] = []
    notes: list[str] = list(removal_notes)

    if add_delegation:
        if _has_full_delegation(current, account, partition):
            notes.append(f"the policy already has the default statement for the account {account}; it is kept")
        else:
            sid = _unique_sid(DELEGATION_SID, taken)
            taken.add(sid)
            st = delegation_statement(account, sid, partition)
            statements.append(st)
            reasons = _delegation_reasons(account, partition)
            if sid != DELEGATION_SID:
                reasons = ((f'"Sid": "{sid}"', "a new name: the policy already uses the default one"), *reasons[1:])
            additions.append(Addition(
                st,
                f"lets IAM policies of {account} grant access to the key, so it cannot become unmanageable "
                "while the account exists (AWS's default key policy statement)",
                reasons,
            ))
    if admin_role_arn and _names_admin(statements, validate_admin_role(admin_role_arn, account, partition)):
        notes.append(f"a statement already names {admin_role_arn} with the key administration actions; it is kept")
    elif admin_role_arn:
        role = validate_admin_role(admin_role_arn, account, partition)
        sid = _unique_sid(ADMIN_SID, taken)
        taken.add(sid)
        st = admin_statement(role, sid)
        statements.append(st)
        reasons = _admin_reasons(role)
        if sid != ADMIN_SID:
            reasons = ((f'"Sid": "{sid}"', "a new name: the policy already uses the default one"), *reasons[1:])
        additions.append(Addition(st, f"names {role} as a key administrator (least privilege)", reasons))

    if not additions and not removals:
        proposed = copy.deepcopy(dict(current))
    else:
        size = len(policy_text(proposed).encode("utf-8"))
        if size > KEY_POLICY_MAX_BYTES:
            raise UsageError(
                f"the proposed policy would be {size} bytes, over KMS's limit of {KEY_POLICY_MAX_BYTES}: "
                "remove unused statements first"
            )
        blocked = [
            p for p in analyze_management(proposed, key_account=account, key_arn=key_arn).paths
            if p.kind == "account_delegation" and p.blocked_by
        ]
        for p in blocked:
            notes.append(
                f"Deny {', '.join(p.blocked_by)} is kept and still blocks IAM principals of {account} that it covers"
            )
    return FixPlan(
        key_arn=key_arn,
        key_account=account,
        current=dict(current),
        proposed=proposed,
        additions=tuple(additions),
        diff=tuple(_diff(dict(current), proposed, additions, removals)),
        admin_role_arn=admin_role_arn,
        notes=tuple(notes),
        removals=tuple(removals),
    )


def _norm(line: str) -> str:
    text = line.strip()
    return text[:-1] if text.endswith(",") else text


def _removed_reason(text: str, removals: Sequence[Removal]) -> str:
    for r in removals:
        if json.dumps(r.value) in text:
            return f"removed: {r.value} ({r.reason})"
    gone = [r.statement for r in removals if r.statement_removed]
    if gone:
        return f"part of statement {', '.join(dict.fromkeys(gone))}, removed: it named only principals KMS refuses"
    return "re-formatted around a removed principal"


def _diff(current: dict[str, Any], proposed: dict[str, Any], additions: Sequence[Addition],
          removals: Sequence[Removal] = ()) -> list[DiffLine]:
    a = policy_text(current).splitlines()
    b = policy_text(proposed).splitlines()
    raw = list(difflib.unified_diff(a, b, "current key policy", "proposed key policy", n=3, lineterm=""))
    queue: list[tuple[str, str]] = []
    for add in additions:
        queue.append(("{", f"a new statement: {add.why}"))
        queue.extend(add.line_reasons)
        queue.append(("}", "end of the new statement"))
    out: list[DiffLine] = []
    for text in raw:
        line = DiffLine(text)
        if line.added:
            body = _norm(text[1:])
            if queue and body == queue[0][0]:
                out.append(DiffLine(text, queue.pop(0)[1]))
                continue
            if body in ("}", "]") and text.rstrip().endswith(","):
                out.append(DiffLine(text, "a comma: the statement list goes on"))
                continue
            out.append(DiffLine(text, "part of the added statement" if additions else
                                "re-formatted around a removed principal"))
            continue
        if line.removed:
            out.append(DiffLine(text, _removed_reason(text, removals)))
            continue
        out.append(line)
    return out


# --- the engine check ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ManagementCheck:
    """Whether one principal keeps ``kms:PutKeyPolicy`` under a policy."""

    principal: str
    role: str  # "applier" or "administrator"
    allowed: bool
    decision: str
    detail: str
    identity_unknown: bool = False
    #: the statements that decided a denial: each matching Deny ("key policy statement X"), else none
    blocking: tuple[str, ...] = ()


def _as_caller_arn(principal: str) -> tuple[str, dict[str, list[str]]]:
    """A role ARN is checked as one of its sessions (keeping the role's path in aws:PrincipalArn)."""
    caller = parse_caller(principal)
    if caller.kind == "role":
        session = role_caller(principal, CHECK_SESSION)
        return session.arn, {"aws:PrincipalArn": [principal]}
    return principal, {}


def check_keeps_management(
    policy: PolicyDocument,
    *,
    key_arn: str,
    applier: str,
    applier_identity_policies: Sequence[PolicyDocument] | None,
    administrators: Sequence[str] = (),
    applier_principal_arn: str | None = None,
) -> list[ManagementCheck]:
    """Evaluate ``kms:PutKeyPolicy`` for the identity applying the policy (with its identity policies, None when
    unknown) and for each named administrator (named directly, so no identity policy is needed).
    ``applier_principal_arn``: when the applier is a role session, its role's ARN with the role's path (the
    session's aws:PrincipalArn, which its own ARN does not show)."""
    checks: list[ManagementCheck] = []
    targets: list[tuple[str, str, Sequence[PolicyDocument] | None]] = [
        (applier, "applier", applier_identity_policies)
    ]
    targets += [(a, "administrator", ()) for a in administrators if a != applier]
    for principal, role, identity in targets:
        arn, ctx = _as_caller_arn(principal)
        if role == "applier" and applier_principal_arn and not ctx:
            ctx = {"aws:PrincipalArn": [applier_principal_arn]}
        result = evaluate(principal=arn, action=PUT_KEY_POLICY, resource=key_arn, key_policy=policy,
                          identity_policies=identity, context=ctx or None)
        detail = result.reasons[-1].detail if result.reasons else result.decision.value
        blocking = tuple(f"{r.policy} statement {r.statement}" for r in result.reasons
                         if r.matched and r.effect == "Deny" and r.statement)
        checks.append(ManagementCheck(principal, role, result.allowed, result.decision.value, detail,
                                      result.identity_unknown, blocking))
    return checks


__all__ = [
    "ADMIN_SID",
    "DELEGATION_SID",
    "Addition",
    "DiffLine",
    "FixPlan",
    "ManagementCheck",
    "Removal",
    "admin_statement",
    "check_keeps_management",
    "delegation_statement",
    "deleted_principals",
    "drop_invalid_principals",
    "policy_text",
    "propose_fix",
    "validate_admin_role",
]
