"""A ``credential_process`` that exceeds ``--timeout`` is killed with its whole process group, and nothing the
tool started outlives the command: checked with a process that sleeps and spawns a child, through the real CLI
against the lab, both when ``--timeout`` fires and when the overall deadline ends the report first, for a profile's
own command and for the command of a role profile's ``source_profile`` (docs/report.md, "The identities")."""

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
from tests.helpers.cli import clean_env
from tests.helpers.paths import SCRIPT

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


# A role profile whose source_profile has the credential_process: botocore's assume-role provider resolves the
# source profile through its own chain, which must run the command the same way (docs/report.md, "The identities").
VIA_ROLE = ("\n[profile via-role]\nregion = us-east-1\nrole_arn = arn:aws:iam::111122223333:role/Admin\n"
            "source_profile = stuck\n")


#: The same, one hop further: a role profile whose source profile is via-role (a chain of two roles).
CHAINED = ("\n[profile chained]\nregion = us-east-1\nrole_arn = arn:aws:iam::111122223333:role/App\n"
           "source_profile = via-role\n")


@pytest.mark.parametrize("profile", ["via-role", "chained"])
def test_a_source_profiles_process_is_tracked_and_killed(profile: str, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    for var in list(os.environ):
        if var.startswith("AWS_"):
            monkeypatch.delenv(var)
    monkeypatch.setenv("HOME", str(tmp_path))
    config, pidfile = write_hang_profile(tmp_path)
    config.write_text(config.read_text(encoding="utf-8") + VIA_ROLE + CHAINED, encoding="utf-8")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    groups = ProcessGroups()
    with pytest.raises(CredentialTimeout):
        open_session(IdentitySpec(name=profile, source="profile", profile=profile),
                     SessionOptions(timeout=1.5, process_groups=groups))
    pids = pids_from(pidfile)
    groups.kill_all()
    assert_gone(pids)
    assert len(groups) == 0


@pytest.mark.parametrize(("timeout", "deadline"), [("2", "60"), ("30", "3")], ids=["timeout", "deadline"])
def test_nothing_a_source_profile_started_outlives_the_report(tmp_path: Path, timeout: str, deadline: str) -> None:
    with Lab("healthy-default") as lab:
        assert lab.config_path is not None
        config, pidfile = write_hang_profile(tmp_path, Path(lab.config_path).read_text(encoding="utf-8"))
        config.write_text(config.read_text(encoding="utf-8") + VIA_ROLE + f"endpoint_url = {lab.endpoint}\n",
                          encoding="utf-8")
        key = lab.key_arn(lab.scenario.keys[0].id)
        started = time.monotonic()
        proc = subprocess.run([str(SCRIPT), "report", key, "-f", "json", "--timeout", timeout, "--deadline",
                               deadline, "--profile", "via-role"], env=clean_env(tmp_path, config),
                              capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
        elapsed = time.monotonic() - started
    assert proc.returncode in (0, 3, 4, 5), proc.stderr
    identities = json.loads(proc.stdout)["identities"]
    assert [i["name"] for i in identities] == ["via-role"]
    assert identities[0]["status"] == "timeout"
    assert elapsed < min(float(timeout), float(deadline)) + 15
    assert_gone(pids_from(pidfile))


GIVE = """\
import json, os, sys
with open(sys.argv[4], "w") as fh:
    fh.write(f"{os.getpid()} {os.getsid(0)}")
print(json.dumps({"Version": 1, "AccessKeyId": sys.argv[1], "SecretAccessKey": sys.argv[2],
                  "SessionToken": sys.argv[3]}))
"""


def test_a_source_profiles_process_still_supplies_the_role(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The role is assumed, in the lab, with the credentials the source profile's command prints; the command ran
    in a session (so a process group) of its own, and it has ended and is no longer tracked."""
    for var in list(os.environ):
        if var.startswith("AWS_"):
            monkeypatch.delenv(var)
    monkeypatch.setenv("HOME", str(tmp_path))
    with Lab("healthy-default") as lab:
        assert lab.config_path is not None
        admin = lab.session("admin").get_credentials().get_frozen_credentials()
        script = tmp_path / "give.py"
        script.write_text(GIVE, encoding="utf-8")
        config = tmp_path / "config"
        config.write_text(f"[profile src]\nregion = us-east-1\nendpoint_url = {lab.endpoint}\n"
                          f"credential_process = {sys.executable} {script} {admin.access_key} {admin.secret_key} "
                          f"{admin.token} {tmp_path / 'session'}\n"
                          + VIA_ROLE.replace("source_profile = stuck", "source_profile = src")
                          + f"endpoint_url = {lab.endpoint}\n", encoding="utf-8")
        monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
        monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
        groups = ProcessGroups()
        session = open_session(IdentitySpec(name="via-role", source="profile", profile="via-role"),
                               SessionOptions(timeout=10, process_groups=groups))
        arn = session.create_client("sts", region_name="us-east-1").get_caller_identity()["Arn"]
    assert arn.startswith("arn:aws:sts::111122223333:assumed-role/Admin/")
    pid, sid = (tmp_path / "session").read_text(encoding="utf-8").split()
    assert pid == sid
    assert len(groups) == 0
