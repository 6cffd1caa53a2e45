"""The request context: which condition keys a request carries, their values, and which keys are single- or
multivalued (IAM User Guide, "IAM JSON policy elements: Condition", "Single-valued vs. multivalued context keys",
"AWS global condition context keys"; ``docs/engine.md``, rule 8)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from kms_rescue.policy.errors import PolicyInputError

__all__ = [
    "MULTI_VALUED_KEYS",
    "SINGLE_VALUED_KEYS",
    "SINGLE_VALUED_PREFIXES",
    "RequestContext",
    "multi_valued",
    "single_valued",
]


def _as_values(key: str, raw: Any) -> tuple[str, ...]:
    if isinstance(raw, str):
        return (raw,)
    if isinstance(raw, bool):
        return ("true" if raw else "false",)
    if isinstance(raw, (int, float)):
        return (str(raw),)
    if isinstance(raw, Sequence):
        out: list[str] = []
        for v in raw:
            if isinstance(v, bool):
                out.append("true" if v else "false")
            elif isinstance(v, (str, int, float)):
                out.append(str(v))
            else:
                raise PolicyInputError(f"context key {key!r}: values must be strings, not {type(v).__name__}")
        return tuple(out)
    raise PolicyInputError(f"context key {key!r}: the value must be a string or a list of strings")


_NOTHING: frozenset[str] = frozenset()


class RequestContext:
    """The request context: condition keys and their values.

    Condition key names are not case-sensitive (IAM User Guide, "IAM JSON policy elements: Condition":
    "condition key names are not case-sensitive"), tag keys included, so lookups ignore case; :meth:`items`
    keeps the case the caller used. Every key maps to a list of strings. A key given an empty list counts as
    absent (a key with no value is null: "Multivalued context key examples", Null check).

    ``unknown`` names keys whose value could be anything (static analysis); an entry ending in ``*`` (for
    example ``"aws:PrincipalTag/*"``) covers every key with that prefix. A key given a value is never unknown.
    Subclasses may override :meth:`is_unknown`; the evaluator always asks it, so an override is honoured."""

    def __init__(
        self, values: Mapping[str, str | Sequence[str]] | None = None, unknown: Iterable[str] = ()
    ) -> None:
        # lower-cased key -> (key as given, values); the values are a tuple, so lookups can share them
        self._values: dict[str, tuple[str, tuple[str, ...]]] = {}
        if values:
            for key, raw in values.items():
                if type(key) is not str:
                    raise PolicyInputError(f"context keys must be strings, not {type(key).__name__}")
                kind = type(raw)
                vals: tuple[str, ...]
                if kind is str:
                    vals = (raw,)  # type: ignore[assignment]  # raw is a str here
                elif (kind is list or kind is tuple) and all(type(v) is str for v in raw):
                    vals = tuple(raw)
                else:
                    vals = _as_values(key, raw)
                if vals:
                    self._values[key.lower()] = (key, vals)
        self._unknown: frozenset[str] = _NOTHING
        self._prefixes: tuple[str, ...] = ()
        if unknown:
            exact: set[str] = set()
            prefixes: list[str] = []
            for entry in unknown:
                low = entry.lower()
                if low.endswith("*"):
                    prefixes.append(low[:-1])
                else:
                    exact.add(low)
            self._unknown = frozenset(exact)
            self._prefixes = tuple(prefixes)

    def get(self, key: str) -> list[str] | None:
        """The key's values (a new list), or None when the key is absent."""
        hit = self._values.get(key.lower())
        return list(hit[1]) if hit else None

    def values_for(self, key: str) -> tuple[str, ...] | None:
        """The key's values as a tuple (shared, not copied: the evaluator's hot path), or None when the key is
        absent. Case-insensitive, like :meth:`get`; a key already in lower case is found without lowering it."""
        hit = self._values.get(key)
        if hit is None:
            hit = self._values.get(key.lower())
        return hit[1] if hit else None

    def is_unknown(self, key: str) -> bool:
        """True when the key's value could be anything (it may also be absent)."""
        if not self._unknown and not self._prefixes:
            return False
        low = key.lower()
        if low in self._values:
            return False
        if low in self._unknown:
            return True
        return any(low.startswith(p) for p in self._prefixes)

    def with_values(self, values: Mapping[str, str | Sequence[str]]) -> RequestContext:
        """A new context (same class) in which ``values`` override this one's; an empty list removes a key."""
        new = self._copy()
        new._values = dict(self._values)
        for key, raw in values.items():
            vals = _as_values(key, raw)
            if vals:
                new._values[key.lower()] = (key, vals)
            else:
                new._values.pop(key.lower(), None)
        return new

    def without(self, *keys: str) -> RequestContext:
        """A new context (same class) without these keys' values; an exact ``unknown`` entry for them is
        dropped too, so they become absent (a prefix entry such as ``aws:PrincipalTag/*`` still covers
        them)."""
        new = self._copy()
        lows = {k.lower() for k in keys}
        new._values = {k: v for k, v in self._values.items() if k not in lows}
        new._unknown = self._unknown - lows
        return new

    def _copy(self) -> RequestContext:
        """A shallow copy of the same class (what ``copy.copy`` does, without its generic protocol: the engine
        derives a context per decision)."""
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)
        return new

    def items(self) -> list[tuple[str, list[str]]]:
        """``(key, values)`` pairs with the keys in the case the caller gave."""
        return [(orig, list(vals)) for orig, vals in self._values.values()]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({dict(self.items())!r}, unknown={sorted(self._unknown)!r})"


#: Keys AWS documents as single-valued ("AWS global condition context keys", "Value type: Single-valued"; KMS
#: developer guide, condition keys) that key policies commonly test.
SINGLE_VALUED_KEYS = frozenset(
    k.lower()
    for k in (
        "aws:PrincipalArn",
        "aws:PrincipalAccount",
        "aws:PrincipalOrgID",
        "aws:PrincipalType",
        "aws:PrincipalIsAWSService",
        "aws:PrincipalServiceName",
        "aws:SourceIp",
        "aws:SourceVpc",
        "aws:SourceVpce",
        "aws:SourceAccount",
        "aws:SourceArn",
        "aws:SourceOrgID",
        "aws:SecureTransport",
        "aws:CurrentTime",
        "aws:EpochTime",
        "aws:MultiFactorAuthPresent",
        "aws:MultiFactorAuthAge",
        "aws:username",
        "aws:userid",
        "aws:RequestedRegion",
        "aws:ViaAWSService",
        "aws:CalledViaFirst",
        "aws:CalledViaLast",
        "aws:TokenIssueTime",
        "kms:CallerAccount",
        "kms:ViaService",
        "kms:KeySpec",
        "kms:KeyUsage",
        "kms:KeyOrigin",
        "kms:BypassPolicyLockoutSafetyCheck",
        "kms:GranteePrincipal",
        "kms:RetiringPrincipal",
        "kms:GrantIsForAWSResource",
        "kms:EncryptionAlgorithm",
        "kms:SigningAlgorithm",
        "kms:MessageType",
        "kms:MacAlgorithm",
        "kms:KeyAgreementAlgorithm",
        "kms:ScheduleKeyDeletionPendingWindowInDays",
        "kms:ExpirationModel",
        "kms:ValidTo",
        "kms:WrappingAlgorithm",
        "kms:WrappingKeySpec",
        "kms:MultiRegion",
        "kms:MultiRegionKeyType",
        "kms:PrimaryRegion",
        "kms:ReplicaRegion",
        "kms:RotationPeriodInDays",
        "kms:RequestAlias",
    )
)
SINGLE_VALUED_PREFIXES = (
    "aws:principaltag/",
    "aws:resourcetag/",
    "aws:requesttag/",
    "kms:encryptioncontext:",
)
#: Keys AWS documents as multivalued (they need ForAnyValue/ForAllValues).
MULTI_VALUED_KEYS = frozenset(
    k.lower()
    for k in (
        "aws:TagKeys",
        "aws:PrincipalOrgPaths",
        "aws:CalledVia",
        "aws:PrincipalServiceNamesList",
        "aws:ResourceOrgPaths",
        "kms:GrantOperations",
        "kms:EncryptionContextKeys",
        "kms:ResourceAliases",
    )
)


def single_valued(key: str) -> bool:
    """Whether AWS documents ``key`` as single-valued (see :data:`SINGLE_VALUED_KEYS`)."""
    low = key.lower()
    return low in SINGLE_VALUED_KEYS or low.startswith(SINGLE_VALUED_PREFIXES)


def multi_valued(key: str) -> bool:
    """Whether AWS documents ``key`` as multivalued (see :data:`MULTI_VALUED_KEYS`)."""
    return key.lower() in MULTI_VALUED_KEYS
