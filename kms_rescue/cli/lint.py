"""``kms-rescue lint``: find key policies that lock their key out (or are one step from it) before they ship."""

from __future__ import annotations

import json
import sys
from enum import Enum

import typer

from kms_rescue.cli.options import account_id
from kms_rescue.errors import UsageError
from kms_rescue.policy.partitions import is_region_code

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_LOCKED_OUT = 4


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
    "terraform show -json plan.out > plan.json && kms-rescue lint plan.json --account 111122223333 "
    "--format sarif --output lint.sarif · kms-rescue lint template.yaml --account 111122223333 --fail-on medium. "
    "Exit status: 0 clean, 1 findings at or above --fail-on, 2 bad input, 4 a policy locks its key out. "
    "Rules: docs/rules.md."
)


def register(app: typer.Typer) -> None:
    @app.command("lint", epilog=EPILOG)
    def lint(
        files: list[str] = typer.Argument(
            ..., metavar="FILE",
            help="Key policy JSON, Terraform plan JSON (terraform show -json), or CloudFormation JSON/YAML; "
            "- reads standard input.",
        ),
        account: str = typer.Option(
            ..., "--account", help="The 12-digit account that owns the key(s) (${AWS::AccountId} in templates)."
        ),
        region: str = typer.Option("us-east-1", "--region", help="${AWS::Region} in CloudFormation templates."),
        fmt: LintFormat = typer.Option(LintFormat.text, "--format", help="Output format."),
        fail_on: FailOn = typer.Option(
            FailOn.high, "--fail-on", help="Exit 1 when a finding is at least this severe."
        ),
        output: str | None = typer.Option(None, "--output", "-o", help="Write the report to FILE, not stdout."),
        force: bool = typer.Option(False, "--force", help="Replace the --output file if it exists."),
    ) -> None:
        """Lint KMS key policies for lockouts and the mistakes that lead to them."""
        from kms_rescue.cli._io import write_payload
        from kms_rescue.policy.lint import lint_files, render_text, summary_line

        account_id(account, "--account")
        if not is_region_code(region):  # botocore's partition data, matched whole (no trailing newline)
            raise UsageError(f"--region must be an AWS Region code such as us-east-1, not {region!r}")
        report = lint_files(files, account=account, region=region, stdin=sys.stdin)
        for path in report.files_without_policies():
            typer.echo(f"kms-rescue lint: {path}: no KMS key policies found", err=True)
        if fmt is LintFormat.json:
            payload = json.dumps(report.to_dict(fail_on=fail_on.value), indent=2)
        elif fmt is LintFormat.sarif:
            from kms_rescue.render.sarif import sarif_json

            payload = sarif_json(report)
        else:
            payload = render_text(report)
        if payload or output:
            write_payload(payload, output, force=force)
        typer.echo(f"kms-rescue lint: {summary_line(report)}", err=True)
        if report.locked_out:
            raise typer.Exit(EXIT_LOCKED_OUT)
        raise typer.Exit(EXIT_FINDINGS if report.reaches(fail_on.value) else EXIT_OK)
