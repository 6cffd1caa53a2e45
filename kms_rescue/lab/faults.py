"""The lab's injected faults (``--fault-rate F --fault KIND``): which kinds there are, and a seeded draw per request.

A light module (the standard library only), so that ``Lab(...)`` checks its options before moto is imported.
"""

from __future__ import annotations

import random
import threading

FAULT_KINDS = ("throttle", "5xx", "hang")


class Faults:
    """Draws faults from a seeded random generator: the same seed gives the same sequence of faults."""

    def __init__(self, rate: float, kind: str, seed: int | None) -> None:
        if not 0.0 <= rate <= 1.0:
            raise ValueError("the fault rate is a fraction from 0 to 1")
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r} (one of {', '.join(FAULT_KINDS)})")
        self.rate = rate
        self.kind = kind
        self._rng = random.Random(seed)
        self._lock = threading.Lock()

    def draw(self) -> str | None:
        if self.rate <= 0.0:
            return None
        with self._lock:
            return self.kind if self._rng.random() < self.rate else None
