"""The engine's one error type."""

from __future__ import annotations

from kms_rescue.errors import UsageError


class PolicyInputError(UsageError):
    """The input is not a usable policy, principal, action or context. ``str(e)`` is one actionable line."""
