"""Injected faults and latency: rates within tolerance for a seed, reproducible, on every service the lab serves."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, ReadTimeoutError

from kms_rescue.lab import Lab

NO_RETRY = Config(retries={"total_max_attempts": 1})
SCENARIO: dict[str, Any] = {
    "account": "123456789012",
    "region": "us-east-1",
    "identities": [
        {"profile": "admin", "role": "Admin", "policies": [
            {"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Action": ["kms:*", "iam:*", "cloudtrail:*"], "Resource": "*"}]}]},
    ],
    "keys": [{"id": "bbbbbbbb-0000-4000-8000-000000000001", "alias": "alias/faulty"}],
}


def outcomes(lab: Lab, n: int) -> list[tuple[str, int]]:
    kms = lab.client("admin", "kms", config=NO_RETRY)
    out = []
    for _ in range(n):
        try:
            kms.list_keys()
            out.append(("ok", 200))
        except ClientError as exc:
            out.append((exc.response["Error"]["Code"], exc.response["ResponseMetadata"]["HTTPStatusCode"]))
    return out


@pytest.mark.parametrize(
    ("fault", "code", "status"),
    [("throttle", "ThrottlingException", 400), ("5xx", "KMSInternalException", 500)],
)
def test_fault_rate_within_tolerance(fault: str, code: str, status: int) -> None:
    with Lab(SCENARIO, fault_rate=0.3, fault=fault, seed=42) as lab:
        got = outcomes(lab, 200)
        assert lab.admin.stats()[f"fault:{fault}"] == sum(1 for c, _ in got if c != "ok")
    failed = [(c, s) for c, s in got if c != "ok"]
    assert set(failed) == {(code, status)}
    assert 0.23 <= len(failed) / len(got) <= 0.37


def test_same_seed_same_faults() -> None:
    runs = []
    for _ in range(2):
        with Lab(SCENARIO, fault_rate=0.5, seed=7) as lab:
            runs.append(outcomes(lab, 40))
    assert runs[0] == runs[1]
    assert {c for c, _ in runs[0]} == {"ok", "ThrottlingException"}


def test_faults_hit_every_service() -> None:
    with Lab(SCENARIO, fault_rate=1.0, fault="throttle", seed=1) as lab:
        calls = {
            "Throttling": [lambda: lab.client("admin", "iam", config=NO_RETRY).list_roles(),
                           lambda: lab.client("admin", "sts", config=NO_RETRY).get_caller_identity()],
            "ThrottlingException": [lambda: lab.client("admin", "cloudtrail", config=NO_RETRY).lookup_events(),
                                    lambda: lab.client("admin", "kms", config=NO_RETRY).list_keys()],
        }
        for code, fns in calls.items():
            for fn in fns:
                with pytest.raises(ClientError) as exc:
                    fn()
                assert exc.value.response["Error"]["Code"] == code


def test_hang_outlasts_the_client_and_stop_ends_it() -> None:
    lab = Lab(SCENARIO, fault_rate=1.0, fault="hang", seed=1).start()
    try:
        kms = lab.client("admin", "kms", config=Config(retries={"total_max_attempts": 1}, read_timeout=0.5,
                                                        connect_timeout=2))
        with pytest.raises(ReadTimeoutError):
            kms.list_keys()
        assert lab.admin.stats()["fault:hang"] == 1
    finally:
        stopper = threading.Thread(target=lab.stop)
        stopper.start()
        stopper.join(timeout=20)
    assert not stopper.is_alive(), "stop() must end a hanging request"


def test_latency_delays_every_request() -> None:
    with Lab(SCENARIO, latency_ms=60) as lab:
        sts = lab.client("admin", "sts")
        sts.get_caller_identity()  # warm up the client
        started = time.monotonic()
        for _ in range(3):
            sts.get_caller_identity()
        assert time.monotonic() - started >= 0.18
