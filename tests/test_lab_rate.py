"""The lab serves requests concurrently, so a per-request latency does not serialise them, and
``kms_rescue.lab.rate`` measures its request rate through real boto3 clients against its HTTP endpoint. The rates
themselves are figures of ``make bench`` (bench/lab_rate_bench.py), not assertions here."""

from __future__ import annotations

import pytest

from kms_rescue.lab import Lab
from kms_rescue.lab.rate import describe_key_rate, measure

LATENCY_MS = 200.0
THREADS = 8


def test_latency_applies_per_request_and_requests_overlap() -> None:
    with Lab("healthy-default", latency_ms=LATENCY_MS) as lab:
        rate = describe_key_rate(lab, threads=THREADS, seconds=1.0, profile="admin")
        stats = lab.admin.stats()
        assert lab.admin.internal_errors == []
    assert rate.errors == 0 and rate.requests > 0
    # Every answer leaves at least LATENCY_MS after its request arrived: no thread gets more than one answer per
    # LATENCY_MS (plus the one in flight when the clock stopped).
    assert rate.requests <= THREADS * (rate.seconds * 1000 / LATENCY_MS + 1)
    # The server has a thread per request and waits outside its lock: the threads' requests were in flight at
    # the same time, not one after another.
    assert stats["max_in_flight"] >= THREADS // 2, stats


def test_the_rate_counts_answers_and_failures_apart() -> None:
    with Lab("healthy-default") as lab:
        denied = describe_key_rate(lab, threads=2, seconds=0.3, profile="intern")  # intern may not DescribeKey
        assert denied.requests == 0 and denied.errors > 0 and denied.per_second == 0.0


@pytest.mark.parametrize(("threads", "seconds"), [(0, 1.0), (1, 0.0)])
def test_bad_arguments(threads: int, seconds: float) -> None:
    with pytest.raises(ValueError):
        measure(lambda: None, lambda client, n: None, threads=threads, seconds=seconds)
