"""The audit at scale: KMS's request quotas and the pacing below them, the scheduler (bounded, streamed, on a
deadline, over processes) and the checkpoint (docs/audit.md). Against the lab's real HTTP endpoint."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kms_rescue.audit import checkpoint as checkpoints
from kms_rescue.audit.account import AuditOptions, AuditTarget
from kms_rescue.audit.model import AuditError, KeyAudit
from kms_rescue.audit.pacing import paced, scope_of
from kms_rescue.audit.quotas import AUDIT_SHARE, KMS_REQUEST_QUOTAS, audit_rate
from kms_rescue.audit.rates import FLOOR, RECOVERY_SECONDS, AdaptiveRate, Rates
from kms_rescue.audit.scheduler import run_audit
from kms_rescue.aws.runtime import AwsRuntime
from kms_rescue.aws.sessions import SessionOptions, create_client, session_with_credentials
from kms_rescue.errors import UsageError
from kms_rescue.observations import IdentitySpec

pytest.importorskip("moto")

from kms_rescue.lab import Lab

REQUEST_QUOTAS = "https://docs.aws.amazon.com/kms/latest/developerguide/requests-per-second.html"


def admin() -> IdentitySpec:
    return IdentitySpec(name="admin", source="profile", profile="admin", kind="static")


def targets(lab: Lab, spec: IdentitySpec | None = None) -> list[AuditTarget]:
    return [AuditTarget(lab.account, r, spec or admin()) for r in lab.regions]


@pytest.fixture
def lab_env(aws_home: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    def use(lab: Lab) -> None:
        monkeypatch.setenv("AWS_CONFIG_FILE", str(lab.config_path))
    return use


def lab_requests(lab: Lab) -> int:
    return int(lab.admin.stats()["requests"])


# --- quotas and rates ------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("operation", "documented"), [
    # KMS Developer Guide, "Request quotas", table "Request quotas for each AWS KMS API operation" (default
    # requests per second, per account and Region).
    ("DescribeKey", 2000), ("GetKeyPolicy", 1000), ("ListKeys", 500), ("ListAliases", 500), ("ListGrants", 100),
])
def test_the_documented_request_quotas(operation: str, documented: int) -> None:
    assert KMS_REQUEST_QUOTAS[operation] == documented, REQUEST_QUOTAS
    # "Throttling is based on all requests ... from all principals in the AWS account": the audit takes a share.
    assert audit_rate(operation) == documented * AUDIT_SHARE < documented


@pytest.mark.parametrize("share", [0.0, -0.5, 1.5])
def test_a_share_is_a_fraction(share: float) -> None:
    with pytest.raises(ValueError):
        audit_rate("ListKeys", share)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_requests_are_spaced_at_the_rate() -> None:
    clock = FakeClock()
    rate = AdaptiveRate(10.0, clock=clock, sleep=clock.sleep)
    start = clock.now
    for _ in range(21):
        rate.acquire()
    # 21 requests at 10 per second: the first is free, then one every 0.1 s.
    assert clock.now - start == pytest.approx(2.0, abs=0.11)


def test_a_throttle_halves_the_rate_and_it_recovers_slowly() -> None:
    clock = FakeClock()
    rate = AdaptiveRate(100.0, clock=clock, sleep=clock.sleep)
    rate.throttled()
    assert rate.rate() == pytest.approx(50.0)
    rate.throttled()
    assert rate.rate() == pytest.approx(25.0)
    clock.now += RECOVERY_SECONDS / 4  # a quarter of the way: +25 per second
    assert rate.rate() == pytest.approx(50.0)
    clock.now += RECOVERY_SECONDS
    assert rate.rate() == 100.0 and rate.throttles == 2


def test_a_rate_never_drops_below_its_floor() -> None:
    clock = FakeClock()
    rate = AdaptiveRate(4.0, clock=clock, sleep=clock.sleep)
    for _ in range(10):
        rate.throttled()
    assert rate.rate() == FLOOR


def test_rates_are_per_scope_and_operation() -> None:
    rates = Rates()
    a = rates.get(("AKIDA", "us-east-1"), "GetKeyPolicy")
    assert rates.get(("AKIDA", "us-east-1"), "GetKeyPolicy") is a
    assert rates.get(("AKIDA", "eu-west-1"), "GetKeyPolicy") is not a
    assert rates.get(("AKIDB", "us-east-1"), "GetKeyPolicy") is not a
    assert a.ceiling == audit_rate("GetKeyPolicy")


@pytest.mark.parametrize(("header", "scope"), [
    # SigV4: Credential=ACCESS_KEY_ID/DATE/REGION/SERVICE/aws4_request (AWS General Reference, "Signature Version 4").
    ("AWS4-HMAC-SHA256 Credential=AKIAEXAMPLE/20261201/eu-west-1/kms/aws4_request, SignedHeaders=host, "
     "Signature=abc", ("AKIAEXAMPLE", "eu-west-1")),
    (b"AWS4-HMAC-SHA256 Credential=ASIAEXAMPLE/20261201/us-east-1/kms/aws4_request, SignedHeaders=host",
     ("ASIAEXAMPLE", "us-east-1")),
    ("AWS4-HMAC-SHA256 Credential=AKIAEXAMPLE/20261201/us-east-1/sts/aws4_request", None),
    (None, None),
])
def test_the_scope_is_the_request_signature_scope(header: Any, scope: Any) -> None:
    assert scope_of(header) == scope


def test_kms_requests_wait_for_their_slot(lab_env: Any, runtime: AwsRuntime) -> None:
    """With 1 % of the quotas, 12 GetKeyPolicy calls (10 per second) take more than a second; every other call
    of the client (made while no audit paces) is not held back."""
    with Lab("healthy-default") as lab:
        lab_env(lab)
        creds = lab.credentials("admin")
        session = session_with_credentials("admin", creds.access_key_id, creds.secret_access_key,
                                           creds.session_token, runtime=runtime)
        key = lab.key_id(lab.scenario.keys[0].id)
        with paced(Rates(0.01), runtime.events) as rates:
            kms = create_client(session, "kms", lab.region, SessionOptions(), runtime=runtime)
            kms.get_key_policy(KeyId=key, PolicyName="default")  # the first call also warms the client
            started = time.monotonic()
            for _ in range(12):
                kms.get_key_policy(KeyId=key, PolicyName="default")
            paced_time = time.monotonic() - started
        assert rates.throttles() == 0
        started = time.monotonic()
        for _ in range(12):
            kms.get_key_policy(KeyId=key, PolicyName="default")
        free_time = time.monotonic() - started
    assert paced_time >= 1.0, paced_time
    assert free_time < paced_time


def test_a_throttled_answer_lowers_the_rate_and_the_audit_completes(lab_env: Any, spread_keys: Any,
                                                                   runtime: AwsRuntime) -> None:
    with Lab(spread_keys(12), fault="throttle", fault_rate=0.15, seed=3) as lab:
        lab_env(lab)
        rates = Rates()
        with paced(rates, runtime.events):  # the scheduler's own pacing is nested inside: the innermost wins
            items = list(run_audit(targets(lab), AuditOptions(), runtime=runtime))
        faults = lab.admin.stats().get("fault:throttle", 0)
    keys = [i for i in items if isinstance(i, KeyAudit)]
    assert faults > 0
    assert len(keys) == 12 and all(k.verdict == "manageable" for k in keys)


def test_throttles_reach_the_rate_of_their_scope(lab_env: Any, runtime: AwsRuntime) -> None:
    with Lab("healthy-default", fault="throttle", fault_rate=0.5, seed=1) as lab:
        lab_env(lab)
        creds = lab.credentials("admin")
        session = session_with_credentials("admin", creds.access_key_id, creds.secret_access_key,
                                           creds.session_token, runtime=runtime)
        with paced(Rates(), runtime.events) as rates:
            kms = create_client(session, "kms", lab.region, SessionOptions(max_attempts=10), runtime=runtime)
            for _ in range(8):
                kms.list_keys()
        assert lab.admin.stats().get("fault:throttle", 0) > 0
    assert rates.throttles() > 0
    assert rates.get((creds.access_key_id, lab.region), "ListKeys").throttles == rates.throttles()


# --- the scheduler ---------------------------------------------------------------------------------------------

def test_every_key_of_every_region_once(lab_env: Any, spread_keys: Any) -> None:
    seen: list[tuple[int, int]] = []
    with Lab(spread_keys(9)) as lab:
        lab_env(lab)
        items = list(run_audit(targets(lab), AuditOptions(), progress=lambda d, t: seen.append((d, t))))
        expected = {lab.key_arn(k.id, region=k.region) for k in lab.scenario.keys}
    arns = [i.key_arn for i in items if isinstance(i, KeyAudit)]
    assert sorted(arns) == sorted(expected) and len(arns) == 9
    assert {i.region for i in items if isinstance(i, KeyAudit)} == {"us-east-1", "us-west-2", "eu-west-1"}
    assert seen[0] == (0, 3) and seen[-1] == (3, 3)


def test_results_stream_before_the_job_ends() -> None:
    """The consumer gets the first result while the job is still running (it waits for the consumer)."""
    got_first = threading.Event()

    def job(target: AuditTarget, options: Any) -> Iterator[AuditError]:
        yield AuditError(target.account, target.region, "probe", "first", "first")
        assert got_first.wait(10), "the first result never reached the consumer"
        yield AuditError(target.account, target.region, "probe", "second", "second")

    stream = run_audit([AuditTarget("111122223333", "us-east-1", admin())], None, job=job)
    first = next(stream)
    got_first.set()
    rest = list(stream)
    assert isinstance(first, AuditError) and first.error == "first"
    assert [r.error for r in rest if isinstance(r, AuditError)] == ["second"]


def test_concurrency_is_bounded() -> None:
    running = 0
    peak = 0
    lock = threading.Lock()

    def job(target: AuditTarget, options: Any) -> Iterator[AuditError]:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.05)
        with lock:
            running -= 1
        yield AuditError(target.account, target.region, "probe", "ok", "ok")

    regions = ["us-east-1", "us-east-2", "us-west-1", "us-west-2", "eu-west-1", "eu-west-2", "eu-central-1",
               "ap-south-1"]
    out = list(run_audit([AuditTarget("111122223333", r, admin()) for r in regions], None, job=job, concurrency=3))
    assert len(out) == 8 and peak == 3


def test_a_job_that_fails_is_a_row_and_the_others_go_on() -> None:
    def job(target: AuditTarget, options: Any) -> Iterator[AuditError]:
        if target.region == "eu-west-1":
            raise RuntimeError("boom with AKIAIOSFODNN7EXAMPLE inside")
        yield AuditError(target.account, target.region, "probe", "ok", "ok")

    out = list(run_audit([AuditTarget("111122223333", r, admin()) for r in ("us-east-1", "eu-west-1")], None,
                         job=job))
    failed = [o for o in out if isinstance(o, AuditError) and o.stage == "audit"]
    assert len(failed) == 1 and failed[0].region == "eu-west-1" and failed[0].error == "RuntimeError"
    assert "AKIAIOSFODNN7EXAMPLE" not in failed[0].message
    assert any(o.region == "us-east-1" and o.error == "ok" for o in out if isinstance(o, AuditError))


def test_the_deadline_reports_what_is_unfinished(lab_env: Any, spread_keys: Any) -> None:
    with Lab(spread_keys(30), latency_ms=150) as lab:
        lab_env(lab)
        started = time.monotonic()
        items = list(run_audit(targets(lab), AuditOptions(workers=1), deadline=1.5))
        elapsed = time.monotonic() - started
    late = [i for i in items if isinstance(i, AuditError) and i.stage == "deadline"]
    assert late, "30 keys at 150 ms a request, one at a time, cannot finish in 1.5 s"
    assert all(i.error == "DeadlineExceeded" and "--resume" in i.message for i in late)
    assert {i.region for i in late} <= {"us-east-1", "us-west-2", "eu-west-1"}
    assert elapsed < 1.5 + 1.0, elapsed


@pytest.mark.parametrize(("kwargs", "word"), [({"concurrency": 0}, "concurrency"), ({"processes": 0}, "processes"),
                                              ({"deadline": 0}, "deadline"), ({"deadline": float("nan")}, "deadline")])
def test_bad_scheduler_arguments(kwargs: dict[str, Any], word: str) -> None:
    with pytest.raises(ValueError, match=word):
        list(run_audit([], None, **kwargs))


def test_a_process_pool_gives_the_same_results(lab_env: Any, spread_keys: Any) -> None:
    events: list[Any] = []
    with Lab(spread_keys(9)) as lab:
        lab_env(lab)
        threads = list(run_audit(targets(lab), AuditOptions()))
        pooled = list(run_audit(targets(lab), AuditOptions(progress=events.append), processes=2))
    assert sorted(map(repr, threads)) == sorted(map(repr, pooled))
    assert len([i for i in pooled if isinstance(i, KeyAudit)]) == 9
    assert any(getattr(e, "kind", None) == "plan" for e in events)  # progress crossed back from the processes


# --- the checkpoint --------------------------------------------------------------------------------------------

def test_a_checkpoint_records_and_a_resume_replays_without_a_request(lab_env: Any, spread_keys: Any,
                                                                     tmp_path: Path) -> None:
    path = tmp_path / "audit.ckpt"
    with Lab(spread_keys(6)) as lab:
        lab_env(lab)
        with checkpoints.create(path) as ckpt:
            first = list(run_audit(targets(lab), AuditOptions(), checkpoint=ckpt))
        before = lab_requests(lab)
        with checkpoints.resume(path) as again:
            assert len(again.done) == 3
            replayed = list(run_audit(targets(lab), AuditOptions(), checkpoint=again))
        assert lab_requests(lab) == before  # every target was done: nothing asked again
    assert sorted(map(repr, first)) == sorted(map(repr, replayed))
    assert os.stat(path).st_mode & 0o777 == 0o600
    lines = path.read_text().splitlines()
    assert json.loads(lines[0]) == {checkpoints.MARKER: checkpoints.VERSION}
    assert sum(1 for line in lines if '"done"' in line) == 3


def test_a_resume_audits_only_what_is_not_done(lab_env: Any, spread_keys: Any, tmp_path: Path) -> None:
    path = tmp_path / "audit.ckpt"
    with Lab(spread_keys(6)) as lab:
        lab_env(lab)
        with checkpoints.create(path) as ckpt:
            list(run_audit(targets(lab)[:1], AuditOptions(), checkpoint=ckpt))
        with path.open("ab") as fh:
            fh.write(b'{"target": ["111122223333", "eu-west-1"], "item": {"key_ar')  # a line cut by a crash
        with checkpoints.resume(path) as again:
            assert again.done == {("111122223333", "us-east-1")}
            items = list(run_audit(targets(lab), AuditOptions(), checkpoint=again))
        assert checkpoints.finished(path) == {("111122223333", r) for r in lab.regions}
    arns = [i.key_arn for i in items if isinstance(i, KeyAudit)]
    assert len(arns) == len(set(arns)) == 6


def test_a_checkpoint_never_overwrites(tmp_path: Path) -> None:
    mine = tmp_path / "notes.txt"
    mine.write_text("my notes\n")
    with pytest.raises(UsageError, match="exists"):
        checkpoints.create(mine)
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "nowhere")
    with pytest.raises(UsageError):
        checkpoints.create(link)
    assert mine.read_text() == "my notes\n" and not (tmp_path / "nowhere").exists()


@pytest.mark.parametrize(("content", "message"), [
    (None, "no such file"), (b"my notes\n", "not a kms-rescue audit checkpoint"),
    (b'{"kms_rescue_audit_checkpoint": 99}\n', "not a kms-rescue audit checkpoint"),
])
def test_resume_refuses_what_is_not_a_checkpoint(tmp_path: Path, content: bytes | None, message: str) -> None:
    path = tmp_path / "file"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(UsageError, match=message):
        checkpoints.resume(path)
    if content is not None:
        assert path.read_bytes() == content
