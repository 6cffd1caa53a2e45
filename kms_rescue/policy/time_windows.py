"""When time conditions can change their result: the instants named by Date and Numeric conditions on
``aws:CurrentTime`` and ``aws:EpochTime``, which are in the context of every request (IAM User Guide, "AWS global
condition context keys"). The management analysis uses them to tell a lockout from a window that opens later."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from kms_rescue.policy.condition_operators import operator_info
from kms_rescue.policy.condition_values import parse_date, parse_number
from kms_rescue.policy.model import Condition

__all__ = ["TIME_KEYS", "time_boundaries"]

#: The request-time keys (IAM User Guide, "AWS global condition context keys": aws:CurrentTime and aws:EpochTime
#: are in the context of every request).
TIME_KEYS = frozenset({"aws:currenttime", "aws:epochtime"})


def time_boundaries(conditions: Iterable[Condition]) -> tuple[Decimal, ...]:
    """The instants (epoch seconds) at which a Date or Numeric condition on ``aws:CurrentTime`` or
    ``aws:EpochTime`` can change its result: between two of them, and after the last, every such condition keeps
    its value. Values that are not dates (or numbers) are left out: they never match anyway."""
    out: list[Decimal] = []
    for condition in conditions:
        if condition.key.lower() not in TIME_KEYS:
            continue
        info = operator_info(condition.operator)
        if info is None or info.family not in ("Date", "Numeric"):
            continue
        for raw in condition.values:
            parsed = parse_date(raw) if info.family == "Date" else parse_number(raw.strip())
            if parsed is not None:
                out.append(parsed)
    return tuple(out)
