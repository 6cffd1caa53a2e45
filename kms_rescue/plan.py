"""The repair plan: from the key's current policy to a proposed one that restores manageability, with a diff that
says why each added line is there. Pure: no AWS calls, no printing.

The fix is additive. Every existing statement is kept as it is (a Deny the owner wrote keeps applying), and the
plan adds what AWS's own default key policy has (KMS Developer Guide, "Default key policy"):

* the statement that allows access to the key's account and enables IAM policies ("Enable IAM User Permissions"):
  the account principal delegates to IAM, so an IAM administrator of the account can always grant access again, and
  the root user is covered without any identity policy (DESIGN.md §1.2, §1.7);
* optionally, a named key administrator ("Allow access for Key Administrators") with the least-privilege
  administration actions of :data:`kms_rescue.policy.actions.ADMIN_ACTIONS`: management, no cryptographic use.

:func:`check_keeps_management` is the engine check the apply step runs before writing: the identity applying the
policy and the named administrator must keep ``kms:PutKeyPolicy`` under the new policy.
"""

from __future__ import annotations

import copy
import difflib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kms_rescue.errors import UsageError
from kms_rescue.policy import analyze_management, evaluate, parse_policy
from kms_rescue.policy.errors import PolicyInputError
from kms_rescue.policy.evaluate import PolicyDocument, key_arn_parts
from kms_rescue.policy.model import KEY_POLICY_MAX_BYTES
from kms_rescue.policy.partitions import DEFAULT_PARTITION, account_root_arn
from kms_rescue.policy.principals import parse_caller, role_caller

#: The Sid AWS's default key policy gives its account-principal statement.
DELEGATION_SID = "Enable IAM User Permissions"
#: The Sid of the key administrators statement in the console's default key policy.
ADMIN_SID = "Allow access for Key Administrators"
#: The session name used when the engine checks a role (any session of a role named in a policy is covered).
CHECK_SESSION = "kms-rescue-check"
PUT_KEY_POLICY = "kms:PutKeyPolicy"


def _admin_actions() -> tuple[str, ...]:
    from kms_rescue.policy.actions import ADMIN_ACTIONS

    return tuple(ADMIN_ACTIONS)


@dataclass(frozen=True)
class Addition:
    """One statement the plan adds, and why."""

    statement: dict[str, Any]
    why: str
    #: Reasons for the statement's lines, keyed by the line's text without indentation and trailing comma.
    line_reasons: tuple[tuple[str, str], ...] = ()


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

    @property
    def changed(self) -> bool:
        return bool(self.additions)

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


def delegation_statement(account: str, sid: str = DELEGATION_SID, partition: str = DEFAULT_PARTITION) -> dict[str, Any]:
    """The account-principal statement of AWS's default key policy, in the key's partition (``arn:aws-cn:…`` for a
    key in a China Region: AWS General Reference, "Amazon Resource Names (ARNs)")."""
    return {
        "Sid": sid,
        "Effect": "Allow",
        "Principal": {"AWS": account_root_arn(account, partition)},
        "Action": "kms:*",
        "Resource": "*",
    }


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
) -> FixPlan:
    """The proposed policy: ``current`` with every statement kept, plus the account-principal delegation statement
    (unless an equivalent one is already there) and, when ``admin_role_arn`` is given, a key administrators
    statement naming it.

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
    taken = {str(s.get("Sid")) for s in statements if isinstance(s, dict) and s.get("Sid") is not None}
    additions: list[Addition] = []
    notes: list[str] = []

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
    if admin_role_arn:
        role = validate_admin_role(admin_role_arn, account, partition)
        sid = _unique_sid(ADMIN_SID, taken)
        taken.add(sid)
        st = admin_statement(role, sid)
        statements.append(st)
        reasons = _admin_reasons(role)
        if sid != ADMIN_SID:
            reasons = ((f'"Sid": "{sid}"', "a new name: the policy already uses the default one"), *reasons[1:])
        additions.append(Addition(st, f"names {role} as a key administrator (least privilege)", reasons))

    if not additions:
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
        diff=tuple(_diff(dict(current), proposed, additions)),
        admin_role_arn=admin_role_arn,
        notes=tuple(notes),
    )


def _norm(line: str) -> str:
    text = line.strip()
    return text[:-1] if text.endswith(",") else text


def _diff(current: dict[str, Any], proposed: dict[str, Any], additions: Sequence[Addition]) -> list[DiffLine]:
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
            out.append(DiffLine(text, "part of the added statement"))
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
        checks.append(ManagementCheck(principal, role, result.allowed, result.decision.value, detail,
                                      result.identity_unknown))
    return checks


__all__ = [
    "ADMIN_SID",
    "DELEGATION_SID",
    "Addition",
    "DiffLine",
    "FixPlan",
    "ManagementCheck",
    "admin_statement",
    "check_keeps_management",
    "delegation_statement",
    "policy_text",
    "propose_fix",
    "validate_admin_role",
]
