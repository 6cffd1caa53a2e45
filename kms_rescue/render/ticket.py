"""The escalation ticket: everything the cloud team or AWS Support needs to act without asking back.

From a :class:`~kms_rescue.report.Report`: the key (ARN, id, account, Region, state), why nobody can manage it, every
identity tried with each call's result and time, the last known policy and former administrators from CloudTrail,
the policy to restore, and what AWS will ask for (docs/ticket.md). Three formats:

* ``markdown`` — for a ticket system or chat;
* ``email`` — plain text with ``To:`` and ``Subject:`` headers, to paste into a mail client;
* ``eml`` — an RFC 5322 message (stdlib :mod:`email`) a mail client opens as a draft, with the policy to restore
  and the report's JSON attached.

Renderers return strings or bytes and never print. No credential ever appears: the report holds none (every AWS
message in it was redacted when it was recorded), and the commands scrub the run's own credentials once more.
"""

from __future__ import annotations

import datetime as _dt
import email.policy
import email.utils
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from email.message import EmailMessage
from enum import Enum
from typing import Any

from kms_rescue.default_policy import DELEGATION_SID, default_key_policy
from kms_rescue.plan import deleted_principals, propose_fix
from kms_rescue.policy import PolicyInputError
from kms_rescue.policy.evaluate import key_arn_parts
from kms_rescue.policy.partitions import DEFAULT_PARTITION
from kms_rescue.render.report_view import state_lines
from kms_rescue.report import Report

TICKET_KINDS = ("markdown", "email", "eml")

#: What AWS asks for before it restores access to a key (docs/ticket.md).
AWS_WILL_ASK = (
    "The account's phone number on file must be current: AWS verifies the request with a call to it.",
    "The case should be opened by (or with) the account's root user: AWS works with the root user to restore "
    "access.",
    "AWS may ask for a recovery IAM user to exist in the account, to give access to; create one if asked "
    "(no access keys needed).",
    "The key ARN and key ID above, and the policy you want in place (\"The policy to restore\").",
    "It can take days, not hours: AWS verifies who is asking before it changes a key policy. Prepare now: access "
    "to the root user's email address and its MFA device, someone to answer the account's phone, and the name of "
    "the recovery IAM user. If the key is scheduled for deletion, cancel the deletion first or say so in the case.",
)


class TicketFormat(str, Enum):
    markdown = "markdown"
    email = "email"
    eml = "eml"


@dataclass(frozen=True)
class CaseInfo:
    """The outcome of ``--open-case``, for the ticket's "AWS Support case" section."""

    opened: bool
    case_id: str | None = None
    fallback_reason: str | None = None
    console_url: str | None = None


@dataclass(frozen=True)
class Ticket:
    """A rendered-independent ticket: the subject, the markdown body, the policy to restore, the recipient."""

    subject: str
    body: str
    to: str | None
    key_id: str
    generated_at: str
    restore_policy: dict[str, Any] | None
    report: Report


# --- helpers ---------------------------------------------------------------------------------------------------


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ").strip() or "—"


def _json_block(doc: Any) -> list[str]:
    return ["```json", json.dumps(doc, indent=2, ensure_ascii=False), "```"]


def restore_policy_for(report: Report) -> tuple[dict[str, Any] | None, str]:
    """The policy to ask for, and where it comes from: the key's policy (live, else the last one CloudTrail
    recorded) with every statement kept and the default account statement added back; AWS's default key policy
    when no policy is known."""
    key_arn = report.key.arn
    account = report.key.account
    if not key_arn or not account:
        return None, "the key's ARN is unknown, so no policy can be proposed"
    base = report.policy.document
    origin = {"live": "the key's current policy", "cloudtrail": "the last policy CloudTrail recorded"}.get(
        report.policy.source, "")
    if base is None and report.history.last_policy is not None:
        base, origin = report.history.last_policy.document, "the last policy CloudTrail recorded"
    partition = (key_arn_parts(key_arn) or {}).get("partition") or DEFAULT_PARTITION
    if base is None:
        return default_key_policy(account, partition), "AWS's default key policy (no earlier policy is known)"
    try:
        plan = propose_fix(base, key_arn=key_arn, deleted_principals=deleted_principals(report.principals))
    except (PolicyInputError, ValueError):
        return default_key_policy(account, partition), "AWS's default key policy (the known policy could not be read)"
    if not plan.changed:
        return plan.proposed, f"{origin}, unchanged: it already has the \"{DELEGATION_SID}\" statement"
    kept = ("every statement kept" if not plan.removals else
            "every statement kept but the deleted principals KMS would refuse (listed below)")
    return plan.proposed, (f"{origin}, {kept}, with AWS's default \"{DELEGATION_SID}\" statement added "
                           "so the account's IAM administrators and its root user can manage the key again")


def _removed_principals(report: Report) -> list[str]:
    """What the policy to restore leaves out, and why (KMS would refuse it with those principals)."""
    base = report.policy.document
    if base is None or not report.key.arn:
        return []
    try:
        plan = propose_fix(base, key_arn=report.key.arn, deleted_principals=deleted_principals(report.principals))
    except (PolicyInputError, ValueError):
        return []
    return [f"Left out of statement {r.statement}: {r.value} ({r.reason})." for r in plan.removals]


def subject_for(report: Report) -> str:
    key = report.key
    where = f"account {key.account or 'unknown'}, {key.region}"
    ident = key.id or key.input
    if report.intentional_lock:
        return f"KMS key locked on purpose (Nitro Enclaves): {ident} ({where})"
    return {
        "locked_out": f"KMS key locked out, please restore key policy access: {ident} ({where})",
        "undetermined": f"KMS key policy unreadable, access unknown: {ident} ({where})",
        "recoverable": f"KMS key needs its policy repaired inside the account: {ident} ({where})",
        "manageable": f"KMS key manageable, for the record: {ident} ({where})",
        "not_found": f"KMS key not found, no escalation needed: {ident} ({where})",
    }[report.verdict]


def _request_line(report: Report) -> str:
    key = report.key
    if report.intentional_lock:
        return ("**No action requested:** the key policy limits the key to Nitro Enclaves attestation on purpose; "
                "it is not a lockout.")
    return {
        "locked_out": f"**Request:** restore administrative access to the KMS key below. No principal of account "
                      f"{key.account} can call `kms:PutKeyPolicy` on it, so only AWS can replace its key policy.",
        "undetermined": "**Request:** no identity we have can read this key's policy and CloudTrail has no record "
                        "of it. Please check who can manage the key and, if nobody can, restore access.",
        "recoverable": "**Request:** nobody we tried can manage the key, but a principal of the account can "
                       "(see *Next steps*). Please do that step, or grant us the access to do it.",
        "manageable": "**For the record:** an identity we tried can still manage this key; no escalation is "
                      "needed.",
        "not_found": "**No escalation:** the key or alias does not exist where it was asked (see *Next steps* "
                     "for where it is, or check the key id and Region). A key that does not exist is not a case "
                     "for AWS Support.",
    }[report.verdict]


# --- the ticket ------------------------------------------------------------------------------------------------


def build_ticket(report: Report, *, to: str | None = None, case: CaseInfo | None = None) -> Ticket:
    """The ticket for ``report`` (``to``: the escalation address; ``case``: the result of ``--open-case``)."""
    key = report.key
    lines: list[str] = [f"# {subject_for(report)}", ""]
    lines += [f"**{line.split(': ', 1)[0]}:** {line.split(': ', 1)[1]}" for line in state_lines(report)]
    lines += (["", _request_line(report), "", report.summary, ""] if report.key_state else
              [_request_line(report), "", report.summary, ""])

    lines += ["## The key", "", "| Field | Value |", "|---|---|"]
    rows = [
        ("Key ARN", key.arn or "unknown (no identity could resolve it)"),
        ("Key ID", key.id),
        ("Account", key.account),
        ("Region", key.region),
        ("Key state", key.state or "unknown (DescribeKey was not allowed)"),
        ("Aliases", ", ".join(key.aliases) if key.aliases else None),
        ("Multi-Region", {True: "yes", False: "no"}.get(key.multi_region) if key.multi_region is not None else None),
        ("Created", key.creation_date),
        ("Verdict", f"{report.verdict} (kms-rescue exit code {report.exit_code})"),
    ]
    lines += [f"| {_cell(a)} | {_cell(b)} |" for a, b in rows]
    lines.append("")

    if report.management_paths:
        lines += ["## Who could manage the key, by its policy", ""]
        policy_note = report.policy.note or report.policy.source
        lines.append(f"Policy analysed: {policy_note}.")
        lines.append("")
        for p in report.management_paths:
            mark = "can manage" if p.can_manage else "cannot manage"
            lines.append(f"- **{p.principal}** (statement {p.statement}): {mark}: {p.why}")
        lines.append("")

    lines += ["## Identities tried", "", "| Identity | Principal | Call | Result | Error | Time (UTC) | ms |",
              "|---|---|---|---|---|---|---|"]
    for ident in report.identities:
        principal = ident.arn or ident.role_arn or "—"
        if not ident.calls:
            lines.append(f"| {_cell(ident.name)} | {_cell(principal)} | — | {_cell(ident.status)} | — | — | — |")
        for call in ident.calls:
            error = call.error_code or ""
            lines.append(
                f"| {_cell(ident.name)} | {_cell(principal)} | {_cell(call.operation)} | {_cell(call.outcome)} | "
                f"{_cell(error)} | {_cell(call.at)} | {call.duration_ms} |"
            )
    lines.append("")
    verdicts = [i for i in report.identities if i.why]
    if verdicts:
        lines += ["Can each identity call `kms:PutKeyPolicy`?", ""]
        for ident in verdicts:
            can = {True: "yes", False: "no", None: "unknown"}[ident.can_manage]
            lines.append(f"- {ident.name}: {can}: {ident.why}")
        lines.append("")

    hist = report.history
    lines += ["## History (CloudTrail, last 90 days)", ""]
    if not hist.searched:
        lines.append("CloudTrail was not searched (no identity of the key's account had working credentials).")
    elif hist.outcome not in (None, "ok"):
        lines.append(f"CloudTrail could not be read ({hist.error_code or hist.outcome}).")
    elif not hist.events:
        lines.append("No CreateKey, PutKeyPolicy, ScheduleKeyDeletion or DisableKey event for this key in the last "
                     "90 days.")
    else:
        lines += ["| Time (UTC) | Event | By | Result |", "|---|---|---|---|"]
        for ev in hist.events:
            result = "ok" if ev.succeeded else f"failed ({ev.error_code})"
            lines.append(f"| {_cell(ev.time)} | {_cell(ev.name)} | {_cell(ev.actor)} | {_cell(result)} |")
    lines.append("")
    if hist.former_admins:
        lines += ["### Former administrators", ""]
        for admin in hist.former_admins:
            lines.append(f"- {admin.principal}: {admin.evidence}")
        lines.append("")
    if hist.last_policy is not None:
        lp = hist.last_policy
        lines += ["### Last known key policy", "",
                  f"From {lp.name} by {lp.actor or 'unknown'} at {lp.time}" + (f" ({lp.note})" if lp.note else "")
                  + ":", ""]
        lines += _json_block(lp.document)
        lines.append("")
    elif report.policy.document is not None:
        lines += ["### Current key policy", "", f"{report.policy.note or 'read live'}:", ""]
        lines += _json_block(report.policy.document)
        lines.append("")

    restore, origin = restore_policy_for(report)
    if not report.intentional_lock and report.verdict != "manageable":
        lines += ["## The policy to restore", ""]
        if restore is None:
            lines.append(origin + ".")
        else:
            lines += [f"Proposed: {origin}.", ""]
            lines += _json_block(restore)
            for change in _removed_principals(report):
                lines += ["", change]
        lines.append("")

    if report.verdict in ("locked_out", "undetermined") and not report.intentional_lock:
        lines += ["## What AWS will ask for", ""]
        lines += [f"- {item}" for item in AWS_WILL_ASK]
        lines.append("")

    if case is not None:
        lines += ["## AWS Support case", ""]
        if case.opened:
            lines.append(f"Opened through the AWS Support API: case {case.case_id}.")
        else:
            lines.append(f"Not opened through the API: {case.fallback_reason}. Open it in the console: "
                         f"{case.console_url}")
        lines.append("")

    if report.next_steps:
        lines += ["## Next steps", ""]
        for step in report.next_steps:
            if step.command and step.command.startswith("kms-rescue ticket"):
                step = replace(step, command=None)  # this ticket is that step
            lines.append(f"- {step.detail}")
            if step.command:
                lines.append(f"  `{step.command}`")
        lines.append("")
    if report.warnings:
        lines += ["## Limits of this investigation", ""]
        lines += [f"- {w}" for w in report.warnings]
        lines.append("")

    lines.append(f"_Generated by kms-rescue {report.tool_version} at {report.generated_at}. It contains no "
                 "credentials._")
    body = "\n".join(lines) + "\n"
    return Ticket(subject=subject_for(report), body=body, to=to, key_id=key.id or "unknown",
                  generated_at=report.generated_at, restore_policy=restore, report=report)


# --- formats ---------------------------------------------------------------------------------------------------


def render_markdown(ticket: Ticket) -> str:
    return ticket.body


def plain_text(markdown: str) -> str:
    """The ticket's Markdown as plain text for an email body: headings underlined, ``**bold**`` and backticks
    dropped, each table row as ``field: value`` (or its cells separated by "; "), code blocks indented."""
    out: list[str] = []
    in_code = False
    header: list[str] | None = None
    for line in markdown.splitlines():
        if line.startswith("```"):
            in_code = not in_code
            continue
        if in_code:
            out.append("    " + line)
            continue
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if all(set(c) <= set("-: ") for c in cells):
                continue
            if header is None:
                header = cells
                continue
            if len(cells) == 2:
                out.append(f"{cells[0]}: {cells[1]}")
            else:
                out.append("; ".join(f"{h}: {c}" for h, c in zip(header, cells, strict=False) if c and c != "—"))
            continue
        header = None
        text = re.sub(r"\*\*(.+?)\*\*", r"\1", line).replace("`", "")
        text = re.sub(r"^_(.+)_$", r"\1", text)
        heading = re.match(r"^(#+) (.*)$", text)
        if heading:
            title = heading.group(2)
            out += [title, ("=" if len(heading.group(1)) == 1 else "-") * len(title)]
            continue
        out.append(text)
    return "\n".join(out).rstrip("\n") + "\n"


def render_email(ticket: Ticket) -> str:
    """Plain text with ``To:`` and ``Subject:`` headers, then a blank line and the body as plain text (no
    Markdown tables: mail clients show them as pipes)."""
    return f"To: {ticket.to or ''}\nSubject: {ticket.subject}\n\n{plain_text(ticket.body)}"


def _date_header(generated_at: str) -> str | None:
    try:
        moment = _dt.datetime.fromisoformat(generated_at.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=_dt.timezone.utc)
    return email.utils.format_datetime(moment)


def render_eml(ticket: Ticket) -> bytes:
    """An RFC 5322 message a mail client opens as an unsent draft, with the policy to restore and the report's
    JSON attached. The MIME boundary is derived from the key id, so the output is reproducible."""
    msg = EmailMessage()
    msg["To"] = ticket.to or ""
    msg["Subject"] = ticket.subject
    date = _date_header(ticket.generated_at)
    if date:
        msg["Date"] = date
    msg["X-Unsent"] = "1"  # mail clients open it as a draft to send
    msg.set_content(plain_text(ticket.body), cte="quoted-printable")
    if ticket.restore_policy is not None:
        msg.add_attachment(json.dumps(ticket.restore_policy, indent=2).encode("utf-8") + b"\n",
                           maintype="application", subtype="json", filename="policy-to-restore.json")
    report_json = json.dumps(ticket.report.to_dict(), indent=2)
    msg.add_attachment(report_json.encode("utf-8") + b"\n", maintype="application", subtype="json",
                       filename="kms-rescue-report.json")
    msg.set_boundary(f"kms-rescue-{re.sub(r'[^A-Za-z0-9-]', '', ticket.key_id)}")
    return msg.as_bytes(policy=email.policy.SMTP)


def render(ticket: Ticket, fmt: TicketFormat | str) -> str | bytes:
    kind = TicketFormat(fmt)
    if kind is TicketFormat.markdown:
        return render_markdown(ticket)
    if kind is TicketFormat.email:
        return render_email(ticket)
    return render_eml(ticket)


def default_filename(ticket: Ticket, fmt: TicketFormat | str) -> str:
    ext = {"markdown": "md", "email": "txt", "eml": "eml"}[TicketFormat(fmt).value]
    return f"kms-rescue-ticket-{ticket.key_id}.{ext}"


def valid_address(value: str) -> bool:
    """A plain ``name@domain`` address (what --to and the config accept)."""
    return re.fullmatch(r"[^@\s<>,;]+@[^@\s<>,;]+\.[^@\s<>,;]+", value.strip()) is not None


__all__: Sequence[str] = [
    "AWS_WILL_ASK",
    "CaseInfo",
    "Ticket",
    "TicketFormat",
    "build_ticket",
    "default_filename",
    "plain_text",
    "render",
    "render_email",
    "render_eml",
    "render_markdown",
    "restore_policy_for",
    "subject_for",
    "valid_address",
]
