"""How many requests a second a running lab answers: N client threads, each with its own boto3 client, call one
operation (DescribeKey by default) as fast as the lab answers, for a while (docs/lab.md, "Measuring the lab's
request rate"). The audit benchmark divides the requests an audit needs by this rate to get the lab's ceiling.

Every request goes through the lab's HTTP endpoint and its gate (signature check, the policy engine's decision),
as an audit's requests do.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

#: One attempt per request (a retry would hide a failure and count as one request), and a pool per client large
#: enough that a client never waits for a connection of its own.
NO_RETRY = Config(retries={"total_max_attempts": 1}, max_pool_connections=4)


@dataclass(frozen=True)
class Rate:
    """What a measurement saw: requests answered (and failed) by ``threads`` threads in ``seconds``."""

    threads: int
    requests: int
    errors: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0


def measure(make_client: Callable[[], Any], call: Callable[[Any, int], object], *, threads: int,
            seconds: float = 3.0, warmup: int = 2) -> Rate:
    """Run ``call(client, n)`` in a loop on ``threads`` threads (each with ``make_client()``) for ``seconds``.

    Clients are made and warmed (``warmup`` calls each) before the clock starts; a call that raises a
    ``ClientError`` or ``BotoCoreError`` counts as an error, not as an answered request."""
    if threads < 1 or seconds <= 0:
        raise ValueError("threads must be at least 1 and seconds positive")
    clients = [make_client() for _ in range(threads)]
    for client in clients:
        for n in range(warmup):
            try:
                call(client, n)
            except (ClientError, BotoCoreError):
                pass  # counted when the clock runs; warming only loads what the first calls load
    start = threading.Barrier(threads + 1)
    stop = threading.Event()
    done = [0] * threads
    failed = [0] * threads

    def work(i: int) -> None:
        client, n = clients[i], 0
        start.wait()
        while not stop.is_set():
            try:
                call(client, n)
                done[i] += 1
            except (ClientError, BotoCoreError):
                failed[i] += 1
            n += 1

    workers = [threading.Thread(target=work, args=(i,), name=f"lab-rate-{i}", daemon=True) for i in range(threads)]
    for w in workers:
        w.start()
    start.wait()
    began = time.perf_counter()
    stop.wait(seconds)
    stop.set()
    for w in workers:
        w.join()
    elapsed = time.perf_counter() - began
    return Rate(threads=threads, requests=sum(done), errors=sum(failed), seconds=elapsed)


def describe_key_rate(lab: Any, *, threads: int, seconds: float = 3.0, profile: str | None = None,
                      keys: int = 20) -> Rate:
    """:func:`measure` with DescribeKey on the first ``keys`` keys of the scenario's account and Region, called by
    ``profile`` (default: the first identity of the scenario's account whose DescribeKey the lab allows)."""
    scenario = lab.scenario
    key_ids = [k.id for k in scenario.keys if k.account == scenario.account and k.region == scenario.region][:keys]
    if not key_ids:
        raise ValueError(f"scenario {scenario.name} has no key in its own account and Region")
    chosen = profile or _a_reader(lab, key_ids[0])

    def make() -> Any:
        return lab.client(chosen, "kms", config=NO_RETRY)

    def call(client: Any, n: int) -> object:
        return client.describe_key(KeyId=key_ids[n % len(key_ids)])

    return measure(make, call, threads=threads, seconds=seconds)


def _a_reader(lab: Any, key_id: str) -> str:
    for ident in lab.scenario.identities:
        if ident.principal.account != lab.scenario.account:
            continue
        try:
            lab.client(ident.profile, "kms", config=NO_RETRY).describe_key(KeyId=key_id)
        except ClientError:
            continue
        return str(ident.profile)
    raise ValueError(f"no profile of scenario {lab.scenario.name} may describe key {key_id}")
