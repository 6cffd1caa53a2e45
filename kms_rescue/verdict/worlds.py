"""Candidate worlds: what the tool does not know about one identity's requests, as a finite set of possibilities.

A probe sees the policies it could read and the outcome of each call it made. What it could not see becomes a
dimension of uncertainty (docs/engine.md, "Deciding under uncertainty"):

* the **role path** of a session whose role could not be read (``iam:GetRole``): a session ARN drops the path, but
  its ``aws:PrincipalArn`` is the role's ARN with it (IAM User Guide, "AWS global condition context keys",
  aws:PrincipalArn). The candidates are the path ``/`` and every path the policies' ``aws:PrincipalArn`` values
  name for that role, plus one stand-in for "any path none of them names";
* **request-context values** the probe cannot read, for condition keys the policies test (``aws:SourceIp``,
  ``aws:PrincipalTag/…``, ``aws:MultiFactorAuthPresent``, …): absent, each value the policies name, and one value
  none of them names;
* the identity's own **IAM policies** when they could not be read. These are not enumerated: for each request the
  engine is asked twice, with an identity policy that allows the action and with none, so "allowed in some world"
  and "allowed in every world" are each one question (:func:`outcomes`).

A :class:`World` fixes the first two. The worlds are the product of the dimensions, bounded by
:data:`MAX_WORLDS`; past that the identity is reported as unknown, with the reason.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kms_rescue.policy.condition_operators import operator_info
from kms_rescue.policy.errors import PolicyInputError
from kms_rescue.policy.like_patterns import like_match
from kms_rescue.policy.management import never_on_direct_call
from kms_rescue.policy.model import Policy, parse_policy
from kms_rescue.policy.principals import Caller

#: More candidate worlds than this and the identity is reported as unknown (the reason says why).
MAX_WORLDS = 512

#: A path no policy names, standing in for every such path. It is never shown as a principal: the wording says
#: "a path no policy names".
UNLISTED_PATH = "/kms-rescue-unlisted-path/"

#: A value no policy names, standing in for every such value of a string-like key.
UNLISTED_VALUE = "kms-rescue-unlisted-value"
#: An address in TEST-NET-1 (RFC 5737), standing in for "an address no policy names".
UNLISTED_IP = "192.0.2.254"

#: Keys the request context of a direct call carries and whose value follows from the caller's ARN or from what
#: the probes read (they are set, not enumerated). Lower case.
DERIVED_KEYS = frozenset({
    "aws:principalarn", "aws:principalaccount", "aws:principaltype", "aws:username", "kms:calleraccount",
    "aws:currenttime", "aws:epochtime", "aws:requestedregion",
})
#: kms: resource keys whose value DescribeKey's metadata gives (KMS Developer Guide, "AWS KMS condition keys").
KEY_METADATA_KEYS = {
    "kms:keyorigin": "Origin",
    "kms:keyspec": "KeySpec",
    "kms:keyusage": "KeyUsage",
    "kms:multiregionkeytype": "MultiRegionKeyType",
}


@dataclass(frozen=True)
class World:
    """One way the unknowns could be: the session's ``aws:PrincipalArn`` (None when known or not a session) and
    the value of each unknown context key (None: the key is absent)."""

    principal_arn: str | None = None
    values: tuple[tuple[str, str | None], ...] = ()

    def context(self) -> dict[str, str]:
        out = {key: value for key, value in self.values if value is not None}
        if self.principal_arn:
            out["aws:PrincipalArn"] = self.principal_arn
        return out


@dataclass(frozen=True)
class Dimension:
    """One unknown and its candidate values. ``name`` is ``path`` or a condition key."""

    name: str
    candidates: tuple[str | None, ...]


@dataclass(frozen=True)
class Space:
    """Every candidate world for one identity, or why there are too many to enumerate."""

    worlds: tuple[World, ...]
    dimensions: tuple[Dimension, ...]
    too_many: str | None = None


def parse_documents(documents: Iterable[Any]) -> list[Policy]:
    """The documents that parse (one that does not decides nothing)."""
    out = []
    for doc in documents:
        if doc is None:
            continue
        try:
            out.append(doc if isinstance(doc, Policy) else parse_policy(doc))
        except PolicyInputError:
            continue
    return out


def path_candidates(caller: Caller, policies: Sequence[Policy]) -> tuple[str, ...] | None:
    """Candidate ``aws:PrincipalArn`` values for a session whose role path is unknown; None when no policy tests
    aws:PrincipalArn (the path then decides nothing)."""
    if caller.kind != "assumed_role" or not caller.name or not caller.account:
        return None
    values = [v for p in policies for st in p.statements for c in st.conditions
              if c.key.lower() == "aws:principalarn" for v in c.values]
    if not values:
        return None
    prefix = f"arn:{caller.partition}:iam::{caller.account}:role"
    found: dict[str, None] = {f"{prefix}/{caller.name}": None}
    for value in values:
        arn = _fill_role_pattern(value, prefix, caller.name)
        if arn is not None:
            found.setdefault(arn, None)
    found.setdefault(f"{prefix}{UNLISTED_PATH}{caller.name}", None)
    return tuple(found)


def _fill_role_pattern(value: str, prefix: str, name: str) -> str | None:
    """A role ARN with this role's name that ``value`` (a literal or a pattern) matches, or None. A wildcard stands
    for the name, or for one path segment then the name; the match is checked with the engine's own matcher."""
    if not value.startswith(prefix + "/") or "${" in value:
        return None
    if "*" not in value and "?" not in value:
        return value if value.endswith("/" + name) else None
    head, _star, tail = value.rpartition("*") if "*" in value else (value, "", "")
    tries = []
    if "*" in value:
        fill = head.replace("*", "x").replace("?", "x")
        tries = [fill.rsplit("/", 1)[0] + "/" + name + tail, fill + name + tail, fill + "x/" + name + tail, fill + tail]
    else:
        tries = [value.replace("?", "x")]
    for candidate in tries:
        if candidate.endswith("/" + name) and "//" not in candidate[len(prefix):] and like_match(value, candidate):
            return candidate
    return None


def unknown_context_keys(policies: Sequence[Policy], known: Mapping[str, Any]) -> dict[str, tuple[str | None, ...]]:
    """For every condition key the policies test whose value on a direct call is neither derived, known, nor
    always absent: its candidate values (absent first)."""
    known_low = {k.lower() for k in known}
    by_key: dict[str, tuple[str, list[str], set[str]]] = {}
    for policy in policies:
        for st in policy.statements:
            for c in st.conditions:
                low = c.key.lower()
                if low in DERIVED_KEYS or low in known_low or never_on_direct_call(low):
                    continue
                if "${" in c.key:
                    continue
                info = operator_info(c.operator)
                family = info.family if info is not None else "String"
                entry = by_key.setdefault(low, (c.key, [], set()))
                entry[1].extend(c.values)
                entry[2].add(str(family))
    out: dict[str, tuple[str | None, ...]] = {}
    for _low, (key, values, families) in sorted(by_key.items()):
        out[key] = (None, *_representatives(values, families))
    return out


def _representatives(values: Sequence[str], families: set[str]) -> tuple[str, ...]:
    found: dict[str, None] = {}
    if "Bool" in families or ("Null" in families and not families - {"Null", "Bool"}):
        return ("true", "false")
    for v in values:
        if "${" in v:
            continue
        if "Ip" in families or "IpAddress" in families:
            found.setdefault(v.split("/", 1)[0], None)
        elif "Numeric" in families:
            found.setdefault(v, None)
            try:
                n = float(v)
                found.setdefault(_num(n + 1), None)
                found.setdefault(_num(n - 1), None)
            except ValueError:
                pass
        else:
            found.setdefault(v.replace("*", "x").replace("?", "x"), None)
    if "Ip" in families or "IpAddress" in families:
        found.setdefault(UNLISTED_IP, None)
    elif "Numeric" not in families and "Date" not in families:
        found.setdefault(UNLISTED_VALUE, None)
    return tuple(found)


def _num(n: float) -> str:
    return str(int(n)) if n == int(n) else str(n)


def build_space(caller: Caller, policies: Sequence[Policy], *, path_known: bool, known: Mapping[str, Any]) -> Space:
    """The candidate worlds for one identity."""
    dims: list[Dimension] = []
    paths = None if path_known else path_candidates(caller, policies)
    if paths is not None:
        dims.append(Dimension("path", tuple(paths)))
    for key, candidates in unknown_context_keys(policies, known).items():
        dims.append(Dimension(key, candidates))
    total = 1
    for d in dims:
        total *= len(d.candidates)
    if total > MAX_WORLDS:
        names = ", ".join(d.name for d in dims)
        return Space((), tuple(dims), too_many=f"{total} combinations of unknowns ({names}) are too many to weigh")
    worlds = []
    for combo in itertools.product(*(d.candidates for d in dims)):
        principal_arn = None
        values: list[tuple[str, str | None]] = []
        for d, value in zip(dims, combo, strict=True):
            if d.name == "path":
                principal_arn = value
            else:
                values.append((d.name, value))
        worlds.append(World(principal_arn, tuple(values)))
    return Space(tuple(worlds), tuple(dims))


def describe_value(dim: Dimension, value: str | None) -> str:
    """How the wording names one candidate value (never inventing a principal)."""
    if dim.name == "path":
        if value is None:
            return "its role's path"
        if UNLISTED_PATH in value:
            return "a path no policy names"
        path = value.split(":role", 1)[1].rsplit("/", 1)[0] + "/"
        return f"the path {path}"
    if value is None:
        return f"{dim.name} absent"
    if value in (UNLISTED_VALUE, UNLISTED_IP):
        return f"{dim.name} a value no policy names"
    return f"{dim.name} = {value}"
