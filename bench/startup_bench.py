"""Start-up of the commands that must stay quick: ``--help``, ``lint`` and ``explain`` (goal: each at most 0.3 s,
the whole process). They import neither boto3 nor moto (tests/cli/test_cli_help.py checks ``sys.modules``); this
measures the wall time a user waits. Figures are the best of five runs after one warm-up (bytecode written)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RUNS = 5
GOAL_S = 0.3
POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Sid": "Enable IAM User Permissions", "Effect": "Allow",
                   "Principal": {"AWS": "arn:aws:iam::111122223333:root"}, "Action": "kms:*", "Resource": "*"}],
}


def _script() -> str:
    found = Path(sys.executable).with_name("kms-rescue")
    return str(found) if found.exists() else shutil.which("kms-rescue") or "kms-rescue"


def _best(cmd: list[str], env: dict[str, str]) -> float:
    subprocess.run(cmd, env=env, capture_output=True, stdin=subprocess.DEVNULL)  # warm-up
    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        subprocess.run(cmd, env=env, capture_output=True, stdin=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> int:
    script = _script()
    folder = tempfile.mkdtemp(prefix="kms-rescue-bench-startup-")
    try:
        policy = os.path.join(folder, "policy.json")
        with open(policy, "w", encoding="utf-8") as f:
            json.dump(POLICY, f)
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k != "PYTHONDONTWRITEBYTECODE"}
        env.update({"HOME": folder, "NO_COLOR": "1"})
        commands = {
            "--help": [script, "--help"],
            "lint": [script, "lint", policy],
            "explain": [script, "explain", "--policy", policy, "--principal",
                        "arn:aws:iam::111122223333:role/Admin", "--action", "kms:PutKeyPolicy"],
        }
        for name, cmd in commands.items():
            best = _best(cmd, env)
            print(f"  kms-rescue {name:<8} {best:5.2f} s  (best of {RUNS}; goal <= {GOAL_S} s) "
                  f"{'ok' if best <= GOAL_S else 'MISSED'}")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 0
