"""``kms-rescue audit``'s outputs: text (a rich table sorted by risk), JSON (the contract, streamed), SARIF 2.1.0,
Markdown and CSV (docs/audit.md, "Outputs"). Returns strings and never prints.

Each format is a writer with three steps: :meth:`AuditWriter.begin`, :meth:`AuditWriter.add` for each result as it
arrives, :meth:`AuditWriter.end` with the summary. The streamed formats (JSON, SARIF, CSV) return each key's text
as soon as it is added, so the command's memory stays flat however many keys there are; the sorted ones (text,
Markdown) return the whole table at the end.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from enum import Enum
from typing import Any

from rich.console import Console
from rich.table import Table

from kms_rescue import __version__
from kms_rescue.audit.findings import LIVE_RULES
from kms_rescue.audit.model import (
    SCHEMA_VERSION,
    SEVERITIES,
    AuditError,
    AuditItem,
    KeyAudit,
    severity_rank,
    to_json,
)
from kms_rescue.policy.lint.findings import RULES
from kms_rescue.render.sarif import information_uri

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
#: SARIF level per severity (SARIF has error, warning, note, none), as for lint (kms_rescue/render/sarif.py).
LEVELS = {"critical": "error", "high": "error", "medium": "warning", "low": "note"}
SECURITY_SEVERITY = {"critical": "9.5", "high": "8.0", "medium": "5.5", "low": "3.0"}
_VERDICT_RISK = {"locked_out": 0, "undetermined": 1, "not_found": 2, "recoverable": 3, "manageable": 4}


class AuditFormat(str, Enum):
    text = "text"
    json = "json"
    sarif = "sarif"
    markdown = "markdown"
    csv = "csv"


def risk_key(k: KeyAudit) -> tuple[int, int, int, int, str]:
    """Most at risk first: locked out, then would be locked out by the deletions, then by the worst finding's
    severity, then by verdict; ties by key ARN."""
    worst = k.worst
    return (0 if k.verdict == "locked_out" else 1, 0 if k.verdict_if_deleted == "locked_out" else 1,
            severity_rank(worst) if worst else len(SEVERITIES), _VERDICT_RISK.get(k.verdict, 5), k.key_arn)


def _key_label(k: KeyAudit) -> str:
    return ", ".join(k.aliases) or k.key_id


def _managers(k: KeyAudit, managers: Any = None) -> str:
    ms = k.managers if managers is None else managers
    return "; ".join(f"{m.principal} ({m.how})" for m in ms) or "nobody"


def _short(principal: str) -> str:
    """``role/KeyAdmin`` for ``arn:aws:iam::111122223333:role/KeyAdmin``; ``root`` for the account's root."""
    if principal.startswith("arn:") and principal.count(":") >= 5:
        return principal.split(":", 5)[5]
    return principal


def _short_managers(k: KeyAudit, narrow: bool = False) -> str:
    # Narrow: a non-breaking space keeps "of 111122223333" whole (an account id folded in two reads as two ids).
    def label(principal: str) -> str:
        text = _short(principal)
        return text.replace("IAM principals of ", "IAM of\u00a0") if narrow else text
    return "\n".join(f"{label(m.principal)} ({m.how})" for m in k.managers) or "nobody"


class AuditWriter:
    """The interface: ``begin()``, ``add(item)`` per result, ``end(summary)``; each returns text to write."""

    def begin(self) -> str:
        return ""

    def add(self, item: AuditItem) -> str:
        raise NotImplementedError

    def end(self, summary: dict[str, Any]) -> str:
        raise NotImplementedError


class JsonWriter(AuditWriter):
    """``{"schema_version", "tool_version", "keys": [...], "summary", "errors": [...]}``: the opening, each key as
    it arrives, then the summary and errors (kms_rescue/audit.schema.json)."""

    def __init__(self) -> None:
        self._first = True
        self._errors: list[dict[str, Any]] = []

    def begin(self) -> str:
        head = json.dumps({"schema_version": SCHEMA_VERSION, "tool_version": __version__})[:-1]
        return head + ', "keys": ['

    def add(self, item: AuditItem) -> str:
        if isinstance(item, AuditError):
            self._errors.append(to_json(item))
            return ""
        sep = "\n" if self._first else ",\n"
        self._first = False
        return sep + json.dumps(to_json(item), sort_keys=False)

    def end(self, summary: dict[str, Any]) -> str:
        return (("\n" if not self._first else "") + '], "summary": ' + json.dumps(summary) + ', "errors": '
                + json.dumps(self._errors) + "}\n")


class CsvWriter(AuditWriter):
    """One row per key (stdlib csv); errors are not keys and go to stderr through the command."""

    COLUMNS = ("key_arn", "account", "region", "key_id", "aliases", "key_state", "verdict", "verdict_if_deleted",
               "managers", "findings", "worst_severity")

    def _row(self, values: list[Any]) -> str:
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerow(values)
        return buf.getvalue()

    def begin(self) -> str:
        return self._row(list(self.COLUMNS))

    def add(self, item: AuditItem) -> str:
        if isinstance(item, AuditError):
            return ""
        return self._row([item.key_arn, item.account, item.region, item.key_id, " ".join(item.aliases),
                          item.key_state or "", item.verdict, item.verdict_if_deleted or "",
                          "; ".join(f"{m.principal} ({m.how})" for m in item.managers),
                          " ".join(f.rule for f in item.findings), item.worst or ""])

    def end(self, summary: dict[str, Any]) -> str:
        return ""


def _rule_meta(rule_id: str) -> tuple[str, str, str, str]:
    """(name, severity, summary, help URI) of a live rule or a lint rule."""
    live = LIVE_RULES.get(rule_id)
    if live is not None:
        return live.name, live.severity, live.summary, live.help_uri
    lint = RULES[rule_id]
    return lint.name, lint.severity, lint.summary, lint.help_uri


def _sarif_rule(rule_id: str) -> dict[str, Any]:
    name, severity, summary, uri = _rule_meta(rule_id)
    doc = "docs/audit.md" if rule_id in LIVE_RULES else "docs/rules.md"
    return {
        "id": rule_id, "name": "".join(p.capitalize() for p in name.split("-")),
        "shortDescription": {"text": summary}, "fullDescription": {"text": summary},
        "help": {"text": f"{summary}\n\nAWS documentation: {uri}",
                 "markdown": f"**{summary}**\n\nSee [the AWS documentation]({uri}) and {rule_id} in kms-rescue's "
                             f"{doc}."},
        "helpUri": uri, "defaultConfiguration": {"level": LEVELS[severity]},
        "properties": {"security-severity": SECURITY_SEVERITY[severity], "precision": "high",
                       "tags": ["security", "aws", "kms", severity]},
    }


class SarifWriter(AuditWriter):
    """SARIF 2.1.0: one result per finding, located at the key (its ARN as the artifact and logical location).
    The rules come last (SARIF does not order properties), once every rule used is known."""

    def __init__(self) -> None:
        self._first = True
        self._rules: list[str] = []

    def begin(self) -> str:
        return ('{"$schema": "' + SARIF_SCHEMA + '", "version": "2.1.0", "runs": [{"columnKind": '
                '"unicodeCodePoints", "results": [')

    def add(self, item: AuditItem) -> str:
        if isinstance(item, AuditError):
            return ""
        out = []
        for f in item.findings:
            if f.rule not in self._rules:
                self._rules.append(f.rule)
            where = f"{item.key_arn}/{f.statement}" if f.statement else item.key_arn
            digest = hashlib.sha256(f"{item.key_arn}\0{f.rule}\0{f.statement or ''}\0{f.message}".encode()).hexdigest()
            result = {
                "ruleId": f.rule, "ruleIndex": self._rules.index(f.rule), "level": LEVELS[f.severity],
                "message": {"text": f"{_key_label(item)} ({item.region}): {f.message}"},
                "locations": [{
                    "physicalLocation": {"artifactLocation": {"uri": item.key_arn}},
                    "logicalLocations": [{"name": f.statement or item.key_id, "fullyQualifiedName": where,
                                          "kind": "resource"}],
                }],
                "partialFingerprints": {"kmsRescueAudit/v1": digest[:32]},
                "properties": {"severity": f.severity, "verdict": item.verdict, "account": item.account,
                               "region": item.region},
            }
            out.append(("\n" if self._first else ",\n") + json.dumps(result))
            self._first = False
        return "".join(out)

    def end(self, summary: dict[str, Any]) -> str:
        driver = {"name": "kms-rescue", "semanticVersion": __version__, "version": __version__,
                  "informationUri": information_uri(), "rules": [_sarif_rule(r) for r in self._rules]}
        return '], "tool": {"driver": ' + json.dumps(driver) + "}}]}\n"


class _Collecting(AuditWriter):
    def __init__(self) -> None:
        self.keys: list[KeyAudit] = []
        self.errors: list[AuditError] = []

    def add(self, item: AuditItem) -> str:
        (self.errors if isinstance(item, AuditError) else self.keys).append(item)  # type: ignore[arg-type]
        return ""

    def sorted_keys(self) -> list[KeyAudit]:
        return sorted(self.keys, key=risk_key)


def _summary_line(summary: dict[str, Any]) -> str:
    v = summary["verdicts"]
    parts = [f"{summary['keys']} keys", *(f"{n} {name.replace('_', ' ')}" for name, n in v.items() if n)]
    f = summary["findings"]
    found = ", ".join(f"{n} {s}" for s, n in f.items() if n) or "none"
    line = f"{'; '.join(parts)}. Findings: {found}."
    if summary.get("would_lose_last_manager"):
        line += f" {summary['would_lose_last_manager']} would be locked out by the deletions."
    if summary.get("errors"):
        line += f" {summary['errors']} accounts or Regions could not be audited."
    return line


#: Below this many columns the text table lists rule ids without their names.
NARROW = 120


class TextWriter(_Collecting):
    """A rich table, most at risk first, then the summary and what could not be audited."""

    def __init__(self, *, width: int = 120, color: bool = False) -> None:
        super().__init__()
        self.width = width
        self.color = color

    def end(self, summary: dict[str, Any]) -> str:
        buf = io.StringIO()
        console = Console(file=buf, width=self.width, force_terminal=self.color, no_color=not self.color,
                          highlight=False, emoji=False)
        keys = self.sorted_keys()
        if_deleted = any(k.verdict_if_deleted is not None for k in keys)
        table = Table(title="KMS keys, most at risk first", show_lines=False, expand=False)
        # Short words never break (a verdict, a Region, a rule id, an account id cut in two reads as another
        # id); below NARROW columns the findings are their rule ids alone (the names are in docs/audit.md).
        narrow = self.width < NARROW
        wide_if_deleted = if_deleted and not narrow
        table.add_column("risk", no_wrap=True)
        table.add_column("verdict\n→ if deleted" if if_deleted and narrow else "verdict", no_wrap=True)
        if wide_if_deleted:
            table.add_column("if deleted", no_wrap=True)
        table.add_column("key, region" if narrow else "key", overflow="fold", min_width=12)
        if not narrow:
            table.add_column("region", no_wrap=True)
        table.add_column("managers", overflow="fold", min_width=16)
        table.add_column("rules" if narrow else "findings", overflow="fold", min_width=5)
        for k in keys:
            verdict = k.verdict
            if if_deleted and narrow:
                verdict += f"\n→ {k.verdict_if_deleted or '-'}"
            row = [k.worst or "-", verdict]
            if wide_if_deleted:
                row.append(k.verdict_if_deleted or "-")
            findings = [f.rule if narrow else f"{f.rule} {_rule_meta(f.rule)[0]}" for f in k.findings]
            row += [f"{_key_label(k)}\n{k.region}"] if narrow else [_key_label(k), k.region]
            row += [_short_managers(k, narrow), "\n".join(findings) or "-"]
            table.add_row(*row)
        if keys:
            console.print(table)
        else:
            console.print("No keys found.")
        console.print(_summary_line(summary))
        if keys:
            console.print("Each finding's message is in --format json or markdown; the rules are in docs/audit.md.")
        for e in self.errors:
            console.print(f"could not audit {e.account or '?'} {e.region or ''} ({e.stage}): {e.error}: {e.message}")
        return buf.getvalue()


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


class MarkdownWriter(_Collecting):
    def end(self, summary: dict[str, Any]) -> str:
        keys = self.sorted_keys()
        if_deleted = any(k.verdict_if_deleted is not None for k in keys)
        head = ["Risk", "Verdict", *(["If deleted"] if if_deleted else []), "Key", "Region", "Managers", "Findings"]
        lines = ["# KMS key audit", "", _summary_line(summary), "",
                 "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for k in keys:
            row = [k.worst or "-", k.verdict, *([k.verdict_if_deleted or "-"] if if_deleted else []),
                   f"`{k.key_arn}` {', '.join(k.aliases)}".strip(), k.region, _managers(k),
                   "<br>".join(f"{f.rule}: {f.message}" for f in k.findings) or "-"]
            lines.append("| " + " | ".join(_md(c) for c in row) + " |")
        if self.errors:
            lines += ["", "## Not audited", ""]
            lines += [f"- {e.account or '?'} {e.region or ''} ({e.stage}): {_md(e.message)}" for e in self.errors]
        return "\n".join(lines) + "\n"


def writer_for(fmt: AuditFormat, *, width: int = 120, color: bool = False) -> AuditWriter:
    """The writer of ``fmt`` (every member of :class:`AuditFormat` has one)."""
    if fmt is AuditFormat.json:
        return JsonWriter()
    if fmt is AuditFormat.csv:
        return CsvWriter()
    if fmt is AuditFormat.sarif:
        return SarifWriter()
    if fmt is AuditFormat.markdown:
        return MarkdownWriter()
    return TextWriter(width=width, color=color)
