"""The report as text for a terminal (rich), rendered to a string at a fixed width. Never prints."""

from __future__ import annotations

import io
import json

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from kms_rescue.render.report_view import (
    VERDICT_TITLES,
    exists_label,
    grid,
    key_lines,
    policy_line,
    short_outcome,
    state_lines,
)
from kms_rescue.render.styles import URGENCY_STYLES, VERDICT_STYLES, outcome_style
from kms_rescue.report import IdentityReport, Report

#: How much of an AWS error message a reason line keeps (the whole message is in the JSON report).
REASON_CHARS = 100
#: The order a reason line names failures in, whatever order the calls ended in: getting credentials first, then the
#: key's own reads as the recovery needs them, then IAM and the rest (each group in the order the calls were made).
REASON_ORDER = ("credentials", "sts:AssumeRole", "sts:GetCallerIdentity", "kms:DescribeKey", "kms:GetKeyPolicy",
                "kms:ListGrants", "kms:ListAliases")


def _reason_rank(operation: str) -> tuple[int, int]:
    if operation in REASON_ORDER:
        return 0, REASON_ORDER.index(operation)
    return (1, 0) if operation.startswith("iam:") else (2, 0)


def failure_reason(ident: IdentityReport) -> str | None:
    """One short line saying why an identity's calls failed: each distinct failure (operation, outcome, error
    code), and for an identity whose credentials did not work the start of the error message. None when every
    call succeeded."""
    failed = sorted((c for c in ident.calls if not c.ok), key=lambda c: _reason_rank(c.operation))
    if not failed:
        return None
    parts: list[str] = []
    seen: set[tuple[str, str, str | None]] = set()
    for call in failed:
        key = (call.operation, call.outcome, call.error_code)
        if key in seen:
            continue
        seen.add(key)
        code = f" ({call.error_code})" if call.error_code and call.error_code != call.outcome else ""
        parts.append(f"{call.operation} {call.outcome}{code}")
    line = "; ".join(parts[:4]) + (f"; and {len(parts) - 4} more" if len(parts) > 4 else "")
    if ident.status != "ok":
        message = next((c.message for c in failed if c.message), None)
        flat = " ".join(message.split()) if message else ""  # botocore's messages may span lines
        if flat:
            line += ": " + (flat if len(flat) <= REASON_CHARS else flat[: REASON_CHARS - 1] + "…")
    return line


def _cell(value: str) -> Text:
    return Text(short_outcome(value), style=outcome_style(value))


def render_text(report: Report, *, width: int = 100, color: bool = False, show_policy: bool = False) -> str:
    """The report for a terminal. ``color`` adds ANSI styles; ``show_policy`` prints the policy document."""
    out = io.StringIO()
    console = Console(file=out, width=width, color_system="standard" if color else None, force_terminal=color,
                      highlight=False, emoji=False, legacy_windows=False, no_color=not color)
    v = report.verdict
    for notice, line in zip(report.key_state, state_lines(report), strict=True):
        console.print(Text(line, style=URGENCY_STYLES[notice.urgency]))
    console.print(Panel(
        Group(Text(f"Verdict: {VERDICT_TITLES[v]}", style=VERDICT_STYLES[v]), Text(report.summary)),
        title="kms-rescue report", expand=True,
    ))

    keys = Table.grid(padding=(0, 2))
    keys.add_column(style="bold")
    keys.add_column(overflow="fold")
    for label, value in key_lines(report):
        keys.add_row(label, value)
    keys.add_row("Policy", policy_line(report))
    console.print(keys)
    console.print()

    headings, rows = grid(report)
    table = Table(title="Identities and calls", title_justify="left", expand=True)
    # The caller's ARN goes under the identity's name, so the outcome columns keep their width.
    ident_width = min(28, max([8, *(len(r.name) for r in rows), *(len(r.arn) for r in rows)]))
    table.add_column("Identity / caller", overflow="fold", min_width=ident_width, ratio=1)
    for col, heading in enumerate(headings[2:], start=2):
        cells = [r.status if col == 2 else r.manage if col == len(headings) - 1 else r.cells[col - 3]
                 for r in rows]
        table.add_column(heading, no_wrap=True, min_width=max([len(heading), *(len(short_outcome(c)) for c in cells)]))
    for row in rows:
        who = Text(row.name, style="bold")
        if row.arn != "-":
            who.append("\n" + row.arn, style="dim")
        table.add_row(who, _cell(row.status), *(_cell(c) for c in row.cells), _cell(row.manage))
    console.print(table)
    for ident in report.identities:
        reason = failure_reason(ident)
        if reason:
            console.print(Text(f"  {ident.name}: {reason}", style="yellow" if ident.status != "ok" else "dim"))
        if ident.hint:
            console.print(Text(f"  {ident.name}: {ident.hint}", style="dim"))

    if report.principals:
        pt = Table(title="Principals named by the policy", title_justify="left", expand=True)
        for h in ("Principal", "Kind", "Exists", "Evidence"):
            pt.add_column(h, overflow="fold")
        for p in report.principals:
            pt.add_row(p.value, p.kind + (" (condition)" if p.in_condition else ""), exists_label(p.exists),
                       p.evidence)
        console.print(pt)

    if report.management_paths:
        mt = Table(title="Ways in to kms:PutKeyPolicy", title_justify="left", expand=True)
        for h in ("Kind", "Principal", "Statement", "Can manage", "Why"):
            mt.add_column(h, overflow="fold")
        for m in report.management_paths:
            mt.add_row(m.kind, m.principal, m.statement, _cell("yes" if m.can_manage else "no"), m.why)
        console.print(mt)

    hist = report.history
    if hist.searched:
        if hist.events:
            ht = Table(title=f"CloudTrail history ({hist.region}, last 90 days, read by {hist.read_by})",
                       title_justify="left", expand=True)
            for title in ("Time", "Event", "Actor", "Result"):
                ht.add_column(title, overflow="fold")
            for e in hist.events:
                ht.add_row(e.time, e.name, e.actor or "-", _cell("ok" if e.succeeded else (e.error_code or "failed")))
            console.print(ht)
        elif hist.outcome == "ok":
            console.print(Text(f"CloudTrail history ({hist.region}): no management events for this key in 90 days"))
        else:
            console.print(Text(f"CloudTrail history: {hist.outcome} ({hist.error_code or ''}) — {hist.message or ''}",
                               style="yellow"))
        for fa in hist.former_admins:
            console.print(Text(f"  former administrator: {fa.principal} — {fa.evidence}"))
    console.print()

    if report.next_steps:
        console.print(Text("Next steps", style="bold"))
        for n, step in enumerate(report.next_steps, 1):
            console.print(Text(f"{n}. {step.detail}"))
            if step.command:
                console.print(Text(f"   $ {step.command}", style="cyan"))
            if step.policy is not None:
                console.print(Text("   " + json.dumps(step.policy, indent=2).replace("\n", "\n   "), style="cyan"))
        console.print()

    if report.evidence:
        console.print(Text("Evidence", style="bold"))
        for ev in report.evidence:
            bits = [b for b in (f"statement {ev.statement}" if ev.statement else None,
                                f"identity {ev.identity}" if ev.identity else None,
                                ev.call) if b]
            where = f" [{', '.join(bits)}]" if bits else ""
            detail = f": {ev.detail}" if ev.detail else ""
            console.print(Text(f"- {ev.claim}{where}{detail}"))
        console.print()

    for w in report.warnings:
        console.print(Text(f"note: {w}", style="dim"))

    if show_policy and report.policy.document is not None:
        console.print()
        console.print(Text(f"Key policy ({report.policy.source})", style="bold"))
        console.print(Text(json.dumps(report.policy.document, indent=2)), soft_wrap=True)

    if report.verdict in ("locked_out", "undetermined") and hist.athena_query:
        console.print()
        console.print(Text("Older history (Athena, beyond CloudTrail's 90 days)", style="bold"))
        console.print(Text(hist.athena_query), soft_wrap=True)
    return out.getvalue()
