"""``kms-rescue ticket``: investigate the key, then draft the escalation for the cloud team or AWS Support.

Exit codes follow the report's verdict: 0 manageable, 3 recoverable, 4 locked out, 5 undetermined, 6 not found;
2 bad input.
"""

from __future__ import annotations

import dataclasses
import os
import re
import sys
import time
from collections.abc import Mapping
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from kms_rescue import files
from kms_rescue.cli import _say
from kms_rescue.cli._complete import complete_profile, complete_region
from kms_rescue.cli._io import check_output, read_text, write_file
from kms_rescue.cli._region import announce_aws_profile, chosen_identities, describe_key, key_region
from kms_rescue.cli.options import positive_seconds
from kms_rescue.cli.report import (
    DEADLINE_HELP,
    DEFAULT_DEADLINE,
    RENDER_RESERVE,
    check_deadline,
    investigation_deadline,
)
from kms_rescue.errors import UsageError
from kms_rescue.policy.partitions import partition_for_region

if TYPE_CHECKING:
    from kms_rescue.aws.results import Investigation
    from kms_rescue.render.ticket import CaseInfo, Ticket
    from kms_rescue.report import Report

ESCALATION_ENV = "KMS_RESCUE_ESCALATION_EMAIL"
#: kms-rescue's own config file is a few lines of TOML; a megabyte is far more than it ever needs.
CONFIG_MAX_BYTES = 1024 * 1024


class TicketFormatOption(str, Enum):
    markdown = "markdown"
    email = "email"
    eml = "eml"


# --- the escalation address ------------------------------------------------------------------------------------


def config_path(environ: Mapping[str, str] | None = None) -> Path:
    """``$XDG_CONFIG_HOME/kms-rescue/config.toml``, by default ``~/.config/kms-rescue/config.toml``."""
    env = os.environ if environ is None else environ
    base = env.get("XDG_CONFIG_HOME") or os.path.join(env.get("HOME") or os.path.expanduser("~"), ".config")
    return Path(base) / "kms-rescue" / "config.toml"


def _toml_value(text: str, key: str, source: Path) -> str | None:
    try:
        # Deferred for start-up time: read only when a config file exists.
        import tomllib
    except ModuleNotFoundError:  # Python 3.10: read the one key we need
        m = re.search(rf'^\s*{re.escape(key)}\s*=\s*(?:"([^"\\]*)"|\'([^\']*)\')\s*(?:#.*)?$', text, re.M)
        return (m.group(1) if m.group(1) is not None else m.group(2)) if m else None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{source} is not valid TOML: {exc}") from None
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise UsageError(f"{source}: {key} must be a string")
    return value


def escalation_address(explicit: str | None, environ: Mapping[str, str] | None = None) -> str | None:
    """``--to``, else ``KMS_RESCUE_ESCALATION_EMAIL``, else ``escalation_email`` in the config file; None when
    none is set. A malformed address is a :class:`UsageError`."""
    # Deferred for start-up time: --help, lint and explain never load the report layer.
    from kms_rescue.render.ticket import valid_address

    env = os.environ if environ is None else environ
    value: str | None = None
    origin = ""
    if explicit:
        value, origin = explicit, "--to"
    elif env.get(ESCALATION_ENV):
        value, origin = env[ESCALATION_ENV], ESCALATION_ENV
    else:
        path = config_path(env)
        if path.is_file():
            text = read_text(path, "config file", max_bytes=CONFIG_MAX_BYTES)
            value, origin = _toml_value(text, "escalation_email", path), str(path)
    if value is None:
        return None
    value = value.strip()
    if not valid_address(value):
        raise UsageError(f"{origin}: {value!r} is not an email address (name@example.com)")
    return value


# --- writing ---------------------------------------------------------------------------------------------------


def write_ticket(payload: str | bytes, path: str | os.PathLike[str], *, force: bool = False) -> Path:
    """Create the ticket file (mode 0600: it names the account's principals; never over an existing file unless
    ``force``; symlinks not followed) and return its path."""
    return write_file(payload, path, force=force)


def save_draft(payload: str | bytes, path: str | os.PathLike[str]) -> Path:
    """Save a draft at ``path``, or beside it as ``NAME-2.EXT``, … when that name is taken (mode 0600)."""
    data = payload.encode("utf-8") if isinstance(payload, str) else payload
    target = Path(path).expanduser()
    try:
        return files.create_numbered(target, data)
    except OSError as exc:
        raise UsageError(f"cannot write {target}: {exc.strerror or exc}") from None


def emit(payload: str | bytes, output: str | None, *, force: bool = False) -> None:
    """The payload to ``--output FILE`` or stdout."""
    if output and output != "-":
        write_ticket(payload, output, force=force)
        return
    if isinstance(payload, bytes):
        sys.stdout.flush()
        sys.stdout.buffer.write(payload)
        sys.stdout.buffer.flush()
    else:
        typer.echo(payload, nl=not payload.endswith("\n"))


# --- opening a case --------------------------------------------------------------------------------------------


def open_support_case(report: Report, investigation: Investigation, ticket: Ticket,
                      say: Any = None) -> CaseInfo:
    """Open an AWS Support case with the first identity of the key's account whose credentials work (falls back to
    the draft and the console link when it cannot)."""
    # Deferred for start-up time: kms_rescue.aws imports boto3.
    from kms_rescue.aws.support import CONSOLE_CASE_URL, open_case, support_client_for, support_region
    from kms_rescue.cli._runtime import command_runtime
    from kms_rescue.render.ticket import CaseInfo

    say = say or (lambda _m: None)
    usable = [p for p in investigation.identities if p.usable and p.account == report.key.account]
    if not usable:
        return CaseInfo(False, fallback_reason="no identity of the key's account has working credentials",
                        console_url=CONSOLE_CASE_URL)
    spec = usable[0].spec
    partition = report.key.arn.split(":")[1] if report.key.arn else partition_for_region(report.key.region).id
    say(f"opening an AWS Support case as {spec.name} ({support_region(partition) or 'no'} endpoint)")
    with command_runtime() as runtime:  # the client outlives it: it only connects the identity
        client, why_not = support_client_for(spec, partition=partition, runtime=runtime)
    if client is None:
        return CaseInfo(False, fallback_reason=why_not, console_url=CONSOLE_CASE_URL)
    result = open_case(client, subject=ticket.subject, body=ticket.body, cc=[ticket.to] if ticket.to else [])
    return CaseInfo(result.opened, result.case_id, result.fallback_reason, result.console_url)


# --- the command -----------------------------------------------------------------------------------------------


def with_aliases(report: Any, investigation: Any, *, timeout: float = 10.0, environ: Any = None,
                 until: float | None = None) -> Any:
    """The report with the key's aliases listed (kms:ListAliases by KeyId, by an identity of the key's account)
    when the probes did not see them (DescribeKey of a key ARN does not name its aliases). Only identities whose
    probe finished are asked, and none once ``until`` (what is left of ``--deadline``) has passed."""
    # Deferred for start-up time: kms_rescue.aws imports boto3.
    from kms_rescue.aws.aliases import key_aliases
    from kms_rescue.cli._runtime import command_runtime

    key = report.key
    if key.aliases or not key.arn:
        return report
    ok = [p.spec for p in investigation.identities
          if p.status == "ok" and p.arn and (not key.account or f":{key.account}:" in p.arn)]
    with command_runtime() as runtime:
        found = key_aliases(ok, key.arn, account=key.account, region=key.region, timeout=timeout, environ=environ,
                            runtime=runtime, until=until)
    if not found:
        return report
    return dataclasses.replace(report, key=dataclasses.replace(key, aliases=found))


def run_ticket(
    key: str,
    *,
    fmt: TicketFormatOption = TicketFormatOption.markdown,
    to: str | None = None,
    output: str | None = None,
    open_case: bool = False,
    timeout: float = 10.0,
    deadline: float | None = DEFAULT_DEADLINE,
    force: bool = False,
    profiles: list[str] | None = None,
    role_arns: list[str] | None = None,
    base_profile: str | None = None,
    region: str | None = None,
    trail_bucket: str | None = None,
) -> int:
    """The command's body: returns the exit code (the report's)."""
    started = time.monotonic()
    positive_seconds(timeout, "--timeout")
    check_deadline(deadline)
    check_output(output, force=force)
    address = escalation_address(to)
    # Deferred for start-up time: kms_rescue.aws imports boto3.
    from kms_rescue.aws.investigate import InvestigateOptions, investigate
    from kms_rescue.aws.keyref import parse_key_ref
    from kms_rescue.cli._runtime import command_runtime
    from kms_rescue.render.ticket import build_ticket, render
    from kms_rescue.report import build_report

    region = key_region(key, region, profiles or [])
    ref = parse_key_ref(key, region)
    announce_aws_profile(profiles or [])
    options = InvestigateOptions(region=ref.region, profiles=profiles or [], role_arns=role_arns or [],
                                 base_profile=base_profile, timeout=timeout, trail_bucket=trail_bucket,
                                 deadline=investigation_deadline(deadline, started))
    describe_key(ref)
    specs = chosen_identities(options)
    _say.note(f"kms-rescue: investigating {ref.raw} …")
    with command_runtime(options.redactor) as runtime:
        investigation = investigate(ref, options, identities=specs, runtime=runtime)
    report = build_report(investigation)
    if not runtime.abandoned:  # past the overall deadline, the ticket is written from what was seen, at once
        until = None if deadline is None else started + deadline - RENDER_RESERVE
        report = with_aliases(report, investigation, timeout=timeout, until=until)
    ticket = build_ticket(report, to=address)
    if open_case:
        case = open_support_case(report, investigation, ticket, say=lambda m: _say.note(f"kms-rescue: {m}"))
        if case.opened:
            _say.note(f"kms-rescue: AWS Support case opened: {case.case_id}")
        else:
            typer.echo(f"kms-rescue: no AWS Support case was opened: {case.fallback_reason}. Use the draft below "
                       f"and open the case in the console: {case.console_url}", err=True)
        ticket = build_ticket(report, to=address, case=case)
    if fmt is not TicketFormatOption.markdown and address is None:
        _say.hint(f"no escalation address: pass --to, set {ESCALATION_ENV}, or put escalation_email = "
                  f"\"...\" in {config_path()}")
    payload = render(ticket, fmt.value)
    if isinstance(payload, str):
        payload = options.redactor.scrub_known(payload)
    emit(payload, output, force=force)
    if output and output != "-":
        _say.note(f"kms-rescue: wrote the ticket to {output} (verdict: {report.verdict})")
    return report.exit_code


def register(app: typer.Typer) -> None:
    @app.command(
        "ticket",
        epilog=(
            "Example: kms-rescue ticket arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab "
            "--format eml --to cloud-team@example.com --output ticket.eml   "
            "Exit codes follow the verdict: 0 manageable, 3 recoverable, 4 locked out, 5 undetermined, 6 not found, "
            "2 usage."
        ),
    )
    def ticket(
        key: str = typer.Argument(..., metavar="KEY",
                                  help="The key: its ARN, an alias ARN, or a key id or alias/NAME (in the Region "
                                       "the AWS CLI would use)."),
        fmt: TicketFormatOption = typer.Option(TicketFormatOption.markdown, "--format", "-f",
                                               help="markdown, email (plain text with To:/Subject:) or eml."),
        to: str | None = typer.Option(
            None, "--to", help=f"Escalation address (default: ${ESCALATION_ENV}, or escalation_email in "
                               "~/.config/kms-rescue/config.toml)."),
        output: str | None = typer.Option(None, "--output", "-o", help="Write the ticket to FILE, not stdout."),
        open_case: bool = typer.Option(
            False, "--open-case", help="Also open an AWS Support case (needs a Business support plan; falls back "
                                       "to the draft and the console link)."),
        timeout: float = typer.Option(10.0, "--timeout", help="Seconds allowed for credentials and each AWS call."),
        deadline: float = typer.Option(DEFAULT_DEADLINE, "--deadline", help=DEADLINE_HELP),
        force: bool = typer.Option(False, "--force", help="Replace the --output file if it exists."),
        profile: list[str] = typer.Option([], "--profile", "-p", autocompletion=complete_profile,
                                          help="Only this profile (repeatable; `env` = environment credentials)."),
        role_arn: list[str] = typer.Option([], "--role-arn",
                                           help="Also try this role, assumed from each chosen profile."),
        base_profile: str | None = typer.Option(None, "--base-profile", autocompletion=complete_profile,
                                                help="Assume --role-arn roles from this profile only."),
        region: str | None = typer.Option(
            None, "--region", autocompletion=complete_region,
            help="The key's Region (else AWS_REGION, AWS_DEFAULT_REGION, the profile's region; an ARN has its own).",
        ),
        trail_bucket: str | None = typer.Option(None, "--trail-bucket",
                                                help="The trail's S3 bucket, for the Athena query."),
    ) -> None:
        """Draft the escalation ticket for a key nobody can manage: what was tried, what AWS needs, what to restore.

        The key is investigated as `kms-rescue report` does; the ticket names the key, every identity and call
        tried, the last known policy and former administrators from CloudTrail, the policy to restore and what
        AWS Support will ask for. It contains no credentials.
        """
        code = run_ticket(key, fmt=fmt, to=to, output=output, open_case=open_case, timeout=timeout,
                          deadline=deadline, force=force, profiles=profile,
                          role_arns=role_arn, base_profile=base_profile, region=region,
                          trail_bucket=trail_bucket)
        raise typer.Exit(code)
