"""Parse IAM policy documents (key policies and identity policies) into immutable, normalised objects.

The grammar follows the IAM User Guide's "IAM JSON policy element reference": a policy is an object with
``Statement`` (one statement or a list); every element that takes values takes a string or a list of strings;
``Principal``/``NotPrincipal`` take ``"*"`` or an object keyed by ``AWS``, ``Service``, ``Federated`` and
``CanonicalUser``. Statements without ``Action``/``NotAction`` or without ``Resource``/``NotResource`` are kept
(lint reports them) but have no effect (docs/engine.md, rule 9).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from kms_rescue.policy.errors import PolicyInputError
from kms_rescue.policy.input_limits import KEY_POLICY_MAX_BYTES as KEY_POLICY_MAX_BYTES  # KMS: 32768 (re-exported)
from kms_rescue.policy.input_limits import decode_text, loads_json

PRINCIPAL_TYPES = ("AWS", "Service", "Federated", "CanonicalUser")

Effect = Literal["Allow", "Deny"]


@dataclass(frozen=True)
class PrincipalSpec:
    """The value of a Principal or NotPrincipal element.

    ``wildcard`` is true for ``"*"`` and ``{"AWS": "*"}``: every principal (an anonymous one included).
    ``aws`` holds the AWS principal values exactly as written (ARNs, bare account ids, unique ids).
    """

    wildcard: bool = False
    aws: tuple[str, ...] = ()
    service: tuple[str, ...] = ()
    federated: tuple[str, ...] = ()
    canonical_user: tuple[str, ...] = ()

    def values(self) -> tuple[str, ...]:
        """Every named principal value (all types), ``"*"`` first when the spec is a wildcard."""
        return (("*",) if self.wildcard else ()) + self.aws + self.service + self.federated + self.canonical_user


@dataclass(frozen=True)
class Condition:
    """One (operator, key) pair of a Condition block, values normalised to strings.

    ``operator`` is as written, qualifiers included (``ForAnyValue:StringLike``, ``StringEqualsIfExists``).
    JSON booleans become ``"true"``/``"false"`` and numbers their JSON text, as IAM compares them as strings.
    """

    operator: str
    key: str
    values: tuple[str, ...]

    def describe(self) -> str:
        shown = self.values[0] if len(self.values) == 1 else list(self.values)
        return f"{self.operator} {self.key} {json.dumps(shown)}"


@dataclass(frozen=True)
class Statement:
    index: int  # position in the policy's statement list, from 0
    sid: str | None
    effect: Effect
    principal: PrincipalSpec | None = None
    not_principal: PrincipalSpec | None = None
    actions: tuple[str, ...] | None = None
    not_actions: tuple[str, ...] | None = None
    resources: tuple[str, ...] | None = None
    not_resources: tuple[str, ...] | None = None
    conditions: tuple[Condition, ...] = ()
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def has_effect(self) -> bool:
        """False when the statement lacks Action/NotAction or Resource/NotResource (docs/engine.md, rule 9)."""
        has_action = self.actions is not None or self.not_actions is not None
        has_resource = self.resources is not None or self.not_resources is not None
        return has_action and has_resource

    @property
    def label(self) -> str:
        """How reports name the statement: its Sid, or its position (``statement #2``, counting from 1)."""
        return f'"{self.sid}"' if self.sid else f"statement #{self.index + 1}"


@dataclass(frozen=True, eq=False)  # identity hash: the engine caches per-policy indexes
class Policy:
    statements: tuple[Statement, ...]
    version: str | None = None
    policy_id: str | None = None
    source: str | None = None  # a file name or a description, for messages
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def to_json(self) -> str:
        return json.dumps(self.raw, indent=2, sort_keys=False)




def _where(source: str | None) -> str:
    return f"{source}: " if source else ""


def load_json_text(text: str | bytes, source: str | None = None) -> Any:
    """``json.loads`` whose error is one line naming the source, line and column; numbers and depth are bounded
    (see :mod:`kms_rescue.policy.input_limits`)."""
    if isinstance(text, bytes):
        text = decode_text(text, source or "<policy>")
    return loads_json(text, source or "<policy>")


def _strings(value: Any, element: str, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise PolicyInputError(f"{where}{element} must be a string or a list of strings, not {_kind(value)}")


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _condition_value(value: Any, where: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return json.dumps(value)
    if isinstance(value, str):
        return value
    raise PolicyInputError(f"{where}condition values must be strings, numbers or booleans, not {_kind(value)}")


def _principal(value: Any, element: str, where: str) -> PrincipalSpec:
    if value == "*":
        return PrincipalSpec(wildcard=True)
    if not isinstance(value, dict) or not value:
        raise PolicyInputError(
            f'{where}{element} must be "*" or an object with AWS, Service, Federated or CanonicalUser'
        )
    parts: dict[str, tuple[str, ...]] = {}
    wildcard = False
    for kind, raw in value.items():
        if kind not in PRINCIPAL_TYPES:
            raise PolicyInputError(
                f"{where}{element} has an unknown principal type {kind!r} "
                f"(expected one of {', '.join(PRINCIPAL_TYPES)})"
            )
        names = _strings(raw, f"{element}.{kind}", where)
        if kind == "AWS" and "*" in names:
            wildcard = True
            names = tuple(n for n in names if n != "*")
        parts[kind] = names
    return PrincipalSpec(
        wildcard=wildcard,
        aws=parts.get("AWS", ()),
        service=parts.get("Service", ()),
        federated=parts.get("Federated", ()),
        canonical_user=parts.get("CanonicalUser", ()),
    )


def _conditions(value: Any, where: str) -> tuple[Condition, ...]:
    if not isinstance(value, dict):
        raise PolicyInputError(f"{where}Condition must be an object of operators, not {_kind(value)}")
    out: list[Condition] = []
    for operator, block in value.items():
        if not isinstance(block, dict):
            raise PolicyInputError(
                f"{where}Condition operator {operator!r} must map condition keys to values, not {_kind(block)}"
            )
        for key, raw in block.items():
            raw_values = raw if isinstance(raw, list) else [raw]
            values = tuple(_condition_value(v, where) for v in raw_values)
            out.append(Condition(operator=operator, key=key, values=values))
    return tuple(out)


_STATEMENT_KEYS = {
    "Sid",
    "Effect",
    "Principal",
    "NotPrincipal",
    "Action",
    "NotAction",
    "Resource",
    "NotResource",
    "Condition",
}


def parse_statement(raw: Any, index: int, source: str | None = None) -> Statement:
    where = f"{_where(source)}statement #{index + 1}: "
    if not isinstance(raw, dict):
        raise PolicyInputError(f"{where}a statement must be a JSON object, not {_kind(raw)}")
    unknown = sorted(set(raw) - _STATEMENT_KEYS)
    if unknown:
        raise PolicyInputError(f"{where}unknown element {unknown[0]!r} (element names are case-sensitive)")
    effect = raw.get("Effect")
    if effect not in ("Allow", "Deny"):
        raise PolicyInputError(f'{where}Effect must be "Allow" or "Deny", not {json.dumps(effect)}')
    for a, b in (("Principal", "NotPrincipal"), ("Action", "NotAction"), ("Resource", "NotResource")):
        if a in raw and b in raw:
            raise PolicyInputError(f"{where}a statement cannot have both {a} and {b}")
    sid = raw.get("Sid")
    if sid is not None and not isinstance(sid, str):
        raise PolicyInputError(f"{where}Sid must be a string")

    def opt_strings(name: str) -> tuple[str, ...] | None:
        return _strings(raw[name], name, where) if name in raw else None

    return Statement(
        index=index,
        sid=sid,
        effect=effect,
        principal=_principal(raw["Principal"], "Principal", where) if "Principal" in raw else None,
        not_principal=_principal(raw["NotPrincipal"], "NotPrincipal", where) if "NotPrincipal" in raw else None,
        actions=opt_strings("Action"),
        not_actions=opt_strings("NotAction"),
        resources=opt_strings("Resource"),
        not_resources=opt_strings("NotResource"),
        conditions=_conditions(raw["Condition"], where) if "Condition" in raw else (),
        raw=raw,
    )


#: Policies parsed from dicts, by their JSON text (docs/engine.md, "Caches"): the same policy read again (the
#: default key policy of a thousand keys, an identity's IAM policies once per key) is the same :class:`Policy`, so
#: the engine's per-policy caches (keyed by the object) apply to it too. Bounded; the oldest entry goes first.
PARSED_POLICIES = 512
_parsed: dict[tuple[str, str | None], Policy] = {}
_parsed_lock = threading.Lock()


def parse_policy(
    document: Mapping[str, Any] | str | bytes | Policy,
    *,
    source: str | None = None,
    max_bytes: int | None = None,
) -> Policy:
    """Parse a policy from a dict or JSON text. Raises :class:`PolicyInputError` with a one-line message.

    ``max_bytes`` checks the size of JSON text (pass :data:`KEY_POLICY_MAX_BYTES` for key policies). A dict
    already parsed with the same ``source`` (equal JSON text, in the same order) gives the same :class:`Policy`:
    treat it, and its ``raw``, as read-only.
    """
    if isinstance(document, Policy):
        return document
    if type(document) is dict:
        try:
            text = json.dumps(document, separators=(",", ":"), allow_nan=False)
        except (TypeError, ValueError):  # not JSON (a value of another type): parsed, and its error said, below
            return _parse_policy(document, source, max_bytes)
        key = (text, source)
        with _parsed_lock:
            known = _parsed.get(key)
        if known is not None:
            return known
        policy = _parse_policy(document, source, max_bytes)
        with _parsed_lock:
            if len(_parsed) >= PARSED_POLICIES:
                del _parsed[next(iter(_parsed))]
            _parsed.setdefault(key, policy)
        return policy
    return _parse_policy(document, source, max_bytes)


def _parse_policy(document: Mapping[str, Any] | str | bytes, source: str | None, max_bytes: int | None) -> Policy:
    if isinstance(document, (str, bytes)):
        size = len(document.encode("utf-8") if isinstance(document, str) else document)
        if max_bytes is not None and size > max_bytes:
            raise PolicyInputError(
                f"{_where(source)}the policy is {size:,} bytes; KMS accepts key policies of at most {max_bytes:,} bytes"
            )
        document = load_json_text(document, source)
    if not isinstance(document, dict):
        raise PolicyInputError(
            f"{_where(source)}not a policy: expected a JSON object with a Statement, got {_kind(document)}"
        )
    if "Statement" not in document:
        keys = ", ".join(json.dumps(k) for k in sorted(document)[:5]) or "none"
        raise PolicyInputError(
            f"{_where(source)}not a policy: no Statement element (top-level keys: {keys})"
        )
    version = document.get("Version")
    if version is not None and version not in ("2012-10-17", "2008-10-17"):
        raise PolicyInputError(f'{_where(source)}Version must be "2012-10-17" or "2008-10-17", not {version!r}')
    raw_statements = document["Statement"]
    if isinstance(raw_statements, dict):
        raw_statements = [raw_statements]
    if not isinstance(raw_statements, list):
        raise PolicyInputError(f"{_where(source)}Statement must be an object or a list, not {_kind(raw_statements)}")
    statements = tuple(parse_statement(s, i, source) for i, s in enumerate(raw_statements))
    policy_id = document.get("Id")
    return Policy(
        statements=statements,
        version=version,
        policy_id=policy_id if isinstance(policy_id, str) else None,
        source=source,
        raw=document,
    )
