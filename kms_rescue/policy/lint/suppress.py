"""Inline suppression markers: ``kms-rescue: ignore KR004 <reason>``, documented in ``docs/lint.md``.

A marker silences the named rules where it stands, and only with a reason:

* in a comment (``#`` in YAML and HCL, ``//`` in HCL): for findings on the comment's own line, and, when the comment
  is alone on its line, on the next line that is neither blank nor a comment (put it just above a statement, or
  just above ``KeyPolicy:`` for a policy-wide finding);
* in a statement's ``Sid`` (key policy Sids may contain spaces): for that statement's findings;
* in the policy's ``Id``: for every finding of that policy;
* in a CloudFormation resource's ``Metadata``: ``kms-rescue: {ignore: [{rule: KR004, reason: ...}]}`` for every
  finding of that key's policy (the place cfn-lint and checkov keep their own suppressions).

JSON has no comments, so a plain key policy uses its ``Sid`` or ``Id``. A marker without a reason, or naming a rule
that does not exist, silences nothing and is reported as a note.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from kms_rescue.policy.lint.findings import RULES, Finding
from kms_rescue.policy.sources import LocatedPolicy

MARKER_RE = re.compile(r"kms-rescue:\s*ignore\s+(KR\d{3}(?:\s*,\s*KR\d{3})*)(?:[ \t]+([^\r\n]*))?", re.IGNORECASE)
_COMMENT_RE = re.compile(r"(?:^|\s)(?:#|//)")


@dataclass(frozen=True)
class Marker:
    rule_ids: frozenset[str]
    reason: str
    where: str  # "FILE:LINE", "FILE (Sid ...)" for notes


@dataclass(frozen=True)
class Suppressed:
    finding: Finding
    reason: str
    kind: str  # "inline" or "baseline"


def parse_marker(text: str) -> tuple[frozenset[str], str] | None:
    """(rule ids, reason) of the first marker in ``text``; the reason may be empty. None without a marker."""
    match = MARKER_RE.search(text)
    if match is None:
        return None
    ids = frozenset(part.strip().upper() for part in match.group(1).split(","))
    return ids, (match.group(2) or "").strip().rstrip("\"'").strip()


@dataclass
class FileMarkers:
    """The comment markers of one file's text, by the line they cover."""

    by_line: dict[int, list[Marker]]
    notes: list[str]


def comment_markers(text: str, source: str) -> FileMarkers:
    """Markers written in comments, keyed by each line they cover (1-based)."""
    by_line: dict[int, list[Marker]] = {}
    notes: list[str] = []
    lines = text.splitlines()
    pending: list[Marker] = []
    for number, line in enumerate(lines, 1):
        stripped = line.strip()
        comment = _COMMENT_RE.search(line)
        parsed = parse_marker(line[comment.start():]) if comment else None
        marker: Marker | None = None
        if parsed is not None:
            marker = _checked(parsed, f"{source}:{number}", notes)
        comment_only = stripped.startswith(("#", "//"))
        if comment_only or not stripped:
            if marker is not None:
                pending.append(marker)
                by_line.setdefault(number, []).append(marker)
            continue
        if marker is not None:
            by_line.setdefault(number, []).append(marker)
        if pending:
            by_line.setdefault(number, []).extend(pending)
            pending = []
    return FileMarkers(by_line, notes)


def _checked(parsed: tuple[frozenset[str], str], where: str, notes: list[str]) -> Marker | None:
    ids, reason = parsed
    unknown = sorted(i for i in ids if i not in RULES)
    if unknown:
        notes.append(f"{where}: suppression names unknown rule {', '.join(unknown)}; it silences nothing")
        return None
    if not reason:
        notes.append(f"{where}: suppression of {', '.join(sorted(ids))} gives no reason; it silences nothing")
        return None
    return Marker(ids, reason, where)


def policy_markers(located: LocatedPolicy, notes: list[str]) -> tuple[list[Marker], dict[int, list[Marker]]]:
    """Markers in the policy's ``Id`` (whole policy) and in each statement's ``Sid`` (by statement index)."""
    whole: list[Marker] = []
    by_statement: dict[int, list[Marker]] = {}
    for entry in located.declared_ignores:
        where = f"{located.source} ({located.name} Metadata)"
        rule = entry.get("rule") if isinstance(entry, dict) else None
        reason = entry.get("reason") if isinstance(entry, dict) else None
        if not isinstance(rule, str):
            notes.append(f"{where}: an ignore entry needs a rule (and a reason); it silences nothing")
            continue
        rules = frozenset(part.strip().upper() for part in rule.split(","))
        marker = _checked((rules, reason.strip() if isinstance(reason, str) else ""), where, notes)
        if marker is not None:
            whole.append(marker)
    policy = located.policy
    if policy is None:
        return whole, by_statement
    if isinstance(policy.policy_id, str):
        parsed = parse_marker(policy.policy_id)
        if parsed is not None:
            marker = _checked(parsed, f"{located.source} ({located.name} Id)", notes)
            if marker is not None:
                whole.append(marker)
    for statement in policy.statements:
        if isinstance(statement.sid, str):
            parsed = parse_marker(statement.sid)
            if parsed is not None:
                marker = _checked(parsed, f"{located.source} ({located.name} {statement.label})", notes)
                if marker is not None:
                    by_statement.setdefault(statement.index, []).append(marker)
    return whole, by_statement


def split_suppressed(
    located: LocatedPolicy,
    findings: Iterable[Finding],
    file_markers: Mapping[int, list[Marker]],
    notes: list[str],
) -> tuple[list[Finding], list[Suppressed]]:
    """(findings still reported, findings an inline marker silences)."""
    whole, by_statement = policy_markers(located, notes)
    kept: list[Finding] = []
    silenced: list[Suppressed] = []
    for finding in findings:
        candidates = list(whole)
        if finding.statement_index is not None:
            candidates += by_statement.get(finding.statement_index, [])
        if finding.line is not None:
            candidates += file_markers.get(finding.line, [])
        marker = next((m for m in candidates if finding.rule_id in m.rule_ids), None)
        if marker is None:
            kept.append(finding)
        else:
            silenced.append(Suppressed(finding, marker.reason, "inline"))
    return kept, silenced
