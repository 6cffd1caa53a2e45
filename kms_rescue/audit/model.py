"""The audit's results and their JSON (docs/audit.md, "The JSON contract"). Pure: no boto3, no I/O.

An audit yields one :class:`KeyAudit` per key and one :class:`AuditError` per account or Region that could not be
audited. :func:`to_json` and :func:`from_json` round-trip both (``audit --merge`` reads JSON lines back with them);
:func:`summarize` counts them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

#: The version of the JSON contract (``audit --format json``, kms_rescue/audit.schema.json).
SCHEMA_VERSION = "1"

#: The severities, most severe first: the scale of ``lint --fail-on`` (docs/lint.md).
SEVERITIES: tuple[str, ...] = ("critical", "high", "medium", "low")

#: The verdict values, as ``report`` decides them (docs/report.md).
VERDICTS: tuple[str, ...] = ("manageable", "recoverable", "locked_out", "undetermined", "not_found")

#: How a manager manages the key: ``named`` (a key-policy statement names it, or admits it by an
#: ``aws:PrincipalArn`` condition), ``iam`` (the policy delegates to the account and its IAM policies allow it),
#: ``root`` (the account's root user).
HOWS: tuple[str, ...] = ("named", "iam", "root")

Severity = Literal["critical", "high", "medium", "low"]


def severity_rank(severity: str) -> int:
    """0 for critical ... 3 for low (lower is more severe); ValueError for anything else."""
    return SEVERITIES.index(severity)


@dataclass(frozen=True)
class Finding:
    """One risk on a key: ``rule`` is a stable id (``KR…`` a lint rule of docs/rules.md, ``KA…`` a live rule of
    docs/audit.md)."""

    rule: str
    severity: str
    message: str
    statement: str | None = None

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {', '.join(SEVERITIES)}, not {self.severity!r}")


@dataclass(frozen=True)
class Manager:
    """A principal that can call kms:PutKeyPolicy on the key now, and how (:data:`HOWS`). ``exists``: known to
    exist (True), deleted (False), not checked (None)."""

    principal: str
    how: str
    exists: bool | None = None

    def __post_init__(self) -> None:
        if self.how not in HOWS:
            raise ValueError(f"how must be one of {', '.join(HOWS)}, not {self.how!r}")


@dataclass(frozen=True)
class KeyAudit:
    """One key's audit. ``verdict`` is ``report``'s verdict for the key; ``verdict_if_deleted`` and
    ``managers_if_deleted`` are set only with ``--if-deleted``. ``requests``: the AWS requests made for this key."""

    key_arn: str
    account: str
    region: str
    key_id: str
    key_manager: str | None
    key_state: str | None
    aliases: tuple[str, ...]
    verdict: str
    managers: tuple[Manager, ...]
    findings: tuple[Finding, ...]
    verdict_if_deleted: str | None = None
    managers_if_deleted: tuple[Manager, ...] | None = None
    summary: str = ""
    policy_read_by: str | None = None
    requests: int = 0

    def __post_init__(self) -> None:
        for name in ("verdict", "verdict_if_deleted"):
            value = getattr(self, name)
            if value is not None and value not in VERDICTS:
                raise ValueError(f"{name} must be one of {', '.join(VERDICTS)}, not {value!r}")

    @property
    def worst(self) -> str | None:
        """The most severe finding's severity, or None."""
        return min((f.severity for f in self.findings), key=severity_rank, default=None)


@dataclass(frozen=True)
class AuditError:
    """An account or Region that could not be audited (a row, never a crash). ``stage``: where it failed
    (``credentials``, ``assume_role``, ``list_keys``, ``list_aliases``, ``describe_regions``, …); ``error``: the
    classified outcome or AWS error code; ``message``: one line, redacted."""

    account: str | None
    region: str | None
    stage: str
    error: str
    message: str


AuditItem = KeyAudit | AuditError


def _manager_json(m: Manager) -> dict[str, Any]:
    return {"principal": m.principal, "how": m.how, "exists": m.exists}


def _finding_json(f: Finding) -> dict[str, Any]:
    return {"rule": f.rule, "severity": f.severity, "message": f.message, "statement": f.statement}


def to_json(item: AuditItem) -> dict[str, Any]:
    """The contract's object for a key (an item of ``"keys"``) or an error (an item of ``"errors"``); an error's
    object has ``"stage"``, a key's has ``"key_arn"``."""
    if isinstance(item, AuditError):
        return {"account": item.account, "region": item.region, "stage": item.stage, "error": item.error,
                "message": item.message}
    out: dict[str, Any] = {
        "key_arn": item.key_arn, "account": item.account, "region": item.region, "key_id": item.key_id,
        "key_manager": item.key_manager, "key_state": item.key_state, "aliases": list(item.aliases),
        "verdict": item.verdict, "summary": item.summary,
        "managers": [_manager_json(m) for m in item.managers],
        "findings": [_finding_json(f) for f in item.findings],
        "policy_read_by": item.policy_read_by, "requests": item.requests,
    }
    if item.verdict_if_deleted is not None:
        out["verdict_if_deleted"] = item.verdict_if_deleted
        out["managers_if_deleted"] = [_manager_json(m) for m in item.managers_if_deleted or ()]
    return out


def _manager(d: dict[str, Any]) -> Manager:
    return Manager(d["principal"], d["how"], d.get("exists"))


def _finding(d: dict[str, Any]) -> Finding:
    return Finding(d["rule"], d["severity"], d.get("message", ""), d.get("statement"))


def from_json(d: dict[str, Any]) -> AuditItem:
    """The inverse of :func:`to_json`. Raises ValueError (or KeyError) for an object of neither shape."""
    if "key_arn" in d:
        if_deleted = d.get("managers_if_deleted")
        return KeyAudit(
            key_arn=d["key_arn"], account=d["account"], region=d["region"], key_id=d.get("key_id") or "",
            key_manager=d.get("key_manager"), key_state=d.get("key_state"), aliases=tuple(d.get("aliases") or ()),
            verdict=d["verdict"], managers=tuple(_manager(m) for m in d.get("managers") or ()),
            findings=tuple(_finding(f) for f in d.get("findings") or ()),
            verdict_if_deleted=d.get("verdict_if_deleted"),
            managers_if_deleted=tuple(_manager(m) for m in if_deleted) if if_deleted is not None else None,
            summary=d.get("summary") or "", policy_read_by=d.get("policy_read_by"), requests=d.get("requests") or 0,
        )
    if "stage" in d:
        return AuditError(d.get("account"), d.get("region"), d["stage"], d.get("error") or "error",
                          d.get("message") or "")
    raise ValueError("neither a key (no key_arn) nor an error (no stage)")


@dataclass
class Summary:
    """Counts, built one item at a time (memory stays flat however many keys there are)."""

    keys: int = 0
    verdicts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(VERDICTS, 0))
    findings: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SEVERITIES, 0))
    keys_with_findings: int = 0
    errors: int = 0
    would_lose_last_manager: int = 0
    requests: int = 0

    def add(self, item: AuditItem) -> None:
        if isinstance(item, AuditError):
            self.errors += 1
            return
        self.keys += 1
        self.requests += item.requests
        self.verdicts[item.verdict] = self.verdicts.get(item.verdict, 0) + 1
        for f in item.findings:
            self.findings[f.severity] += 1
        if item.findings:
            self.keys_with_findings += 1
        if item.verdict_if_deleted == "locked_out" and item.verdict != "locked_out":
            self.would_lose_last_manager += 1

    def to_json(self) -> dict[str, Any]:
        return {"keys": self.keys, "verdicts": dict(self.verdicts), "findings": dict(self.findings),
                "keys_with_findings": self.keys_with_findings, "errors": self.errors,
                "would_lose_last_manager": self.would_lose_last_manager, "requests": self.requests}


def summarize(items: Iterable[AuditItem]) -> dict[str, Any]:
    """Counts per verdict, per severity, and errors (the contract's ``"summary"``)."""
    s = Summary()
    for item in items:
        s.add(item)
    return s.to_json()
