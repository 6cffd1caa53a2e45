"""The options of ``kms-rescue audit`` for many accounts, speed and resuming (docs/audit.md): checked here,
then handed to :func:`kms_rescue.audit.accounts.plan_targets` and :func:`kms_rescue.audit.scheduler.run_audit`.

Only :func:`audit_items` imports boto3 (deferred, so ``--help`` stays fast).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kms_rescue.cli.options import bounded_number, positive_seconds
from kms_rescue.errors import UsageError

if TYPE_CHECKING:
    from kms_rescue.audit.model import AuditItem
    from kms_rescue.observations import IdentitySpec

#: The role entered in each member account (AWS Organizations User Guide, "Accessing member accounts").
DEFAULT_ROLE_NAME = "OrganizationAccountAccessRole"
MAX_CONCURRENCY = 256
MAX_PROCESSES = 64
#: The longest --deadline: a day.
MAX_DEADLINE_S = 86_400.0


@dataclass(frozen=True)
class ScaleOptions:
    """``--accounts``, ``--organization``, ``--role-name``, ``--concurrency``, ``--deadline``, ``--checkpoint``,
    ``--resume`` and ``--processes``, checked."""

    accounts: tuple[str, ...] = ()
    organization: bool = False
    role_name: str = DEFAULT_ROLE_NAME
    concurrency: int = 16
    deadline: float | None = None
    checkpoint: str | None = None
    resume: str | None = None
    processes: int = 1


def check_scale_options(*, accounts: str | None = None, organization: bool = False,
                        role_name: str = DEFAULT_ROLE_NAME, concurrency: int = 16, deadline: float | None = None,
                        checkpoint: str | None = None, resume: str | None = None, processes: int = 1
                        ) -> ScaleOptions:
    """The options, or a :class:`UsageError` naming the first bad one (no AWS call, no file written)."""
    # Deferred for start-up time: kms_rescue.audit.accounts imports boto3 through kms_rescue.aws.
    from kms_rescue.audit.accounts import parse_accounts, parse_role_name

    parsed = parse_accounts(accounts) if accounts is not None else ()
    if parsed and organization:
        raise UsageError("--accounts and --organization cannot be used together (--organization lists them all)")
    bounded_number(concurrency, "--concurrency", low=1, high=MAX_CONCURRENCY)
    bounded_number(processes, "--processes", low=1, high=MAX_PROCESSES)
    if deadline is not None:
        positive_seconds(deadline, "--deadline", high=MAX_DEADLINE_S)
    if checkpoint is not None and resume is not None:
        raise UsageError("--checkpoint and --resume cannot be used together (--resume FILE goes on writing FILE)")
    return ScaleOptions(parsed, organization, parse_role_name(role_name), int(concurrency), deadline,
                        checkpoint, resume, int(processes))


def audit_items(specs: Sequence[IdentitySpec], options: Any, scale: ScaleOptions, regions: Sequence[str],
                *, home_region: str) -> Iterator[AuditItem]:
    """Every result of the audit, as it arrives: the targets planned (accounts × enabled Regions, rows for those
    that cannot be audited), then audited by the scheduler (with the checkpoint, when asked)."""
    # deferred: these import boto3
    from kms_rescue.audit import checkpoint as checkpoints
    from kms_rescue.audit.account import AuditTarget
    from kms_rescue.audit.accounts import plan_targets
    from kms_rescue.audit.scheduler import run_audit
    from kms_rescue.aws.runtime import AwsRuntime
    from kms_rescue.aws.sessions import SessionOptions

    started = time.monotonic()
    ckpt = None
    if scale.checkpoint is not None:
        ckpt = checkpoints.create(os.path.expanduser(scale.checkpoint))
    elif scale.resume is not None:
        ckpt = checkpoints.resume(os.path.expanduser(scale.resume))
    runtime = AwsRuntime()  # the audit's: planning and every target share its loader, models and clients
    try:
        targets: list[Any] = []
        rows: list[Any] = []  # held until the resumed checkpoint is known to be this audit's
        for planned in plan_targets(
                specs[0], region=home_region, accounts=scale.accounts, organization=scale.organization,
                role_name=scale.role_name, regions=regions, identities=specs[1:],
                options=SessionOptions(timeout=options.timeout, max_attempts=options.max_attempts),
                environ=options.environ, redactor=options.redactor, runtime=runtime):
            (targets if isinstance(planned, AuditTarget) else rows).append(planned)
        if ckpt is not None and scale.resume is not None:
            _check_resumed(scale.resume, ckpt.done, targets)
        yield from rows
        # The deadline is the whole audit's: planning (one AssumeRole and DescribeRegions per account) included.
        left = None if scale.deadline is None else max(0.001, scale.deadline - (time.monotonic() - started))
        yield from run_audit(targets, options, concurrency=scale.concurrency, deadline=left, checkpoint=ckpt,
                             processes=scale.processes, runtime=runtime)
    finally:
        runtime.close()
        if ckpt is not None:
            ckpt.close()


def _check_resumed(path: str, done: frozenset[tuple[str, str]], targets: Sequence[Any]) -> None:
    """A :class:`UsageError` when the checkpoint's finished targets are all of accounts this audit does not
    audit: it is another audit's (resuming it would audit everything again and mix two audits in one file)."""
    recorded = {account for account, _region in done if account}
    audited = {target.account for target in targets if target.account}
    if recorded and audited and not recorded & audited:
        raise UsageError(f"--resume {path}: that checkpoint is of an audit of {', '.join(sorted(recorded))}, not "
                         f"of {', '.join(sorted(audited))} (resume it with the profile or --accounts that made it, "
                         "or start a new --checkpoint)")


__all__ = ["DEFAULT_ROLE_NAME", "ScaleOptions", "audit_items", "check_scale_options"]
