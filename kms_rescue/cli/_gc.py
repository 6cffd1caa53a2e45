"""CPython's cyclic garbage collector, around the two moments where it costs the most for nothing.

The probes build many objects that live until the command ends (sessions, clients, botocore's service models) and
many short-lived ones, from dozens of threads at once. Each full collection then walks the whole heap (the models
and every imported module included) under the interpreter lock, while the answers of the in-flight requests wait:
in a 16-identity `report`, about 100 to 150 ms of collections, one of them 70 ms long in the busiest moment. At
exit, the interpreter's last full collection walks that heap once more, to free memory the operating system frees
anyway. Measurements: docs/report.md, "Performance".
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused() -> Iterator[None]:
    """Run the block with the cyclic collector off. Afterwards what the block left behind is moved to the oldest
    generation unexamined (its survivors live on; its cyclic garbage waits for the next full collection), and the
    collector is on again if it was before. Reference counting frees acyclic garbage as usual throughout."""
    was_enabled = gc.isenabled()
    frozen_before = gc.get_freeze_count()
    gc.disable()
    try:
        yield
    finally:
        # freeze() then unfreeze() moves every tracked object into the oldest generation without a collection:
        # re-enabled as they are, the young generations would be examined at once, the block's objects with them.
        # Skipped when something else froze objects first: unfreeze() would thaw those too.
        if frozen_before == 0:
            gc.freeze()
            gc.unfreeze()
        if was_enabled:
            gc.enable()


def skip_final_collection() -> None:
    """For a process about to exit: freeze the heap so that the interpreter's final collection skips it. Objects
    still referenced are released as usual; only finalizers of objects caught in reference cycles do not run,
    and nothing of kms-rescue's relies on one (files are closed by ``with``, the lab is stopped explicitly)."""
    gc.freeze()
