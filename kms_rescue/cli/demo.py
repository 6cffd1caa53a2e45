"""``kms-rescue demo``: the rescue session against a local lab account whose only key administrator was deleted.

Nothing leaves this machine: the lab (moto behind an enforcement gate, see ``docs/lab.md``) serves on 127.0.0.1,
and for the duration of the demo the AWS config points at the lab's profiles only. Your own AWS config, credentials
and environment are not read.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import typer

from kms_rescue.cli._extras import require_lab_extra
from kms_rescue.cli.rescue import SessionSettings, is_interactive, run_rescue

DEMO_SCENARIO = "sole-admin-deleted"

#: Environment variables that would point the demo at a real account (or change how botocore resolves things).
_CLEARED = (
    "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_SESSION_NAME",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_ENDPOINT_URL", "AWS_CA_BUNDLE", "AWS_REGION", "AWS_DEFAULT_REGION",
)


@contextlib.contextmanager
def lab_environment(config_path: str, scratch: str) -> Iterator[None]:
    """Point botocore at the lab's config only, for the duration of the block (then restore the environment)."""
    saved = dict(os.environ)
    try:
        for name in list(os.environ):
            if name in _CLEARED or name.startswith("AWS_ENDPOINT_URL_"):
                del os.environ[name]
        os.environ["AWS_CONFIG_FILE"] = config_path
        os.environ["AWS_SHARED_CREDENTIALS_FILE"] = str(Path(scratch) / "no-credentials")
        os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _start_lab() -> Any:
    require_lab_extra("demo")
    # Deferred for start-up time: the lab imports moto (the lab extra).
    from kms_rescue.lab import Lab

    return Lab(DEMO_SCENARIO)


def epilogue(key_arn: str, scratch: str, saved_ticket: Path | None, session: Any = None,
             code: int | None = None) -> list[str]:
    """What the user just saw (what actually happened: an early Ctrl-C is said as such), and how to use the tool
    for real."""
    lines = [
        "",
        "What you just saw",
        "  A local lab account (nothing left this machine) where the key's only administrator role was deleted:",
        "  the key policy now shows the role's unique id (AROA…) instead of its ARN, and a new role with the same",
        "  name would not match it.",
    ]
    report = getattr(session, "report", None) if session is not None else None
    if report is None and session is not None:
        lines.append("  You stopped the session before the identities were tried, so nothing was probed.")
    elif report is not None:
        tried = [i.name for i in report.identities]
        lines.append(f"  {len(tried)} identit{'y was' if len(tried) == 1 else 'ies were'} tried ({', '.join(tried)}); "
                     f"the verdict: {report.verdict.replace('_', ' ')}.")
        if report.verdict == "locked_out":
            lines.append("  None could call kms:PutKeyPolicy, and the policy does not let the account's IAM "
                         "administrators or its root user in: only AWS Support can restore access.")
    if saved_ticket is not None:
        lines.append(f"  The session drafted the ticket for them: {saved_ticket}.")
        lines.append(f"  The ticket is in {saved_ticket}.")
    elif report is not None and code == 130:
        lines.append("  You stopped the session (Ctrl-C) before a ticket was drafted.")
    lines += [
        f"  The lab has stopped; the demo's files (ticket draft) stay in {scratch}.",
        "",
        "On a real account",
        "  kms-rescue KEY_ARN                 the same session, with every profile of your AWS config",
        "  kms-rescue report KEY_ARN          the investigation only (JSON with --format json; exit code = verdict)",
        "  kms-rescue ticket KEY_ARN --format eml --to cloud-team@example.com --output ticket.eml",
        "  kms-rescue lint key-policy.json --account 111122223333   catch a lockout before it ships",
        "  kms-rescue audit --organization   every key, Region and account: the keys one deletion from a lockout",
        "  kms-rescue lab --list              rehearse other lockouts offline",
        f"  (the demo key was {key_arn})",
    ]
    return lines


def run_demo(*, interactive: bool, prompter: Any = None, consoles: Any = None, progress_bar: bool = True) -> int:
    """Start the lab, run the session (or the report) against its key, explain. Returns the session's code."""

    scratch = tempfile.mkdtemp(prefix="kms-rescue-demo-")
    sessions: list[Any] = []
    echo = (lambda line: consoles[0].print(line, highlight=False)) if consoles else typer.echo
    with _start_lab() as lab:
        key_arn = lab.key_arn(lab.scenario.keys[0].id)
        echo(f"kms-rescue demo: a local lab account {lab.account} ({lab.region}) with the scenario "
             f"'{DEMO_SCENARIO}' is running on {lab.endpoint}.")
        echo(f"The key: {key_arn}")
        echo("")
        settings = SessionSettings(timeout=10.0, ticket_dir=scratch, backup_dir=scratch)
        with lab_environment(str(lab.config_path), scratch):
            code = run_rescue(key_arn, settings, interactive=interactive, prompter=prompter, consoles=consoles,
                              progress_bar=progress_bar, on_session=sessions.append)
    saved = sessions[0].saved_ticket if sessions else None
    for line in epilogue(key_arn, scratch, saved, sessions[0] if sessions else None, code):
        echo(line)
    return code


def register(app: typer.Typer) -> None:
    @app.command(
        "demo",
        epilog="Example: kms-rescue demo (or make demo). With --no-input it prints the report and exits 4.",
    )
    def demo(
        no_input: bool = typer.Option(False, "--no-input", help="Ask nothing: print the report instead."),
    ) -> None:
        """Try the rescue session on a local lab account whose only key administrator was deleted."""

        raise typer.Exit(run_demo(interactive=is_interactive(no_input)))
