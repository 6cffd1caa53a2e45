"""Apply a repaired key policy, safely: back up, check, write, verify, and say how to undo it.

The order never changes (DESIGN.md §1.10, issue 5):

1. re-read the current policy (kms:GetKeyPolicy) and refuse if it is not the one the plan was made from;
2. save it to a timestamped backup file, mode 0600, before anything is written;
3. check with the policy engine that the identity applying the new policy, and the administrator it names, keep
   kms:PutKeyPolicy under it, and that the key is not locked out by it; refuse otherwise;
4. kms:PutKeyPolicy with KMS's policy lockout safety check on (``BypassPolicyLockoutSafetyCheck`` is never sent);
5. re-read the policy and re-evaluate it to verify;
6. give the exact AWS CLI command that puts the backup back.

Every failure is a :class:`~kms_rescue.errors.KmsRescueError` with one line that says what was (not) changed.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import shlex
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kms_rescue.errors import KmsRescueError
from kms_rescue.plan import FixPlan, ManagementCheck, check_keeps_management
from kms_rescue.policy import PolicyInputError, analyze_management, parse_policy
from kms_rescue.policy.evaluate import PolicyDocument

POLICY_NAME = "default"
BACKUP_MODE = 0o600


class ApplyError(KmsRescueError):
    """The new policy was not applied (or could not be verified); the message says which and what to do."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None, backup_path: Path | None = None,
                 applied: bool = False) -> None:
        super().__init__(message, hint=hint)
        self.backup_path = backup_path
        self.applied = applied


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
    """Write ``text`` to ``DIRECTORY/kms-key-policy-KEYID-YYYYmmddTHHMMSSZ.json`` with mode 0600 (created
    exclusively: an existing file is never overwritten). Raises :class:`ApplyError` when it cannot be written."""
    folder = Path(directory).expanduser()
    base = f"kms-key-policy-{key_id}-{_stamp(now)}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ApplyError(f"cannot create the backup directory {folder}: {exc.strerror}; nothing was changed") from None
    for n in range(1, 100):
        path = folder / (f"{base}.json" if n == 1 else f"{base}-{n}.json")
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), BACKUP_MODE)
        except FileExistsError:
            continue
        except OSError as exc:
            raise ApplyError(f"cannot write the backup {path}: {exc.strerror}; nothing was changed") from None
        try:
            os.fchmod(fd, BACKUP_MODE)  # whatever the umask
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text if text.endswith("\n") else text + "\n")
        except OSError as exc:
            raise ApplyError(f"cannot write the backup {path}: {exc.strerror}; nothing was changed") from None
        return path
    raise ApplyError(f"cannot find a free backup file name in {folder}; nothing was changed")


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
    if applier.source == "assume_role" and applier.role_arn:
        command += f"  # with the credentials of {applier.role_arn} (assumed from profile {applier.profile})"
    elif applier.source == "env":
        command += "  # with the same AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY in the environment"
    return command


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
    from kms_rescue.aws.classify import classify_exception

    c = classify_exception(exc)
    return c.error_code or type(exc).__name__, (c.message or "").split("\n")[0]


def _read_policy(kms: Any, key_arn: str) -> tuple[str, dict[str, Any]]:
    got = kms.get_key_policy(KeyId=key_arn, PolicyName=POLICY_NAME)
    text = got.get("Policy") or ""
    doc = json.loads(text)
    if not isinstance(doc, dict):
        raise ValueError("the key policy is not a JSON object")
    return text, doc


def refusal_message(checks: Sequence[ManagementCheck], locked_out: bool) -> str:
    failing = [c for c in checks if not c.allowed]
    parts = []
    for c in failing:
        who = "you (the identity applying it)" if c.role == "applier" else f"the administrator {c.principal}"
        unknown = " (its IAM policies could not be read)" if c.identity_unknown else ""
        parts.append(f"{who} would lose kms:PutKeyPolicy{unknown}: {c.detail}")
    if locked_out and not failing:
        parts.append("no principal of the key's account could call kms:PutKeyPolicy under it")
    return "refused: " + "; ".join(parts)


def apply_fix(
    plan: FixPlan,
    kms: Any,
    applier: Applier,
    *,
    backup_dir: str | os.PathLike[str],
    now: _dt.datetime | None = None,
    before_write: Callable[[Path], None] | None = None,
) -> ApplyResult:
    """Apply ``plan.proposed`` to the key with the ``kms`` client of ``applier`` (see the module docstring).

    ``before_write`` is called with the backup path once the checks passed, just before PutKeyPolicy (the CLI
    uses it to say what is happening). Raises :class:`FixRefused` when the engine check fails and
    :class:`ApplyError` for anything else; in both cases the key is unchanged unless ``error.applied``."""
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

    # 2. The backup, before any write.
    backup = write_backup(current_text, key_id=key_id, directory=backup_dir, now=now)
    command = restore_command(key_arn, backup, applier)

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
        raise FixRefused(f"refused: the proposed policy does not parse: {exc}", backup_path=backup) from None
    if locked or not all(c.allowed for c in checks):
        raise FixRefused(refusal_message(checks, locked), checks=checks, backup_path=backup,
                         hint="nothing was written to the key; the current policy is saved in " + str(backup))

    # 4. The write, with the lockout safety check on (no BypassPolicyLockoutSafetyCheck parameter, ever).
    if before_write is not None:
        before_write(backup)
    try:
        kms.put_key_policy(KeyId=key_arn, PolicyName=POLICY_NAME, Policy=plan.proposed_text)
    except Exception as exc:
        code, message = _client_error(exc)
        raise ApplyError(f"KMS refused the new policy ({code}: {message}); the key policy is unchanged",
                         backup_path=backup, hint=f"the current policy is saved in {backup}") from None

    # 5. Verify.
    notes: list[str] = []
    verified = True
    try:
        _, after = _read_policy(kms, key_arn)
    except Exception as exc:
        code, message = (_client_error(exc) if not isinstance(exc, ValueError) else ("ValueError", str(exc)))
        return ApplyResult(key_arn, backup, command, tuple(checks), True, False,
                           (f"applied, but the policy could not be read back to verify it ({code}: {message})",))
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
        return ApplyResult(key_arn, backup, command, tuple(checks), True, False,
                           (*notes, f"the policy read back does not parse: {exc}"))
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
    return ApplyResult(key_arn, backup, command, tuple(checks), True, verified, tuple(notes))


# --- sessions ----------------------------------------------------------------------------------------------------


def kms_client_for(spec: Any, region: str, *, timeout: float = 10.0, environ: Mapping[str, str] | None = None,
                   mfa_prompter: Callable[[str], str] | None = None) -> tuple[Any, str | None]:
    """A KMS client for an identity (a :class:`~kms_rescue.aws.results.IdentitySpec`; assumed roles included) and
    its caller ARN. Raises :class:`ApplyError` when its credentials do not work."""
    from kms_rescue.aws.probe import IdentityRun, ProbeSettings
    from kms_rescue.aws.sessions import SessionOptions

    settings = ProbeSettings(options=SessionOptions(timeout=timeout, mfa_prompter=mfa_prompter), environ=environ,
                             read_identity_policies=False)
    run = IdentityRun(spec, settings, region)
    if not run.connect() or run.session is None:
        last = run.probe.calls[-1] if run.probe.calls else None
        detail = f" ({last.error_code}: {last.message})" if last and last.error_code else ""
        raise ApplyError(f"cannot use the identity {spec.name}{detail}; nothing was changed")
    return run.client("kms"), run.probe.arn


def applier_for(spec: Any, arn: str, identity_policies: Sequence[PolicyDocument] | None,
                environ: Mapping[str, str] | None = None, principal_arn: str | None = None) -> Applier:
    """An :class:`Applier` for an identity spec, with the endpoint and config file the restore command needs."""
    env = os.environ if environ is None else environ
    endpoint = env.get("AWS_ENDPOINT_URL_KMS") or env.get("AWS_ENDPOINT_URL")
    if spec.profile:
        from kms_rescue.aws.sessions import load_profiles

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
    "kms_client_for",
    "parse_restore_command",
    "restore_command",
    "write_backup",
]
