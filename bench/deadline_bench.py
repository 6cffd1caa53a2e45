"""The overall deadline under hanging requests: ``kms-rescue report --timeout 2 --deadline 8`` against the lab's
busy-account scenario (18 identities) with half the requests hanging (``--fault hang --fault-rate 0.5``), whole
process, three runs with different fault seeds. Goal: every run ends within the deadline plus one second, with a
report that parses. Without the deadline the same runs took 31 to 37 s (docs/report.md, "Deadlines and retries")."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DEADLINE = 8.0
MARGIN_GOAL = 1.0
SEEDS = (7, 11, 13)


def main() -> int:
    from kms_rescue.lab import Lab

    script = str(Path(sys.executable).with_name("kms-rescue"))
    times: list[float] = []
    ok = True
    with tempfile.TemporaryDirectory(prefix="kms-rescue-bench-") as home:
        for seed in SEEDS:
            with Lab("busy-account", fault="hang", fault_rate=0.5, seed=seed) as lab:
                key = lab.key_arn(lab.scenario.keys[0].id)
                env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
                env.update(HOME=home, AWS_CONFIG_FILE=str(lab.config_path),
                           AWS_SHARED_CREDENTIALS_FILE=os.path.join(home, "none"), NO_COLOR="1")
                start = time.perf_counter()
                proc = subprocess.run([script, "report", key, "-f", "json", "--timeout", "2", "--deadline",
                                       str(DEADLINE)], env=env, capture_output=True, text=True, timeout=120,
                                      stdin=subprocess.DEVNULL)
                elapsed = time.perf_counter() - start
            doc = json.loads(proc.stdout)
            pending = sum(1 for i in doc["identities"] if i["status"] == "timeout")
            print(f"  seed {seed}: {elapsed:.2f} s, exit {proc.returncode}, {pending} of "
                  f"{len(doc['identities'])} identities timeout")
            times.append(elapsed)
            ok = ok and elapsed <= DEADLINE + MARGIN_GOAL
    print(f"  median {statistics.median(times):.2f} s for a {DEADLINE:g} s deadline "
          f"(goal: at most {DEADLINE + MARGIN_GOAL:g} s): {'ok' if ok else 'MISSED'}")
    return 0 if ok else 1
