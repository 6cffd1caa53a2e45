"""Run a few independent AWS calls of one identity at once.

botocore clients are thread-safe, and the probes are bound by round trips, not CPU: reads that do not depend on
each other (an identity's policy lists, each policy's fetch, DescribeKey beside GetKeyPolicy) overlap instead of
queueing. The calls keep their own timeouts, so a thread here never outlives its call's deadline.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")


def fan_out(thunks: Sequence[Callable[[], T]], parallel: bool = True) -> list[T]:
    """The thunks' results, in the order given. With ``parallel`` (and more than one thunk) each runs on a thread
    of its own; otherwise one after the other. The first exception, in thunk order, is raised once every thunk
    has finished."""
    if not parallel or len(thunks) < 2:
        return [t() for t in thunks]
    results: list[T | None] = [None] * len(thunks)
    errors: list[BaseException | None] = [None] * len(thunks)

    def run(i: int) -> None:
        try:
            results[i] = thunks[i]()
        except BaseException as exc:  # handed back to the caller below
            errors[i] = exc

    threads = [threading.Thread(target=run, args=(i,), name=f"kms-rescue-call-{i}", daemon=True)
               for i in range(1, len(thunks))]
    for t in threads:
        t.start()
    run(0)  # the caller's thread does the first one
    for t in threads:
        t.join()
    for exc in errors:
        if exc is not None:
            raise exc
    return results  # type: ignore[return-value]
