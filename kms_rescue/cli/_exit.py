"""Leaving the process without waiting for work that was abandoned.

When the overall deadline (``--deadline``) passes, the report is written from what was seen, but calls still in
flight keep their worker threads until their own timeouts (each call: ``--timeout`` per attempt, four attempts).
Python joins such threads at exit (``concurrent.futures`` registers an exit hook that waits for its workers), which
would keep the command running long after its output is complete. :func:`exit_now_if_abandoned` ends the process at
once in that case: the output streams are flushed, every ``credential_process`` still running is killed with its
process group, and the process exits with the command's code.
"""

from __future__ import annotations

import contextlib
import os
import sys


def exit_now_if_abandoned(code: int) -> None:
    """``os._exit(code)`` after flushing and cleaning up, when an investigation left calls in flight at its
    deadline; else return."""
    runtimes = sys.modules.get("kms_rescue.cli._runtime")  # imported only by commands that probe
    if runtimes is None or not runtimes.work_abandoned():
        return
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)  # the runtime killed its credential processes when it closed
