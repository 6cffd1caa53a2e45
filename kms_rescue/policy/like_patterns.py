"""IAM ``*``/``?`` patterns that may hold policy variables: the ``StringLike`` and ``ArnLike`` families of condition
operators and the ``Resource`` element (IAM User Guide, "IAM JSON policy elements: Condition operators", String and
ARN operators; "IAM policy elements: Variables and tags": a variable's value is substituted literally, so a ``*``
in it is not a wildcard). Matching is linear-time (:mod:`kms_rescue.policy.wildcard`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from kms_rescue.policy.policy_variables import (
    NoValue,
    Segment,
    has_variables,
    parse_template,
    resolve_variable,
)
from kms_rescue.policy.request_context import RequestContext
from kms_rescue.policy.tristate import Tri
from kms_rescue.policy.wildcard import ONE, STAR, Token, WildcardPattern, compile_pattern

__all__ = ["ArnPattern", "LikePattern", "arn_pattern", "like_match", "like_match3", "like_pattern"]


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


def _variable_values(segs: tuple[Segment, ...], ctx: RequestContext | None) -> list[str] | NoValue | None:
    """The values of a template's variables, in order; a :class:`NoValue` when one has none; None when one is
    unknown."""
    values: list[str] = []
    unknown = False
    for seg in segs:
        if seg[0] == "var":
            val = resolve_variable(seg, ctx)
            if isinstance(val, NoValue):
                return val
            if val is None:
                unknown = True
            else:
                values.append(val)
    return None if unknown else values


@dataclass(frozen=True)
class LikePattern:
    """A ``StringLike`` pattern read once: ``eq`` (no wildcard), ``any`` (just ``*``), ``pattern`` (compiled) or
    ``vars`` (has policy variables: compiled per request, once their values are known)."""

    segs: tuple[Segment, ...]
    ignore_case: bool
    kind: Literal["eq", "any", "pattern", "vars"]
    text: str = ""
    compiled: WildcardPattern | None = None

    def match(self, value: str, ctx: RequestContext | None) -> Tri:
        kind = self.kind
        if kind == "any":
            return True
        if kind == "eq":
            return value.lower() == self.text.lower() if self.ignore_case else value == self.text
        if kind == "pattern":
            assert self.compiled is not None
            return self.compiled.matches(value)
        values = _variable_values(self.segs, ctx)
        if isinstance(values, NoValue):
            return False
        if values is None:
            return None
        return compile_pattern(_tokens(self.segs, values), ignore_case=self.ignore_case).matches(value)


def like_pattern(segs: tuple[Segment, ...], *, ignore_case: bool = False) -> LikePattern:
    """Compile a template (:func:`kms_rescue.policy.policy_variables.parse_template`) into a :class:`LikePattern`."""
    if has_variables(segs):
        return LikePattern(segs, ignore_case, "vars")
    if all(s[0] == "lit" for s in segs):
        return LikePattern(segs, ignore_case, "eq", "".join(s[1] for s in segs))
    if len(segs) == 1 and segs[0][0] == "star":
        return LikePattern(segs, ignore_case, "any")
    compiled = compile_pattern(_tokens(segs, None), ignore_case=ignore_case)
    return LikePattern(segs, ignore_case, "pattern", compiled=compiled)


# Cached: evaluate matches Resource values with it (per request when they hold policy variables) and the verdict
# layer its role patterns, the same strings over and over; reading and compiling is a Python loop over the
# pattern. Without it, such decisions ran 5 times slower, role patterns 12 (docs/engine.md, "Caches").
@lru_cache(maxsize=8192)
def _compiled(text: str, ignore_case: bool) -> LikePattern:
    return like_pattern(parse_template(text), ignore_case=ignore_case)


def like_match3(
    pattern: str, value: str, ctx: RequestContext | None = None, *, case_sensitive: bool = True
) -> Tri:
    """:func:`like_match`, but None (unknown) when the pattern uses a variable whose key ``ctx`` calls
    unknown."""
    return _compiled(pattern, not case_sensitive).match(value, ctx)


def like_match(
    pattern: str, value: str, ctx: RequestContext | None = None, *, case_sensitive: bool = True
) -> bool:
    """IAM wildcard match of ``value`` against ``pattern``: ``*`` matches any run of characters (none
    included), ``?`` exactly one. ``${key}`` is replaced by the key's single value from ``ctx`` and matched
    literally (a ``*`` in the value is not a wildcard); ``${key, 'default'}`` falls back to ``default``;
    ``${*}``, ``${?}`` and ``${$}`` are the literal characters. A variable with no value and no default, or
    with several values, matches nothing ("IAM policy elements: Variables and tags"); so does one whose key is
    unknown (see :func:`like_match3`)."""
    return _compiled(pattern, not case_sensitive).match(value, ctx) is True


def _arn_parts(segs: tuple[Segment, ...], values: Sequence[str] | None) -> tuple[WildcardPattern, ...] | None:
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


@dataclass(frozen=True)
class ArnPattern:
    """An ``ArnLike`` pattern read once; ``parts`` are compiled now when it has no policy variables."""

    segs: tuple[Segment, ...]
    has_vars: bool
    parts: tuple[WildcardPattern, ...] | None

    @property
    def six_parts(self) -> bool:
        """False when the pattern (without variables) does not have an ARN's six parts: it matches no ARN."""
        return self.has_vars or self.parts is not None

    def match(self, value: str, ctx: RequestContext | None) -> Tri:
        if not self.has_vars:
            return _arn_like(self.parts, value)
        values = _variable_values(self.segs, ctx)
        if isinstance(values, NoValue):
            return False
        if values is None:
            return None
        return _arn_like(_arn_parts(self.segs, values), value)


def arn_pattern(segs: tuple[Segment, ...]) -> ArnPattern:
    """Compile a template into an :class:`ArnPattern`."""
    if has_variables(segs):
        return ArnPattern(segs, True, None)
    return ArnPattern(segs, False, _arn_parts(segs, None))
