"""Signals around the write, sent for real to a real ``kms-rescue fix --apply --yes`` process (issue 10).

SIGTERM (``kill``) and SIGHUP (a dropped SSH session) are handled like SIGINT while PutKeyPolicy is in flight: the
write finishes, is read back and verified, the restore command is printed, then the process exits with 128 + the
signal's number. Only the write is held back: a signal during the re-read before it stops the fix, and the key
keeps its policy.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest

from kms_rescue.lab import Lab
from tests.helpers.lab import env_for
from tests.helpers.paths import SCRIPT

CLI = str(SCRIPT)


def _wait_for(predicate: object, what: str, limit: float = 60.0) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT], ids=lambda s: s.name)
def test_a_signal_during_the_write_lets_it_finish_verify_and_print_the_restore(clean_env: Path, signum: int) -> None:
    with Lab("principalarn-condition", op_latency_ms={"PutKeyPolicy": 2000}) as lab:
        key = lab.key_arn(lab.scenario.keys[0].id)
        before = lab.admin.raw_key_policy(key)
        proc = subprocess.Popen([CLI, "fix", key, "--apply", "--yes", "--format", "json"], env=env_for(lab),
                                cwd=clean_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            # The lab applies the write at once and answers 2 s later: the signal arrives mid-call.
            _wait_for(lambda: lab.admin.raw_key_policy(key) != before, "the write to land")
            proc.send_signal(signum)
            out, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == 128 + signum, out + err
        payload = json.loads(out)
        assert payload["applied"] is True and payload["verified"] is True
        assert payload["restore_command"] and Path(payload["restore_file"]).is_file()
        assert f"signal {signum} arrived during the write" in err and "Traceback" not in err


def test_a_signal_during_the_re_read_before_the_write_stops_it(clean_env: Path) -> None:
    """SIGINT while the policy is re-read (before the backup and the write): the fix stops, exit 130, and the key
    keeps its policy (docs/fix.md: only the write itself is held back)."""
    with Lab("principalarn-condition", op_latency_ms={"GetKeyPolicy": 1500}) as lab:
        key = lab.key_arn(lab.scenario.keys[0].id)
        before = lab.admin.raw_key_policy(key)
        proc = subprocess.Popen([CLI, "fix", key, "--apply", "--yes"], env=env_for(lab), cwd=clean_env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert proc.stderr is not None
            line = proc.stderr.readline()
            while line and "re-reading the key policy" not in line:
                line = proc.stderr.readline()
            assert line, "the fix never reached the re-read"
            time.sleep(0.3)  # inside the 1.5 s GetKeyPolicy
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == 130, out + err
        assert lab.admin.raw_key_policy(key) == before
        assert not list(clean_env.glob("kms-key-policy-*")), "stopped before the backup and the write"
