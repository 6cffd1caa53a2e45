"""Domain errors. The CLI's one error boundary turns each into a one-line message and an exit code.

Every module raises these (or a subclass) for conditions a user can act on; anything else that escapes is a bug
and is reported as an internal error (exit 1, traceback only with ``--debug``). Exit statuses:
:mod:`kms_rescue.status` (docs/exit-status.md).
"""

from __future__ import annotations

from kms_rescue.status import ExitStatus


class KmsRescueError(Exception):
    """Base class. ``str(error)`` is a one-line, actionable message; ``exit_code`` is what the CLI exits with."""

    exit_code: int = ExitStatus.INTERNAL_ERROR

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


class UsageError(KmsRescueError):
    """Bad input from the user: a malformed file, an unparsable ARN, a missing option. Exit status 2 (usage)."""

    exit_code = ExitStatus.USAGE
