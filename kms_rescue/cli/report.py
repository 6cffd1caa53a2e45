"""``kms-rescue report``: probe every identity, decide who can still manage the key, print the evidence.

Exit status (docs/exit-status.md): 0 manageable, 3 recoverable, 4 locked_out, 5 undetermined, 6 not found, 2 usage
error, 1 internal error.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Callable
from enum import Enum
from importlib import resources
from typing import TYPE_CHECKING, Any

import typer

from kms_rescue.cli import _say
from kms_rescue.cli._complete import complete_profile, complete_region
from kms_rescue.cli._io import check_output, write_payload
from kms_rescue.cli._progress import ProbeProgress
from kms_rescue.cli._region import announce_aws_profile, chosen_identities, describe_key, key_region
from kms_rescue.cli.options import positive_seconds
from kms_rescue.status import ExitStatus

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
        # Deferred for start-up time: --help, lint and explain never load the report layer.
        from kms_rescue.render.json_ import render_json

        return render_json(report)
    if fmt is ReportFormat.markdown:
        # Deferred for start-up time: --help, lint and explain never load the report layer.
        from kms_rescue.render.markdown import render_markdown

        return render_markdown(report)
    # Deferred for start-up time: --help, lint and explain never load the report layer.
    from kms_rescue.render.text import render_text

    return render_text(report, width=width, color=color)


#: The overall deadline of the investigation, by default (seconds). Kept here rather than imported from
#: ``kms_rescue.aws.investigate`` so that ``--help`` does not import boto3; a test checks they agree.
DEFAULT_DEADLINE = 60.0
DEADLINE_HELP = ("Seconds for the whole investigation: identities still being probed then are reported as "
                 "timeout and the report completes.")


#: Of the command's deadline, what is kept for building and writing the report after the investigation.
RENDER_RESERVE = 0.25


def investigation_deadline(deadline: float | None, started: float) -> float | None:
    """What is left of the command's ``--deadline`` (counted from ``started``, a ``time.monotonic()`` taken as the
    command began, before its AWS modules were imported) for the investigation itself."""
    if deadline is None:
        return None
    return max(0.0, deadline - (time.monotonic() - started) - RENDER_RESERVE)


def check_deadline(deadline: float | None) -> None:
    """``--deadline`` is a finite, positive number of seconds (a one-line error otherwise)."""
    if deadline is not None:
        positive_seconds(deadline, "--deadline", high=24 * 3600)
def schema_text() -> str:
    """The report's JSON Schema, as shipped in the package (docs/report.schema.json in the source tree)."""
    return resources.files("kms_rescue").joinpath("report.schema.json").read_text(encoding="utf-8")


def _print_schema(value: bool) -> None:
    if value:
        text = schema_text()
        typer.echo(text, nl=not text.endswith("\n"))
        raise typer.Exit(ExitStatus.OK)


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
    deadline: float | None = DEFAULT_DEADLINE,
    force: bool = False,
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
    started = time.monotonic()
    positive_seconds(timeout, "--timeout")
    check_deadline(deadline)
    check_output(output, force=force)
    # Deferred for start-up time: kms_rescue.aws imports boto3.
    from kms_rescue.aws.investigate import InvestigateOptions, investigate
    from kms_rescue.aws.keyref import parse_key_ref
    from kms_rescue.cli._runtime import command_runtime
    from kms_rescue.report import build_report

    region = key_region(key, region, profiles or [])
    ref = parse_key_ref(key, region)
    announce_aws_profile(profiles or [])
    options = InvestigateOptions(
        region=ref.region, profiles=profiles or [], role_arns=role_arns or [], base_profile=base_profile,
        role_session_name=role_session_name, timeout=timeout, history=history, trail_bucket=trail_bucket,
        deadline=investigation_deadline(deadline, started),
    )
    describe_key(ref)
    specs = chosen_identities(options)
    with command_runtime(options.redactor) as runtime:
        if progress is None and _isatty(sys.stderr) and not _say.is_quiet():
            with ProbeProgress() as bar:
                investigation = investigate(ref, options, identities=specs, progress=bar, runtime=runtime)
        else:
            investigation = investigate(ref, options, identities=specs, progress=progress or (lambda _e: None),
                                        runtime=runtime)
    report = build_report(investigation)
    to_terminal = output in (None, "-") and _isatty(sys.stdout)
    color = to_terminal and "NO_COLOR" not in os.environ
    if width is None:
        width = max(80, shutil.get_terminal_size((120, 40)).columns) if to_terminal else 120
    payload = options.redactor.scrub_known(render(report, fmt, width=width, color=color))
    write_payload(payload, output, force=force)
    for ident in report.identities:
        if ident.status == "sso_expired" and ident.hint:
            _say.hint(options.redactor.scrub_known(f"{ident.name}: {ident.hint}"))
    if output not in (None, "-"):
        _say.note(f"kms-rescue: wrote the report to {output} (verdict: {report.verdict})")
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
            help="The key: its ARN, an alias ARN, or a key id or alias/NAME (in the Region the AWS CLI would use).",
        ),
        fmt: ReportFormat = typer.Option(ReportFormat.text, "--format", "-f", help="Output format."),
        output: str | None = typer.Option(None, "--output", "-o", help="Write the report to FILE, not stdout."),
        timeout: float = typer.Option(
            10.0, "--timeout", help="Seconds allowed for each identity's credentials and for each AWS call."
        ),
        deadline: float = typer.Option(
            DEFAULT_DEADLINE, "--deadline", help=DEADLINE_HELP,
        ),
        force: bool = typer.Option(False, "--force", help="Replace the --output file if it exists."),
        profile: list[str] = typer.Option(
            [], "--profile", "-p", help="Only this profile (repeatable; `env` = environment credentials).",
            autocompletion=complete_profile,
        ),
        role_arn: list[str] = typer.Option(
            [], "--role-arn", help="Also try this role, assumed from each chosen profile (repeatable)."
        ),
        base_profile: str | None = typer.Option(
            None, "--base-profile", help="Assume --role-arn roles from this profile only.",
            autocompletion=complete_profile,
        ),
        role_session_name: str | None = typer.Option(
            None, "--role-session-name", help="Session name for --role-arn roles (default: kms-rescue)."
        ),
        region: str | None = typer.Option(
            None, "--region", autocompletion=complete_region,
            help="The key's Region (else AWS_REGION, AWS_DEFAULT_REGION, the profile's region; an ARN has its own).",
        ),
        trail_bucket: str | None = typer.Option(
            None, "--trail-bucket", help="The CloudTrail trail's S3 bucket, for the Athena query of older history."
        ),
        no_history: bool = typer.Option(False, "--no-history", help="Skip the CloudTrail lookup."),
        schema: bool = typer.Option(
            False, "--schema", callback=_print_schema, is_eager=True,
            help="Print the JSON Schema of --format json and exit (no KEY needed).",
        ),
    ) -> None:
        """Probe every AWS identity you have and report who can still manage a KMS key.

        Each profile of your AWS config (and the environment's credentials) is tried concurrently: who am I,
        DescribeKey, GetKeyPolicy, ListGrants and its own IAM policies. The key's CloudTrail history is read, and
        the verdict (manageable, recoverable, locked out, undetermined) comes with its evidence and the next step.
        Nothing in your account is changed.
        """
        code = run_report(
            key, fmt=fmt, output=output, timeout=timeout, deadline=deadline, force=force, profiles=profile,
            role_arns=role_arn,
            base_profile=base_profile, role_session_name=role_session_name, region=region,
            trail_bucket=trail_bucket, history=not no_history,
        )
        raise typer.Exit(code)
