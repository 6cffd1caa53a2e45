"""Strict checks of option values, shared by the commands (docs/limits.md, "Option values").

typer turns ``--timeout nan`` into a float NaN and ``1e309`` into infinity, and a regex ``^\\d{12}$`` accepts a
trailing newline and full-width digits. Each check here raises a one-line :class:`UsageError` (exit 2) instead.
"""

from __future__ import annotations

import math
import re

from kms_rescue.errors import UsageError

__all__ = ["ACCOUNT_ID_RE", "MAX_TIMEOUT_S", "account_id", "bounded_number", "fraction", "port", "positive_seconds"]

#: An AWS account id: exactly 12 ASCII digits, nothing before or after (no newline either).
ACCOUNT_ID_RE = re.compile(r"\A[0-9]{12}\Z")
#: The longest wait an option may ask for: an hour per call is already far beyond any AWS API's answer time.
MAX_TIMEOUT_S = 3600.0


def account_id(value: str, option: str = "--account") -> str:
    """``value`` when it is exactly 12 ASCII digits."""
    if not isinstance(value, str) or not ACCOUNT_ID_RE.match(value):
        raise UsageError(f"{option} must be a 12-digit AWS account id (ASCII digits only), not {value!r}")
    return value


def bounded_number(value: float, option: str, *, low: float, high: float, unit: str = "") -> float:
    """``value`` when it is a finite number from ``low`` to ``high`` (both included)."""
    if not math.isfinite(value) or not low <= value <= high:
        suffix = f" {unit}" if unit else ""
        raise UsageError(f"{option} must be a number from {low:g} to {high:g}{suffix}, not {value!r}")
    return value


def positive_seconds(value: float, option: str = "--timeout", *, high: float = MAX_TIMEOUT_S) -> float:
    """``value`` when it is a finite number of seconds above 0 and at most ``high``."""
    if not math.isfinite(value) or not 0 < value <= high:
        raise UsageError(f"{option} must be a positive number of seconds, finite and at most {high:g}, not {value!r}")
    return value


def fraction(value: float, option: str) -> float:
    """``value`` when it is a finite fraction from 0 to 1."""
    if not math.isfinite(value) or not 0.0 <= value <= 1.0:
        raise UsageError(f"{option} is a fraction from 0 to 1, not {value!r}")
    return value


def port(value: int, option: str = "--port") -> int:
    """A TCP port, or 0 for "pick a free one"."""
    if not 0 <= value <= 65535:
        raise UsageError(f"{option} must be a TCP port from 1 to 65535 (or 0 for a free one), not {value}")
    return value
