"""The AWS runtime of a command: one :class:`~kms_rescue.aws.runtime.AwsRuntime` per investigation, built here and
passed in (docs/architecture.md, "The AWS runtime").

:func:`command_runtime` opens it with the command's ``--debug`` request log attached (:func:`debug_requests`, set
by ``cli/app.py``) and closes it when the investigation is done: its pool is shut down and its credential
processes are killed. :func:`work_abandoned` tells the console script's exit (``cli/_exit.py``) whether one of them
returned at its overall deadline with calls still in flight, which the process must not wait for.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from kms_rescue.aws.redact import Redactor
from kms_rescue.aws.request_log import log_requests
from kms_rescue.aws.runtime import AwsRuntime

#: The command's state, for this process: the ``--debug`` sink, and whether work was abandoned at a deadline.
_STATE: dict[str, object] = {"sink": None, "abandoned": False}


@contextlib.contextmanager
def debug_requests(sink: Callable[[str], None]) -> Iterator[None]:
    """While active, every runtime :func:`command_runtime` opens reports each AWS request to ``sink``."""
    _STATE["sink"] = sink
    try:
        yield
    finally:
        _STATE["sink"] = None


@contextlib.contextmanager
def command_runtime(redactor: Redactor | None = None) -> Iterator[AwsRuntime]:
    """A fresh runtime for one investigation, closed when the block ends."""
    sink = _STATE["sink"]
    with AwsRuntime() as runtime, contextlib.ExitStack() as stack:
        if callable(sink):
            stack.enter_context(log_requests(runtime.events, sink, redactor))
        try:
            yield runtime
        finally:
            if runtime.abandoned:
                _STATE["abandoned"] = True


def work_abandoned() -> bool:
    """Whether a runtime of this process was left with calls in flight at an investigation's deadline."""
    return bool(_STATE["abandoned"])
