"""An interrupted audit resumes where it stopped (docs/audit.md, "Speed and resuming"): the installed CLI
with ``--checkpoint``, stopped by a real signal (SIGINT, SIGKILL) once some targets are done, then ``--resume``:
every key exactly once, and the finished targets replayed from the file rather than asked again."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("moto")

from kms_rescue.lab import Lab
from tests.helpers.paths import SCRIPT

CLI = str(SCRIPT)
KEYS = 45


def lab_requests(lab: Lab) -> int:
    return int(lab.admin.stats().get("requests", 0))


def done_lines(path: Path) -> int:
    if not path.exists():
        return 0
    return sum(1 for line in path.read_bytes().splitlines() if line.startswith(b'{"done"'))


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL])
def test_an_interrupted_audit_resumes_where_it_stopped(sig: signal.Signals, spread_keys: Any, lab_cli_env: Any,
                                                      tmp_path: Path) -> None:
    ckpt = tmp_path / "audit.ckpt"
    with Lab(spread_keys(KEYS), latency_ms=150) as lab:
        env = lab_cli_env(lab)
        expected = {lab.key_arn(k.id, region=k.region) for k in lab.scenario.keys}
        # One Region at a time, so the first is done while the others are still to do.
        proc = subprocess.Popen([CLI, "audit", "--profile", "admin", "--concurrency", "1", "--checkpoint",
                                 str(ckpt), "--format", "json"], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
        try:
            deadline = time.monotonic() + 120
            while done_lines(ckpt) < 1 and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.05)
            assert proc.poll() is None, "the audit ended before it could be interrupted"
            assert done_lines(ckpt) >= 1
            proc.send_signal(sig)
            _out, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        if sig == signal.SIGINT:
            assert proc.returncode == 130, err
            assert "Traceback" not in err
        else:
            assert proc.returncode == -signal.SIGKILL
        finished_before = done_lines(ckpt)
        assert 1 <= finished_before < 3
        before = lab_requests(lab)
        resumed = subprocess.run([CLI, "audit", "--profile", "admin", "--resume", str(ckpt), "--format", "json"],
                                 env=env, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
        resume_requests = lab_requests(lab) - before
    assert resumed.returncode == 0, resumed.stderr
    doc = json.loads(resumed.stdout)
    arns = [k["key_arn"] for k in doc["keys"]]
    assert sorted(arns) == sorted(expected) and len(arns) == KEYS, "every key exactly once"
    assert doc["errors"] == []
    assert done_lines(ckpt) == 3
    # The finished Regions were replayed: fewer requests than the 2 per key a full audit makes.
    assert 0 < resume_requests < 2 * KEYS, resume_requests
