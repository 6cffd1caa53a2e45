"""Lint many files: the results, and their text and JSON forms (the SARIF form is in ``kms_rescue.render.sarif``).

Pure: renderers return strings or dicts; the CLI prints them and picks the exit code.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, TextIO

from kms_rescue.policy.errors import PolicyInputError
from kms_rescue.policy.input_limits import read_stream
from kms_rescue.policy.lint.findings import RULES, SEVERITIES, Finding, Severity, severity_rank
from kms_rescue.policy.lint.rules import is_lockout, lint_located
from kms_rescue.policy.partitions import partition_for_region
from kms_rescue.policy.sources import LocatedPolicy, load_policies, load_policies_from_text

#: The version of the JSON shape documented in docs/lint.md; bumped on any incompatible change.
JSON_SCHEMA_VERSION = 1


class OutputFormat(str, Enum):
    TEXT = "text"
    JSON = "json"
    SARIF = "sarif"


@dataclass(frozen=True)
class PolicyResult:
    location: LocatedPolicy
    findings: tuple[Finding, ...]

    @property
    def locked_out(self) -> bool:
        return is_lockout(self.findings)

    def to_dict(self) -> dict[str, Any]:
        loc = self.location
        return {
            "file": loc.source,
            "name": loc.name,
            "kind": loc.kind,
            "line": loc.document_line,
            "known": loc.policy is not None,
            "size_bytes": loc.size_bytes,
            "statements": len(loc.policy.statements) if loc.policy is not None else None,
            "locked_out": self.locked_out,
            "findings": [f.to_dict() for f in self.findings],
        }


@dataclass(frozen=True)
class LintReport:
    account: str
    files: tuple[str, ...]
    results: tuple[PolicyResult, ...]

    @property
    def findings(self) -> list[tuple[PolicyResult, Finding]]:
        return [(r, f) for r in self.results for f in r.findings]

    @property
    def locked_out(self) -> bool:
        return any(r.locked_out for r in self.results)

    def reaches(self, threshold: Severity) -> bool:
        """Whether any finding is at or above ``threshold``."""
        floor = severity_rank(threshold)
        return any(severity_rank(f.severity) >= floor for _, f in self.findings)

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = dict.fromkeys(SEVERITIES, 0)
        for _, f in self.findings:
            out[f.severity] += 1
        return out

    def files_without_policies(self) -> list[str]:
        seen = {r.location.source for r in self.results}
        return [f for f in self.files if f not in seen]

    def to_dict(self, *, fail_on: Severity | None = None) -> dict[str, Any]:
        counts = self.counts()
        return {
            "schema_version": JSON_SCHEMA_VERSION,
            "tool": "kms-rescue lint",
            "account": self.account,
            "files": list(self.files),
            "fail_on": fail_on,
            "locked_out": self.locked_out,
            "summary": {
                "policies": len(self.results),
                "findings": sum(counts.values()),
                "by_severity": counts,
            },
            "policies": [r.to_dict() for r in self.results],
        }


def lint_files(
    paths: Iterable[str], *, account: str, region: str = "us-east-1", stdin: TextIO | None = None
) -> LintReport:
    """Load every key policy in ``paths`` and lint it. Raises :class:`PolicyInputError` for bad input.

    A path of ``-`` reads ``stdin`` (e.g. ``terraform show -json plan.out | kms-rescue lint - ...``).
    """
    files = tuple(paths)
    partition = partition_for_region(region).id  # the partition of the fixes' ARNs (China: arn:aws-cn:…)
    results: list[PolicyResult] = []
    stdin_read = False
    for path in files:
        if path == "-" and stdin is not None:
            if stdin_read:
                raise PolicyInputError("standard input (-) can be given only once")
            stdin_read = True
            found = load_policies_from_text(read_stream(stdin, "-"), source="-", account=account, region=region)
        else:
            found = load_policies(path, account=account, region=region)
        for located in found:
            results.append(PolicyResult(located, tuple(lint_located(located, key_account=account,
                                                                   partition=partition))))
    return LintReport(account=account, files=files, results=tuple(results))


def summary_line(report: LintReport) -> str:
    counts = report.counts()
    total = sum(counts.values())
    shown = ", ".join(f"{counts[s]} {s}" for s in reversed(SEVERITIES) if counts[s])
    files = len(report.files)
    head = (
        f"{len(report.results)} key {'policy' if len(report.results) == 1 else 'policies'} in {files} "
        f"{'file' if files == 1 else 'files'}: "
    )
    body = f"{total} {'finding' if total == 1 else 'findings'}" + (f" ({shown})" if shown else "")
    if report.locked_out:
        locked = [r.location.name for r in report.results if r.locked_out]
        body += f"; LOCKED OUT: {', '.join(locked)}"
    return head + body


def render_text(report: LintReport) -> str:
    """One line per finding, ``FILE:LINE: SEVERITY RULE message``, each followed by an indented fix line."""
    lines: list[str] = []
    for result in report.results:
        loc = result.location
        multi = sum(1 for r in report.results if r.location.source == loc.source) > 1 or loc.kind != "key_policy"
        for finding in result.findings:
            where = loc.source + (f":{finding.line}" if finding.line else "")
            name = f"[{loc.name}] " if multi else ""
            rule = RULES[finding.rule_id]
            lines.append(f"{where}: {finding.severity.upper()} {finding.rule_id} {name}{finding.message} ({rule.name})")
            if finding.fix:
                lines.append(f"    fix: {finding.fix}")
    return "\n".join(lines) + ("\n" if lines else "")


def findings_at_or_above(findings: Sequence[Finding], threshold: Severity) -> list[Finding]:
    floor = severity_rank(threshold)
    return [f for f in findings if severity_rank(f.severity) >= floor]
