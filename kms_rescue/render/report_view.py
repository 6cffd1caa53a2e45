"""What every report format shows, computed once: the identities × calls grid, labels and one-line cells."""

from __future__ import annotations

from dataclasses import dataclass

from kms_rescue.report import IdentityReport, Report

#: Columns of the identities × calls grid: (heading, operations it summarises).
CALL_COLUMNS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("DescribeKey", ("kms:DescribeKey", "kms:ListAliases")),
    ("GetKeyPolicy", ("kms:GetKeyPolicy",)),
    ("ListGrants", ("kms:ListGrants",)),
    ("IAM", ("iam:",)),
    ("CloudTrail", ("cloudtrail:",)),
)

VERDICT_TITLES = {
    "manageable": "MANAGEABLE",
    "recoverable": "RECOVERABLE",
    "locked_out": "LOCKED OUT",
    "undetermined": "UNDETERMINED",
    "not_found": "NOT FOUND",
}

#: Shorter spellings for the identities grid, so that it fits a terminal (JSON and Markdown keep the outcome names).
SHORT = {"access_denied": "denied", "no_credentials": "no creds", "invalid_credentials": "bad creds",
         "pending_deletion": "pending deletion"}


def short_outcome(value: str) -> str:
    """A grid cell in its short spelling (``access_denied (2/4)`` → ``denied (2/4)``)."""
    head, _, rest = value.partition(" ")
    return SHORT.get(head, head) + (" " + rest if rest else "")


URGENCY_LABELS = {"critical": "URGENT", "high": "IMPORTANT", "notice": "NOTE"}


def state_lines(report: Report) -> list[str]:
    """The key-state notices, most urgent first, one line each (``URGENT: ...``): shown before anything else."""
    return [f"{URGENCY_LABELS[n.urgency]}: {n.message}" for n in report.key_state]


def _matches(operation: str, prefixes: tuple[str, ...]) -> bool:
    return any(operation == p or (p.endswith(":") and operation.startswith(p)) for p in prefixes)


def call_cell(identity: IdentityReport, operations: tuple[str, ...]) -> str:
    """One grid cell: the outcome of the identity's calls in this column (``-`` when none was made).

    A single call shows its outcome; several (IAM reads, paged lookups) show ``ok ×N`` or the first failure with
    how many of them failed."""
    calls = [c for c in identity.calls if _matches(c.operation, operations)]
    if not calls:
        return "-"
    failures = [c for c in calls if c.outcome != "ok"]
    if len(calls) == 1:
        return calls[0].outcome
    if not failures:
        return f"ok ×{len(calls)}"
    # A credentials/GetCallerIdentity column: the last call decides.
    if operations[0] == "credentials":
        return calls[-1].outcome
    return f"{failures[0].outcome} ({len(failures)}/{len(calls)})"


def short_arn(arn: str | None, home_account: str | None = None) -> str:
    """The resource part of an IAM/STS ARN (``assumed-role/App/s``), with its account when that is not
    ``home_account``; the input otherwise."""
    if not arn:
        return "-"
    parts = arn.split(":", 5)
    if len(parts) == 6 and parts[2] in ("iam", "sts") and parts[4]:
        return parts[5] if parts[4] == home_account else f"{parts[5]} ({parts[4]})"
    return arn


def manage_cell(identity: IdentityReport) -> str:
    if identity.can_manage is True:
        return "yes"
    if identity.can_manage is False:
        return "no"
    return "unknown" if identity.decision is not None else "-"


@dataclass(frozen=True)
class GridRow:
    name: str
    arn: str
    status: str
    cells: tuple[str, ...]
    manage: str


def grid(report: Report) -> tuple[tuple[str, ...], list[GridRow]]:
    """Headings and rows of the identities × calls grid. Columns nobody called are left out. ``Status`` is the
    outcome of the identity's credentials and sts:GetCallerIdentity."""
    used = [(h, ops) for h, ops in CALL_COLUMNS
            if any(_matches(c.operation, ops) for i in report.identities for c in i.calls)]
    headings = ("Identity", "Caller", "Status", *(h for h, _ in used), "Can manage")
    rows = [
        GridRow(i.name, short_arn(i.arn, report.key.account), i.status,
                tuple(call_cell(i, ops) for _, ops in used), manage_cell(i))
        for i in report.identities
    ]
    return headings, rows


def exists_label(value: bool | None) -> str:
    return {True: "yes", False: "no (deleted)", None: "unknown"}[value]


def key_lines(report: Report) -> list[tuple[str, str]]:
    k = report.key
    lines = [("Key ARN", k.arn or f"unresolved ({k.input})"), ("Key id", k.id or "-"),
             ("Account", k.account or "unknown"), ("Region", k.region), ("State", k.state or "unknown")]
    if k.aliases:
        lines.append(("Aliases", ", ".join(k.aliases)))
    if k.multi_region:
        lines.append(("Multi-Region", "yes"))
    if k.deletion_date:
        lines.append(("Deletion date", k.deletion_date))
    return lines


def policy_line(report: Report) -> str:
    p = report.policy
    if p.source == "live":
        return f"live, read by {p.read_by} (kms:GetKeyPolicy)"
    if p.source == "cloudtrail" and p.event:
        return (f"from CloudTrail: {p.event.name} by {p.event.actor or 'unknown'} at {p.event.time} "
                f"(event {p.event.event_id})")
    return "none: nobody could read it and CloudTrail had no record"
