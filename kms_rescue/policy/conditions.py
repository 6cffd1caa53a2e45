"""Evaluate the Condition element of IAM policies (key policies and identity policies) against a request
context.

Every rule below comes from the IAM User Guide; the page a rule comes from is named where it is applied:

* "IAM JSON policy elements: Condition operators": the operator families, ``...IfExists``, ``Null``, and
  which families accept policy variables and wildcards;
* "Conditions with multiple context keys or values": AND across operators and keys, OR across one key's
  values, NOR for negated operators;
* "Single-valued vs. multivalued context keys" and "Multivalued context key examples": ``ForAnyValue:`` and
  ``ForAllValues:``;
* "IAM policy elements: Variables and tags": ``${aws:username}``, defaults, ``${*}``, ``${?}``, ``${$}``.

Results are three-valued: ``True``, ``False`` or ``None`` ("unknown"). A key is unknown when the request
context says its value could be anything (static analysis asks "could this condition ever hold?"); unknown
never becomes true or false by guessing.

Performance: this module sits on the engine's hot path, so operator names, policy values, patterns and regular
expressions are parsed once and cached (``functools.lru_cache``); evaluating a condition does no re-parsing.
"""

from __future__ import annotations

import base64
import binascii
import copy
import ipaddress
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any, Literal

from kms_rescue.policy.errors import PolicyInputError
from kms_rescue.policy.model import Condition
from kms_rescue.policy.wildcard import ONE, STAR, Token, WildcardPattern, compile_pattern

Tri = bool | None  # three-valued: True, False, None (unknown)

__all__ = [
    "ConditionCheck",
    "ConditionOutcome",
    "OperatorInfo",
    "RequestContext",
    "condition_problems",
    "evaluate_condition",
    "evaluate_conditions",
    "known_operator",
    "like_match",
    "like_match3",
    "operator_info",
    "substitute_variables",
    "time_boundaries",
    "variable_keys",
]


# ------------------------------------------------------------------------------------------------------------
# The request context
# ------------------------------------------------------------------------------------------------------------


def _as_values(key: str, raw: Any) -> list[str]:
    if isinstance(raw, str):
        return [raw]
    if isinstance(raw, bool):
        return ["true" if raw else "false"]
    if isinstance(raw, (int, float)):
        return [str(raw)]
    if isinstance(raw, Sequence):
        out: list[str] = []
        for v in raw:
            if isinstance(v, bool):
                out.append("true" if v else "false")
            elif isinstance(v, (str, int, float)):
                out.append(str(v))
            else:
                raise PolicyInputError(f"context key {key!r}: values must be strings, not {type(v).__name__}")
        return out
    raise PolicyInputError(f"context key {key!r}: the value must be a string or a list of strings")


_NOTHING: frozenset[str] = frozenset()


class RequestContext:
    """The request context: condition keys and their values.

    Condition key names are not case-sensitive (IAM User Guide, "IAM JSON policy elements: Condition":
    "condition key names are not case-sensitive"), tag keys included, so lookups ignore case; :meth:`items`
    keeps the case the caller used. Every key maps to a list of strings. A key given an empty list counts as
    absent (a key with no value is null: "Multivalued context key examples", Null check).

    ``unknown`` names keys whose value could be anything (static analysis); an entry ending in ``*`` (for
    example ``"aws:PrincipalTag/*"``) covers every key with that prefix. A key given a value is never unknown.
    Subclasses may override :meth:`is_unknown`; the evaluator always asks it, so an override is honoured."""

    def __init__(
        self, values: Mapping[str, str | Sequence[str]] | None = None, unknown: Iterable[str] = ()
    ) -> None:
        self._values: dict[str, tuple[str, list[str]]] = {}
        if values:
            for key, raw in values.items():
                if type(key) is not str:
                    raise PolicyInputError(f"context keys must be strings, not {type(key).__name__}")
                kind = type(raw)
                vals: list[str]
                if kind is str:
                    vals = [raw]  # type: ignore[list-item]  # raw is a str here
                elif (kind is list or kind is tuple) and all(type(v) is str for v in raw):
                    vals = list(raw)
                else:
                    vals = _as_values(key, raw)
                if vals:
                    self._values[key.lower()] = (key, vals)
        self._unknown: frozenset[str] = _NOTHING
        self._prefixes: tuple[str, ...] = ()
        if unknown:
            exact: set[str] = set()
            prefixes: list[str] = []
            for entry in unknown:
                low = entry.lower()
                if low.endswith("*"):
                    prefixes.append(low[:-1])
                else:
                    exact.add(low)
            self._unknown = frozenset(exact)
            self._prefixes = tuple(prefixes)

    def get(self, key: str) -> list[str] | None:
        """The key's values, or None when the key is absent."""
        hit = self._values.get(key.lower())
        return list(hit[1]) if hit else None

    def _get(self, low_key: str) -> list[str] | None:  # no copy, lower-cased key: the hot path
        hit = self._values.get(low_key)
        return hit[1] if hit else None

    def is_unknown(self, key: str) -> bool:
        """True when the key's value could be anything (it may also be absent)."""
        if not self._unknown and not self._prefixes:
            return False
        low = key.lower()
        if low in self._values:
            return False
        if low in self._unknown:
            return True
        return any(low.startswith(p) for p in self._prefixes)

    def with_values(self, values: Mapping[str, str | Sequence[str]]) -> RequestContext:
        """A new context (same class) in which ``values`` override this one's; an empty list removes a key."""
        new = copy.copy(self)
        new._values = dict(self._values)
        for key, raw in values.items():
            vals = _as_values(key, raw)
            if vals:
                new._values[key.lower()] = (key, vals)
            else:
                new._values.pop(key.lower(), None)
        return new

    def without(self, *keys: str) -> RequestContext:
        """A new context (same class) without these keys' values; an exact ``unknown`` entry for them is
        dropped too, so they become absent (a prefix entry such as ``aws:PrincipalTag/*`` still covers
        them)."""
        new = copy.copy(self)
        lows = {k.lower() for k in keys}
        new._values = {k: v for k, v in self._values.items() if k not in lows}
        new._unknown = self._unknown - lows
        return new

    def items(self) -> list[tuple[str, list[str]]]:
        """``(key, values)`` pairs with the keys in the case the caller gave."""
        return [(orig, list(vals)) for orig, vals in self._values.values()]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({dict(self.items())!r}, unknown={sorted(self._unknown)!r})"


# ------------------------------------------------------------------------------------------------------------
# Operators
# ------------------------------------------------------------------------------------------------------------

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


@lru_cache(maxsize=1024)
def operator_info(operator: str) -> OperatorInfo | None:
    """Parse an operator (set prefix, base name, ``IfExists`` suffix); None when it is not an IAM operator.

    Names are matched without regard to case (the canonical spelling is kept in ``.canonical`` and
    :func:`condition_problems` reports a different spelling). ``IfExists`` can end any operator except
    ``Null`` ("Condition operators", ...IfExists)."""
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


def _require_operator(operator: str) -> OperatorInfo:
    info = operator_info(operator)
    if info is None:
        raise PolicyInputError(f"unknown condition operator {_quote(str(operator))}")
    return info


# ------------------------------------------------------------------------------------------------------------
# Policy variables ("IAM policy elements: Variables and tags")
# ------------------------------------------------------------------------------------------------------------

# A template is a tuple of segments: ("lit", text) | ("star",) | ("one",) | ("var", lower_key, original_key,
# default)
Segment = tuple[Any, ...]

# ${key} or ${key, 'default'}; the key is anything but "}", "," and "'", spaces around it are ignored. Read by
# hand, not by a regex: a backtracking regex took cubic time on "${" followed by many spaces.
_KEY_END = re.compile(r"[},']")  # one character class, no backtracking


def _skip_space(text: str, i: int) -> int:
    n = len(text)
    while i < n and text[i].isspace():
        i += 1
    return i


def _variable_tail(text: str, stop: int) -> tuple[str | None, int] | None:
    """What follows a variable's key, which ends at ``stop`` (a ``}``, ``,`` or ``'``): (default, end) or None
    when it is not a well-formed variable."""
    if text[stop] == "}":
        return None, stop + 1
    if text[stop] != ",":
        return None
    i = _skip_space(text, stop + 1)
    if i >= len(text) or text[i] != "'":
        return None
    close = text.find("'", i + 1)
    if close < 0:
        return None
    end = _skip_space(text, close + 1)
    if end >= len(text) or text[end] != "}":
        return None
    return text[i + 1 : close], end + 1
_ESCAPES = {"*": "*", "?": "?", "$": "$"}


@lru_cache(maxsize=8192)
def _template(text: str) -> tuple[Segment, ...]:
    """Split a policy string into literal text, ``*``/``?`` wildcards and policy variables. ``${*}``, ``${?}``
    and ``${$}`` are the literal characters. A ``$`` that starts no well-formed
    variable is literal text."""
    segs: list[Segment] = []
    buf: list[str] = []
    i, n = 0, len(text)
    # Every "${" before the same key end shares what follows that end: found once, so the scan stays linear.
    stop = -1
    tail: tuple[str | None, int] | None = None

    def flush() -> None:
        if buf:
            segs.append(("lit", "".join(buf)))
            buf.clear()

    while i < n:
        ch = text[i]
        if ch == "*":
            flush()
            segs.append(("star",))
            i += 1
        elif ch == "?":
            flush()
            segs.append(("one",))
            i += 1
        elif ch == "$" and text.startswith("${", i):
            if stop < i + 2:
                found = _KEY_END.search(text, i + 2)
                stop = found.start() if found else n
                tail = _variable_tail(text, stop) if found else None
            name = text[i + 2 : stop].strip() if tail is not None else ""
            if tail is not None and name:
                default, end = tail
                if name in _ESCAPES and default is None:
                    buf.append(_ESCAPES[name])
                else:
                    flush()
                    segs.append(("var", name.lower(), name, default))
                i = end
            else:
                buf.append(ch)
                i += 1
        else:
            buf.append(ch)
            i += 1
    flush()
    return tuple(segs)


def variable_keys(text: str) -> tuple[str, ...]:
    """The condition keys a policy string refers to as variables (``${aws:username}`` -> ``aws:username``)."""
    return tuple(s[2] for s in _template(text) if s[0] == "var")


class _NoValue:
    """Marker: a variable without a value and without a default (the value cannot match)."""


_NO_VALUE = _NoValue()


def _resolve_var(seg: Segment, ctx: RequestContext | None) -> str | _NoValue | None:
    """A variable's value: its single value, else its default; _NO_VALUE when neither; None when unknown.

    "Single-valued vs. multivalued context keys": a multivalued key cannot be used as a policy variable, so a
    key with several values resolves like one with no value."""
    _, low, name, default = seg
    if ctx is not None:
        if ctx.is_unknown(name):
            return None
        vals = ctx._get(low)
        if vals is not None and len(vals) == 1:
            return vals[0]
    return default if default is not None else _NO_VALUE


def _render(segs: tuple[Segment, ...], ctx: RequestContext | None) -> str | _NoValue | None:
    """Substitute variables; wildcards become the characters ``*`` and ``?``."""
    out: list[str] = []
    unknown = False
    for seg in segs:
        tag = seg[0]
        if tag == "lit":
            out.append(seg[1])
        elif tag == "star":
            out.append("*")
        elif tag == "one":
            out.append("?")
        else:
            val = _resolve_var(seg, ctx)
            if isinstance(val, _NoValue):
                return _NO_VALUE
            if val is None:
                unknown = True
            else:
                out.append(val)
    return None if unknown else "".join(out)


def substitute_variables(text: str, ctx: RequestContext) -> str | None:
    """Replace the policy variables in ``text`` with their values from ``ctx`` (``${*}``, ``${?}`` and
    ``${$}`` become ``*``, ``?`` and ``$``). None when a variable has no value and no default, has several
    values, or is unknown (see :func:`variable_keys` to tell which keys it needs)."""
    out = _render(_template(text), ctx)
    return out if isinstance(out, str) else None


# ------------------------------------------------------------------------------------------------------------
# Wildcard matching
# ------------------------------------------------------------------------------------------------------------


def _tokens(segs: tuple[Segment, ...], values: Sequence[str] | None) -> list[Token]:
    """Wildcard tokens of a template; a variable's value is literal text (a ``*`` in it is not a wildcard)."""
    out: list[Token] = []
    vi = 0
    for seg in segs:
        tag = seg[0]
        if tag == "lit":
            out.append(seg[1])
        elif tag == "star":
            out.append(STAR)
        elif tag == "one":
            out.append(ONE)
        else:
            assert values is not None
            out.append(values[vi])
            vi += 1
    return out


@lru_cache(maxsize=8192)
def _static_like(segs: tuple[Segment, ...], ignore_case: bool) -> tuple[str, Any] | None:
    """For a template without variables: ("eq", text) when it has no wildcard, ("any", None) for ``*``, else
    ("pattern", compiled wildcard pattern). None when it has variables."""
    if any(s[0] == "var" for s in segs):
        return None
    if all(s[0] == "lit" for s in segs):
        return ("eq", "".join(s[1] for s in segs))
    if len(segs) == 1 and segs[0][0] == "star":
        return ("any", None)
    return ("pattern", compile_pattern(_tokens(segs, None), ignore_case=ignore_case))


def _like(segs: tuple[Segment, ...], value: str, ctx: RequestContext | None, case_sensitive: bool) -> Tri:
    static = _static_like(segs, not case_sensitive)
    if static is not None:
        how, what = static
        if how == "any":
            return True
        if how == "eq":
            return value == what if case_sensitive else value.lower() == what.lower()
        return bool(what.matches(value))
    values: list[str] = []
    unknown = False
    for seg in segs:
        if seg[0] == "var":
            val = _resolve_var(seg, ctx)
            if isinstance(val, _NoValue):
                return False
            if val is None:
                unknown = True
                values.append("")
            else:
                values.append(val)
    if unknown:
        return None
    return compile_pattern(_tokens(segs, values), ignore_case=not case_sensitive).matches(value)


def like_match3(
    pattern: str, value: str, ctx: RequestContext | None = None, *, case_sensitive: bool = True
) -> Tri:
    """:func:`like_match`, but None (unknown) when the pattern uses a variable whose key ``ctx`` calls
    unknown."""
    return _like(_template(pattern), value, ctx, case_sensitive)


def like_match(
    pattern: str, value: str, ctx: RequestContext | None = None, *, case_sensitive: bool = True
) -> bool:
    """IAM wildcard match of ``value`` against ``pattern``: ``*`` matches any run of characters (none
    included), ``?`` exactly one. ``${key}`` is replaced by the key's single value from ``ctx`` and matched
    literally (a ``*`` in the value is not a wildcard); ``${key, 'default'}`` falls back to ``default``;
    ``${*}``, ``${?}`` and ``${$}`` are the literal characters. A variable with no value and no default, or
    with several values, matches nothing ("IAM policy elements: Variables and tags"); so does one whose key is
    unknown (see :func:`like_match3`)."""
    return _like(_template(pattern), value, ctx, case_sensitive) is True


# ------------------------------------------------------------------------------------------------------------
# Value parsing (cached)
# ------------------------------------------------------------------------------------------------------------

_NUMBER_RE = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


@lru_cache(maxsize=4096)
def _number(text: str) -> Decimal | None:
    if not _NUMBER_RE.fullmatch(text):
        return None
    try:
        return Decimal(text)
    except InvalidOperation:  # pragma: no cover - the regex admits only valid literals
        return None


_EPOCH_RE = re.compile(r"[+-]?\d+(?:\.\d+)?")
# W3C's profile of ISO 8601: YYYY-MM-DD, optionally Thh:mm[:ss[.s]] and a zone (Z or +hh:mm). Without a zone:
# UTC.
_ISO_RE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})"
    r"(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?)?"
    r"\s*(Z|z|[+-]\d{2}(?::?\d{2})?)?"
)
_EPOCH0 = datetime(1970, 1, 1, tzinfo=timezone.utc)


@lru_cache(maxsize=4096)
def _date(text: str) -> Decimal | None:
    """Seconds since the epoch for an ISO 8601 date or date-time, or for epoch seconds ("Condition operators",
    Date: "a W3C implementation of the ISO 8601 date formats or epoch (UNIX) time")."""
    s = text.strip()
    if _EPOCH_RE.fullmatch(s):
        return Decimal(s)
    m = _ISO_RE.fullmatch(s)
    if not m:
        return None
    year, month, day, hh, mm, ss, frac, zone = m.groups()
    try:
        offset = timedelta(0)
        if zone and zone not in ("Z", "z"):
            sign = -1 if zone[0] == "-" else 1
            digits = zone[1:].replace(":", "")
            zh, zm = int(digits[:2]), int(digits[2:4] or 0)
            if zh > 23 or zm > 59:
                return None
            offset = sign * timedelta(hours=zh, minutes=zm)
        dt = datetime(
            int(year), int(month), int(day), int(hh or 0), int(mm or 0), int(ss or 0), tzinfo=timezone(offset)
        )
    except ValueError:
        return None
    whole = int((dt - _EPOCH0).total_seconds())
    return Decimal(whole) + (Decimal("0." + frac) if frac else Decimal(0))


IpNet = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=4096)
def _network(text: str) -> IpNet | None:
    """A CIDR block (a bare address is a /32 or /128). Host bits may be set, as in ``203.0.113.7/24``."""
    try:
        return ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        return None


@lru_cache(maxsize=4096)
def _binary(text: str) -> bytes | None:
    try:
        return base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None


@lru_cache(maxsize=4096)
def _arn_parts(segs: tuple[Segment, ...], values: tuple[str, ...] | None) -> tuple[WildcardPattern, ...] | None:
    """The six part patterns of an ARN pattern, matched one by one against the six colon-separated parts of the
    value ("Condition operators", ARN), so wildcards in the first five parts never span a colon; the sixth
    (resource) part is the rest of the ARN and may contain colons. A variable's value is literal and never
    splits parts. None when the pattern does not have six parts (it matches no ARN)."""
    parts: list[list[Token]] = [[]]
    vi = 0
    for seg in segs:
        tag = seg[0]
        if tag == "lit" and len(parts) < 6:
            pieces = seg[1].split(":", 6 - len(parts))
            parts[-1].append(pieces[0])
            for piece in pieces[1:]:
                parts.append([piece])
        elif tag == "lit":
            parts[-1].append(seg[1])
        elif tag == "star":
            parts[-1].append(STAR)
        elif tag == "one":
            parts[-1].append(ONE)
        else:
            assert values is not None
            parts[-1].append(values[vi])  # literal; a colon in it never splits parts
            vi += 1
    if len(parts) < 6:
        return None
    return tuple(compile_pattern(p) for p in parts)


def _arn_like(parts: tuple[WildcardPattern, ...] | None, value: str) -> bool:
    if parts is None:
        return False
    pieces = value.split(":", 5)
    return len(pieces) == 6 and all(p.matches(v) for p, v in zip(parts, pieces, strict=True))


# ------------------------------------------------------------------------------------------------------------
# Compiled policy values
# ------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _PolicyValue:
    raw: str
    segs: tuple[Segment, ...]  # template (String/Bool/Arn)
    has_vars: bool
    parsed: Any  # Decimal / network / bytes / bool / None when invalid (typed families)
    valid: bool


@lru_cache(maxsize=8192)
def _policy_value(family: str, raw: str) -> _PolicyValue:
    if family in VARIABLE_FAMILIES:
        segs = _template(raw)
        has_vars = any(s[0] == "var" for s in segs)
        if family == "Bool" and not has_vars:
            low = raw.strip().lower()
            ok = low in ("true", "false")
            return _PolicyValue(raw, segs, False, low == "true" if ok else None, ok)
        return _PolicyValue(raw, segs, has_vars, None, True)
    parsed: Any
    if family == "Numeric":
        parsed = _number(raw)
    elif family == "Date":
        parsed = _date(raw)
    elif family == "Ip":
        parsed = _network(raw)
    elif family == "Binary":
        parsed = _binary(raw)
    elif family == "Null":
        low = raw.strip().lower()
        parsed = (low == "true") if low in ("true", "false") else None
    else:  # pragma: no cover
        parsed = None
    return _PolicyValue(raw, (), False, parsed, parsed is not None)


class _Invalid(Exception):
    """A request value cannot be read as the operator's type."""

    def __init__(self, value: str) -> None:
        super().__init__(value)
        self.value = value


def _cmp_order(kind: str, left: Decimal, right: Decimal) -> bool:
    if kind == "eq":
        return left == right
    if kind == "lt":
        return left < right
    if kind == "le":
        return left <= right
    if kind == "gt":
        return left > right
    return left >= right


def _match_one(info: OperatorInfo, pv: _PolicyValue, value: str, ctx: RequestContext) -> Tri:
    """Does one request value match one policy value (the positive form of the operator)?"""
    fam = info.family
    if fam == "String":
        kind = info.kind
        if kind == "like":
            return _like(pv.segs, value, ctx, True)
        text = _render(pv.segs, ctx) if pv.has_vars else _static_text(pv.segs)
        if isinstance(text, _NoValue):
            return False
        if text is None:
            return None
        return value == text if kind == "eq" else value.lower() == text.lower()
    if fam == "Arn":
        if pv.has_vars:
            vals: list[str] = []
            for seg in pv.segs:
                if seg[0] == "var":
                    val = _resolve_var(seg, ctx)
                    if isinstance(val, _NoValue):
                        return False
                    if val is None:
                        return None
                    vals.append(val)
            return _arn_like(_arn_parts(pv.segs, tuple(vals)), value)
        return _arn_like(_arn_parts(pv.segs, None), value)
    if fam == "Bool":
        if pv.has_vars:
            text = _render(pv.segs, ctx)
            if isinstance(text, _NoValue):
                return False
            if text is None:
                return None
            want = text.strip().lower()
        else:
            want = "true" if pv.parsed else "false"
        got = value.strip().lower()
        if got not in ("true", "false"):
            raise _Invalid(value)
        return got == want
    if fam == "Numeric":
        num = _number(value.strip())
        if num is None:
            raise _Invalid(value)
        return _cmp_order(info.kind, num, pv.parsed)
    if fam == "Date":
        when = _date(value)
        if when is None:
            raise _Invalid(value)
        return _cmp_order(info.kind, when, pv.parsed)
    if fam == "Ip":
        net = _network(value)
        if net is None:
            raise _Invalid(value)
        policy_net: IpNet = pv.parsed
        if net.version != policy_net.version:
            return False
        return net.subnet_of(policy_net)  # type: ignore[arg-type]
    if fam == "Binary":
        data = _binary(value)
        # the request value is compared byte for byte with the base64-decoded policy value; a request value
        # that is not base64 text is compared as the raw text's bytes
        return (data if data is not None else value.encode("utf-8")) == pv.parsed
    return False  # pragma: no cover


@lru_cache(maxsize=8192)
def _static_text(segs: tuple[Segment, ...]) -> str:
    return "".join(s[1] if s[0] == "lit" else ("*" if s[0] == "star" else "?") for s in segs)


def _or3(results: Iterable[Tri]) -> Tri:
    unknown = False
    for r in results:
        if r is True:
            return True
        if r is None:
            unknown = True
    return None if unknown else False


def _and3(results: Iterable[Tri]) -> Tri:
    unknown = False
    for r in results:
        if r is False:
            return False
        if r is None:
            unknown = True
    return None if unknown else True


def _not3(r: Tri) -> Tri:
    return None if r is None else not r


# ------------------------------------------------------------------------------------------------------------
# Evaluation
# ------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConditionCheck:
    """One (operator, key) pair judged against the request: ``result`` is True, False or None (unknown), and
    ``detail`` says why in one line."""

    condition: Condition
    result: bool | None
    detail: str


@dataclass(frozen=True)
class ConditionOutcome:
    """All the conditions of a statement. ``result`` is their three-valued AND (False beats None beats True);
    a statement without conditions is True."""

    result: bool | None
    checks: tuple[ConditionCheck, ...]

    @property
    def matched(self) -> bool:
        return self.result is True


def _quote(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _word(r: Tri) -> str:
    return "true" if r is True else ("false" if r is False else "unknown")


def _shown(values: Sequence[str]) -> str:
    if len(values) == 1:
        return _quote(values[0])
    return "[" + ", ".join(_quote(v) for v in values) + "]"


@dataclass(frozen=True)
class _Prepared:
    info: OperatorInfo
    pvs: tuple[_PolicyValue, ...]
    low_key: str
    head: str  # "Operator key [values]"
    invalid: str | None  # why the policy side can never match, or None
    pure: bool  # no policy variables: the result depends on the request values alone
    # request values (or _UNKNOWN_KEY) -> check; values are memoised only for pure conditions
    memo: dict[object, ConditionCheck] = field(default_factory=dict, compare=False)


@lru_cache(maxsize=8192)
def _prepare(condition: Condition) -> _Prepared:
    """Everything about a condition that does not depend on the request, computed once per condition."""
    info = _require_operator(condition.operator)
    fam = info.family
    pvs = tuple(_policy_value(fam, v) for v in condition.values)
    bad = [pv.raw for pv in pvs if not pv.valid]
    invalid: str | None = None
    if bad:
        invalid = f"invalid {fam if fam != 'Ip' else 'IP address'} value {_quote(bad[0])} in the policy"
    elif not pvs:
        invalid = "the policy gives no value"
    head = f"{condition.operator} {condition.key} [{', '.join(_quote(v) for v in condition.values)}]"
    pure = not any(pv.has_vars for pv in pvs)
    return _Prepared(info, pvs, condition.key.lower(), head, invalid, pure)


_MEMO_MAX = 256
# id(condition) -> (condition, prepared): a faster first lookup than hashing the Condition dataclass every time
_BY_ID: dict[int, tuple[Condition, _Prepared]] = {}
_BY_ID_MAX = 8192
_UNKNOWN_KEY = object()


_NOT_A = {"Numeric": "a number", "Date": "a date", "Ip": "an IP address", "Bool": "true or false"}


def evaluate_condition(condition: Condition, ctx: RequestContext) -> ConditionCheck:
    """Judge one (operator, key, values) triple against the request context.

    Raises :class:`PolicyInputError` for an operator IAM does not have.
    """
    entry = _BY_ID.get(id(condition))
    if entry is not None and entry[0] is condition:
        prep = entry[1]
    else:
        prep = _prepare(condition)
        if len(_BY_ID) >= _BY_ID_MAX:
            _BY_ID.clear()
        _BY_ID[id(condition)] = (condition, prep)  # holding the condition keeps its id from being reused
    memo = prep.memo
    if prep.invalid is not None:  # a policy value of the wrong type: nothing in the request can make it match
        return _judge(condition, prep, None, ctx)
    # Static analysis: a key whose value could be anything (or be absent) leaves every operator undecided,
    # Null and ...IfExists included.
    if ctx.is_unknown(condition.key):
        check = memo.get(_UNKNOWN_KEY)
        if check is None:
            why = "the request value is unknown (it could be anything, or absent)"
            check = memo[_UNKNOWN_KEY] = ConditionCheck(condition, None, f"{prep.head}: {why} -> unknown")
        return check
    values = ctx._get(prep.low_key)
    if not prep.pure:
        return _judge(condition, prep, values, ctx)
    memo_key = tuple(values) if values is not None else None
    check = memo.get(memo_key)
    if check is None:
        check = _judge(condition, prep, values, ctx)
        if len(memo) >= _MEMO_MAX:
            memo.clear()
        memo[memo_key] = check
    return check


def _judge(
    condition: Condition, prep: _Prepared, values: list[str] | None, ctx: RequestContext
) -> ConditionCheck:
    info = prep.info
    head = prep.head
    if prep.invalid is not None:
        return ConditionCheck(condition, False, f"{head}: {prep.invalid}; it never matches -> false")
    pvs = prep.pvs

    if info.family == "Null":
        # "Condition operators", Null check: "true" means the key must be absent (or null), "false" present.
        present = values is not None
        null_result = _or3((not present) if pv.parsed else present for pv in pvs)
        why = "request has " + _shown(values) if values else "key absent from the request"
        return ConditionCheck(condition, null_result, f"{head}: {why} -> {_word(null_result)}")

    if values is None:
        if info.if_exists:
            # "...IfExists": if the key is not present in the request context, the condition evaluates to
            # true.
            return ConditionCheck(condition, True, head + ": key absent from the request (IfExists) -> true")
        if info.set_op == "all":
            # "Multivalued context key examples": ForAllValues also returns true if there are no context keys
            # in the request.
            why = "key absent from the request (ForAllValues holds for no values)"
            return ConditionCheck(condition, True, f"{head}: {why} -> true")
        if info.set_op == "any":
            return ConditionCheck(
                condition, False, head + ": key absent from the request (ForAnyValue needs a value) -> false"
            )
        if info.negated:
            # "Condition operators" (Important): when the key is absent the values do not match, so a
            # condition that requires them *not* to match (StringNotLike, ArnNotLike, ...) is true.
            return ConditionCheck(
                condition, True, head + ": key absent from the request (a negated operator holds) -> true"
            )
        # "Condition operators" (Important): if the key is not present in the request context, the values do
        # not match and the condition is false.
        return ConditionCheck(condition, False, head + ": key absent from the request -> false")

    try:
        # positive match of each request value against the policy values: OR across the policy's values
        # ("Conditions with multiple context keys or values"); a negated operator is its NOR.
        if len(pvs) == 1:
            pv0 = pvs[0]
            pos = [_match_one(info, pv0, v, ctx) for v in values]
        else:
            pos = [_or3([_match_one(info, pv, v, ctx) for pv in pvs]) for v in values]
    except _Invalid as exc:
        what = _NOT_A.get(info.family, "valid")
        why = f"request value {_quote(exc.value)} is not {what}; it never matches"
        return ConditionCheck(condition, False, f"{head}: {why} -> false")

    result: Tri
    if info.set_op is None:
        # Without a set operator we judge the key as a whole: a positive operator holds when some request
        # value matches, a negated one when no request value matches. For the single-valued keys these
        # operators are meant for ("Single-valued vs. multivalued context keys": multivalued keys require a
        # set operator), this is exactly the documented single-value rule.
        hit = pos[0] if len(pos) == 1 else _or3(pos)
        result = _not3(hit) if info.negated else hit
    else:
        per_value = [_not3(p) for p in pos] if info.negated else pos
        # ForAnyValue: at least one request value satisfies the operator; ForAllValues: every request value
        # does ("Single-valued vs. multivalued context keys", set operators; "Multivalued context key
        # examples").
        result = _or3(per_value) if info.set_op == "any" else _and3(per_value)
    return ConditionCheck(condition, result, f"{head}: request has {_shown(values)} -> {_word(result)}")


def evaluate_conditions(
    conditions: Sequence[Condition], ctx: RequestContext, *, stop_at_false: bool = False
) -> ConditionOutcome:
    """Judge a statement's conditions: AND across operators and keys ("Conditions with multiple context keys
    or values"), three-valued. By default every condition is judged so that explanations are complete;
    ``stop_at_false`` stops at the first false one (the decision is then known), after checking every operator.

    Raises :class:`PolicyInputError` (one line) for an unknown operator.
    """
    if stop_at_false:
        for condition in conditions:
            _require_operator(condition.operator)
    checks = []
    result: Tri = True
    for condition in conditions:
        check = evaluate_condition(condition, ctx)
        checks.append(check)
        if check.result is not True and result is not False:
            result = check.result
            if stop_at_false and result is False:
                break
    return ConditionOutcome(result, tuple(checks))


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
            parsed = _date(raw) if info.family == "Date" else _number(raw.strip())
            if parsed is not None:
                out.append(parsed)
    return tuple(out)


# ------------------------------------------------------------------------------------------------------------
# Lint
# ------------------------------------------------------------------------------------------------------------

#: Keys AWS documents as single-valued ("AWS global condition context keys", "Value type: Single-valued"; KMS
#: developer guide, condition keys) that key policies commonly test.
SINGLE_VALUED_KEYS = frozenset(
    k.lower()
    for k in (
        "aws:PrincipalArn",
        "aws:PrincipalAccount",
        "aws:PrincipalOrgID",
        "aws:PrincipalType",
        "aws:PrincipalIsAWSService",
        "aws:PrincipalServiceName",
        "aws:SourceIp",
        "aws:SourceVpc",
        "aws:SourceVpce",
        "aws:SourceAccount",
        "aws:SourceArn",
        "aws:SourceOrgID",
        "aws:SecureTransport",
        "aws:CurrentTime",
        "aws:EpochTime",
        "aws:MultiFactorAuthPresent",
        "aws:MultiFactorAuthAge",
        "aws:username",
        "aws:userid",
        "aws:RequestedRegion",
        "aws:ViaAWSService",
        "aws:CalledViaFirst",
        "aws:CalledViaLast",
        "aws:TokenIssueTime",
        "kms:CallerAccount",
        "kms:ViaService",
        "kms:KeySpec",
        "kms:KeyUsage",
        "kms:KeyOrigin",
        "kms:BypassPolicyLockoutSafetyCheck",
        "kms:GranteePrincipal",
        "kms:RetiringPrincipal",
        "kms:GrantIsForAWSResource",
        "kms:EncryptionAlgorithm",
        "kms:SigningAlgorithm",
        "kms:MessageType",
        "kms:MacAlgorithm",
        "kms:KeyAgreementAlgorithm",
        "kms:ScheduleKeyDeletionPendingWindowInDays",
        "kms:ExpirationModel",
        "kms:ValidTo",
        "kms:WrappingAlgorithm",
        "kms:WrappingKeySpec",
        "kms:MultiRegion",
        "kms:MultiRegionKeyType",
        "kms:PrimaryRegion",
        "kms:ReplicaRegion",
        "kms:RotationPeriodInDays",
        "kms:RequestAlias",
    )
)
SINGLE_VALUED_PREFIXES = (
    "aws:principaltag/",
    "aws:resourcetag/",
    "aws:requesttag/",
    "kms:encryptioncontext:",
)
#: Keys AWS documents as multivalued (they need ForAnyValue/ForAllValues).
MULTI_VALUED_KEYS = frozenset(
    k.lower()
    for k in (
        "aws:TagKeys",
        "aws:PrincipalOrgPaths",
        "aws:CalledVia",
        "aws:PrincipalServiceNamesList",
        "aws:ResourceOrgPaths",
        "kms:GrantOperations",
        "kms:EncryptionContextKeys",
        "kms:ResourceAliases",
    )
)


def _single_valued(key: str) -> bool:
    low = key.lower()
    return low in SINGLE_VALUED_KEYS or low.startswith(SINGLE_VALUED_PREFIXES)


def condition_problems(condition: Condition) -> list[str]:
    """What is wrong or risky in one condition, one line each; an empty list when nothing is."""
    info = operator_info(condition.operator)
    if info is None:
        op = str(condition.operator)
        if op.lower().endswith("ifexists") and op.lower()[: -len("ifexists")].rsplit(":", 1)[-1] == "null":
            return [f"unknown condition operator {_quote(op)}: IfExists cannot be added to Null"]
        return [f"unknown condition operator {_quote(op)}"]
    problems: list[str] = []
    if info.operator != info.canonical:
        problems.append(f"operator {_quote(info.operator)} is spelled {_quote(info.canonical)} by AWS")
    fam = info.family
    if not condition.values:
        problems.append(f"{info.canonical} {condition.key} has no values, so it never matches")
    for raw in condition.values:
        segs = _template(raw)
        has_vars = any(s[0] == "var" for s in segs)
        if "${" in raw and fam not in VARIABLE_FAMILIES:
            problems.append(
                f"{info.canonical} does not support policy variables; {_quote(raw)} is taken literally"
            )
        if has_vars and fam in VARIABLE_FAMILIES:
            for s in segs:
                if s[0] == "var" and s[1] in MULTI_VALUED_KEYS:
                    problems.append(
                        f"${{{s[2]}}} is a multivalued key and cannot be used as a policy variable"
                    )
        pv = _policy_value(fam, raw)
        if not pv.valid:
            problems.append(_invalid_value_message(info, raw))
        if fam == "String" and info.kind in ("eq", "eqi") and any(s[0] in ("star", "one") for s in segs):
            like = "StringNotLike" if info.negated else "StringLike"
            problems.append(
                f"{info.canonical} compares {_quote(raw)} literally (* and ? are not wildcards here); "
                f"use {like} for a pattern"
            )
        if fam == "Arn" and pv.valid and not has_vars and _arn_parts(segs, None) is None:
            problems.append(f"{_quote(raw)} is not an ARN pattern (an ARN has six colon-separated parts)")
    if fam == "Null" and info.set_op is not None:
        problems.append(
            "ForAnyValue/ForAllValues has no meaning with Null (it tests only whether the key exists)"
        )
    if info.set_op is not None and _single_valued(condition.key):
        extra = (
            "; ForAllValues is also true when the key is absent, which can make an Allow too broad"
            if info.set_op == "all"
            else ""
        )
        problems.append(
            f"{condition.key} is single-valued: AWS advises against ForAnyValue/ForAllValues with it{extra}"
        )
    if info.set_op is None and condition.key.lower() in MULTI_VALUED_KEYS and fam != "Null":
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
    return f"{info.canonical} value {_quote(raw)} {what.get(fam, 'is invalid')}, so it never matches"
