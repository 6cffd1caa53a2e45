"""``kms-rescue audit``: every customer managed key of the account in each Region, with its verdict, who can
manage it, and its risks (docs/audit.md).

Exit codes (plain ints until the ExitStatus table lands): 4 a key is locked out (or, with ``--if-deleted``, would
be), 1 a finding reaches ``--fail-on`` (or nothing could be audited at all), 2 bad input, else 0.
"""

from __future__ import annotations

import contextlib
import difflib
import os
import shutil
import signal
import sys
from collections.abc import Iterable, Iterator
from importlib import resources
from typing import IO, TYPE_CHECKING, Any

import typer

from kms_rescue import files
from kms_rescue.cli import _say
from kms_rescue.cli._complete import complete_profile, complete_region
from kms_rescue.cli._io import check_output
from kms_rescue.cli.audit_scale import DEFAULT_ROLE_NAME, ScaleOptions, audit_items, check_scale_options
from kms_rescue.cli.options import positive_seconds
from kms_rescue.errors import UsageError
from kms_rescue.policy.errors import PolicyInputError
from kms_rescue.policy.partitions import check_region
from kms_rescue.status import ExitStatus, signal_status

if TYPE_CHECKING:
    from kms_rescue.audit.model import AuditItem
    from kms_rescue.observations import ProgressEvent


FORMATS = ("text", "json", "sarif", "markdown", "csv")
FAIL_ON = ("critical", "high", "medium", "low", "none")


def schema_text() -> str:
    """The audit's JSON Schema, as shipped in the package (docs/audit.schema.json in the source tree)."""
    return resources.files("kms_rescue").joinpath("audit.schema.json").read_text(encoding="utf-8")


def _print_schema(value: bool) -> None:
    if value:
        text = schema_text()
        typer.echo(text, nl=not text.endswith("\n"))
        raise typer.Exit(ExitStatus.OK)


def _choice(value: str, allowed: tuple[str, ...], option: str) -> str:
    if value in allowed:
        return value
    close = difflib.get_close_matches(value, allowed, n=1)
    hint = f": did you mean {close[0]}?" if close else ""
    raise UsageError(f"{option} {value!r} is not one of {', '.join(allowed)}{hint}")


def parse_regions(regions: Iterable[str]) -> list[str]:
    """``--region``/``--regions`` values (repeatable, comma-separated): each a Region botocore lists, in order,
    once. A Region code botocore does not list is refused here (an audit of a Region that does not exist would
    only report it as not audited)."""
    out: list[str] = []
    for value in regions:
        for name in (v for v in value.split(",") if v != "" or value == ""):
            try:
                checked = check_region(name)
            except PolicyInputError:
                raise UsageError(f"--regions {name!r} is not an AWS Region code (e.g. us-east-1, eu-west-1: lower "
                                 "case, nothing around it)") from None
            if not checked.known:
                raise UsageError(f"--regions {name}: no such Region{': ' + checked.hint if checked.hint else ''}")
            if name not in out:
                out.append(name)
    return out


def parse_if_deleted(arns: Iterable[str]) -> tuple[str, ...]:
    """``--if-deleted`` values: IAM user or role ARNs (a one-line error for anything else)."""
    # Deferred for start-up time: the policy engine is not needed by --help.
    from kms_rescue.policy.principals import parse_caller

    out: list[str] = []
    for arn in arns:
        try:
            caller = parse_caller(arn)
        except PolicyInputError:
            caller = None
        if caller is None or caller.kind not in ("user", "role") or not caller.name:
            raise UsageError(f"--if-deleted {arn!r} is not an IAM user or role ARN (e.g. "
                             "arn:aws:iam::111122223333:role/KeyAdmin)")
        if arn not in out:
            out.append(arn)
    return tuple(out)


def _read_terraform_plan(path: str | None, merge_paths: list[str] | None, regions: list[str],
                         if_deleted: tuple[str, ...], profiles: list[str] | None, role_arns: list[str] | None
                         ) -> dict[str, Any] | None:
    """``--terraform-plan``: the plan, read and checked before any AWS call; ``--merge`` takes no live option."""
    if merge_paths:
        given = [name for name, value in (("--terraform-plan", path), ("--regions", regions),
                                          ("--if-deleted", if_deleted), ("--profile", profiles),
                                          ("--role-arn", role_arns)) if value]
        if given:
            raise UsageError(f"--merge reads results already audited: {', '.join(given)} cannot be used with it")
        return None
    if path is None:
        return None
    from kms_rescue.audit.terraform_plan import read_plan  # pure: no boto3

    return read_plan(path)


def _plan_deletions(plan: dict[str, Any], path: str, identity: Any, deleted: tuple[str, ...], timeout: float
                    ) -> tuple[str, ...]:
    """``--if-deleted`` plus the principals the plan deletes in the audited account; one stderr line each."""
    # Deferred for start-up time: these import boto3 through kms_rescue.aws.
    from kms_rescue.audit.account import AuditOptions
    from kms_rescue.audit.terraform_guard import plan_principals

    found = plan_principals(plan, identity, AuditOptions(timeout=timeout))
    for line in found.notes:
        _say.note(f"kms-rescue: {path}: {line}")
    if not found.deletions:
        _say.note(f"kms-rescue: {path}: the plan deletes or replaces no IAM user, role or Identity Center role")
    return tuple(dict.fromkeys([*deleted, *found.principals]))


def _check_if_deleted_exist(deleted: tuple[str, ...], identity: Any, timeout: float) -> None:
    """``--if-deleted`` of a user or role IAM does not have is a typo that would pass the guard: exit 2."""
    # Deferred for start-up time: these import boto3 through kms_rescue.aws.
    from kms_rescue.audit.account import AuditOptions
    from kms_rescue.audit.terraform_guard import missing_principals

    missing, unchecked = missing_principals(deleted, identity, AuditOptions(timeout=timeout))
    for line in unchecked:
        _say.note(f"kms-rescue: --if-deleted {line}")
    if missing:
        kind = "user" if ":user/" in missing[0] else "role"
        raise UsageError(f"--if-deleted {missing[0]}: IAM has no such {kind} (check the ARN: a principal that does "
                         "not exist cannot be deleted, and a typo would pass the check)")


def _viewer_columns() -> int | None:
    """The width of the terminal the text is read on: stdout's, or, when stdout is a pipe (`| less`, `| head`)
    and stderr a terminal, stderr's; None for a file or a pipe with no terminal (then 120 columns)."""
    if "COLUMNS" in os.environ or _isatty(sys.stdout):
        return shutil.get_terminal_size((120, 40)).columns
    if _isatty(sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            return os.get_terminal_size(sys.stderr.fileno()).columns
    return None


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


class AuditProgress:
    """Keys done / total and the ETA on stderr (rich); the total grows as each Region's keys are listed."""

    def __init__(self) -> None:
        # Deferred for start-up time: rich's progress display is needed only while an audit runs.
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._progress = Progress(
            TextColumn("[bold]auditing[/]"), BarColumn(), MofNCompleteColumn(), TextColumn("keys"),
            TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), TextColumn("{task.description}"),
            console=Console(stderr=True), transient=True,
        )
        self._total = 0
        self._task: Any = None

    def __enter__(self) -> AuditProgress:
        self._progress.start()
        self._task = self._progress.add_task("", total=None)
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def __call__(self, event: ProgressEvent) -> None:
        if event.kind == "plan":
            self._total += event.total or 0
            self._progress.update(self._task, total=self._total, description=event.message or "")
        elif event.kind == "step":
            self._progress.advance(self._task)


class _Sink:
    """Where the payload goes as it is produced: stdout, or a new ``--output`` file (never overwritten)."""

    def __init__(self, output: str | None) -> None:
        self.output = output if output not in (None, "-") else None
        self._file: IO[bytes] | None = None

    def __enter__(self) -> _Sink:
        if self.output is not None:
            try:
                self._file = files.open_new(os.path.expanduser(self.output))
            except FileExistsError:
                raise UsageError(f"--output {self.output}: there is already a file there and kms-rescue never "
                                 "overwrites one (choose another name, or remove it)") from None
            except OSError as exc:
                raise UsageError(f"cannot write {self.output}: {exc.strerror or exc}") from None
        return self

    def write(self, text: str) -> None:
        if not text:
            return
        if self._file is not None:
            self._file.write(text.encode("utf-8"))
        else:
            try:
                sys.stdout.write(text)
                sys.stdout.flush()
            except BrokenPipeError:  # the reader went away (`| head -1`): stop as SIGPIPE would end us
                # Point stdout at /dev/null, or the interpreter's last flush fails on the same pipe at exit.
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, sys.stdout.fileno())
                os.close(devnull)
                raise typer.Exit(signal_status(signal.SIGPIPE)) from None

    def __exit__(self, exc_type: object, *_exc: object) -> None:
        if self._file is not None:
            self._file.close()
            if exc_type is not None and self.output is not None:  # cut short: no half-written file is left
                with contextlib.suppress(OSError):
                    os.unlink(os.path.expanduser(self.output))


def run_audit_command(
    *, regions: list[str], fmt: str = "text", output: str | None = None, fail_on: str = "high",
    include_aws_managed: bool = False, if_deleted: list[str] | None = None, profiles: list[str] | None = None,
    role_arns: list[str] | None = None, base_profile: str | None = None, role_session_name: str | None = None,
    timeout: float = 10.0, width: int | None = None, scale: ScaleOptions | None = None,
    terraform_plan: str | None = None, merge_paths: list[str] | None = None,
) -> int:
    """The command's body: returns the exit code."""
    fmt = _choice(fmt, FORMATS, "--format")
    fail_on = _choice(fail_on, FAIL_ON, "--fail-on")
    positive_seconds(timeout, "--timeout")
    chosen_regions = parse_regions(regions)
    deleted = parse_if_deleted(if_deleted or [])
    check_output(output)
    scale = scale or ScaleOptions()
    if merge_paths:
        live = [name for name, value in (("--accounts", scale.accounts), ("--organization", scale.organization),
                                          ("--checkpoint", scale.checkpoint), ("--resume", scale.resume))
                if value]
        if live:
            raise UsageError(f"--merge reads results already audited: {', '.join(live)} cannot be used with it")
    plan = _read_terraform_plan(terraform_plan, merge_paths, regions, deleted, profiles, role_arns)
    # deferred: these import boto3 (keeps --help and --schema fast)
    from kms_rescue.audit.account import AuditOptions
    from kms_rescue.audit.merge import MergeStats, merge
    from kms_rescue.audit.model import KeyAudit, Summary, severity_rank
    from kms_rescue.aws.conventions import choose_region
    from kms_rescue.aws.sessions import discover_identities
    from kms_rescue.render.audit import AuditFormat, writer_for

    merging = MergeStats() if merge_paths else None
    specs = [] if merging is not None else discover_identities(profiles or [], role_arns or [], base_profile,
                                                                role_session_name=role_session_name)
    if merging is None and not specs:
        raise UsageError("no AWS identity to audit with: configure a profile or set AWS_ACCESS_KEY_ID (see --profile)")
    if specs:
        _say.verbose(f"auditing with {specs[0].name}" + (f" (and {', '.join(s.name for s in specs[1:])})"
                                                        if specs[1:] else ""))
    if deleted:
        _check_if_deleted_exist(deleted, specs[0], timeout)
    if plan is not None:
        deleted = _plan_deletions(plan, terraform_plan or "", specs[0], deleted, timeout)
    to_terminal = output in (None, "-") and _isatty(sys.stdout)
    color = to_terminal and fmt == "text" and "NO_COLOR" not in os.environ
    if width is None:
        width = max(80, (_viewer_columns() if output in (None, "-") else None) or 120)
    writer = writer_for(AuditFormat(fmt), width=width, color=color)
    show_progress = _isatty(sys.stderr) and not _say.is_quiet()
    summary = Summary()
    locked = would_lock = reached = False
    threshold = severity_rank(fail_on) if fail_on != "none" else -1

    def items(progress: Any) -> Iterator[AuditItem]:
        if merging is not None:
            yield from merge(merge_paths or [], stats=merging)
            return
        options = AuditOptions(include_aws_managed=include_aws_managed, if_deleted=deleted, timeout=timeout,
                               progress=progress)
        home = choose_region(None, profiles=[specs[0].profile] if specs[0].profile else []).region or "us-east-1"
        # Accounts x Regions, paced, on a deadline, resumable (kms_rescue/cli/audit_scale.py, docs/audit.md).
        yield from audit_items(specs, options, scale, chosen_regions, home_region=home)

    with _Sink(output) as sink:
        progress_cm = AuditProgress() if show_progress else None
        progress: Any = progress_cm.__enter__() if progress_cm is not None else (lambda _e: None)
        try:
            begun = False  # the opening waits for the first result: a usage error found first leaves no output
            for item in items(progress):
                if not begun:
                    sink.write(writer.begin())
                    begun = True
                summary.add(item)
                if isinstance(item, KeyAudit):
                    locked = locked or item.verdict == "locked_out"
                    would_lock = would_lock or item.verdict_if_deleted == "locked_out"
                    reached = reached or any(severity_rank(f.severity) <= threshold for f in item.findings)
                elif item.stage == "merge":  # a line of a merged file: FILE:LINE and what is wrong with it
                    _say.note(f"kms-rescue: {item.message}")
                else:
                    _say.note(f"kms-rescue: could not audit {item.account or 'the account'} in "
                              f"{item.region or 'any Region'} ({item.stage}): {item.message}")
                sink.write(writer.add(item))
            if not begun:
                sink.write(writer.begin())
            if progress_cm is not None:  # the bar is gone before the end (the whole text table) is written
                progress_cm.__exit__(None, None, None)
                progress_cm = None
            sink.write(writer.end(summary.to_json()))
        finally:
            if progress_cm is not None:
                progress_cm.__exit__(None, None, None)
    if output not in (None, "-"):
        _say.note(f"kms-rescue: wrote the audit of {summary.keys} keys to {output}")
    if merging is not None:
        _say.verbose(f"merged {merging.lines} lines of {merging.files} files"
                     + (f"; {merging.duplicates} duplicate keys kept once" if merging.duplicates else ""))
        if merging.malformed:  # bad input first, as lint does: the report above still has every good line
            _say.note(f"kms-rescue: error: {merging.malformed} malformed line(s) in the merged files (listed "
                      "above and in the report's errors)")
            return ExitStatus.USAGE
    if locked or would_lock:
        return ExitStatus.LOCKED_OUT
    if reached:
        return ExitStatus.FINDINGS
    if summary.errors and not summary.keys:
        return ExitStatus.UNDETERMINED
    return ExitStatus.OK


def register(app: typer.Typer) -> None:
    @app.command(
        "audit",
        epilog=("Example: kms-rescue audit --regions us-east-1,eu-west-1 --format json --output audit.json   "
                "Exit codes: 4 a key is (or, with --if-deleted, would be) locked out, 8 findings reach --fail-on, "
                "5 nothing could be audited, 2 usage error, else 0."),
    )
    def audit(
        regions: list[str] = typer.Option(
            [], "--regions", "--region", autocompletion=complete_region,
            help="Only these Regions (comma-separated or repeated; default: the account's enabled Regions).",
        ),
        fmt: str = typer.Option("text", "--format", "-f", help="text, json, sarif, markdown or csv."),
        output: str | None = typer.Option(None, "--output", "-o", help="Write to FILE (never overwritten)."),
        fail_on: str = typer.Option(
            "high", "--fail-on", help="Exit 8 when a finding is at least this severe (critical, high, medium, low, "
                                      "none).",
        ),
        include_aws_managed: bool = typer.Option(
            False, "--include-aws-managed", help="Also audit AWS managed keys (alias/aws/…)."),
        if_deleted: list[str] = typer.Option(
            [], "--if-deleted", metavar="ARN",
            help="Also decide each key as if this IAM user or role were deleted (repeatable).",
        ),
        profile: list[str] = typer.Option(
            [], "--profile", "-p", autocompletion=complete_profile,
            help="Audit with this profile (repeatable: the first names the account, the others of that account "
                 "are used beside it; `env` = environment credentials).",
        ),
        role_arn: list[str] = typer.Option(
            [], "--role-arn", help="Also use this role, assumed from each chosen profile (repeatable)."),
        base_profile: str | None = typer.Option(
            None, "--base-profile", help="Assume --role-arn roles from this profile only.",
            autocompletion=complete_profile),
        role_session_name: str | None = typer.Option(
            None, "--role-session-name", help="Session name for --role-arn roles (default: kms-rescue)."),
        timeout: float = typer.Option(10.0, "--timeout", help="Seconds allowed for each AWS call."),
        accounts: str | None = typer.Option(
            None, "--accounts", metavar="ID,…",
            help="Audit these accounts (comma-separated), entering each other account through --role-name."),
        organization: bool = typer.Option(
            False, "--organization", help="Audit every account of the organization (ListAccounts: run it with a "
                                          "management-account profile)."),
        role_name: str = typer.Option(
            DEFAULT_ROLE_NAME, "--role-name", help="The role assumed in each member account."),
        concurrency: int = typer.Option(16, "--concurrency", help="Account-Region pairs audited at once."),
        deadline: float | None = typer.Option(
            None, "--deadline", help="Stop after this many seconds; what is unfinished is reported (stage "
                                     "deadline)."),
        checkpoint: str | None = typer.Option(
            None, "--checkpoint", metavar="FILE", help="Record each result in a new FILE, to --resume later."),
        resume: str | None = typer.Option(
            None, "--resume", metavar="FILE", help="Continue the audit a --checkpoint FILE recorded."),
        processes: int = typer.Option(1, "--processes", help="Spread the audit over this many processes."),
        terraform_plan: str | None = typer.Option(
            None, "--terraform-plan", metavar="FILE",
            help="Also decide each key as if the IAM users and roles (and Identity Center roles) this plan deletes "
                 "or replaces were gone (terraform show -json PLANFILE).",
        ),
        merge_paths: list[str] = typer.Option(
            [], "--merge", metavar="PATH",
            help="Report on JSON-lines results instead of auditing: .jsonl files, directories, or s3://BUCKET/PREFIX "
                 "(repeatable; docs/audit.md, \"Past one machine\").",
        ),
        schema: bool = typer.Option(
            False, "--schema", callback=_print_schema, is_eager=True,
            help="Print the JSON Schema of --format json and exit.",
        ),
    ) -> None:
        """Audit every customer managed KMS key of the account: verdict, managers and risks, before a lockout.

        Each key gets the verdict `report` would give it, who can manage it (named, through IAM, root) and the
        findings on its live policy (the lint rules and the live-only rules of docs/audit.md). Nothing in the
        account is changed.
        """
        code = run_audit_command(
            regions=regions, fmt=fmt, output=output, fail_on=fail_on, include_aws_managed=include_aws_managed,
            if_deleted=if_deleted, profiles=profile, role_arns=role_arn, base_profile=base_profile,
            role_session_name=role_session_name, timeout=timeout,
            scale=check_scale_options(accounts=accounts, organization=organization, role_name=role_name,
                                      concurrency=concurrency, deadline=deadline, checkpoint=checkpoint,
                                      resume=resume, processes=processes),
            terraform_plan=terraform_plan, merge_paths=merge_paths,
        )
        raise typer.Exit(code)
