"""``kms-rescue report``: probe every identity, decide who can still manage the key, print the evidence.

Exit codes: 0 manageable, 3 recoverable, 4 locked_out, 5 undetermined, 6 not found, 2 usage error, 1 internal error.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable
from enum import Enum
from typing import TYPE_CHECKING, Any

import typer

from kms_rescue.cli._gc import collector_paused
from kms_rescue.cli._io import write_payload
from kms_rescue.cli._progress import ProbeProgress
from kms_rescue.errors import UsageError

if TYPE_CHECKING:
    from kms_rescue.aws.results import ProgressEvent
    from kms_rescue.report import Report


class ReportFormat(str, Enum):
    text = "text"
    json = "json"
    markdown = "markdown"


def render(report: Report, fmt: ReportFormat, *, width: int = 100, color: bool = False) -> str:
    """The report in ``fmt`` (every member of :class:`ReportFormat` has a renderer)."""
    if fmt is ReportFormat.json:
        from kms_rescue.render.json_ import render_json

        return render_json(report)
    if fmt is ReportFormat.markdown:
        from kms_rescue.render.markdown import render_markdown

        return render_markdown(report)
    from kms_rescue.render.text import render_text

    return render_text(report, width=width, color=color)


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def run_report(
    key: str,
    *,
    fmt: ReportFormat = ReportFormat.text,
    output: str | None = None,
    timeout: float = 10.0,
    profiles: list[str] | None = None,
    role_arns: list[str] | None = None,
    base_profile: str | None = None,
    role_session_name: str | None = None,
    region: str | None = None,
    trail_bucket: str | None = None,
    history: bool = True,
    width: int | None = None,
    progress: Callable[[ProgressEvent], None] | None = None,
) -> int:
    """The command's body (also used by tests and the rescue session): returns the exit code."""
    if not timeout or timeout <= 0:
        raise UsageError(f"--timeout must be a positive number of seconds, not {timeout}")
    from kms_rescue.aws.investigate import InvestigateOptions, investigate
    from kms_rescue.aws.keyref import parse_key_ref
    from kms_rescue.report import build_report

    ref = parse_key_ref(key, region)
    options = InvestigateOptions(
        region=region, profiles=profiles or [], role_arns=role_arns or [], base_profile=base_profile,
        role_session_name=role_session_name, timeout=timeout, history=history, trail_bucket=trail_bucket,
    )
    with collector_paused():
        if progress is None and _isatty(sys.stderr):
            with ProbeProgress() as bar:
                investigation = investigate(ref, options, progress=bar)
        else:
            investigation = investigate(ref, options, progress=progress or (lambda _e: None))
    report = build_report(investigation)
    to_terminal = output in (None, "-") and _isatty(sys.stdout)
    color = to_terminal and "NO_COLOR" not in os.environ
    if width is None:
        width = max(80, shutil.get_terminal_size((120, 40)).columns) if to_terminal else 120
    payload = options.redactor.scrub_known(render(report, fmt, width=width, color=color))
    write_payload(payload, output)
    for ident in report.identities:
        if ident.status == "sso_expired" and ident.hint:
            typer.echo(options.redactor.scrub_known(f"hint: {ident.name}: {ident.hint}"), err=True)
    if output not in (None, "-"):
        typer.echo(f"kms-rescue: wrote the report to {output} (verdict: {report.verdict})", err=True)
    return report.exit_code


def register(app: typer.Typer) -> None:
    @app.command(
        "report",
        epilog=(
            "Example: kms-rescue report arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab "
            "--format json --output report.json   "
            "Exit codes: 0 manageable, 3 recoverable, 4 locked out, 5 undetermined, 6 not found, 2 usage error."
        ),
    )
    def report(
        key: str = typer.Argument(
            ..., metavar="KEY",
            help="The key: its ARN, a key id or alias/NAME with --region, or an alias ARN.",
        ),
        fmt: ReportFormat = typer.Option(ReportFormat.text, "--format", "-f", help="Output format."),
        output: str | None = typer.Option(None, "--output", "-o", help="Write the report to FILE, not stdout."),
        timeout: float = typer.Option(
            10.0, "--timeout", help="Seconds allowed for each identity's credentials and for each AWS call."
        ),
        profile: list[str] = typer.Option(
            [], "--profile", "-p", help="Only this profile (repeatable; `env` = environment credentials)."
        ),
        role_arn: list[str] = typer.Option(
            [], "--role-arn", help="Also try this role, assumed from each chosen profile (repeatable)."
        ),
        base_profile: str | None = typer.Option(
            None, "--base-profile", help="Assume --role-arn roles from this profile only."
        ),
        role_session_name: str | None = typer.Option(
            None, "--role-session-name", help="Session name for --role-arn roles (default: kms-rescue)."
        ),
        region: str | None = typer.Option(None, "--region", help="The key's region (a key ARN carries its own)."),
        trail_bucket: str | None = typer.Option(
            None, "--trail-bucket", help="The CloudTrail trail's S3 bucket, for the Athena query of older history."
        ),
        no_history: bool = typer.Option(False, "--no-history", help="Skip the CloudTrail lookup."),
    ) -> None:
        """Probe every AWS identity you have and report who can still manage a KMS key.

        Each profile of your AWS config (and the environment's credentials) is tried concurrently: who am I,
        DescribeKey, GetKeyPolicy, ListGrants and its own IAM policies. The key's CloudTrail history is read, and
        the verdict (manageable, recoverable, locked out, undetermined) comes with its evidence and the next step.
        Nothing in your account is changed.
        """
        code = run_report(
            key, fmt=fmt, output=output, timeout=timeout, profiles=profile, role_arns=role_arn,
            base_profile=base_profile, role_session_name=role_session_name, region=region,
            trail_bucket=trail_bucket, history=not no_history,
        )
        raise typer.Exit(code)
