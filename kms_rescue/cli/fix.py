"""``kms-rescue fix KEY``: the non-interactive fix, for runbooks and automation (docs/fix.md).

``--plan`` (the default) probes, plans and runs every pre-write check, and writes nothing. ``--apply --yes`` runs
the interactive session's exact safe sequence (one implementation: :mod:`kms_rescue.cli.fixflow`).

Exit statuses (:mod:`kms_rescue.status`; docs/exit-status.md, docs/fix.md): OK 0 nothing to change, a plan whose
checks pass, or applied and verified by a fresh read; NOT_APPLIED 9 (the checks refused it, or KMS refused it and a
fresh read shows the old policy); APPLIED_NOT_VERIFIED 7 (a fresh read shows a policy that is neither the old nor
the new one, or could not be read); USAGE 2; 3, 4, 5, 6 the key is not manageable by the identities given
(recoverable, locked out, undetermined, not found: see ``kms-rescue report``); 128 + N when signal N arrived during
the write (after it finished and was read back).
"""

from __future__ import annotations

import json
import os
from enum import Enum
from typing import TYPE_CHECKING, Any

import typer

from kms_rescue.cli._region import announce_aws_profile, chosen_identities, describe_key, key_region
from kms_rescue.cli.fixflow import (
    SignalExit,
    checks_lines,
    outcome_lines,
    outcome_status,
    plan_for,
    prechecks,
    run_fix,
)
from kms_rescue.cli.options import positive_seconds
from kms_rescue.errors import UsageError
from kms_rescue.status import ExitStatus

if TYPE_CHECKING:
    from kms_rescue.cli.fixflow import FixOutcome
    from kms_rescue.plan import FixPlan
    from kms_rescue.report import IdentityReport, Report

EPILOG = (
    "Examples: kms-rescue fix alias/payments --region us-east-1 (the plan, no write) · "
    "kms-rescue fix KEY_ARN --apply --yes --profile admin --backup-dir ./backups · "
    "kms-rescue fix KEY_ARN --format json. Exit status: 0 nothing to change / plan passes / applied and verified, "
    "9 not applied, 7 applied but not verified (or the key holds another policy), 2 usage error, "
    "3 recoverable, 4 locked out, 5 undetermined, 6 not found, 128+N signal N during the write "
    "(docs/exit-status.md)."
)


class FixFormat(str, Enum):
    text = "text"
    json = "json"


def _emit(text: str) -> None:
    typer.echo(text, nl=not text.endswith("\n"))


def _choose_applier(report: Report, profile: str | None, role_arns: list[str]) -> IdentityReport | None:
    """The identity that applies: an assumed --role-arn role when given (it is what the user asked for), else
    --profile, else the first that can manage the key."""
    managers = list(report.managers)
    if role_arns:
        wanted = {arn.rsplit("/", 1)[-1] for arn in role_arns}
        managers = [m for m in managers if m.name.split("@", 1)[0] in wanted and "@" in m.name] or managers
    elif profile:
        managers = [m for m in managers if m.name == profile] or managers
    return managers[0] if managers else None


def _base_payload(report: Report, mode: str) -> dict[str, Any]:
    return {"key": report.key.arn or report.key.input, "verdict": report.verdict, "mode": mode,
            "key_state": [n.message for n in report.key_state], "applier": None, "proposed_policy": None,
            "changes": [], "notes": [], "diff": "", "checks": [], "locked_out": None, "applied": False,
            "verified": False, "state": None, "backup": None, "restore_command": None, "restore_file": None,
            "error": None, "last_session": None}


def _plan_payload(payload: dict[str, Any], plan: FixPlan, checks: Any, locked: bool) -> None:
    payload.update(proposed_policy=plan.proposed if plan.changed else None, changes=plan.changes(),
                   notes=list(plan.notes), diff=plan.annotated_diff() if plan.changed else "",
                   checks=[{"principal": c.principal, "role": c.role, "allowed": c.allowed, "detail": c.detail}
                           for c in checks], locked_out=locked)


def _outcome_payload(payload: dict[str, Any], outcome: FixOutcome) -> None:
    payload["state"] = outcome.state
    payload["applied"] = outcome.verified  # true only when a fresh read verified the write
    payload["verified"] = outcome.verified
    if outcome.result is not None:
        r = outcome.result
        payload.update(backup=str(r.backup_path), restore_command=r.restore_command,
                       restore_file=str(r.restore_file) if r.restore_file else None,
                       notes=[*payload["notes"], *r.verification])
    failure = outcome.refused or outcome.error
    if failure is not None:
        payload["error"] = str(failure)
        payload["backup"] = str(failure.backup_path) if failure.backup_path else None
        payload["restore_command"] = failure.restore_command if failure.state != "old" else None
        if failure.diff:
            payload["diff_now"] = failure.diff


def run_fix_command(key: str, *, apply: bool, yes: bool, admin_role: str | None, profile: str | None,
                    role_arn: list[str], role_session_name: str | None, region: str | None, timeout: float,
                    backup_dir: str | None, fmt: FixFormat) -> int:
    """The command's body; returns the exit code."""
    # Deferred for start-up time: kms_rescue.aws imports boto3.
    from kms_rescue.aws.apply import describe_journal_entry, last_journal_entry
    from kms_rescue.aws.investigate import InvestigateOptions, investigate
    from kms_rescue.aws.keyref import parse_key_ref
    from kms_rescue.cli._runtime import command_runtime
    from kms_rescue.plan import validate_admin_role
    from kms_rescue.report import build_report

    if apply and not yes:
        raise UsageError("--apply writes the key policy: add --yes to go ahead (or run `kms-rescue KEY` to be "
                         "asked)")
    positive_seconds(timeout, "--timeout")
    profiles = [profile] if profile else []
    ref = parse_key_ref(key, key_region(key, region, profiles))  # the AWS CLI's Region chain, as `report`
    if admin_role and ref.account:
        validate_admin_role(admin_role, ref.account)
    announce_aws_profile(profiles)
    options = InvestigateOptions(region=ref.region, profiles=profiles, role_arns=role_arn,
                                 base_profile=profile if role_arn else None, role_session_name=role_session_name,
                                 timeout=timeout, history=False)
    describe_key(ref)
    specs = chosen_identities(options)
    with command_runtime(options.redactor) as runtime:
        investigation = investigate(ref, options, identities=specs, progress=lambda _e: None, runtime=runtime)
    report = build_report(investigation)
    scrub = options.redactor.scrub_known
    payload = _base_payload(report, "apply" if apply else "plan")
    lines: list[tuple[str, str]] = [(m.message, "") for m in report.key_state]
    folder = backup_dir or os.getcwd()

    def finish(code: int) -> int:
        if fmt is FixFormat.json:
            _emit(scrub(json.dumps(payload, indent=2)))
        else:
            _emit(scrub("\n".join(text for text, _ in lines)))
        return code

    if report.key.id and (entry := last_journal_entry(folder, report.key.id)) is not None:
        payload["last_session"] = describe_journal_entry(entry)
        lines.append((payload["last_session"], ""))
    applier = _choose_applier(report, profile, role_arn) if report.verdict == "manageable" else None
    if applier is None or report.policy.document is None:
        lines.append((f"Verdict: {report.verdict.replace('_', ' ').upper()}: {report.summary}", ""))
        lines.append(("No fix can be planned by these identities; see `kms-rescue report` for the next step.", ""))
        return finish(report.exit_code)
    payload["applier"] = {"name": applier.name, "arn": applier.arn}
    if admin_role:
        validate_admin_role(admin_role, report.key.account or "")
    plan = plan_for(report, admin_role)
    if not plan.changed:
        payload.update(notes=list(plan.notes), locked_out=False)
        lines += [(f"note: {n}", "") for n in plan.notes]
        lines.append(("Nothing to change: the policy already has what the fix would add.", ""))
        return finish(ExitStatus.OK)
    checks, locked = prechecks(plan, investigation, applier)
    _plan_payload(payload, plan, checks, locked)
    lines.append((f"Proposed key policy for {plan.key_arn}, applied as {applier.name} ({applier.arn}):", ""))
    lines.append((plan.annotated_diff().rstrip("\n"), ""))
    lines += [(f"note: {n}", "") for n in plan.notes]
    lines += checks_lines(checks, locked)
    passes = all(c.allowed for c in checks) and not locked
    if not apply:
        lines.append(("Plan only: nothing was written. Apply it with --apply --yes." if passes else
                      "The checks refuse this plan: it would not be applied.", ""))
        return finish(ExitStatus.OK if passes else ExitStatus.NOT_APPLIED)
    typer.echo("kms-rescue: re-reading the key policy before the write …", err=True)
    outcome = run_fix(plan, investigation, applier, region=report.key.region or "", timeout=timeout,
                      backup_dir=folder,
                      before_write=lambda path: typer.echo(f"kms-rescue: backed up to {path}; checks passed; "
                                                           "calling kms:PutKeyPolicy …", err=True))
    _outcome_payload(payload, outcome)
    lines += outcome_lines(outcome)
    code = finish(outcome_status(outcome))
    if outcome.signals:
        raise SignalExit(outcome.signals[0])
    return code


def register(app: typer.Typer) -> None:
    @app.command("fix", epilog=EPILOG)
    def fix(
        key: str = typer.Argument(..., metavar="KEY",
                                  help="The key: its ARN, an alias ARN, or a key id / alias/NAME with --region."),
        apply: bool = typer.Option(False, "--apply", help="Write the proposed policy (needs --yes)."),
        plan_only: bool = typer.Option(False, "--plan", help="Show the plan and its checks; write nothing "
                                                             "(the default)."),
        yes: bool = typer.Option(False, "--yes", help="Confirm --apply without being asked."),
        admin_role: str | None = typer.Option(None, "--admin-role", metavar="ARN",
                                              help="Also name this role of the key's account a key administrator."),
        profile: str | None = typer.Option(None, "--profile", "-p", help="The identity that applies the fix "
                                                                         "(default: the first that can)."),
        role_arn: list[str] = typer.Option([], "--role-arn", help="Assume this role (from --profile) to apply."),
        role_session_name: str | None = typer.Option(None, "--role-session-name",
                                                     help="The session name for --role-arn."),
        region: str | None = typer.Option(None, "--region", help="The key's Region (a key ARN carries its own)."),
        timeout: float = typer.Option(10.0, "--timeout", help="Seconds allowed for credentials and each AWS call."),
        backup_dir: str | None = typer.Option(None, "--backup-dir",
                                              help="Where the backup, restore script and journal go (default: .)."),
        fmt: FixFormat = typer.Option(FixFormat.text, "--format", "-f", help="Output format."),
    ) -> None:
        """Plan (default) or apply the fix that makes a KMS key manageable again, without questions."""
        if apply and plan_only:
            raise UsageError("--plan and --apply exclude each other")
        try:
            code = run_fix_command(key, apply=apply, yes=yes, admin_role=admin_role, profile=profile,
                                   role_arn=role_arn, role_session_name=role_session_name, region=region,
                                   timeout=timeout, backup_dir=backup_dir, fmt=fmt)
        except SignalExit as exc:
            typer.echo(f"kms-rescue: signal {exc.signum} arrived during the write: it finished and was read back "
                       "(above); exiting", err=True)
            raise typer.Exit(exc.exit_code) from None
        raise typer.Exit(code)


__all__ = ["FixFormat", "register", "run_fix_command"]
