"""The audit's live rules: what only a live account shows about a key (docs/audit.md, "Findings"). Pure.

The lint rules (docs/rules.md) run on the live policy as well; four of them are superseded by a live rule that
says the same with what the account showed (:data:`SUPERSEDES`), so a key never carries both.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from kms_rescue.audit.model import Finding, Manager
from kms_rescue.contract import PathEntry, PrincipalEntry
from kms_rescue.policy import Policy, PolicyInputError, parse_policy
from kms_rescue.policy.lint import lint_policy

KMS_GUIDE = "https://docs.aws.amazon.com/kms/latest/developerguide"
IAM_GUIDE = "https://docs.aws.amazon.com/IAM/latest/UserGuide"
SSO_GUIDE = "https://docs.aws.amazon.com/singlesignon/latest/userguide"


@dataclass(frozen=True)
class LiveRule:
    id: str
    name: str
    severity: str
    summary: str
    help_uri: str


LIVE_RULES: dict[str, LiveRule] = {r.id: r for r in (
    LiveRule("KA001", "single-manager", "high",
             "exactly one principal can manage the key and the root user cannot: one deletion from a lockout",
             f"{KMS_GUIDE}/key-policy-default.html"),
    LiveRule("KA002", "orphaned-principal", "high",
             "the policy names a principal that no longer exists (a unique id, or an ARN IAM does not know)",
             f"{IAM_GUIDE}/reference_policies_elements_principal.html"),
    LiveRule("KA003", "identity-center-role-by-arn", "medium",
             "the policy names an IAM Identity Center role (AWSReservedSSO_…): re-provisioning recreates it with a "
             "new unique id that the policy does not match",
             f"{SSO_GUIDE}/referencingpermissionsets.html"),
    LiveRule("KA004", "no-account-principal", "medium",
             "no statement names the account principal: neither the root user nor IAM administrators can step in",
             f"{KMS_GUIDE}/key-policy-default.html"),
    LiveRule("KA005", "management-window-closes", "high",
             "a way in to kms:PutKeyPolicy that works now is shut by a date condition later",
             f"{IAM_GUIDE}/reference_policies_condition-keys.html"),
    LiveRule("KA006", "pending-deletion", "high",
             "the key is scheduled for deletion", f"{KMS_GUIDE}/deleting-keys-scheduling-key-deletion.html"),
    LiveRule("KA007", "policy-unreadable", "high",
             "no identity could read the key policy (kms:GetKeyPolicy denied): its risks cannot be checked",
             "https://docs.aws.amazon.com/kms/latest/APIReference/API_GetKeyPolicy.html"),
    LiveRule("KA008", "locked-out", "critical",
             "no principal of the key's account can ever call kms:PutKeyPolicy: only AWS Support can restore "
             "access", f"{KMS_GUIDE}/key-policy-default.html"),
)}

#: Lint rules whose live counterpart says the same with what the account showed.
SUPERSEDES: dict[str, str] = {"KR001": "KA008", "KR002": "KA004", "KR003": "KA002", "KR005": "KA003"}

_SSO_PREFIX = "AWSReservedSSO_"


def _f(rule: str, message: str, statement: str | None = None) -> Finding:
    return Finding(rule, LIVE_RULES[rule].severity, message, statement)


def lint_findings(document: dict[str, Any], key_account: str) -> list[Finding]:
    """The lint rules on the live document, without those a live rule supersedes."""
    try:
        return list(_lint(parse_policy(document, source="key policy"), key_account, int(time.time())))
    except PolicyInputError as exc:
        return [Finding("KR019", "low", f"the live key policy could not be linted: {exc}")]


@lru_cache(maxsize=512)
def _lint(policy: Policy, key_account: str, second: int) -> tuple[Finding, ...]:
    """Lint depends only on the policy, the key's account and the clock's second (its management analysis judges
    date conditions at the current second), and an account's keys mostly share a few policies (the default key
    policy above all): a policy parsed once (:func:`kms_rescue.policy.parse_policy` gives the same object for the
    same text) is linted once per account and second."""
    found = lint_policy(policy, key_account=key_account)
    return tuple(Finding(f.rule_id, f.severity, f.message, f.statement_label) for f in found
                 if f.rule_id not in SUPERSEDES)


def _role_name(arn: str) -> str:
    return arn.rsplit("/", 1)[-1]


def live_findings(
    *, verdict: str, managers: Sequence[Manager], principals: Iterable[PrincipalEntry], paths: Iterable[PathEntry],
    key_state: str | None, deletion_date: str | None, policy_read: bool, unread_because: str = "",
) -> list[Finding]:
    """The live rules for one key (see :data:`LIVE_RULES`). ``unread_because``: how each identity's
    kms:GetKeyPolicy ended, when none could read the policy (a denial is not a throttled call)."""
    out: list[Finding] = []
    principals = list(principals)
    paths = list(paths)
    if key_state in ("PendingDeletion", "PendingReplicaDeletion"):
        when = f" on {deletion_date}" if deletion_date else ""
        out.append(_f("KA006", f"the key is scheduled for deletion{when} ({key_state}); cancel it with "
                               "kms:CancelKeyDeletion if it is still needed"))
    if not policy_read:
        why = f" ({unread_because})" if unread_because else ""
        out.append(_f("KA007", f"no identity could read the key policy{why}: give an auditing identity "
                               "kms:GetKeyPolicy on it, or audit again if a call failed"))
        return out
    if verdict == "locked_out":
        out.append(_f("KA008", "no principal of the key's account can ever call kms:PutKeyPolicy"))
    for p in principals:
        if p.exists is False:
            where = ", ".join(p.statements) or None
            what = ("a unique id in place of an ARN: the principal it named was deleted" if p.kind == "unique_id"
                    else f"IAM says it does not exist ({p.evidence})")
            out.append(_f("KA002", f"{p.value}: {what}", where))
        if p.kind == "role" and _role_name(p.value).startswith(_SSO_PREFIX):
            out.append(_f("KA003", f"{p.value} is an IAM Identity Center role: when its permission set is "
                                   "re-provisioned the role is recreated and this ARN no longer matches it; name "
                                   "the account principal and allow the role in its IAM policy, or match it with "
                                   "an aws:PrincipalArn condition", ", ".join(p.statements) or None))
    if not any(p.kind == "account" and not p.in_condition for p in principals):
        out.append(_f("KA004", "no statement names the account principal: the root user and IAM administrators "
                               "cannot step in if the named administrators are lost"))
    roots = [m for m in managers if m.how == "root"]
    if verdict != "locked_out" and not roots and len({m.principal for m in managers}) == 1:
        out.append(_f("KA001", f"only {managers[0].principal} can manage the key: deleting it locks the key out"))
    managing = [p for p in paths if p.can_manage]
    closing = [p for p in managing if p.closes_at]
    for way in closing:
        tail = ": then no way in is left" if len(closing) == len(managing) else ""
        out.append(_f("KA005", f"{way.principal} can manage the key until {way.closes_at}{tail}", way.statement))
    return out
