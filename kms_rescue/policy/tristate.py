"""Three-valued logic for condition results: ``True``, ``False`` or ``None`` ("unknown").

A key is unknown when the request context says its value could be anything (static analysis asks "could this
condition ever hold?"); unknown never becomes true or false by guessing. See ``docs/engine.md``.
"""

from __future__ import annotations

from collections.abc import Iterable

Tri = bool | None  # three-valued: True, False, None (unknown)


def or3(results: Iterable[Tri]) -> Tri:
    """True when any is True; else None when any is unknown; else False (also for no results)."""
    unknown = False
    for r in results:
        if r is True:
            return True
        if r is None:
            unknown = True
    return None if unknown else False


def and3(results: Iterable[Tri]) -> Tri:
    """False when any is False; else None when any is unknown; else True (also for no results)."""
    unknown = False
    for r in results:
        if r is False:
            return False
        if r is None:
            unknown = True
    return None if unknown else True


def not3(r: Tri) -> Tri:
    return None if r is None else not r


def word(r: Tri) -> str:
    """``"true"``, ``"false"`` or ``"unknown"``."""
    return "true" if r is True else ("false" if r is False else "unknown")
