"""Every exit status kms-rescue uses, in one table (docs/exit-status.md lists the same table; a test keeps them
equal). Every command and the error boundary in :mod:`kms_rescue.cli.app` exit with one of these, or with
:func:`signal_status` when a signal held back during a policy write arrived.

Pure and cheap to import: the report's contract maps a verdict to its status here, and ``lint``/``explain`` import
it at start-up.
"""

from __future__ import annotations

from enum import IntEnum


class ExitStatus(IntEnum):
    """What the process's exit status means. Each number has one meaning (docs/exit-status.md)."""

    OK = 0  #: done; for report/rescue/ticket/fix: the key is manageable by an identity given
    INTERNAL_ERROR = 1  #: a bug in kms-rescue (traceback with --debug)
    USAGE = 2  #: bad input: an option, a file, a key reference, a config; one line on stderr says what
    RECOVERABLE = 3  #: none of the identities can manage the key, but a principal of its account can
    LOCKED_OUT = 4  #: no principal of the key's account can ever manage it (lint: a policy that does this)
    UNDETERMINED = 5  #: no identity could read the policy and no history recovered it (audit: nothing could be read)
    NOT_FOUND = 6  #: no such key or alias where every identity looked
    APPLIED_NOT_VERIFIED = 7  #: fix: the write may have happened, but no fresh read shows the new policy
    FINDINGS = 8  #: lint, audit: a reported finding is at or above --fail-on
    NOT_APPLIED = 9  #: fix: nothing was written (the checks or KMS refused it; a fresh read shows the old policy)
    EXPECTATION_FAILED = 10  #: explain --expect: the decision is not the one expected
    INTERRUPTED = 130  #: Ctrl-C (128 + SIGINT), or end of input at a question


#: A held signal N that arrived during a policy write: the process exits with 128 + N once the write was read back
#: (the shell's convention for "ended by signal N"; SIGINT gives 130, :attr:`ExitStatus.INTERRUPTED`).
SIGNAL_BASE = 128

#: The exit status of each verdict (docs/report.md, "Verdicts"), for report, rescue, ticket and fix.
VERDICT_STATUS: dict[str, ExitStatus] = {
    "manageable": ExitStatus.OK,
    "recoverable": ExitStatus.RECOVERABLE,
    "locked_out": ExitStatus.LOCKED_OUT,
    "undetermined": ExitStatus.UNDETERMINED,
    "not_found": ExitStatus.NOT_FOUND,
}


def signal_status(signum: int) -> int:
    """The exit status for a held signal that arrived during a policy write: 128 + its number."""
    return SIGNAL_BASE + signum


def verdict_status(verdict: str) -> ExitStatus:
    """The exit status of a verdict; ``ValueError`` for a name that is no verdict."""
    try:
        return VERDICT_STATUS[verdict]
    except KeyError:
        raise ValueError(f"unknown verdict {verdict!r}") from None


__all__ = ["SIGNAL_BASE", "VERDICT_STATUS", "ExitStatus", "signal_status", "verdict_status"]
