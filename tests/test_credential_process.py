"""A ``credential_process`` that exceeds ``--timeout`` is killed with its whole process group, and nothing the
tool started outlives the command: checked with a process that sleeps and spawns a child, through the real CLI
against the lab, both when ``--timeout`` fires and when the overall deadline ends the report first
(docs/report.md, "The identities")."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kms_rescue.aws.classify import CredentialTimeout
from kms_rescue.aws.credential_process import ProcessGroups
from kms_rescue.aws.results import IdentitySpec
from kms_rescue.aws.sessions import SessionOptions, open_session
from kms_rescue.lab import Lab
from tests.test_report_lab import clean_env

SCRIPT = Path(sys.executable).with_name("kms-rescue")

HANG = """\
import os, subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
with open(sys.argv[1], "w") as fh:
    fh.write(f"{os.getpid()} {child.pid}")
time.sleep(120)
"""


def alive(pid: int) -> bool:
    """Running (a zombie waiting for a reaper that is not ours counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state != "Z"


def pids_from(path: Path, wait: float = 10.0) -> list[int]:
    end = time.monotonic() + wait
    while time.monotonic() < end:
        if path.exists() and path.read_text().strip():
            return [int(p) for p in path.read_text().split()]
        time.sleep(0.05)
    raise AssertionError("the credential_process did not start")


def assert_gone(pids: list[int], within: float = 3.0) -> None:
    end = time.monotonic() + within
    while time.monotonic() < end and any(alive(p) for p in pids):
        time.sleep(0.05)
    assert not [p for p in pids if alive(p)], "a process the credential_process started outlived the command"


def write_hang_profile(tmp_path: Path, extra: str = "") -> tuple[Path, Path]:
    script = tmp_path / "hang.py"
    script.write_text(HANG, encoding="utf-8")
    pidfile = tmp_path / "pids"
    config = tmp_path / "config"
    config.write_text(extra + f"\n[profile stuck]\nregion = us-east-1\n"
                      f"credential_process = {sys.executable} {script} {pidfile}\n", encoding="utf-8")
    return config, pidfile


def test_open_session_kills_the_group_at_the_timeout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in list(os.environ):
        if var.startswith("AWS_"):
            monkeypatch.delenv(var)
    monkeypatch.setenv("HOME", str(tmp_path))
    config, pidfile = write_hang_profile(tmp_path)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    groups = ProcessGroups()
    started = time.monotonic()
    with pytest.raises(CredentialTimeout):
        open_session(IdentitySpec(name="stuck", source="profile", profile="stuck"),
                     SessionOptions(timeout=1.5, process_groups=groups))
    assert time.monotonic() - started < 10
    pids = pids_from(pidfile)
    groups.kill_all()  # what the investigation does when it ends
    assert_gone(pids)
    assert len(groups) == 0


@pytest.mark.parametrize(("timeout", "deadline"), [("2", "60"), ("30", "3")], ids=["timeout", "deadline"])
def test_nothing_outlives_the_report(tmp_path: Path, timeout: str, deadline: str) -> None:
    with Lab("healthy-default") as lab:
        assert lab.config_path is not None
        config, pidfile = write_hang_profile(tmp_path, Path(lab.config_path).read_text(encoding="utf-8"))
        key = lab.key_arn(lab.scenario.keys[0].id)
        started = time.monotonic()
        proc = subprocess.run([str(SCRIPT), "report", key, "-f", "json", "--timeout", timeout, "--deadline",
                               deadline], env=clean_env(tmp_path, config), capture_output=True, text=True,
                              timeout=120, stdin=subprocess.DEVNULL)
        elapsed = time.monotonic() - started
    assert proc.returncode in (0, 3, 4, 5), proc.stderr
    stuck = next(i for i in json.loads(proc.stdout)["identities"] if i["name"] == "stuck")
    assert stuck["status"] == "timeout"
    assert elapsed < min(float(timeout), float(deadline)) + 15
    assert_gone(pids_from(pidfile))
