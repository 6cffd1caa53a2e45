"""Lint many files: the results, and their text and JSON forms (the SARIF form is in ``kms_rescue.render.sarif``).

Pure: renderers return strings or dicts; the CLI prints them and picks the exit code.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, TextIO

from kms_rescue.policy.errors import NotAPolicyError, PolicyInputError
from kms_rescue.policy.input_limits import read_stream
from kms_rescue.policy.lint.baseline import STDIN_NAME, artifact_uri, fingerprint
from kms_rescue.policy.lint.findings import RULES, SEVERITIES, Finding, Severity, severity_rank
from kms_rescue.policy.lint.inputs import expand_paths
from kms_rescue.policy.lint.rules import is_lockout, lint_located
from kms_rescue.policy.lint.suppress import FileMarkers, Suppressed, comment_markers, split_suppressed
from kms_rescue.policy.partitions import partition_for_region
from kms_rescue.policy.sources import LocatedPolicy, load_policies_from_text, read_source

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
    suppressed: tuple[Suppressed, ...] = ()  # findings an inline marker or the baseline silenced

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
            "suppressed": [
                {**s.finding.to_dict(), "suppression": s.kind, "reason": s.reason} for s in self.suppressed
            ],
        }


@dataclass(frozen=True)
class LintReport:
    account: str
    files: tuple[str, ...]  # every file read (directories expanded)
    results: tuple[PolicyResult, ...]
    skipped: tuple[tuple[str, str], ...] = ()  # (file, why): valid JSON/YAML that holds no policy
    errors: tuple[str, ...] = ()  # one line each: files that could not be read or are malformed (exit 2)
    failed: tuple[str, ...] = ()  # the files the errors are about
    notes: tuple[str, ...] = ()  # e.g. suppression markers without a reason
    not_considered: int = 0  # files under the directories given that cannot hold a policy
    repo_root: str | None = None  # what SARIF URIs and baseline paths are relative to (None: the cwd)

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
        """Files read that held a plan or template without any KMS key (not the skipped nor failed ones)."""
        seen = {r.location.input_file for r in self.results}
        skipped = {path for path, _ in self.skipped}
        return [f for f in self.files if f not in seen and f not in skipped and f not in self.failed]

    @property
    def suppressed_count(self) -> int:
        return sum(len(r.suppressed) for r in self.results)

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
                "suppressed": self.suppressed_count,
            },
            "policies": [r.to_dict() for r in self.results],
            "skipped": [{"file": path, "reason": why} for path, why in self.skipped],
            "errors": list(self.errors),
        }


def lint_files(
    paths: Iterable[str],
    *,
    account: str,
    region: str = "us-east-1",
    stdin: TextIO | None = None,
    stdin_name: str = STDIN_NAME,
    skip_rules: Collection[str] = (),
    baseline: Collection[str] = (),
    repo_root: str | os.PathLike[str] | None = None,
) -> LintReport:
    """Load every key policy in ``paths`` (directories are walked) and lint it.

    A path of ``-`` reads ``stdin`` (e.g. ``terraform show -json plan.out | kms-rescue lint - ...``), reported as
    ``stdin_name``. Findings of ``skip_rules`` are dropped; findings silenced by an inline marker or whose
    fingerprint is in ``baseline`` are kept apart in ``PolicyResult.suppressed``. A file that is valid JSON or YAML
    but no policy is listed in ``skipped``; a file that cannot be read or is malformed is an entry of ``errors``,
    and the other files are still linted. Raises :class:`PolicyInputError` only for a bad account or rule id.
    """
    unknown = sorted(set(skip_rules) - set(RULES))
    if unknown:
        raise PolicyInputError(f"--skip-rule: unknown rule {', '.join(unknown)} (see docs/rules.md)")
    given = list(paths)
    if given.count("-") > 1:
        raise PolicyInputError("standard input (-) can be given only once")
    expanded = expand_paths(given)
    errors = list(expanded.errors)
    failed: list[str] = []
    notes: list[str] = []
    skipped: list[tuple[str, str]] = []
    partition = partition_for_region(region).id  # the partition of the fixes' ARNs (China: arn:aws-cn:…)
    results: list[PolicyResult] = []
    files: list[str] = []
    texts: dict[str, str] = {}
    markers: dict[str, FileMarkers] = {}
    root = str(repo_root) if repo_root is not None else None
    baseline_prints = frozenset(baseline)

    def markers_of(source: str) -> FileMarkers:
        if source not in markers:
            text = texts.get(source)
            if text is None:
                try:
                    text = read_source(source)
                except PolicyInputError:
                    text = ""
            markers[source] = comment_markers(text, source)
            notes.extend(markers[source].notes)
        return markers[source]

    for path in expanded.files:
        source = stdin_name if path == "-" else path
        files.append(source)
        try:
            text = read_source(path) if path != "-" else (read_stream(stdin, source) if stdin is not None else "")
            texts[source] = text
            found = load_policies_from_text(text, source=source, account=account, region=region)
        except NotAPolicyError as exc:
            skipped.append((source, str(exc).removeprefix(f"{source}: ")))
            continue
        except PolicyInputError as exc:
            if not str(exc).startswith("the account must be"):
                errors.append(str(exc))
                failed.append(source)
                continue
            raise
        for located in found:
            findings = [f for f in lint_located(located, key_account=account, partition=partition)
                        if f.rule_id not in skip_rules]
            kept, silenced = split_suppressed(located, findings, markers_of(located.source).by_line, notes)
            if baseline_prints:
                uri = artifact_uri(located.source, root)
                still = [f for f in kept if fingerprint(uri, located.name, f) not in baseline_prints]
                silenced += [Suppressed(f, "in the baseline", "baseline") for f in kept if f not in still]
                kept = still
            results.append(PolicyResult(located, tuple(kept), tuple(silenced)))
    return LintReport(
        account=account,
        files=tuple(files),
        results=tuple(results),
        skipped=tuple(skipped),
        errors=tuple(errors),
        failed=tuple(failed),
        notes=tuple(dict.fromkeys(notes)),
        not_considered=expanded.not_considered,
        repo_root=root,
    )


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
    extras = []
    if report.suppressed_count:
        extras.append(f"{report.suppressed_count} suppressed")
    if report.skipped:
        extras.append(f"{len(report.skipped)} {'file' if len(report.skipped) == 1 else 'files'} skipped")
    if report.errors:
        extras.append(f"{len(report.errors)} {'file' if len(report.errors) == 1 else 'files'} with errors")
    if extras:
        body += f"; {', '.join(extras)}"
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
