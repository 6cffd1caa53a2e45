"""What is wrong or risky in one condition (rule KR022 in ``docs/rules.md``): an operator IAM does not have or
spells differently, values of the wrong type, policy variables where the operator takes none, wildcards where
they are literal, and set operators on single-valued keys (IAM User Guide, "IAM JSON policy elements: Condition
operators", "Single-valued vs. multivalued context keys", "IAM policy elements: Variables and tags")."""

from __future__ import annotations

from kms_rescue.policy.condition_check import prepared_condition
from kms_rescue.policy.condition_operators import VARIABLE_FAMILIES, OperatorInfo, quote
from kms_rescue.policy.errors import PolicyInputError
from kms_rescue.policy.model import Condition
from kms_rescue.policy.request_context import multi_valued, single_valued

__all__ = ["condition_problems"]


def condition_problems(condition: Condition) -> list[str]:
    """What is wrong or risky in one condition, one line each; an empty list when nothing is."""
    try:
        prepared = prepared_condition(condition)  # shared with the engine: each condition is read once
    except PolicyInputError:
        op = str(condition.operator)
        if op.lower().endswith("ifexists") and op.lower()[: -len("ifexists")].rsplit(":", 1)[-1] == "null":
            return [f"unknown condition operator {quote(op)}: IfExists cannot be added to Null"]
        return [f"unknown condition operator {quote(op)}"]
    info = prepared.info
    problems: list[str] = []
    if info.operator != info.canonical:
        problems.append(f"operator {quote(info.operator)} is spelled {quote(info.canonical)} by AWS")
    fam = info.family
    if not condition.values:
        problems.append(f"{info.canonical} {condition.key} has no values, so it never matches")
    for pv in prepared.values:
        raw, segs = pv.raw, pv.segs
        if "${" in raw and fam not in VARIABLE_FAMILIES:
            problems.append(
                f"{info.canonical} does not support policy variables; {quote(raw)} is taken literally"
            )
        if pv.has_vars:
            for s in segs:
                if s[0] == "var" and multi_valued(s[1]):
                    problems.append(
                        f"${{{s[2]}}} is a multivalued key and cannot be used as a policy variable"
                    )
        if not pv.valid:
            problems.append(_invalid_value_message(info, raw))
        if fam == "String" and info.kind in ("eq", "eqi") and any(s[0] in ("star", "one") for s in segs):
            like = "StringNotLike" if info.negated else "StringLike"
            problems.append(
                f"{info.canonical} compares {quote(raw)} literally (* and ? are not wildcards here); "
                f"use {like} for a pattern"
            )
        if pv.arn is not None and not pv.arn.six_parts:
            problems.append(f"{quote(raw)} is not an ARN pattern (an ARN has six colon-separated parts)")
    if fam == "Null" and info.set_op is not None:
        problems.append(
            "ForAnyValue/ForAllValues has no meaning with Null (it tests only whether the key exists)"
        )
    if info.set_op is not None and single_valued(condition.key):
        extra = (
            "; ForAllValues is also true when the key is absent, which can make an Allow too broad"
            if info.set_op == "all"
            else ""
        )
        problems.append(
            f"{condition.key} is single-valued: AWS advises against ForAnyValue/ForAllValues with it{extra}"
        )
    if info.set_op is None and multi_valued(condition.key) and fam != "Null":
        problems.append(
            f"{condition.key} is multivalued: use ForAnyValue: or ForAllValues: with {info.canonical}"
        )
    return problems


def _invalid_value_message(info: OperatorInfo, raw: str) -> str:
    fam = info.family
    what: dict[str, str] = {
        "Numeric": "is not a number",
        "Date": "is not an ISO 8601 date/time (e.g. 2026-11-01T09:00:00Z) or epoch seconds",
        "Ip": "is not an IP address or CIDR block (e.g. 203.0.113.0/24)",
        "Binary": "is not base64-encoded",
        "Bool": 'is not "true" or "false"',
        "Null": 'is not "true" (key absent) or "false" (key present)',
    }
    return f"{info.canonical} value {quote(raw)} {what.get(fam, 'is invalid')}, so it never matches"
