"""Apply a repaired key policy, safely: back up, check, write, verify, and say how to undo it.

The order never changes (docs/rescue.md; KMS API reference, PutKeyPolicy: the lockout safety check):

1. re-read the current policy (kms:GetKeyPolicy) and refuse if it is not the one the plan was made from;
2. save it to a timestamped backup file, mode 0600, before anything is written;
3. check with the policy engine that the identity applying the new policy, and the administrator it names, keep
   kms:PutKeyPolicy under it, and that the key is not locked out by it; refuse otherwise;
4. kms:PutKeyPolicy with KMS's policy lockout safety check on (``BypassPolicyLockoutSafetyCheck`` is never sent);
5. re-read the policy and re-evaluate it to verify;
6. give the exact AWS CLI command that puts the backup back (also saved beside the backup).

After an error, a timeout or an interrupt around the write, the only truth is a fresh read: :func:`read_truth`
says whether the key has the old policy, the new one, or something else (someone else's change). The write is sent
once (its client has a single attempt: botocore's retries would repeat it without that read first). A journal
beside the backup (``kms-rescue-journal-KEYID.jsonl``) records each step, so a re-run can say what the last session
did (docs/rescue.md, "The truth after every write").

Every failure is a :class:`~kms_rescue.errors.KmsRescueError` with one line that says what was (not) changed.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import difflib
import json
import os
import shlex
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from dataclasses import replace as dataclasses_replace
from pathlib import Path
from typing import Any

from kms_rescue.aws.classify import classify_exception
from kms_rescue.aws.probe import IdentityRun, ProbeSettings
from kms_rescue.aws.runtime import AwsRuntime
from kms_rescue.aws.sessions import SessionOptions, create_client, load_profiles
from kms_rescue.errors import KmsRescueError
from kms_rescue.plan import FixPlan, ManagementCheck, check_keeps_management, policy_text
from kms_rescue.policy import PolicyInputError, analyze_management, parse_policy
from kms_rescue.policy.evaluate import PolicyDocument
from kms_rescue.status import ExitStatus

POLICY_NAME = "default"
BACKUP_MODE = 0o600
#: What a fresh read found on the key after a write that failed or was interrupted.
STATE_OLD, STATE_NEW, STATE_OTHER, STATE_UNKNOWN = "old", "new", "other", "unknown"


class ApplyError(KmsRescueError):
    """The new policy was not applied (or could not be verified); the message says which and what to do. Its exit
    status (docs/exit-status.md) follows what is on the key: NOT_APPLIED for the old policy, else
    APPLIED_NOT_VERIFIED."""

    def __init__(self, message: str, *, hint: str | None = None, backup_path: Path | None = None,
                 applied: bool = False, state: str = STATE_OLD, diff: str = "",
                 restore_command: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.exit_code = ExitStatus.NOT_APPLIED if state == STATE_OLD else ExitStatus.APPLIED_NOT_VERIFIED
        self.backup_path = backup_path
        self.applied = applied
        #: what is on the key: "old" (nothing changed), "other" (someone else's change), "unknown" (unread)
        self.state = state
        self.diff = diff  # for "other": the proposed policy against what is on the key
        self.restore_command = restore_command


class FixRefused(ApplyError):
    """The engine check failed: applying the policy would cost the applier or the named administrator
    kms:PutKeyPolicy, or lock the key out. Nothing was written to the key."""

    def __init__(self, message: str, *, checks: Sequence[ManagementCheck] = (), backup_path: Path | None = None,
                 hint: str | None = None) -> None:
        super().__init__(message, hint=hint, backup_path=backup_path, applied=False)
        self.checks = tuple(checks)


@dataclass(frozen=True)
class ApplyResult:
    """What happened. ``verified`` is True when the re-read policy equals the one sent and the engine says the
    applier can still call PutKeyPolicy and the key is not locked out."""

    key_arn: str
    backup_path: Path
    restore_command: str
    checks: tuple[ManagementCheck, ...]
    applied: bool = True
    verified: bool = False
    verification: tuple[str, ...] = field(default_factory=tuple)
    restore_file: Path | None = None  # the restore command, saved beside the backup
    journal: Path | None = None


@dataclass(frozen=True)
class Applier:
    """Who applies the policy, and how the restore command reaches the key as them."""

    arn: str  # the caller ARN (sts:GetCallerIdentity)
    identity_policies: Sequence[PolicyDocument] | None  # None when they could not be read
    profile: str | None = None  # the AWS CLI profile for the restore command
    source: str = "profile"  # profile | env | assume_role
    role_arn: str | None = None  # for assume_role identities: the role that was assumed
    endpoint_url: str | None = None  # a custom KMS endpoint (the lab), for the restore command
    config_file: str | None = None  # a non-default AWS_CONFIG_FILE, for the restore command
    principal_arn: str | None = None  # a session's aws:PrincipalArn: its role's ARN, path included (iam:GetRole)


# --- backup ----------------------------------------------------------------------------------------------------


def _stamp(now: _dt.datetime | None) -> str:
    moment = now or _dt.datetime.now(_dt.timezone.utc)
    return moment.astimezone(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def write_backup(text: str, *, key_id: str, directory: str | os.PathLike[str],
                 now: _dt.datetime | None = None) -> Path:
    """Write ``text`` to ``DIRECTORY/kms-key-policy-KEYID-YYYYmmddTHHMMSSZ.json`` with mode 0600, byte for byte
    what KMS returned (created exclusively and never through a symlink: an existing file is never overwritten).
    Raises :class:`ApplyError` when it cannot be written."""
    return _write_new(text, directory=directory, base=f"kms-key-policy-{key_id}-{_stamp(now)}", suffix=".json",
                      what="backup")


def _write_new(text: str, *, directory: str | os.PathLike[str], base: str, suffix: str, what: str) -> Path:
    folder = Path(directory).expanduser()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ApplyError(f"cannot create the {what} directory {folder}: {exc.strerror}; nothing was changed") from None
    for n in range(1, 100):
        path = folder / (f"{base}{suffix}" if n == 1 else f"{base}-{n}{suffix}")
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), BACKUP_MODE)
        except FileExistsError:
            continue
        except OSError as exc:
            raise ApplyError(f"cannot write the {what} {path}: {exc.strerror}; nothing was changed") from None
        try:
            os.fchmod(fd, BACKUP_MODE)  # whatever the umask
            with os.fdopen(fd, "wb") as fh:
                fh.write(text.encode("utf-8"))
        except OSError as exc:
            raise ApplyError(f"cannot write the {what} {path}: {exc.strerror}; nothing was changed") from None
        return path
    raise ApplyError(f"cannot find a free {what} file name in {folder}; nothing was changed")


# --- the journal -----------------------------------------------------------------------------------------------


def journal_path(directory: str | os.PathLike[str], key_id: str) -> Path:
    return Path(directory).expanduser() / f"kms-rescue-journal-{key_id}.jsonl"


def journal_append(path: Path, entry: Mapping[str, Any]) -> None:
    """One JSON line, appended (mode 0600, never through a symlink). Best effort: a journal that cannot be written
    never stops a rescue (the session says what happened on screen anyway)."""
    line = json.dumps(dict(entry), sort_keys=True) + "\n"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_NOFOLLOW", 0), BACKUP_MODE)
    except OSError:
        return
    try:
        os.write(fd, line.encode("utf-8"))
    except OSError:
        pass
    finally:
        os.close(fd)


def last_journal_entry(directory: str | os.PathLike[str], key_id: str) -> dict[str, Any] | None:
    """The last complete entry of the key's journal in ``directory`` (None when there is none)."""
    path = journal_path(directory, key_id)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return None
    with os.fdopen(fd, "rb") as fh:
        lines = fh.read().decode("utf-8", "replace").splitlines()
    for line in reversed(lines):
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict):
            return entry
    return None


def describe_journal_entry(entry: Mapping[str, Any]) -> str:
    """One line about what the last session did, from its journal entry."""
    when = entry.get("time", "?")
    backup = entry.get("backup", "?")
    outcome = {
        "verified": "the new policy was applied and verified",
        "applied": "the new policy was applied but not verified",
        "writing": "it stopped while writing: whether the write landed was never read back",
        "not_applied": "the write did not land (a fresh read showed the old policy)",
        "other": "a fresh read showed a policy that is neither the old nor the new one",
        "unknown": "the policy could not be read back: whether the write landed is unknown",
        "refused": "the checks refused the fix; nothing was written",
        "cancel_deletion": "the key's deletion was cancelled",
    }.get(str(entry.get("outcome")), f"outcome {entry.get('outcome')}")
    return f"The last session on this key ({when}) backed the policy up to {backup}; {outcome}."


# --- the restore command ---------------------------------------------------------------------------------------


def restore_command(key_arn: str, backup_path: Path, applier: Applier) -> str:
    """The AWS CLI command that puts the backup back, as the same identity."""
    region = key_arn.split(":")[3]
    q = shlex.quote
    parts = []
    if applier.config_file:
        parts.append(f"AWS_CONFIG_FILE={q(applier.config_file)}")
    parts += ["aws", "kms", "put-key-policy", "--key-id", q(key_arn), "--policy-name", POLICY_NAME,
              "--policy", q(f"file://{backup_path.resolve()}")]
    if applier.profile and applier.source in ("profile", "assume_role"):
        parts += ["--profile", q(applier.profile)]
    parts += ["--region", q(region)]
    if applier.endpoint_url:
        parts += ["--endpoint-url", q(applier.endpoint_url)]
    command = " ".join(parts)
    if applier.source == "env":
        command += "  # with the same AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY in the environment"
    return command


def restore_script(key_arn: str, backup_path: Path, applier: Applier) -> str:
    """A POSIX shell script that puts the backup back as the identity that applied the fix. For an assumed role it
    assumes the role again first (aws sts assume-role from the same base profile), so it runs as printed."""
    q = shlex.quote
    lines = ["#!/bin/sh", f"# Puts back the key policy backed up in {backup_path.resolve()}", "set -eu"]
    if applier.config_file:
        lines.append(f"export AWS_CONFIG_FILE={q(applier.config_file)}")
    if applier.source == "assume_role" and applier.role_arn:
        session = (applier.arn.rsplit("/", 1)[-1] if ":assumed-role/" in applier.arn else "kms-rescue-restore")
        assume = ["aws", "sts", "assume-role", "--role-arn", q(applier.role_arn), "--role-session-name", q(session),
                  "--query", q("Credentials.[AccessKeyId,SecretAccessKey,SessionToken]"), "--output", "text"]
        if applier.profile:
            assume += ["--profile", q(applier.profile)]
        if applier.endpoint_url:
            assume += ["--endpoint-url", q(applier.endpoint_url)]
        lines += [f"set -- $({' '.join(assume)})",
                  'export AWS_ACCESS_KEY_ID="$1" AWS_SECRET_ACCESS_KEY="$2" AWS_SESSION_TOKEN="$3"',
                  "unset AWS_PROFILE"]
        plain = Applier(arn=applier.arn, identity_policies=None, source="env", endpoint_url=applier.endpoint_url)
        lines.append(restore_command(key_arn, backup_path, plain).split("  #", 1)[0])
    else:
        lines.append(restore_command(key_arn, backup_path, dataclasses_replace(applier, config_file=None))
                     .split("  #", 1)[0])
    return "\n".join(lines) + "\n"


def restore_for(key_arn: str, backup_path: Path, applier: Applier) -> tuple[str, Path]:
    """The one-line command to print and the script saved beside the backup (``….restore.sh``, mode 0600). For
    an assumed role the line runs the script (the role's credentials must be fetched first)."""
    script = _write_new(restore_script(key_arn, backup_path, applier), directory=backup_path.parent,
                        base=backup_path.name.removesuffix(".json"), suffix=".restore.sh", what="restore script")
    if applier.source == "assume_role" and applier.role_arn:
        return f"sh {shlex.quote(str(script.resolve()))}", script
    return restore_command(key_arn, backup_path, applier), script


def parse_restore_command(command: str) -> dict[str, str]:
    """The options of a command made by :func:`restore_command` (``--key-id`` → ``key-id`` ...), plus
    ``AWS_CONFIG_FILE`` when set; used by tests and by anyone scripting the rollback."""
    words = shlex.split(command, comments=True)
    out: dict[str, str] = {}
    i = 0
    while i < len(words):
        word = words[i]
        if "=" in word and not word.startswith("-") and i == 0:
            name, _, value = word.partition("=")
            out[name] = value
        elif word.startswith("--") and i + 1 < len(words):
            out[word[2:]] = words[i + 1]
            i += 1
        i += 1
    return out


# --- the apply -------------------------------------------------------------------------------------------------


def _same_policy(a: Mapping[str, Any] | None, b: Mapping[str, Any] | None) -> bool:
    return a is not None and b is not None and json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def _client_error(exc: BaseException) -> tuple[str, str]:
    """(code, one-line message) of whatever a KMS call raised, credential-like text removed."""
    c = classify_exception(exc)
    return c.error_code or type(exc).__name__, (c.message or "").split("\n")[0]


client_error = _client_error  # the public name, for the other writes the CLI makes (key states)


def _read_policy(kms: Any, key_arn: str) -> tuple[str, dict[str, Any]]:
    got = kms.get_key_policy(KeyId=key_arn, PolicyName=POLICY_NAME)
    text = got.get("Policy") or ""
    doc = json.loads(text)
    if not isinstance(doc, dict):
        raise ValueError("the key policy is not a JSON object")
    return text, doc


def refusal_message(checks: Sequence[ManagementCheck], locked_out: bool,
                    before: Sequence[ManagementCheck] = ()) -> str:
    """Why the checks refuse a plan: who would lose kms:PutKeyPolicy (had it under the current policy) or would not
    gain it (never had it), and the statement that blocks."""
    had = {c.principal: c.allowed for c in before}
    failing = [c for c in checks if not c.allowed]
    parts = []
    for c in failing:
        who = "you (the identity applying it)" if c.role == "applier" else f"the administrator {c.principal}"
        unknown = " (its IAM policies could not be read)" if c.identity_unknown else ""
        verb = "would lose" if had.get(c.principal, c.role == "applier") else "would not gain"
        blocked = f" (blocked by {', '.join(c.blocking)})" if c.blocking else ""
        parts.append(f"{who} {verb} kms:PutKeyPolicy{unknown}{blocked}: {c.detail}")
    if locked_out and not failing:
        parts.append("no principal of the key's account could call kms:PutKeyPolicy under it")
    return "refused: " + "; ".join(parts)


def read_truth(kms: Any, key_arn: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> tuple[str, str]:
    """A fresh read after a write that failed, timed out or was interrupted: (state, detail) where state is
    "old", "new", "other" (with the diff from the proposed policy as detail) or "unknown" (with the reason)."""
    try:
        _, now_doc = _read_policy(kms, key_arn)
    except Exception as exc:
        code, message = (_client_error(exc) if not isinstance(exc, ValueError) else ("ValueError", str(exc)))
        return STATE_UNKNOWN, f"{code}: {message}"
    if _same_policy(now_doc, new):
        return STATE_NEW, ""
    if _same_policy(now_doc, old):
        return STATE_OLD, ""
    diff = difflib.unified_diff(policy_text(new).splitlines(), policy_text(now_doc).splitlines(),
                                "proposed key policy", "key policy now", lineterm="")
    return STATE_OTHER, "\n".join(diff)


def apply_fix(
    plan: FixPlan,
    kms: Any,
    applier: Applier,
    *,
    backup_dir: str | os.PathLike[str],
    now: _dt.datetime | None = None,
    before_write: Callable[[Path], None] | None = None,
    hold: Callable[[], AbstractContextManager[Any]] | None = None,
    write_kms: Any = None,
) -> ApplyResult:
    """Apply ``plan.proposed`` to the key with the ``kms`` client of ``applier`` (see the module docstring).

    ``before_write`` is called with the backup path once the checks passed, just before PutKeyPolicy (the CLI
    uses it to say what is happening). ``hold`` wraps the PutKeyPolicy call alone (the CLI holds signals back for
    it); ``write_kms`` is the client that sends it (one attempt, no retry; default ``kms``). Raises
    :class:`FixRefused` when the engine check fails and :class:`ApplyError` for anything else; ``error.state`` says
    what a fresh read found on the key."""
    key_arn = plan.key_arn
    key_id = key_arn.rsplit("/", 1)[-1]
    if not plan.changed:
        raise ApplyError("the proposed policy is the same as the current one: nothing to apply")

    # 1. The policy now, exactly as KMS returns it.
    try:
        current_text, current_doc = _read_policy(kms, key_arn)
    except ValueError:
        raise ApplyError("kms:GetKeyPolicy returned a policy that is not a JSON object; nothing was changed") from None
    except Exception as exc:
        code, message = _client_error(exc)
        raise ApplyError(f"cannot re-read the key policy before changing it ({code}: {message}); nothing was "
                         "changed") from None
    if not _same_policy(current_doc, plan.current):
        raise ApplyError("the key policy changed since it was read: nothing was changed; run the session again to "
                         "plan from the current policy")

    # 2. The backup, before any write, and the command (and script) that puts it back.
    backup = write_backup(current_text, key_id=key_id, directory=backup_dir, now=now)
    command, script = restore_for(key_arn, backup, applier)
    journal = journal_path(backup.parent, key_id)
    stamp = (now or _dt.datetime.now(_dt.timezone.utc)).astimezone(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")

    def record(outcome: str) -> None:
        journal_append(journal, {"time": stamp, "key": key_arn, "backup": str(backup), "restore": str(script),
                                 "by": applier.arn, "outcome": outcome})

    # 3. The engine check.
    checks = check_keeps_management(
        plan.proposed, key_arn=key_arn, applier=applier.arn,
        applier_identity_policies=applier.identity_policies,
        administrators=[plan.admin_role_arn] if plan.admin_role_arn else [],
        applier_principal_arn=applier.principal_arn,
    )
    try:
        # Someone must manage the key now: a path that opens only on a later date does not count.
        locked = not analyze_management(plan.proposed, key_account=plan.key_account, key_arn=key_arn).manageable_now
    except PolicyInputError as exc:
        record("refused")
        raise FixRefused(f"refused: the proposed policy does not parse: {exc}", backup_path=backup) from None
    if locked or not all(c.allowed for c in checks):
        record("refused")
        before = check_keeps_management(
            plan.current, key_arn=key_arn, applier=applier.arn, applier_identity_policies=applier.identity_policies,
            administrators=[plan.admin_role_arn] if plan.admin_role_arn else [],
            applier_principal_arn=applier.principal_arn)
        raise FixRefused(refusal_message(checks, locked, before), checks=checks, backup_path=backup,
                         hint="nothing was written to the key; the current policy is saved in " + str(backup))

    # 4. The write, with the lockout safety check on (no BypassPolicyLockoutSafetyCheck parameter, ever), sent
    #    once; only this call is held back from signals.
    if before_write is not None:
        before_write(backup)
    record("writing")
    notes: list[str] = []
    try:
        with (hold() if hold is not None else contextlib.nullcontext()):
            (write_kms or kms).put_key_policy(KeyId=key_arn, PolicyName=POLICY_NAME, Policy=plan.proposed_text)
    except Exception as exc:
        code, message = _client_error(exc)
        state, detail = read_truth(kms, key_arn, plan.current, plan.proposed)
        record({STATE_OLD: "not_applied", STATE_NEW: "applied"}.get(state, state))
        if state == STATE_OLD:
            raise ApplyError(f"not applied: KMS answered {code}: {message}; a fresh read shows the key still has "
                             "the old policy", backup_path=backup, hint=f"the current policy is saved in {backup}",
                             state=STATE_OLD, restore_command=command) from None
        if state == STATE_OTHER:
            raise ApplyError(f"the write answered {code}: {message}, and a fresh read shows a policy that is neither "
                             "the old nor the new one (someone else's change?)", backup_path=backup,
                             hint=f"your backup of the policy before is {backup}", state=STATE_OTHER, diff=detail,
                             restore_command=command) from None
        if state == STATE_UNKNOWN:
            raise ApplyError(f"the write answered {code}: {message}, and the policy could not be read back "
                             f"({detail}): whether the write landed is unknown; read it before trying again",
                             backup_path=backup, hint=f"your backup of the policy before is {backup}",
                             state=STATE_UNKNOWN, restore_command=command) from None
        notes.append(f"the write answered {code}: {message}, but a fresh read shows the new policy on the key")

    # 5. Verify.
    verified = True
    try:
        _, after = _read_policy(kms, key_arn)
    except Exception as exc:
        code, message = (_client_error(exc) if not isinstance(exc, ValueError) else ("ValueError", str(exc)))
        record("applied")
        return ApplyResult(key_arn, backup, command, tuple(checks), True, False,
                           (*notes, f"applied, but the policy could not be read back to verify it ({code}: {message})"),
                           script, journal)
    if _same_policy(after, plan.proposed):
        notes.append("the policy read back is the one that was sent")
    else:
        verified = False
        notes.append("the policy read back differs from the one that was sent (another change at the same time?)")
    try:
        parse_policy(after)
        after_checks = check_keeps_management(after, key_arn=key_arn, applier=applier.arn,
                                              applier_identity_policies=applier.identity_policies,
                                              applier_principal_arn=applier.principal_arn)
        analysis = analyze_management(after, key_account=plan.key_account, key_arn=key_arn)
    except PolicyInputError as exc:
        record("applied")
        return ApplyResult(key_arn, backup, command, tuple(checks), True, False,
                           (*notes, f"the policy read back does not parse: {exc}"), script, journal)
    if all(c.allowed for c in after_checks):
        notes.append("re-evaluated: the identity that applied it can still call kms:PutKeyPolicy")
    else:
        verified = False
        notes.append("re-evaluated: the identity that applied it can NOT call kms:PutKeyPolicy any more")
    if not analysis.manageable_now:
        verified = False
        notes.append("re-evaluated: no principal of the account can manage the key now")
    else:
        who = sorted({p.principal for p in analysis.managing_paths})
        notes.append("re-evaluated: manageable by " + ", ".join(who))
    record("verified" if verified else "applied")
    return ApplyResult(key_arn, backup, command, tuple(checks), True, verified, tuple(notes), script, journal)


# --- sessions ----------------------------------------------------------------------------------------------------


def kms_clients_for(spec: Any, region: str, *, timeout: float = 10.0, environ: Mapping[str, str] | None = None,
                    mfa_prompter: Callable[[str], str] | None = None,
                    runtime: AwsRuntime | None = None) -> tuple[Any, Any, str | None]:
    """Two KMS clients for an identity (a :class:`~kms_rescue.aws.results.IdentitySpec`; assumed roles included)
    and its caller ARN: one for reads (botocore's standard retries) and one for the write, with a single attempt
    (standard retry mode, ``max_attempts`` 1 = total attempts: boto3 guide "Retries"): a write that timed out is
    never resent before a fresh read says what is on the key. Raises :class:`ApplyError` when its credentials do
    not work."""
    settings = ProbeSettings(options=SessionOptions(timeout=timeout, mfa_prompter=mfa_prompter), environ=environ,
                             read_identity_policies=False, runtime=runtime or AwsRuntime())
    run = IdentityRun(spec, settings, region)
    if not run.connect() or run.session is None:
        last = run.probe.calls[-1] if run.probe.calls else None
        detail = f" ({last.error_code}: {last.message})" if last and last.error_code else ""
        raise ApplyError(f"cannot use the identity {spec.name}{detail}; nothing was changed")
    writer = create_client(run.session, "kms", region, SessionOptions(timeout=timeout, max_attempts=1),
                           runtime=settings.runtime, credentials=run.credentials)
    return run.client("kms"), writer, run.probe.arn


def kms_client_for(spec: Any, region: str, *, timeout: float = 10.0, environ: Mapping[str, str] | None = None,
                   mfa_prompter: Callable[[str], str] | None = None,
                   runtime: AwsRuntime | None = None) -> tuple[Any, str | None]:
    """The read client of :func:`kms_clients_for` and the caller ARN."""
    kms, _writer, arn = kms_clients_for(spec, region, timeout=timeout, environ=environ, mfa_prompter=mfa_prompter,
                                        runtime=runtime)
    return kms, arn


def applier_for(spec: Any, arn: str, identity_policies: Sequence[PolicyDocument] | None,
                environ: Mapping[str, str] | None = None, principal_arn: str | None = None) -> Applier:
    """An :class:`Applier` for an identity spec, with the endpoint and config file the restore command needs."""
    env = os.environ if environ is None else environ
    endpoint = env.get("AWS_ENDPOINT_URL_KMS") or env.get("AWS_ENDPOINT_URL")
    if spec.profile:
        endpoint = endpoint or load_profiles().get(spec.profile, {}).get("endpoint_url")
    config_file = env.get("AWS_CONFIG_FILE")
    return Applier(
        arn=arn, identity_policies=identity_policies, profile=spec.profile, source=spec.source,
        role_arn=spec.role_arn if spec.source == "assume_role" else None, endpoint_url=endpoint,
        config_file=config_file, principal_arn=principal_arn,
    )


__all__ = [
    "Applier",
    "ApplyError",
    "ApplyResult",
    "FixRefused",
    "applier_for",
    "apply_fix",
    "client_error",
    "describe_journal_entry",
    "journal_path",
    "kms_client_for",
    "kms_clients_for",
    "last_journal_entry",
    "parse_restore_command",
    "read_truth",
    "restore_command",
    "restore_for",
    "restore_script",
    "write_backup",
]
