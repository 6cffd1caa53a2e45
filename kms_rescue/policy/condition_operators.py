"""The names of IAM's condition operators (IAM User Guide, "IAM JSON policy elements: Condition operators"):
each base operator's family (String, Numeric, Date, Bool, Binary, IP address, ARN, Null), the set prefixes
``ForAnyValue:``/``ForAllValues:`` ("Single-valued vs. multivalued context keys") and the ``...IfExists`` suffix."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from kms_rescue.policy.errors import PolicyInputError

__all__ = [
    "VARIABLE_FAMILIES",
    "Family",
    "OperatorInfo",
    "SetOp",
    "known_operator",
    "operator_info",
    "quote",
    "require_operator",
]

Family = Literal["String", "Numeric", "Date", "Bool", "Binary", "Ip", "Arn", "Null"]
SetOp = Literal["any", "all"]

# base name -> (family, kind, negated). "kind" selects the comparison within the family.
_BASES: dict[str, tuple[Family, str, bool]] = {
    "StringEquals": ("String", "eq", False),
    "StringNotEquals": ("String", "eq", True),
    "StringEqualsIgnoreCase": ("String", "eqi", False),
    "StringNotEqualsIgnoreCase": ("String", "eqi", True),
    "StringLike": ("String", "like", False),
    "StringNotLike": ("String", "like", True),
    "NumericEquals": ("Numeric", "eq", False),
    "NumericNotEquals": ("Numeric", "eq", True),
    "NumericLessThan": ("Numeric", "lt", False),
    "NumericLessThanEquals": ("Numeric", "le", False),
    "NumericGreaterThan": ("Numeric", "gt", False),
    "NumericGreaterThanEquals": ("Numeric", "ge", False),
    "DateEquals": ("Date", "eq", False),
    "DateNotEquals": ("Date", "eq", True),
    "DateLessThan": ("Date", "lt", False),
    "DateLessThanEquals": ("Date", "le", False),
    "DateGreaterThan": ("Date", "gt", False),
    "DateGreaterThanEquals": ("Date", "ge", False),
    "Bool": ("Bool", "eq", False),
    "BinaryEquals": ("Binary", "eq", False),
    "IpAddress": ("Ip", "in", False),
    "NotIpAddress": ("Ip", "in", True),
    # "Condition operators", ARN: ArnEquals and ArnLike are both a case-sensitive match of each of the six
    # colon-delimited parts, and each part may hold * and ? wildcards.
    "ArnEquals": ("Arn", "like", False),
    "ArnLike": ("Arn", "like", False),
    "ArnNotEquals": ("Arn", "like", True),
    "ArnNotLike": ("Arn", "like", True),
    "Null": ("Null", "null", False),
}
_BASES_LOWER = {name.lower(): name for name in _BASES}

#: Families whose values may hold policy variables ("Condition operators": String, Boolean and ARN operators
#: support policy variables; Numeric, Date, Binary and IP address operators do not).
VARIABLE_FAMILIES = frozenset({"String", "Bool", "Arn"})


@dataclass(frozen=True)
class OperatorInfo:
    """A parsed condition operator such as ``ForAllValues:StringNotLikeIfExists``."""

    operator: str  # as written
    base: str  # canonical base name, e.g. "StringNotLike"
    family: Family
    kind: str
    negated: bool
    set_op: SetOp | None
    if_exists: bool
    canonical: str  # the operator in AWS's spelling

    @property
    def accepts_variables(self) -> bool:
        return self.family in VARIABLE_FAMILIES


# Not cached: the engine reads an operator once per condition (kms_rescue.policy.condition_check prepares each
# condition once), and a parse is a few string operations.
def operator_info(operator: str) -> OperatorInfo | None:
    """Parse an operator (set prefix, base name, ``IfExists`` suffix); None when it is not an IAM operator.

    Names are matched without regard to case (the canonical spelling is kept in ``.canonical``, and lint reports a
    different spelling). ``IfExists`` can end any operator except ``Null`` ("Condition operators",
    ...IfExists)."""
    if not isinstance(operator, str):
        return None
    rest = operator.strip()
    set_op: SetOp | None = None
    prefix = ""
    low = rest.lower()
    if low.startswith("foranyvalue:"):
        set_op, prefix, rest = "any", "ForAnyValue:", rest[len("foranyvalue:") :]
    elif low.startswith("forallvalues:"):
        set_op, prefix, rest = "all", "ForAllValues:", rest[len("forallvalues:") :]
    if_exists = False
    if rest.lower().endswith("ifexists"):
        if_exists, rest = True, rest[: -len("ifexists")]
    base = _BASES_LOWER.get(rest.lower())
    if base is None:
        return None
    family, kind, negated = _BASES[base]
    if family == "Null" and if_exists:
        return None
    canonical = prefix + base + ("IfExists" if if_exists else "")
    return OperatorInfo(operator, base, family, kind, negated, set_op, if_exists, canonical)


def known_operator(operator: str) -> bool:
    """True for every IAM condition operator, with its ``ForAnyValue:``/``ForAllValues:`` prefix and
    ``IfExists`` suffix if any."""
    return operator_info(operator) is not None


def require_operator(operator: str) -> OperatorInfo:
    """:func:`operator_info`, raising :class:`PolicyInputError` (one line) for an operator IAM does not have."""
    info = operator_info(operator)
    if info is None:
        raise PolicyInputError(f"unknown condition operator {quote(str(operator))}")
    return info


def quote(s: str) -> str:
    """A value in double quotes, as messages show policy and request values."""
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'
