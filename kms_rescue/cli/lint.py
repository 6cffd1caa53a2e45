"""``kms-rescue lint``: find key policies that lock their key out (or are one step from it) before they ship."""

from __future__ import annotations

import json
import sys
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from kms_rescue.cli._io import write_payload
from kms_rescue.cli.options import account_id
from kms_rescue.errors import UsageError
from kms_rescue.policy.lint import lint_files, render_text, summary_line
from kms_rescue.policy.lint.baseline import STDIN_NAME, artifact_uri, baseline_document, is_baseline, read_baseline
from kms_rescue.policy.partitions import is_region_code
from kms_rescue.status import ExitStatus

if TYPE_CHECKING:
    from kms_rescue.policy.lint.findings import Severity
    from kms_rescue.policy.lint.report import LintReport

class LintFormat(str, Enum):
    text = "text"
    json = "json"
    sarif = "sarif"


class FailOn(str, Enum):
    low = "low"
    medium = "medium"
    high = "high"
    critical = "critical"


EPILOG = (
    "Examples: kms-rescue lint key-policy.json --account 111122223333 · "
    "kms-rescue lint infra/ --account 111122223333 --format sarif --output lint.sarif --repo-root . · "
    "terraform show -json plan.out > plan.json && kms-rescue lint plan.json --account 111122223333. "
    "Exit status: the first that applies of 2 bad input, 4 a reported lockout, 8 a reported finding at or above "
    "--fail-on, else 0; --soft-fail turns 4 and 8 into 0 (docs/exit-status.md). Rules: docs/rules.md; CI use: "
    "docs/lint.md."
)


def register(app: typer.Typer) -> None:
    @app.command("lint", epilog=EPILOG)
    def lint(
        files: list[str] = typer.Argument(
            ..., metavar="PATH",
            help="Key policy JSON/YAML, Terraform plan JSON (terraform show -json), CloudFormation JSON/YAML, or a "
            "directory (walked recursively, kinds detected by content); - reads standard input.",
        ),
        account: str = typer.Option(
            ..., "--account", help="The 12-digit account that owns the key(s) (${AWS::AccountId} in templates)."
        ),
        region: str = typer.Option("us-east-1", "--region", help="${AWS::Region} in CloudFormation templates."),
        fmt: LintFormat = typer.Option(LintFormat.text, "--format", help="Output format."),
        fail_on: FailOn = typer.Option(
            FailOn.high, "--fail-on", help="Exit 8 when a reported finding is at least this severe."
        ),
        output: str | None = typer.Option(None, "--output", "-o", help="Write the report to FILE, not stdout."),
        force: bool = typer.Option(False, "--force", help="Replace the --output file if it exists."),
        skip_rule: list[str] = typer.Option(
            [], "--skip-rule", metavar="ID", help="Do not run rule ID (e.g. KR005); repeatable."
        ),
        baseline: str | None = typer.Option(
            None, "--baseline", metavar="FILE", help="Do not report findings already in this baseline file."
        ),
        write_baseline: str | None = typer.Option(
            None, "--write-baseline", metavar="FILE",
            help="Write the findings reported now to FILE as a baseline (a new file, or an older baseline), exit 0.",
        ),
        soft_fail: bool = typer.Option(
            False, "--soft-fail", help="Report findings and lockouts but exit 0 (bad input is still exit 2)."
        ),
        repo_root: str | None = typer.Option(
            None, "--repo-root", metavar="DIR",
            help="SARIF URIs and baseline paths are relative to DIR (default: the current directory).",
        ),
        stdin_name: str = typer.Option(
            STDIN_NAME, "--stdin-name", metavar="NAME", help="The file name standard input (-) is reported as."
        ),
    ) -> None:
        """Lint KMS key policies for lockouts and the mistakes that lead to them."""

        account_id(account, "--account")
        if not is_region_code(region):  # botocore's partition data, matched whole (no trailing newline)
            raise UsageError(f"--region must be an AWS Region code such as us-east-1, not {region!r}")
        if repo_root is not None and not Path(repo_root).is_dir():
            raise UsageError(f"--repo-root {repo_root}: not a directory")
        if not stdin_name.strip() or stdin_name == "-":
            raise UsageError("--stdin-name must be a file name, such as plan.json")
        known = read_baseline(baseline) if baseline else frozenset()
        if write_baseline:
            _check_baseline_target(write_baseline)
        report = lint_files(
            files, account=account, region=region, stdin=sys.stdin, stdin_name=stdin_name,
            skip_rules=[r.upper() for r in skip_rule], baseline=known, repo_root=repo_root,
        )
        for message in report.errors:
            typer.echo(f"kms-rescue: error: {message}", err=True)
        for path, why in report.skipped:
            typer.echo(f"kms-rescue lint: {path}: skipped: {why}", err=True)
        for path in report.files_without_policies():
            typer.echo(f"kms-rescue lint: {path}: no KMS key policies found", err=True)
        for note in report.notes:
            typer.echo(f"kms-rescue lint: {note}", err=True)
        if report.errors and not report.results:
            raise typer.Exit(ExitStatus.USAGE)
        if fmt is LintFormat.json:
            payload = json.dumps(report.to_dict(fail_on=fail_on.value), indent=2)
        elif fmt is LintFormat.sarif:
            # Deferred for start-up time: --help, lint and explain never load the report layer.
            from kms_rescue.render.sarif import sarif_json

            payload = sarif_json(report)
        else:
            payload = render_text(report)
        if payload or output:
            write_payload(payload, output, force=force)
        typer.echo(f"kms-rescue lint: {summary_line(report)}", err=True)
        if write_baseline:
            if report.errors:
                typer.echo(f"kms-rescue: error: {write_baseline} not written: fix the files above first", err=True)
                raise typer.Exit(ExitStatus.USAGE)
            _write_baseline(report, write_baseline)
            raise typer.Exit(ExitStatus.OK)
        raise typer.Exit(exit_status(report, fail_on.value, soft_fail=soft_fail))


def exit_status(report: LintReport, fail_on: Severity, *, soft_fail: bool = False) -> ExitStatus:
    """The one exit-status rule (docs/lint.md, "Exit status"): the first that applies of USAGE 2 (a file could not
    be read), LOCKED_OUT 4 (a reported finding is a lockout, KR001), FINDINGS 8 (a reported finding is at or
    above ``fail_on``), OK 0. KR001 is critical, so every ``--fail-on`` counts it: 4 is the lockout's own form of
    8. ``soft_fail`` turns 4 and 8 into 0; suppressed and skipped findings never count."""
    if report.errors:
        return ExitStatus.USAGE
    if soft_fail:
        return ExitStatus.OK
    if report.locked_out:
        return ExitStatus.LOCKED_OUT
    return ExitStatus.FINDINGS if report.reaches(fail_on) else ExitStatus.OK


def _check_baseline_target(path: str) -> None:
    """A baseline is written to a new file or over an older baseline, never over anything else."""

    target = Path(path)
    if not target.exists():
        return
    try:
        existing = json.loads(target.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        existing = None
    if not is_baseline(existing):
        raise UsageError(f"--write-baseline {path}: exists and is not a kms-rescue baseline; not overwriting it")


def _write_baseline(report: LintReport, path: str) -> None:
    entries = [(artifact_uri(r.location.source, report.repo_root), r.location.name, f) for r, f in report.findings]
    entries += [
        (artifact_uri(r.location.source, report.repo_root), r.location.name, s.finding)
        for r in report.results for s in r.suppressed if s.kind == "baseline"
    ]
    text = json.dumps(baseline_document(entries), indent=2) + "\n"
    try:
        Path(path).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror}") from None
    typer.echo(f"kms-rescue lint: wrote {len(entries)} findings to the baseline {path}", err=True)
