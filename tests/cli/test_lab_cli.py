"""``kms-rescue lab``: in process through ``main`` and as the installed script in a subprocess."""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import stat
import subprocess
import threading
import time
from pathlib import Path

import boto3
import botocore.session
import pytest

from kms_rescue.cli.app import main
from kms_rescue.lab import builtin_names, load_scenario
from tests.helpers.paths import FIXTURES, SCRIPT


def test_list(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lab", "--list"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in out] == builtin_names()
    for line in out:
        name, verdict = line.split()[:2]
        assert verdict == load_scenario(name).expected_verdict


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["lab"], "name a scenario"),
        (["lab", "healthy-default"], "--aws-config FILE is required"),
        (["lab", "no-such-thing", "--aws-config", "x.ini"], "no scenario 'no-such-thing'"),
        (["lab", "healthy-default", "--aws-config", "x.ini", "--fault-rate", "2"], "--fault-rate is a fraction"),
    ],
)
def test_usage_errors(args: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err


def test_bad_scenario_file_is_one_line_with_the_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = json.loads((FIXTURES / "lab" / "minimal.json").read_text())
    doc["identities"][0]["polcies"] = []
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc))
    assert main(["lab", str(bad), "--aws-config", str(tmp_path / "lab.ini")]) == 2
    err = capsys.readouterr().err
    assert err == f"kms-rescue: error: {bad}: $.identities[0].polcies: unknown field\n"
    assert not (tmp_path / "lab.ini").exists()


def _read_until_ready(proc: subprocess.Popen[str], timeout: float = 60.0) -> list[str]:
    """stdout lines up to the key table (the lab prints them once it serves), read by a helper thread."""
    assert proc.stdout is not None
    stdout = proc.stdout
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        for line in stdout:
            lines.put(line.rstrip("\n"))
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    got: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.5)
        except queue.Empty:
            continue
        if line is None:
            break
        got.append(line)
        if len(got) >= 2 and got[-2].startswith("# KEY"):
            return got
    raise AssertionError(f"the lab did not get ready: {got}")


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_serve_then_stop_cleanly(tmp_path: Path, signum: int) -> None:
    config = tmp_path / "lab.ini"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k != "MOTO_ACCOUNT_ID"}
    proc = subprocess.Popen(
        [str(SCRIPT), "lab", "sole-admin-deleted", "--aws-config", str(config), "--seed", "3"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    try:
        out = _read_until_ready(proc)
        assert out[0] == f"export AWS_CONFIG_FILE={config}"
        assert "# app      arn:aws:sts::111122223333:assumed-role/App/app" in out
        assert out[1:3] == ["# endpoint " + out[1].split()[-1], "# regions us-east-1 (profiles: us-east-1)"]
        assert out[-2].split() == ["#", "KEY", "REGION", "ALIAS", "STATE"]
        key_row = ["#", "0d5d6a3c-8d7e-4c1f-9b2a-6f1e2d3c4b5a", "us-east-1", "alias/payments", "Enabled"]
        assert out[-1].split() == key_row
        assert stat.S_IMODE(config.stat().st_mode) == 0o600
        core = botocore.session.Session()
        core.set_config_variable("config_file", str(config))
        core.set_config_variable("credentials_file", os.devnull)
        kms = boto3.Session(botocore_session=core, profile_name="app").client("kms")
        policy = json.loads(kms.get_key_policy(KeyId="0d5d6a3c-8d7e-4c1f-9b2a-6f1e2d3c4b5a")["Policy"])
        assert policy["Statement"][0]["Principal"]["AWS"].startswith("AROA")  # the deleted KeyAdmin
        proc.send_signal(signum)
        proc.wait(timeout=30)
        assert proc.stderr is not None
        err = proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert err.splitlines()[-1] == "kms-rescue lab: stopped"
    assert "Traceback" not in err


@pytest.mark.skipif(shutil.which("aws") is None, reason="the AWS CLI is not installed")
def test_the_aws_cli_uses_the_config(tmp_path: Path) -> None:
    from kms_rescue.lab import Lab

    with Lab("healthy-default", config_path=tmp_path / "lab.ini") as lab:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env["AWS_CONFIG_FILE"] = str(lab.config_path)
        env["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
        done = subprocess.run(
            ["aws", "--profile", "admin", "kms", "describe-key", "--key-id", "alias/payments", "--output", "json"],
            capture_output=True, text=True, env=env, timeout=60,
        )
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["KeyMetadata"]["Arn"] == lab.key_arn("alias/payments")
        denied = subprocess.run(
            ["aws", "--profile", "intern", "kms", "describe-key", "--key-id", "alias/payments"],
            capture_output=True, text=True, env=env, timeout=60,
        )
        assert denied.returncode != 0
        assert "AccessDeniedException" in denied.stderr
