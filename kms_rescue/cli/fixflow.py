"""The fix, one implementation for the interactive session and ``kms-rescue fix``: plan from a report, the checks
before any write, the safe write sequence (with signals held back for the write alone), and the lines that say
what happened. Renders to (text, style) pairs; the commands print them (docs/fix.md, docs/rescue.md).
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kms_rescue.cli._io import write_new_file
from kms_rescue.policy import analyze_management
from kms_rescue.status import ExitStatus, signal_status

if TYPE_CHECKING:
    from kms_rescue.aws.apply import ApplyError, ApplyResult, FixRefused
    from kms_rescue.observations import Investigation
    from kms_rescue.plan import FixPlan, ManagementCheck
    from kms_rescue.report import IdentityReport, Report

#: The signals held back while the policy is written: Ctrl-C, ``kill`` and a dropped SSH session (SIGHUP).
HELD_SIGNALS = tuple(s for s in (signal.SIGINT, getattr(signal, "SIGTERM", None), getattr(signal, "SIGHUP", None))
                     if s is not None)

Line = tuple[str, str]  # (text, rich style)


class SignalExit(Exception):
    """A held signal arrived during the write: raised once the write was verified and the restore command printed.
    The CLI exits with 128 + the signal's number (130 for SIGINT, 143 for SIGTERM, 129 for SIGHUP)."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"signal {signum}")
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return signal_status(self.signum)


@contextlib.contextmanager
def signals_held(pressed: list[int] | None = None) -> Iterator[list[int]]:
    """Hold SIGINT, SIGTERM and SIGHUP back while the body runs (the one PutKeyPolicy call must not be cut in half).
    The list it yields gets each signal that arrived meanwhile; the caller acts on it afterwards."""
    got: list[int] = [] if pressed is None else pressed
    if threading.current_thread() is not threading.main_thread():
        yield got
        return

    def remember(signum: int, _frame: Any) -> None:
        got.append(signum)

    previous = {s: signal.signal(s, remember) for s in HELD_SIGNALS}
    try:
        yield got
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def sigint_held() -> contextlib.AbstractContextManager[list[int]]:
    """The older name of :func:`signals_held`."""
    return signals_held()


# --- the plan ----------------------------------------------------------------------------------------------------


def plan_for(report: Report, admin_role: str | None = None) -> FixPlan:
    """The proposed policy for the report's key: every principal KMS would refuse taken out, AWS's default
    statement added unless there, and the named administrator unless already named."""
    # Deferred for start-up time: --help, lint and explain never load the report layer.
    from kms_rescue.plan import deleted_principals, propose_fix

    assert report.policy.document is not None and report.key.arn is not None
    return propose_fix(report.policy.document, key_arn=report.key.arn, admin_role_arn=admin_role or None,
                       deleted_principals=deleted_principals(report.principals))


def probe_for(investigation: Investigation, name: str) -> Any:
    return next(p for p in investigation.identities if p.spec.name == name)


def _identity_docs(probe: Any) -> list[Any] | None:
    pols = probe.identity_policies
    return [d.document for d in pols.documents] if pols is not None and pols.complete else None


def prechecks(plan: FixPlan, investigation: Investigation, applier: IdentityReport) -> tuple[list[ManagementCheck],
                                                                                             bool]:
    """The engine checks the write sequence runs before writing, without writing: whether the applier and the named
    administrator keep kms:PutKeyPolicy, and whether the proposed policy locks the key out."""
    # Deferred for start-up time: --help, lint and explain never load the report layer.
    from kms_rescue.plan import check_keeps_management

    probe = probe_for(investigation, applier.name)
    assert applier.arn is not None
    checks = check_keeps_management(plan.proposed, key_arn=plan.key_arn, applier=applier.arn,
                                    applier_identity_policies=_identity_docs(probe),
                                    administrators=[plan.admin_role_arn] if plan.admin_role_arn else [],
                                    applier_principal_arn=probe.role_arn)
    locked = analyze_management(plan.proposed, key_account=plan.key_account, key_arn=plan.key_arn).locked_out
    return checks, locked


def save_proposal(plan: FixPlan, directory: str | os.PathLike[str]) -> Path:
    """A declined (or planned) proposal, saved for later: ``kms-rescue-proposed-policy-KEYID.json`` (never
    overwriting: a numbered suffix)."""
    key_id = plan.key_arn.rsplit("/", 1)[-1]
    return write_new_file(Path(directory) / f"kms-rescue-proposed-policy-{key_id}.json", plan.proposed_text + "\n")


# --- the write ---------------------------------------------------------------------------------------------------


@dataclass
class FixOutcome:
    """What the write sequence did. Exactly one of ``result``, ``refused``, ``error`` is set."""

    result: ApplyResult | None = None
    refused: FixRefused | None = None
    error: ApplyError | None = None
    signals: list[int] = field(default_factory=list)

    @property
    def verified(self) -> bool:
        return self.result is not None and self.result.verified

    @property
    def state(self) -> str:
        """What is on the key: "new" (applied), "old", "other" or "unknown"."""
        if self.result is not None:
            return "new"
        if self.refused is not None:
            return "old"
        assert self.error is not None
        return self.error.state


def outcome_status(outcome: FixOutcome) -> ExitStatus:
    """The exit status of a write (docs/exit-status.md): OK when a fresh read verified it, NOT_APPLIED when the key
    still holds the old policy (the checks or KMS refused the write), else APPLIED_NOT_VERIFIED."""
    if outcome.verified:
        return ExitStatus.OK
    if outcome.refused is not None or (outcome.error is not None and outcome.error.state == "old"):
        return ExitStatus.NOT_APPLIED
    return ExitStatus.APPLIED_NOT_VERIFIED


def run_fix(plan: FixPlan, investigation: Investigation, applier: IdentityReport, *, region: str, timeout: float,
            backup_dir: str, environ: Any = None, before_write: Callable[[Path], None] | None = None) -> FixOutcome:
    """The safe sequence (re-read, backup, checks, one write with signals held back for it alone, verify) as
    ``applier``. Errors become the outcome; nothing is raised for a failed or refused write."""
    # Deferred for start-up time: kms_rescue.aws imports boto3.
    from kms_rescue.aws.apply import ApplyError, FixRefused, applier_for, apply_fix, kms_clients_for
    from kms_rescue.cli._runtime import command_runtime

    probe = probe_for(investigation, applier.name)
    assert applier.arn is not None
    outcome = FixOutcome()
    try:
        with command_runtime() as runtime:  # the clients outlive it: it only connects the identity
            kms, writer, _arn = kms_clients_for(probe.spec, region, timeout=timeout, environ=environ,
                                                runtime=runtime)
        who = applier_for(probe.spec, applier.arn, _identity_docs(probe), environ=environ,
                          principal_arn=probe.role_arn)
        outcome.result = apply_fix(plan, kms, who, backup_dir=backup_dir, before_write=before_write,
                                   hold=lambda: signals_held(outcome.signals), write_kms=writer)
    except FixRefused as exc:
        outcome.refused = exc
    except ApplyError as exc:
        outcome.error = exc
    return outcome


def outcome_lines(outcome: FixOutcome) -> list[Line]:
    """What happened, in the order to read it: the result, what is on the key, the backup and how to undo it."""
    lines: list[Line] = []
    if outcome.refused is not None:
        exc = outcome.refused
        lines.append((f"Refused: nothing was written to the key. {str(exc).removeprefix('refused: ')}", "bold red"))
        for c in exc.checks:
            blocked = f" (blocked by {', '.join(c.blocking)})" if c.blocking else ""
            lines.append((f"  {c.role} {c.principal}: "
                          + ("allowed kms:PutKeyPolicy" if c.allowed else "not allowed kms:PutKeyPolicy" + blocked)
                          + f": {c.detail}", ""))
        if exc.backup_path:
            lines.append((f"The current policy is saved in {exc.backup_path}.", ""))
        return lines
    if outcome.error is not None:
        err = outcome.error
        heading = {"old": "Not applied", "other": "Someone else's policy is on the key",
                   "unknown": "Unknown whether it was applied"}.get(err.state, "Not applied")
        lines.append((f"{heading}: {err}", "bold red" if err.state == "old" else "bold yellow"))
        if err.diff:
            lines.append(("What is on the key now, against the proposed policy:", ""))
            lines += [(d, "green" if d.startswith("+") else "red" if d.startswith("-") else "")
                      for d in err.diff.splitlines()]
        if err.hint:
            lines.append((err.hint, ""))
        if err.restore_command and err.state != "old":
            lines.append(("To put your backup back:", "bold"))
            lines.append((err.restore_command, "cyan"))
        return lines
    result = outcome.result
    assert result is not None
    lines.append(("Applied." if result.verified else "Applied, but NOT verified:",
                  "bold green" if result.verified else "bold yellow"))
    lines += [(f"  {note}", "") for note in result.verification]
    lines.append((f"Backup: {result.backup_path}", ""))
    lines.append(("To undo it, put the backup back (also saved in "
                  f"{result.restore_file}):" if result.restore_file else "To undo it, put the backup back:", "bold"))
    lines.append((result.restore_command, "cyan"))
    return lines


def checks_lines(checks: Sequence[ManagementCheck], locked: bool) -> list[Line]:
    out: list[Line] = []
    for c in checks:
        blocked = f" (blocked by {', '.join(c.blocking)})" if c.blocking else ""
        verdict = "allowed kms:PutKeyPolicy" if c.allowed else "not allowed kms:PutKeyPolicy" + blocked
        out.append((f"check: {c.role} {c.principal} {verdict}: {c.detail}", "" if c.allowed else "red"))
    out.append(("check: the key is not locked out by the proposed policy" if not locked else
                "check: the proposed policy would lock the key out (no principal could manage it)",
                "" if not locked else "red"))
    return out



# --- key states: cancel a scheduled deletion, enable a disabled key -----------------------------------------------


@dataclass(frozen=True)
class StateChange:
    """What a key-state write did, from a fresh kms:DescribeKey afterwards."""

    done: bool
    state: str | None  # the key's state read back (None when it could not be read)
    message: str


def change_key_state(action: str, investigation: Investigation, identity: str, *, key_arn: str, region: str,
                     timeout: float, environ: Any = None) -> StateChange:
    """``action`` "cancel_deletion" (kms:CancelKeyDeletion; KMS leaves the key Disabled: KMS Developer Guide,
    "Deleting AWS KMS keys") or "enable" (kms:EnableKey), as ``identity``, sent once with signals held back for
    the call alone, then the state read back with kms:DescribeKey: the truth after the write."""
    # Deferred for start-up time: kms_rescue.aws imports boto3.
    from kms_rescue.aws.apply import ApplyError, client_error, kms_clients_for
    from kms_rescue.cli._runtime import command_runtime

    probe = probe_for(investigation, identity)
    try:
        with command_runtime() as runtime:  # the clients outlive it: it only connects the identity
            kms, writer, _arn = kms_clients_for(probe.spec, region, timeout=timeout, environ=environ,
                                                runtime=runtime)
    except ApplyError as exc:
        return StateChange(False, None, str(exc))
    pressed: list[int] = []
    error: str | None = None
    try:
        with signals_held(pressed):
            if action == "cancel_deletion":
                writer.cancel_key_deletion(KeyId=key_arn)
            else:
                writer.enable_key(KeyId=key_arn)
    except Exception as exc:
        code, message = client_error(exc)
        error = f"{code}: {message}"
    try:
        state = kms.describe_key(KeyId=key_arn)["KeyMetadata"].get("KeyState")
    except Exception as exc:
        code, message = client_error(exc)
        state = None
        error = (error + "; " if error else "") + f"the state could not be read back ({code}: {message})"
    wanted_gone = "PendingDeletion" if action == "cancel_deletion" else "Disabled"
    done = state is not None and state != wanted_gone
    what = "the deletion is cancelled" if action == "cancel_deletion" else "the key is enabled"
    if done:
        message = f"Done: {what}; the key's state is now {state}" + (f" (the call answered {error})" if error else "")
    elif state is not None:
        message = f"Not done: the key is still {state}" + (f" ({error})" if error else "")
    else:
        message = f"Unknown whether {what}: {error}"
    if pressed:
        raise SignalExit(pressed[0])
    return StateChange(done, state, message)


__all__ = [
    "HELD_SIGNALS",
    "FixOutcome",
    "SignalExit",
    "StateChange",
    "change_key_state",
    "checks_lines",
    "outcome_lines",
    "outcome_status",
    "plan_for",
    "prechecks",
    "probe_for",
    "run_fix",
    "save_proposal",
    "sigint_held",
    "signals_held",
]
