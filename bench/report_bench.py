"""`kms-rescue report` benchmarks against the lab at 100 ms per request (the busy-account scenario):

1. 16 identities against 1 identity, whole ``kms-rescue report`` process (goal: 16 take at most 1.6x as long);
2. the runbook's way: the AWS CLI running ``describe-key`` and ``get-key-policy`` for each of the same 16 profiles
   one after the other (goal: the report is at least 10x faster).

The AWS CLI is the one on PATH when there is one; otherwise ``awscli`` is installed into a throwaway virtualenv
under the system temp directory (never into the project's environment: it pins its own botocore).
Figures are medians of five interleaved runs. Resilience (throttling, hangs) is tested functionally in tests/, not here.
The lab runs in this process, its threads on one CPU of their own when there are two or more (it stands in for AWS,
whose work does not share the client's CPUs); the report under test may use every CPU.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import venv
from collections.abc import Iterator
from pathlib import Path

LATENCY_MS = 100.0
IDENTITIES = 16
RUNS = 5
RATIO_16_GOAL = 1.6
CLI_SPEEDUP_GOAL = 10.0
AWSCLI_VENV = Path(tempfile.gettempdir()) / "kms-rescue-bench-awscli"


def _script() -> str:
    found = Path(sys.executable).with_name("kms-rescue")
    return str(found) if found.exists() else shutil.which("kms-rescue") or "kms-rescue"


def _aws_cli() -> str:
    """The AWS CLI: on PATH, or installed once into a throwaway venv under the temp directory."""
    on_path = shutil.which("aws")
    if on_path and subprocess.run([on_path, "--version"], capture_output=True).returncode == 0:
        return on_path
    aws = AWSCLI_VENV / "bin" / "aws"
    if not aws.exists():
        print(f"  installing awscli into {AWSCLI_VENV} (once)", flush=True)
        venv.create(AWSCLI_VENV, with_pip=True, clear=True)
        subprocess.run([str(AWSCLI_VENV / "bin" / "python"), "-m", "pip", "install", "--quiet", "awscli"],
                       check=True)
    return str(aws)


@contextlib.contextmanager
def _lab_on_its_own_cpu() -> Iterator[str]:
    """Start the lab's threads on one CPU of their own. The lab stands in for AWS, whose work does not run on the
    client's machine: on a machine with few CPUs, its threads would otherwise take turns on the CPUs with the report
    being measured. Only threads started inside the block are pinned (on Linux a thread inherits its creator's CPU
    set); this thread gets every CPU back, and so do the processes it starts. Yields what was done, for the output."""
    getter, setter = getattr(os, "sched_getaffinity", None), getattr(os, "sched_setaffinity", None)
    cpus = sorted(getter(0)) if getter and setter else []
    if len(cpus) < 2:
        yield "the lab shares the CPUs with the report (no CPU of its own to give it)"
        return
    assert setter is not None
    setter(0, {cpus[-1]})
    try:
        yield f"the lab's threads run on CPU {cpus[-1]}; the report may use all {len(cpus)} CPUs"
    finally:
        setter(0, set(cpus))


def _env(home: str, config: str) -> dict[str, str]:
    # PYTHONDONTWRITEBYTECODE (set on some CI machines) would make every run compile kms-rescue from source: the
    # warm-up run writes the bytecode, as the first run of an installed tool does.
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k != "PYTHONDONTWRITEBYTECODE"}
    env.update({"HOME": home, "AWS_CONFIG_FILE": config, "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
                "NO_COLOR": "1", "AWS_PAGER": ""})
    return env


def _time(cmd: list[str], env: dict[str, str]) -> tuple[float, subprocess.CompletedProcess[str]]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    return time.perf_counter() - start, proc


def main() -> int:
    from kms_rescue.lab import Lab

    script = _script()
    aws = _aws_cli()
    home = tempfile.mkdtemp(prefix="kms-rescue-bench-")
    try:
        lab = Lab("busy-account", latency_ms=LATENCY_MS)
        with _lab_on_its_own_cpu() as placement:
            lab.start()
        with lab:  # already started: leaving the block stops it
            assert lab.config_path is not None
            profiles = sorted(lab.profiles)[:IDENTITIES]
            if "admin" in lab.profiles and "admin" not in profiles:
                profiles[-1] = "admin"
            key = lab.key_arn(lab.scenario.keys[0].id) if hasattr(lab.scenario, "keys") else None
            if key is None:
                raise RuntimeError("the busy-account scenario has no key")
            env = _env(home, str(lab.config_path))

            def report(names: list[str]) -> float:
                args = [script, "report", key, "--format", "json"]
                for n in names:
                    args += ["--profile", n]
                wall, proc = _time(args, env)
                doc = json.loads(proc.stdout)
                if len(doc["identities"]) != len(names):
                    raise RuntimeError(f"expected {len(names)} identities, got {len(doc['identities'])}")
                return wall

            report(["admin"])  # warm caches (bytecode, botocore data) before timing
            ones: list[float] = []
            manys: list[float] = []
            for _ in range(RUNS):  # interleaved, so that a busy moment on the machine hits both alike
                ones.append(report(["admin"]))
                manys.append(report(profiles))
            one = statistics.median(ones)
            many = statistics.median(manys)

            def runbook() -> float:
                start = time.perf_counter()
                for name in profiles:
                    for sub in (["describe-key", "--key-id", key],
                                ["get-key-policy", "--key-id", key, "--policy-name", "default"]):
                        subprocess.run([aws, "kms", *sub, "--profile", name, "--output", "json"], env=env,
                                       capture_output=True, stdin=subprocess.DEVNULL)
                return time.perf_counter() - start

            cli = runbook()
    finally:
        shutil.rmtree(home, ignore_errors=True)

    ratio = many / one
    speedup = cli / many
    print(f"  lab latency                          {LATENCY_MS:.0f} ms per request; {placement}")
    print(f"  kms-rescue report, 1 identity        {one:6.2f} s   (median of {RUNS})")
    print(f"  kms-rescue report, {IDENTITIES} identities     {many:6.2f} s   (median of {RUNS})")
    print(f"  {IDENTITIES} vs 1 identity                     {ratio:6.2f}x  (goal <= {RATIO_16_GOAL}x) "
          f"{'ok' if ratio <= RATIO_16_GOAL else 'MISSED'}")
    print(f"  AWS CLI, describe-key + get-key-policy x {IDENTITIES} profiles, sequential  {cli:6.2f} s")
    print(f"  report vs AWS CLI runbook                 {speedup:6.1f}x faster (goal >= {CLI_SPEEDUP_GOAL:.0f}x) "
          f"{'ok' if speedup >= CLI_SPEEDUP_GOAL else 'MISSED'}")
    return 0
