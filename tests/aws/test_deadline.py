"""The overall deadline (``--deadline``) of ``report``, ``ticket`` and the session's probe stage, and what a call's
retries really are (docs/report.md, "Deadlines and retries"). The regression from issue 11: with ``--timeout 2``
and half the requests hanging, the report took 31.5 s; it now ends at its deadline with valid JSON, the
identities still being probed classified ``timeout``."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from kms_rescue.aws import investigate as investigate_module
from kms_rescue.aws.results import IdentitySpec
from kms_rescue.aws.sessions import SessionOptions, create_client, open_session
from kms_rescue.cli import report as report_cli
from kms_rescue.cli.app import main
from kms_rescue.lab import Lab
from tests.helpers.cli import clean_env
from tests.helpers.lab import lab_stats
from tests.helpers.paths import SCRIPT
from tests.helpers.schema import check_classified


def test_the_cli_default_is_the_library_default() -> None:
    assert report_cli.DEFAULT_DEADLINE == investigate_module.DEFAULT_DEADLINE == 60.0


@pytest.mark.parametrize("command", ["report", "ticket", "rescue"])
@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf"])
def test_bad_deadlines_are_usage_errors(command: str, value: str, capsys: pytest.CaptureFixture[str]) -> None:
    key = "arn:aws:kms:us-east-1:111122223333:key/0d5d6a3c-8d7e-4c1f-9b2a-6f1e2d3c4b5a"
    extra = ["--no-input"] if command == "rescue" else []
    assert main([command, key, "--deadline", value, *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--deadline" in err[0]


def test_half_the_requests_hanging_the_report_ends_at_its_deadline(tmp_path: Path) -> None:
    deadline = 8.0
    with Lab("busy-account", fault="hang", fault_rate=0.5, seed=7) as lab:
        assert lab.config_path is not None
        key = lab.key_arn(lab.scenario.keys[0].id)
        started = time.monotonic()
        proc = subprocess.run([str(SCRIPT), "report", key, "-f", "json", "--timeout", "2", "--deadline",
                               str(deadline)], env=clean_env(tmp_path, lab.config_path), capture_output=True,
                              text=True, timeout=120, stdin=subprocess.DEVNULL)
        elapsed = time.monotonic() - started
        assert lab_stats(lab).get("fault:hang", 0) > 0
    assert proc.returncode in (0, 3, 4, 5), proc.stderr
    doc = json.loads(proc.stdout)
    check_classified(doc)
    # Generous: the process starts, discovers 18 profiles and writes the report around the deadline itself
    # (`make bench` has the exact figure).
    assert elapsed < deadline + 6, f"took {elapsed:.1f} s for a {deadline:g} s deadline"
    timed_out = [i for i in doc["identities"] if i["status"] == "timeout"]
    assert timed_out, "with half the requests hanging and a short deadline, some identities were still pending"
    for ident in timed_out:
        assert ident["calls"][-1]["error_code"] == "DeadlineExceeded"
    assert any("deadline" in w for w in doc["warnings"])


def test_without_faults_the_deadline_changes_nothing(tmp_path: Path) -> None:
    with Lab("healthy-default") as lab:
        assert lab.config_path is not None
        key = lab.key_arn(lab.scenario.keys[0].id)
        proc = subprocess.run([str(SCRIPT), "report", key, "-f", "json", "--deadline", "60"],
                              env=clean_env(tmp_path, lab.config_path), capture_output=True, text=True, timeout=120,
                              stdin=subprocess.DEVNULL)
    doc = json.loads(proc.stdout)
    assert all(i["status"] == "ok" for i in doc["identities"])
    assert not any("deadline" in w for w in doc["warnings"])


def test_max_attempts_counts_the_first_attempt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore's ``retries`` option ``total_max_attempts`` includes the initial request, ``max_attempts`` counts
    only retries (botocore.config.Config, "retries"; boto3 guide "Retries"): 4 attempts means 4 requests."""
    for var in list(os.environ):
        if var.startswith("AWS_"):
            monkeypatch.delenv(var)
    monkeypatch.setenv("HOME", str(tmp_path))
    with Lab("healthy-default", fault="throttle", fault_rate=1.0) as lab:
        assert lab.config_path is not None
        monkeypatch.setenv("AWS_CONFIG_FILE", str(lab.config_path))
        monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
        profile = lab.scenario.identities[0].profile
        options = SessionOptions(timeout=5, max_attempts=4)
        session = open_session(IdentitySpec(name=profile, source="profile", profile=profile), options)
        sts = create_client(session, "sts", lab.region, options)
        before = lab_stats(lab).get("requests", 0)
        with pytest.raises(Exception, match="Throttl"):
            sts.get_caller_identity()
        assert lab_stats(lab).get("requests", 0) - before == 4


def test_the_ticket_ends_at_its_deadline_too(tmp_path: Path) -> None:
    deadline = 5.0
    with Lab("busy-account", fault="hang", fault_rate=0.5, seed=13) as lab:
        assert lab.config_path is not None
        key = lab.key_arn(lab.scenario.keys[0].id)
        started = time.monotonic()
        proc = subprocess.run([str(SCRIPT), "ticket", key, "--timeout", "2", "--deadline", str(deadline)],
                              env=clean_env(tmp_path, lab.config_path), capture_output=True, text=True,
                              timeout=120, stdin=subprocess.DEVNULL)
        elapsed = time.monotonic() - started
    assert proc.returncode in (0, 3, 4, 5), proc.stderr
    assert key in proc.stdout and "timeout" in proc.stdout
    assert elapsed < deadline + 6, f"took {elapsed:.1f} s for a {deadline:g} s deadline"


def test_a_deadline_that_passes_before_the_probes_still_gives_a_valid_report(tmp_path: Path) -> None:
    with Lab("sole-admin-deleted") as lab:
        assert lab.config_path is not None
        key = lab.key_arn(lab.scenario.keys[0].id)
        proc = subprocess.run([str(SCRIPT), "report", key, "-f", "json", "--deadline", "0.01"],
                              env=clean_env(tmp_path, lab.config_path), capture_output=True, text=True, timeout=60,
                              stdin=subprocess.DEVNULL)
    doc = json.loads(proc.stdout)
    check_classified(doc)
    assert proc.returncode == doc["exit_code"] == 5 and doc["verdict"] == "undetermined"
    assert all(i["status"] == "timeout" for i in doc["identities"])
