"""The report as Markdown (for a ticket, a chat message or an incident document)."""

from __future__ import annotations

import json

from kms_rescue.render.report_view import (
    VERDICT_TITLES,
    exists_label,
    grid,
    key_lines,
    policy_line,
    state_lines,
)
from kms_rescue.report import Report


def _esc(value: object) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def _table(headings: tuple[str, ...] | list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(_esc(h) for h in headings) + " |",
             "|" + "|".join("---" for _ in headings) + "|"]
    lines += ["| " + " | ".join(_esc(c) for c in row) + " |" for row in rows]
    return lines


def render_markdown(report: Report) -> str:
    out: list[str] = [f"# KMS key report: {VERDICT_TITLES[report.verdict]}", ""]
    out += [f"> **{line.split(': ', 1)[0]}:** {line.split(': ', 1)[1]}" for line in state_lines(report)]
    out += ["", report.summary, ""] if report.key_state else [report.summary, ""]
    out += [f"- **{label}:** `{value}`" if label in ("Key ARN", "Key id") else f"- **{label}:** {value}"
            for label, value in key_lines(report)]
    out += [f"- **Policy:** {policy_line(report)}", f"- **Generated:** {report.generated_at} "
            f"(kms-rescue {report.tool_version}, schema {report.schema_version})", ""]

    headings, rows = grid(report)
    out += ["## Identities and calls", ""]
    out += _table(list(headings), [[r.name, r.arn, r.status, *r.cells, r.manage] for r in rows])
    hints = [f"- {i.name}: {i.hint}" for i in report.identities if i.hint]
    if hints:
        out += ["", *hints]
    out.append("")

    if report.principals:
        out += ["## Principals named by the policy", ""]
        out += _table(["Principal", "Kind", "Exists", "Evidence"],
                      [[f"`{p.value}`", p.kind + (" (condition)" if p.in_condition else ""),
                        exists_label(p.exists), p.evidence] for p in report.principals])
        out.append("")
    if report.management_paths:
        out += ["## Ways in to kms:PutKeyPolicy", ""]
        out += _table(["Kind", "Principal", "Statement", "Can manage", "Why"],
                      [[m.kind, f"`{m.principal}`", m.statement, "yes" if m.can_manage else "no", m.why]
                       for m in report.management_paths])
        out.append("")

    h = report.history
    out += ["## History (CloudTrail)", ""]
    if not h.searched:
        out.append(f"Not searched{': ' + h.message if h.message else ''}.")
    elif h.outcome != "ok":
        out.append(f"LookupEvents failed: {h.outcome} ({h.error_code or ''}) {h.message or ''}".rstrip())
    elif not h.events:
        out.append(f"No management events for this key in {h.region} in the last 90 days.")
    else:
        out += _table(["Time", "Event", "Actor", "Result"],
                      [[e.time, e.name, f"`{e.actor}`" if e.actor else "-",
                        "ok" if e.succeeded else (e.error_code or "failed")] for e in h.events])
    if h.former_admins:
        out += ["", "Former administrators:", ""]
        out += [f"- `{fa.principal}`: {fa.evidence}" for fa in h.former_admins]
    out.append("")

    if report.next_steps:
        out += ["## Next steps", ""]
        for n, step in enumerate(report.next_steps, 1):
            out.append(f"{n}. {step.detail}")
            if step.command:
                out += ["", "   ```sh", f"   {step.command}", "   ```"]
            if step.policy is not None:
                body = json.dumps(step.policy, indent=2).replace("\n", "\n   ")
                out += ["", "   ```json", f"   {body}", "   ```"]
        out.append("")
    if report.evidence:
        out += ["## Evidence", ""]
        for ev in report.evidence:
            bits = [b for b in (f"statement `{ev.statement}`" if ev.statement else None,
                                f"identity `{ev.identity}`" if ev.identity else None, ev.call) if b]
            where = f" ({', '.join(bits)})" if bits else ""
            out.append(f"- {ev.claim}{where}{': ' + ev.detail if ev.detail else ''}")
        out.append("")
    if report.warnings:
        out += ["## Notes", ""] + [f"- {w}" for w in report.warnings] + [""]
    if report.policy.document is not None:
        out += [f"## Key policy ({report.policy.source})", "", "```json",
                json.dumps(report.policy.document, indent=2), "```", ""]
    if h.athena_query:
        out += ["## Older history (Athena)", "", "```sql", h.athena_query.rstrip(), "```", ""]
    return "\n".join(out)
