"""Pacing requests: one adaptive rate per (credentials, Region, operation), lowered on throttling, recovered slowly.

Each :class:`AdaptiveRate` spaces its requests evenly at its current rate (a token bucket in its "virtual
scheduling" form: each request is given the next free slot, ``1 / rate`` after the previous one, with a small
burst allowance), so many threads share one rate without a busy loop: a caller learns its slot under a lock and
sleeps outside it. When AWS answers ``ThrottlingException`` (KMS Developer Guide, "Throttling AWS KMS requests":
"use a backoff and retry strategy") the rate is halved, down to a floor; from then on it climbs back linearly, to
its ceiling over :data:`RECOVERY_SECONDS` (additive increase, multiplicative decrease). botocore's own retry
(standard mode) still backs off the throttled call itself; the rate makes every later call of that account,
Region and operation slower too, which a per-call backoff cannot.

Pure: no boto3; the clock and the sleep are injectable for tests.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable

from kms_rescue.audit.quotas import AUDIT_SHARE, audit_rate

#: After a throttle the rate climbs back from where it was cut to its ceiling over this many seconds.
RECOVERY_SECONDS = 30.0
#: A throttle multiplies the rate by this.
DECREASE = 0.5
#: The rate never drops below this many requests per second (ceiling permitting).
FLOOR = 1.0
#: Requests allowed back to back after a quiet spell, in seconds' worth of the current rate.
BURST_SECONDS = 0.1


class AdaptiveRate:
    """The pace of one kind of request: :meth:`acquire` before each attempt, :meth:`throttled` on a throttle."""

    def __init__(self, ceiling: float, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if ceiling <= 0:
            raise ValueError("a rate's ceiling must be positive")
        self.ceiling = ceiling
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._next = clock()  # the next free slot
        self._cut_to = ceiling  # the rate right after the last throttle
        self._cut_at: float | None = None
        self.throttles = 0

    def rate(self, now: float | None = None) -> float:
        """Requests per second allowed now."""
        if self._cut_at is None:
            return self.ceiling
        now = self._clock() if now is None else now
        climbed = self._cut_to + self.ceiling * max(0.0, now - self._cut_at) / RECOVERY_SECONDS
        if climbed >= self.ceiling:
            return self.ceiling
        return climbed

    def acquire(self) -> float:
        """Wait for this request's slot; returns the seconds waited."""
        with self._lock:
            now = self._clock()
            rate = self.rate(now)
            burst = max(1.0, rate * BURST_SECONDS) / rate
            slot = max(self._next, now - burst)
            self._next = slot + 1.0 / rate
            wait = slot - now
        if wait > 0:
            self._sleep(wait)
            return wait
        return 0.0

    def throttled(self) -> None:
        """AWS throttled a request: halve the rate (not below the floor) and start recovering from there."""
        with self._lock:
            now = self._clock()
            self._cut_to = max(min(FLOOR, self.ceiling), self.rate(now) * DECREASE)
            self._cut_at = now
            self._next = max(self._next, now) + 1.0 / self._cut_to
            self.throttles += 1


class Rates:
    """Every :class:`AdaptiveRate` of a run, by scope (credentials and Region) and operation, made on first use
    with the operation's ceiling (:func:`kms_rescue.audit.quotas.audit_rate`)."""

    def __init__(self, share: float = AUDIT_SHARE, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        audit_rate("ListKeys", share)  # checks the share
        self.share = share
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._rates: dict[tuple[Hashable, str], AdaptiveRate] = {}

    def get(self, scope: Hashable, operation: str) -> AdaptiveRate:
        key = (scope, operation)
        with self._lock:
            found = self._rates.get(key)
            if found is None:
                found = AdaptiveRate(audit_rate(operation, self.share), clock=self._clock, sleep=self._sleep)
                self._rates[key] = found
            return found

    def throttles(self) -> int:
        """Throttles seen so far, over every rate."""
        with self._lock:
            return sum(r.throttles for r in self._rates.values())


__all__ = ["BURST_SECONDS", "DECREASE", "FLOOR", "RECOVERY_SECONDS", "AdaptiveRate", "Rates"]
