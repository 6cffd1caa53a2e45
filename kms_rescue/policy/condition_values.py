"""Condition values and how each operator family compares them (IAM User Guide, "IAM JSON policy elements: Condition
operators"): numbers, dates (ISO 8601 or epoch seconds), booleans, base64 binary, IP addresses and CIDR blocks, and
the String and ARN families (:mod:`kms_rescue.policy.like_patterns`). A policy value is read once into a
:class:`PolicyValue`; :func:`compare` matches one request value against it."""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

from kms_rescue.policy.condition_operators import VARIABLE_FAMILIES, OperatorInfo
from kms_rescue.policy.like_patterns import ArnPattern, LikePattern, arn_pattern, like_pattern
from kms_rescue.policy.policy_variables import NoValue, Segment, has_variables, parse_template, render, static_text
from kms_rescue.policy.request_context import RequestContext
from kms_rescue.policy.tristate import Tri

__all__ = [
    "IpNet",
    "PolicyValue",
    "RequestValueError",
    "compare",
    "parse_binary",
    "parse_date",
    "parse_network",
    "parse_number",
    "policy_value",
]

_NUMBER_RE = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


# Not cached (nor parse_binary): no measured workload re-reads numbers often enough (docs/engine.md, "Caches").
def parse_number(text: str) -> Decimal | None:
    """A Numeric operator's value ("Condition operators", Numeric), or None when it is not a number."""
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


# Cached: the request's aws:CurrentTime is read again for every Date condition of every statement that applies, a
# regular expression and a datetime per read; without it, decisions on a policy of date windows ran 40 % slower
# (docs/engine.md, "Caches").
@lru_cache(maxsize=4096)
def parse_date(text: str) -> Decimal | None:
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


# Cached: the request's aws:SourceIp is read again for every IP address condition that applies, and
# ipaddress.ip_network is the slowest step of such a check; without it, the engine benchmark ran 20-25 % slower
# (docs/engine.md, "Caches").
@lru_cache(maxsize=4096)
def parse_network(text: str) -> IpNet | None:
    """A CIDR block (a bare address is a /32 or /128). Host bits may be set, as in ``203.0.113.7/24``."""
    try:
        return ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        return None


def parse_binary(text: str) -> bytes | None:
    """The bytes of a base64 value ("Condition operators", Binary), or None when it is not base64."""
    try:
        return base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None


@dataclass(frozen=True)
class PolicyValue:
    """One value of a condition, read once for its operator's family."""

    raw: str
    segs: tuple[Segment, ...]  # template (String/Bool/Arn)
    has_vars: bool
    parsed: Any  # Decimal / network / bytes / bool / None when invalid (typed families)
    valid: bool
    like: LikePattern | None = None  # StringLike
    arn: ArnPattern | None = None  # ArnLike, ArnEquals and their negations
    text: str = ""  # StringEquals(IgnoreCase) without variables
    # IpAddress: (version, prefix length, network address, netmask) as integers, for a containment test in a few
    # integer operations
    net: tuple[int, int, int, int] | None = None


def policy_value(info: OperatorInfo, raw: str) -> PolicyValue:
    """Read one policy value for ``info``'s family (numbers, dates, networks, ... parsed; patterns compiled)."""
    family = info.family
    if family in VARIABLE_FAMILIES:
        segs = parse_template(raw)
        has_vars = has_variables(segs)
        if family == "Bool" and not has_vars:
            low = raw.strip().lower()
            ok = low in ("true", "false")
            return PolicyValue(raw, segs, False, low == "true" if ok else None, ok)
        if family == "Arn":
            return PolicyValue(raw, segs, has_vars, None, True, arn=arn_pattern(segs))
        if family == "String" and info.kind == "like":
            return PolicyValue(raw, segs, has_vars, None, True, like=like_pattern(segs))
        return PolicyValue(raw, segs, has_vars, None, True, text="" if has_vars else static_text(segs))
    parsed: Any
    if family == "Numeric":
        parsed = parse_number(raw)
    elif family == "Date":
        parsed = parse_date(raw)
    elif family == "Ip":
        parsed = parse_network(raw)
        if parsed is not None:
            net = (parsed.version, parsed.prefixlen, int(parsed.network_address), int(parsed.netmask))
            return PolicyValue(raw, (), False, parsed, True, net=net)
    elif family == "Binary":
        parsed = parse_binary(raw)
    elif family == "Null":
        low = raw.strip().lower()
        parsed = (low == "true") if low in ("true", "false") else None
    else:  # pragma: no cover
        parsed = None
    return PolicyValue(raw, (), False, parsed, parsed is not None)


class RequestValueError(Exception):
    """A request value cannot be read as the operator's type (it never matches)."""

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


def compare(info: OperatorInfo, pv: PolicyValue, value: str, ctx: RequestContext) -> Tri:
    """Does one request value match one policy value (the positive form of the operator)? None when a policy
    variable's key is unknown. Raises :class:`RequestValueError` when ``value`` is not of the family's type."""
    fam = info.family
    if fam == "String":
        kind = info.kind
        if kind == "like":
            assert pv.like is not None
            return pv.like.match(value, ctx)
        text = render(pv.segs, ctx) if pv.has_vars else pv.text
        if isinstance(text, NoValue):
            return False
        if text is None:
            return None
        return value == text if kind == "eq" else value.lower() == text.lower()
    if fam == "Arn":
        assert pv.arn is not None
        return pv.arn.match(value, ctx)
    if fam == "Bool":
        if pv.has_vars:
            text = render(pv.segs, ctx)
            if isinstance(text, NoValue):
                return False
            if text is None:
                return None
            want = text.strip().lower()
        else:
            want = "true" if pv.parsed else "false"
        got = value.strip().lower()
        if got not in ("true", "false"):
            raise RequestValueError(value)
        return got == want
    if fam == "Numeric":
        num = parse_number(value.strip())
        if num is None:
            raise RequestValueError(value)
        return _cmp_order(info.kind, num, pv.parsed)
    if fam == "Date":
        when = parse_date(value)
        if when is None:
            raise RequestValueError(value)
        return _cmp_order(info.kind, when, pv.parsed)
    if fam == "Ip":
        net = parse_network(value)
        if net is None:
            raise RequestValueError(value)
        assert pv.net is not None
        version, prefixlen, address, mask = pv.net
        # the request's block lies inside the policy's: same version, at least as long a prefix, same network bits
        return net.version == version and net.prefixlen >= prefixlen and int(net.network_address) & mask == address
    if fam == "Binary":
        data = parse_binary(value)
        # the request value is compared byte for byte with the base64-decoded policy value; a request value
        # that is not base64 text is compared as the raw text's bytes
        return (data if data is not None else value.encode("utf-8")) == pv.parsed
    return False  # pragma: no cover
