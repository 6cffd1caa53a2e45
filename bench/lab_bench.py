"""Lab benchmarks on the busy-account scenario: start and stop time, and requests per second through the gate
(DescribeKey, every request decided by the policy engine) from 1 and 8 client threads."""

from __future__ import annotations

import statistics
import threading
import time

from botocore.config import Config

from kms_rescue.lab import Lab, load_scenario

REQUESTS_PER_THREAD = 150


def _rate(lab: Lab, threads: int) -> float:
    scenario = lab.scenario
    profiles = [p for p in lab.profiles if p.startswith("app-")][:threads] or ["admin"]
    clients = [lab.client(p, "kms", config=Config(retries={"total_max_attempts": 1})) for p in profiles]
    keys = [k.id for k in scenario.keys[:20]]
    barrier = threading.Barrier(len(clients) + 1)

    def work(client: object) -> None:
        barrier.wait()
        for n in range(REQUESTS_PER_THREAD):
            client.describe_key(KeyId=keys[n % len(keys)])  # type: ignore[attr-defined]

    workers = [threading.Thread(target=work, args=(c,)) for c in clients]
    for w in workers:
        w.start()
    barrier.wait()
    started = time.perf_counter()
    for w in workers:
        w.join()
    return len(clients) * REQUESTS_PER_THREAD / (time.perf_counter() - started)


def main() -> None:
    scenario = load_scenario("busy-account")
    starts, stops = [], []
    for _ in range(3):
        t0 = time.perf_counter()
        lab = Lab(scenario).start()
        starts.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        lab.stop()
        stops.append(time.perf_counter() - t0)
    print(f"lab start (busy-account, 24 keys, 18 profiles): median {statistics.median(starts) * 1000:.0f} ms")
    print(f"lab stop: median {statistics.median(stops) * 1000:.0f} ms")
    with Lab(scenario) as lab:
        for threads in (1, 8):
            print(f"DescribeKey through the gate, {threads} thread(s): {_rate(lab, threads):,.0f} requests/s")
        assert lab.admin.internal_errors == []


if __name__ == "__main__":
    main()
