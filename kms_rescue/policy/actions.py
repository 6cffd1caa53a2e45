"""The AWS KMS action catalogue, read from botocore's KMS service model (without importing botocore).

Every KMS API operation in the model is an IAM action ``kms:<OperationName>`` (Service Authorization Reference,
"Actions, resources, and condition keys for AWS Key Management Service"). Each operation's documentation in the
model carries a line "Cross-account use: Yes|No", the same column as the KMS permissions reference; we derive
:func:`cross_account_allowed` from it instead of keeping a hand list (DESIGN.md §1.6).

Action names in policies are case-insensitive and may use the ``*`` and ``?`` wildcards (IAM User Guide, "IAM
JSON policy elements: Action").
"""

from __future__ import annotations

import functools
import gzip
import importlib.util
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

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
_CROSS_ACCOUNT = re.compile(r"Cross-account use\s*(?:</b>)?\s*:?\s*(?:</b>)?\s*(?P<answer>[A-Za-z]+)")


@dataclass(frozen=True)
class _Catalogue:
    by_lower: dict[str, str]  # "kms:putkeypolicy" -> "kms:PutKeyPolicy"
    cross_account: frozenset[str]  # canonical names with "Cross-account use: Yes"
    model_path: str

    @property
    def actions(self) -> frozenset[str]:
        return frozenset(self.by_lower.values())


def _model_file() -> Path:
    spec = importlib.util.find_spec("botocore")  # finds the package without importing it
    locations = list(spec.submodule_search_locations or []) if spec else []
    if not locations:
        raise RuntimeError(
            "botocore is not installed, so the KMS action catalogue is unavailable "
            "(botocore is a dependency of kms-rescue: reinstall the package)"
        )
    kms_dir = Path(locations[0]) / "data" / "kms"
    versions = sorted((p for p in kms_dir.iterdir() if p.is_dir()), key=lambda p: p.name) if kms_dir.is_dir() else []
    for version in reversed(versions):
        for name in ("service-2.json", "service-2.json.gz"):
            candidate = version / name
            if candidate.is_file():
                return candidate
    raise RuntimeError(
        f"botocore's KMS service model was not found under {kms_dir} "
        "(expected data/kms/<date>/service-2.json[.gz]); reinstall botocore"
    )


def _read_model(path: Path) -> dict[str, Any]:
    raw = path.read_bytes()
    if path.suffix == ".gz":
        raw = gzip.decompress(raw)
    model = json.loads(raw)
    if not isinstance(model, dict) or not isinstance(model.get("operations"), dict):
        raise RuntimeError(f"{path} is not a botocore service model (no operations)")
    return model


def _cross_account_answer(documentation: str) -> bool:
    """True only for an explicit "Cross-account use: Yes"; anything else (No, Not applicable, absent) is False."""
    match = _CROSS_ACCOUNT.search(documentation)
    return bool(match) and match.group("answer").lower() == "yes"  # type: ignore[union-attr]


@functools.lru_cache(maxsize=1)
def _catalogue() -> _Catalogue:
    path = _model_file()
    operations: dict[str, Any] = _read_model(path)["operations"]
    by_lower: dict[str, str] = {}
    cross: set[str] = set()
    for name, operation in operations.items():
        action = f"{_SERVICE}:{name}"
        by_lower[action.lower()] = action
        documentation = operation.get("documentation", "") if isinstance(operation, dict) else ""
        if _cross_account_answer(documentation if isinstance(documentation, str) else ""):
            cross.add(action)
    return _Catalogue(by_lower=by_lower, cross_account=frozenset(cross), model_path=str(path))


def kms_actions() -> frozenset[str]:
    """Every KMS action (``kms:PutKeyPolicy`` ...), canonical case, from botocore's KMS service model."""
    return _catalogue().actions


def model_path() -> str:
    """The service-model file the catalogue was read from (for diagnostics)."""
    return _catalogue().model_path


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
    return _catalogue().by_lower.get(value.lower(), value)


def is_known_kms_action(action: str) -> bool:
    """Whether ``action`` (any case, no wildcards) is a KMS action in the catalogue."""
    return action.lower() in _catalogue().by_lower


def cross_account_allowed(action: str) -> bool:
    """Whether KMS lets a principal of another account call ``action`` on a key (the "Cross-account use"
    line of the operation's documentation). Unknown actions and actions of other services: False."""
    canonical = _catalogue().by_lower.get(action.lower())
    return canonical is not None and canonical in _catalogue().cross_account


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
