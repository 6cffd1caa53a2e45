"""KMS actions: the lists the analysis uses, matching of Action values, and the catalogue's answers for KMS.

The catalogue itself (:mod:`kms_rescue.policy.catalogue`) reads botocore's KMS service model and the Service
Authorization Reference's data without importing either; :func:`cross_account_allowed` follows the "Cross-account
use" line of each operation's documentation, and AWS's pages for permission-only actions (``docs/engine.md``).

Action names in policies are case-insensitive and may use the ``*`` and ``?`` wildcards (IAM User Guide, "IAM
JSON policy elements: Action").
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from kms_rescue.policy import catalogue
from kms_rescue.policy.errors import PolicyInputError
from kms_rescue.policy.wildcard import wildcard_match

__all__ = [
    "ADMIN_ACTIONS",
    "KMS_ACTIONS",
    "MANAGEMENT_ACTIONS",
    "action_matches",
    "canonical_action",
    "cross_account_allowed",
    "expand",
    "is_known_kms_action",
    "kms_actions",
    "unknown_kms_actions",
]

#: The key-management actions the lockout analysis, the report and lint care about. Not all are purely
#: key-level (the alias operations also need permission on the alias), but each changes who can manage the key
#: or whether it is usable. Tests validate every name against the catalogue.
MANAGEMENT_ACTIONS: tuple[str, ...] = (
    "kms:PutKeyPolicy",
    "kms:GetKeyPolicy",
    "kms:ScheduleKeyDeletion",
    "kms:CancelKeyDeletion",
    "kms:EnableKey",
    "kms:DisableKey",
    "kms:CreateAlias",
    "kms:UpdateAlias",
    "kms:DeleteAlias",
    "kms:EnableKeyRotation",
    "kms:DisableKeyRotation",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:UpdateKeyDescription",
    "kms:CreateGrant",
    "kms:RevokeGrant",
)

#: The action list of the key administrators statement ("Allow access for Key Administrators") in the default
#: key policy the KMS console writes for a single-Region symmetric encryption key (KMS Developer Guide,
#: "Default key policy": "Allows key administrators to administer the KMS key"). Patterns, exactly as AWS lists
#: them; they let administrators manage the key but not use it for cryptographic operations.
ADMIN_ACTIONS: tuple[str, ...] = (
    "kms:Create*",
    "kms:Describe*",
    "kms:Enable*",
    "kms:List*",
    "kms:Put*",
    "kms:Update*",
    "kms:Revoke*",
    "kms:Disable*",
    "kms:Get*",
    "kms:Delete*",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:ScheduleKeyDeletion",
    "kms:CancelKeyDeletion",
)

_SERVICE = "kms"
_ACTION_SHAPE = re.compile(r"^(?P<service>[A-Za-z0-9-]+):(?P<name>[A-Za-z0-9*?_-]+)$")


def kms_actions() -> frozenset[str]:
    """Every KMS IAM action (``kms:PutKeyPolicy`` ...), canonical case, from :mod:`kms_rescue.policy.catalogue`:
    botocore's KMS operations plus the permission-only actions of the Service Authorization Reference."""
    return catalogue.kms_actions()


def model_path() -> str:
    """The botocore service-model file the KMS operations were read from (for diagnostics)."""
    return catalogue.botocore_model_path()


if TYPE_CHECKING:
    KMS_ACTIONS: frozenset[str]


def __getattr__(name: str) -> Any:
    # KMS_ACTIONS is loaded on first use, so importing this module stays cheap.
    if name == "KMS_ACTIONS":
        return kms_actions()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def action_matches(pattern: str, action: str) -> bool:
    """Whether an Action/NotAction value (``kms:Get*``, ``kms:?ncrypt``, ``*``) covers ``action``.

    Case-insensitive, ``*`` matches any run of characters and ``?`` one character (IAM User Guide, "Action").
    """
    if pattern == "*":
        return True
    if "*" not in pattern and "?" not in pattern:
        return pattern.lower() == action.lower()
    return wildcard_match(pattern, action, ignore_case=True)


@functools.lru_cache(maxsize=1024)
def expand(pattern: str) -> tuple[str, ...]:
    """The KMS actions a pattern matches, sorted (``expand("kms:Get*")`` -> ``("kms:GetKeyPolicy", ...)``)."""
    return tuple(sorted(a for a in kms_actions() if action_matches(pattern, a)))


def canonical_action(action: str) -> str:
    """Validate the ``service:Name`` shape and return a known KMS action in its canonical case.

    Raises :class:`PolicyInputError` for a value that is not of that shape. Actions of other services, and KMS
    names that are not in the catalogue, are returned unchanged (use :func:`is_known_kms_action` to check).
    """
    value = action.strip() if isinstance(action, str) else action
    if not isinstance(value, str) or not (value == "*" or _ACTION_SHAPE.match(value)):
        raise PolicyInputError(
            f"not an action: {action!r} (expected service:Name, e.g. kms:PutKeyPolicy or kms:Decrypt)"
        )
    if not value.lower().startswith(f"{_SERVICE}:"):
        return value
    return catalogue.canonical(value) or value


def is_known_kms_action(action: str) -> bool:
    """Whether ``action`` (any case, no wildcards) is a KMS action in the catalogue."""
    return action.lower().startswith(f"{_SERVICE}:") and catalogue.canonical(action) is not None


def cross_account_allowed(action: str) -> bool:
    """Whether KMS lets a principal of another account call ``action`` on a key (the "Cross-account use"
    line of the operation's documentation). Unknown actions and actions of other services: False."""
    return catalogue.cross_account_allowed(action)


def unknown_kms_actions(patterns: Iterable[str]) -> list[str]:
    """The ``kms:`` patterns (in order, without duplicates) that match no KMS action: typos such as
    ``kms:PutKeyPolicies``. Patterns of other services and ``*`` are ignored."""
    out: list[str] = []
    for pattern in patterns:
        if not pattern.lower().startswith(f"{_SERVICE}:") or pattern in out:
            continue
        if not expand(pattern):
            out.append(pattern)
    return out
