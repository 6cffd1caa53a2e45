"""The principals a key policy names: in Principal/NotPrincipal, or in a positive ``aws:PrincipalArn`` condition.

Used to check that each still exists (``iam:GetRole``/``GetUser``) and to list them in the report."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kms_rescue.policy.errors import PolicyInputError
from kms_rescue.policy.model import parse_policy
from kms_rescue.policy.principals import classify_aws_value


@dataclass
class NamedPrincipal:
    value: str
    kind: str
    account: str | None
    statements: list[str] = field(default_factory=list)
    in_condition: bool = False


def policy_principals(document: Mapping[str, Any]) -> list[NamedPrincipal]:
    """Every principal value a key policy names, in Principal/NotPrincipal or in a positive ``aws:PrincipalArn``
    condition (wildcard patterns excluded), in order of first appearance."""
    try:
        policy = parse_policy(dict(document))
    except PolicyInputError:
        return []
    found: dict[str, NamedPrincipal] = {}

    def add(value: str, kind: str, account: str | None, label: str, in_condition: bool = False) -> None:
        entry = found.setdefault(value, NamedPrincipal(value, kind, account, in_condition=in_condition))
        if label not in entry.statements:
            entry.statements.append(label)
        entry.in_condition = entry.in_condition and in_condition

    for st in policy.statements:
        for spec in (st.principal, st.not_principal):
            if spec is None:
                continue
            if spec.wildcard:
                add("*", "wildcard", None, st.label)
            for raw in spec.aws:
                v = classify_aws_value(raw)
                add(raw, v.kind, v.account, st.label)
            for raw in spec.service:
                add(raw, "service", None, st.label)
            for raw in spec.federated:
                add(raw, "federated", None, st.label)
        for cond in st.conditions:
            if cond.key.lower() != "aws:principalarn" or cond.operator.lower().startswith("stringnot") or \
                    cond.operator.lower().startswith("arnnot"):
                continue
            for raw in cond.values:
                if "*" in raw or "?" in raw or "${" in raw:
                    continue
                v = classify_aws_value(raw)
                if v.kind in ("user", "role"):
                    add(raw, v.kind, v.account, st.label, in_condition=True)
    return list(found.values())


__all__ = ["NamedPrincipal", "policy_principals"]
