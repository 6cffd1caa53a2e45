"""The key policy's ways in, checked against the organization's guardrails when they were read.

The management analysis (``kms_rescue.policy.management``) reads the key policy alone. A service control policy
applies to every principal of a member account, its root user included, and a resource control policy to every
request on the key (IAM User Guide, "Policy evaluation logic"; AWS Organizations User Guide, "Service control
policies" and "Resource control policies"): a way in that one of them denies is not a way in. It is still not a
lockout: the organization's management account can change or detach the policy (AWS Organizations User Guide,
"Service control policies": SCPs do not affect the management account), so such a key stays recoverable, with the
guardrail named. See docs/engine.md, "Guardrails".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from kms_rescue.contract import MANAGE_ACTION, PathEntry
from kms_rescue.policy.errors import PolicyInputError
from kms_rescue.policy.evaluate import evaluate
from kms_rescue.policy.guardrails import UNREAD, Guardrails
from kms_rescue.policy.partitions import account_root_arn
from kms_rescue.policy.principals import classify_aws_value, role_caller

#: An identity policy that allows everything: a path is judged on the guardrails alone (the key policy already
#: let it in).
_ALLOW_ALL = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}


def _caller_for(path: PathEntry, key_account: str, partition: str) -> str | None:
    """The principal a path stands for, when it names one: the root user, a named user or role (as a session of
    it), a named session. Paths for "any principal" have none."""
    if path.kind == "root_user":
        return account_root_arn(key_account, partition)
    if path.kind in ("named_principal", "session", "wildcard") and path.principal.startswith("arn:"):
        value = classify_aws_value(path.principal)
        if value.kind == "role":
            return role_caller(path.principal).arn
        if value.kind in ("user", "session"):
            return path.principal
    return None


def _read(guardrails: Guardrails) -> bool:
    return guardrails.scps is not UNREAD or guardrails.rcps is not UNREAD


def apply_guardrails(
    paths: Sequence[PathEntry], *, key_policy: Mapping[str, Any], key_arn: str, key_account: str,
    guardrails: Guardrails, context: Mapping[str, str] | None = None,
) -> list[PathEntry]:
    """``paths`` with every way in that a guardrail denies marked as blocked (``blocked_by`` names it)."""
    if not _read(guardrails):
        return list(paths)
    partition = key_arn.split(":")[1]
    out = []
    for path in paths:
        caller = _caller_for(path, key_account, partition) if path.can_manage else None
        if caller is None:
            out.append(path)
            continue
        try:
            ev = evaluate(principal=caller, action=MANAGE_ACTION, resource=key_arn, key_policy=key_policy,
                          identity_policies=[_ALLOW_ALL], context=dict(context or {}) or None, guardrails=guardrails)
        except PolicyInputError:
            out.append(path)
            continue
        if ev.allowed or ev.guardrail is None:
            out.append(path)
            continue
        out.append(replace(
            path, can_manage=False, blocked_by=(*path.blocked_by, ev.guardrail),
            why=f"{path.why}; but {ev.rule} ({ev.guardrail}): the organization's management account can change "
                "that policy",
        ))
    return out


def blocked_by_guardrails(paths: Sequence[PathEntry]) -> list[PathEntry]:
    """The ways in that only a guardrail closes."""
    return [p for p in paths if not p.can_manage and p.satisfiable and p.blocked_by
            and any("control polic" in b or "SCP" in b or "RCP" in b for b in p.blocked_by)]
