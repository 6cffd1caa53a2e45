"""Policy variables (IAM User Guide, "IAM policy elements: Variables and tags"): ``${aws:username}``,
``${key, 'default'}``, and the escapes ``${*}``, ``${?}`` and ``${$}``.

A policy string is read once into a *template*: a tuple of segments, each ``("lit", text)``, ``("star",)``,
``("one",)`` (the ``*`` and ``?`` wildcards) or ``("var", lower_key, key_as_written, default)``.
"""

from __future__ import annotations

import re
from typing import Any

from kms_rescue.policy.request_context import RequestContext

__all__ = [
    "NO_VALUE",
    "NoValue",
    "Segment",
    "has_variables",
    "parse_template",
    "render",
    "resolve_variable",
    "static_text",
    "substitute_variables",
    "variable_keys",
]

Segment = tuple[Any, ...]

# ${key} or ${key, 'default'}; the key is anything but "}", "," and "'", spaces around it are ignored. Read by
# hand, not by a regex: a backtracking regex took cubic time on "${" followed by many spaces.
_KEY_END = re.compile(r"[},']")  # one character class, no backtracking
_ESCAPES = {"*": "*", "?": "?", "$": "$"}


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


# Not cached: its callers keep what they build from it (prepared conditions, like_patterns' compiled patterns), and
# a cache here measured no gain (docs/engine.md, "Caches").
def parse_template(text: str) -> tuple[Segment, ...]:
    """Split a policy string into literal text, ``*``/``?`` wildcards and policy variables. ``${*}``, ``${?}``
    and ``${$}`` are the literal characters. A ``$`` that starts no well-formed variable is literal text."""
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


def has_variables(segs: tuple[Segment, ...]) -> bool:
    return any(s[0] == "var" for s in segs)


def variable_keys(text: str) -> tuple[str, ...]:
    """The condition keys a policy string refers to as variables (``${aws:username}`` -> ``aws:username``)."""
    return tuple(s[2] for s in parse_template(text) if s[0] == "var")


class NoValue:
    """Marker: a variable without a value and without a default (the value cannot match)."""


NO_VALUE = NoValue()


def resolve_variable(seg: Segment, ctx: RequestContext | None) -> str | NoValue | None:
    """A variable's value: its single value, else its default; :data:`NO_VALUE` when neither; None when unknown.

    "Single-valued vs. multivalued context keys": a multivalued key cannot be used as a policy variable, so a
    key with several values resolves like one with no value."""
    _, low, name, default = seg
    if ctx is not None:
        if ctx.is_unknown(name):
            return None
        vals = ctx.values_for(low)
        if vals is not None and len(vals) == 1:
            return vals[0]
    return default if default is not None else NO_VALUE


def render(segs: tuple[Segment, ...], ctx: RequestContext | None) -> str | NoValue | None:
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
            val = resolve_variable(seg, ctx)
            if isinstance(val, NoValue):
                return NO_VALUE
            if val is None:
                unknown = True
            else:
                out.append(val)
    return None if unknown else "".join(out)


def static_text(segs: tuple[Segment, ...]) -> str:
    """A template without variables as text (wildcards as ``*`` and ``?``)."""
    return "".join(s[1] if s[0] == "lit" else ("*" if s[0] == "star" else "?") for s in segs)


def substitute_variables(text: str, ctx: RequestContext) -> str | None:
    """Replace the policy variables in ``text`` with their values from ``ctx`` (``${*}``, ``${?}`` and
    ``${$}`` become ``*``, ``?`` and ``$``). None when a variable has no value and no default, has several
    values, or is unknown (see :func:`variable_keys` to tell which keys it needs)."""
    out = render(parse_template(text), ctx)
    return out if isinstance(out, str) else None
