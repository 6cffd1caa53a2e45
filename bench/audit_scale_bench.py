"""The audit at scale (docs/audit.md, "Measured"): ``kms-rescue audit --organization`` (the installed CLI, a
process of its own) of the generated 2,000-key scenario (4 Regions, 3 accounts) served at 50 ms per request by a
lab in the benchmark's process (which does nothing else meanwhile, and counts every request it answers).

Printed (not asserted):

- the lab's maximum request rate, measured in the same run from another process (64 client threads, the audit's
  own mix: DescribeKey and GetKeyPolicy in turn, on keys the auditor may read), and the audit's wall time against
  the lab's ceiling: the requests the audit made (the lab's count) divided by that rate; target <= 1.5 x;
- with ``--processes`` 1 and 2 (the default is chosen from these figures);
- the AWS CLI loop a user would write (``aws kms list-keys``, then ``aws kms get-key-policy`` per key, per account
  and Region), timed on a sample and extrapolated to the scenario; target: the audit >= 50 x faster;
- the peak memory (RSS, from ``/usr/bin/time``) of the audit process for a 10,000-key scenario (no added latency);
  target <= 300 MB;
- the CPU time of the audit process (user + system, from ``/usr/bin/time``), in all and per key.

``python bench/audit_scale_bench.py --audit-only`` runs the 2,000-key audit alone (the lab's rate, then
``--processes 1``): the figure to compare before and after a change of the audit's per-key work.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

KEYS, SEED, LATENCY_MS = 2000, 1, 50.0
BIG_KEYS = 10_000
RATE_THREADS = (64, 128)
RATE_SECONDS = 3.0
SAMPLE_CALLS = 6
CLI = str(Path(sys.executable).with_name("kms-rescue"))


def _env(config: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update({"AWS_CONFIG_FILE": str(config), "AWS_SHARED_CREDENTIALS_FILE": os.devnull, "NO_COLOR": "1"})
    return env


RATE_SCRIPT = """
import json, os, sys
import boto3, botocore.session
from kms_rescue.lab.rate import NO_RETRY, measure
config, threads, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
def make():
    core = botocore.session.Session()
    core.set_config_variable("config_file", config)
    core.set_config_variable("credentials_file", os.devnull)
    return boto3.Session(botocore_session=core, profile_name="auditor").client("kms", config=NO_RETRY)
probe = make()
ids = []
for k in probe.list_keys(Limit=60)["Keys"]:
    try:
        probe.get_key_policy(KeyId=k["KeyId"], PolicyName="default")
        ids.append(k["KeyId"])
    except Exception:
        pass
def call(client, n):
    key = ids[(n // 2) % len(ids)]
    if n % 2:
        return client.get_key_policy(KeyId=key, PolicyName="default")
    return client.describe_key(KeyId=key)
r = measure(make, call, threads=threads, seconds=seconds)
print(json.dumps({"rate": r.per_second, "errors": r.errors}))
"""


def lab_max_rate(config: Path) -> float:
    """The lab's answers per second to the audit's mix, from a client process of its own."""
    best = 0.0
    for threads in RATE_THREADS:
        done = subprocess.run([sys.executable, "-c", RATE_SCRIPT, str(config), str(threads), str(RATE_SECONDS)],
                              env=_env(config), capture_output=True, text=True, check=True)
        got = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"  lab max rate, {threads} threads (DescribeKey and GetKeyPolicy in turn): {got['rate']:,.0f} "
              f"requests/s ({got['errors']} errors)", flush=True)
        best = max(best, got["rate"])
    return best


def run_audit(lab: Any, config: Path, tmp: Path, *extra: str) -> dict[str, Any]:
    """The audit through the installed CLI: wall time, requests (the lab's count), keys, errors, peak RSS."""
    out = tmp / f"audit-{time.monotonic_ns()}.json"
    rss = tmp / f"rss-{time.monotonic_ns()}.txt"
    timer = ["/usr/bin/time", "-f", "%M %U %S", "-o", str(rss)] if Path("/usr/bin/time").exists() else []
    before = lab.admin.stats().get("requests", 0)
    started = time.perf_counter()
    done = subprocess.run([*timer, CLI, "audit", "--profile", "auditor", "--organization", "--format", "json",
                           "--fail-on", "none", "--output", str(out), *extra], env=_env(config),
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=False)
    wall = time.perf_counter() - started
    requests = lab.admin.stats().get("requests", 0) - before
    doc = json.loads(out.read_text())
    kb, user, system = rss.read_text().strip().splitlines()[-1].split() if timer else ("nan", "nan", "nan")
    return {"wall": wall, "requests": requests, "keys": doc["summary"]["keys"], "errors": len(doc["errors"]),
            "rss_mb": float(kb) / 1024, "cpu": float(user) + float(system), "code": done.returncode}


def aws_cli_loop(config: Path) -> tuple[float, float, str]:
    """Seconds per ``list-keys`` and per ``get-key-policy`` of the loop a user would write, on a sample."""
    aws = shutil.which("aws")
    env = _env(config)
    if aws is not None:
        base, how = [aws], "the aws CLI"
    else:
        import importlib.util

        if importlib.util.find_spec("awscli") is None:
            return _boto3_processes(env)
        base, how = [sys.executable, "-m", "awscli"], "python -m awscli"
    common = ["--profile", "auditor", "--region", "us-east-1", "--output", "json"]
    t0 = time.perf_counter()
    listed = json.loads(subprocess.run([*base, "kms", "list-keys", *common], env=env, capture_output=True,
                                       text=True, check=True).stdout)
    list_s = time.perf_counter() - t0
    ids = [k["KeyId"] for k in listed["Keys"]][:SAMPLE_CALLS]
    t0 = time.perf_counter()
    for key_id in ids:
        subprocess.run([*base, "kms", "get-key-policy", "--key-id", key_id, "--policy-name", "default", *common],
                       env=env, capture_output=True, text=True, check=False)
    return list_s, (time.perf_counter() - t0) / len(ids), how


def _boto3_processes(env: dict[str, str]) -> tuple[float, float, str]:
    code = ("import boto3,sys; k=boto3.Session(profile_name='auditor').client('kms', region_name='us-east-1'); "
            "print(k.list_keys()['Keys'][0]['KeyId']) if len(sys.argv)<2 else "
            "k.get_key_policy(KeyId=sys.argv[1], PolicyName='default')")
    t0 = time.perf_counter()
    key_id = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                            check=True).stdout.strip()
    list_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(SAMPLE_CALLS):
        subprocess.run([sys.executable, "-c", code, key_id], env=env, capture_output=True, check=False)
    return list_s, (time.perf_counter() - t0) / SAMPLE_CALLS, "one python -c boto3 process per call"


def main(argv: list[str] | None = None) -> int:
    audit_only = "--audit-only" in (sys.argv[1:] if argv is None else argv)
    from kms_rescue.lab import Lab
    from kms_rescue.lab.generate import generate_scenario

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        with Lab(generate_scenario(KEYS, seed=SEED).scenario, latency_ms=LATENCY_MS) as lab:
            assert lab.config_path is not None
            config = lab.config_path
            print(f"generated scenario: {KEYS:,} keys, 4 Regions x 3 accounts, {LATENCY_MS:g} ms per request",
                  flush=True)
            rate = lab_max_rate(config)
            last: dict[str, Any] = {}
            for processes in (1,) if audit_only else (1, 2):
                r = run_audit(lab, config, tmp, "--processes", str(processes))
                ceiling = r["requests"] / rate
                print(f"audit --processes {processes}: {r['wall']:.1f} s for {r['keys']:,} keys ({r['errors']} "
                      f"error rows, exit {r['code']}); {r['requests']:,} requests; lab ceiling "
                      f"{r['requests']:,} / {rate:,.0f} per s = {ceiling:.1f} s; wall / ceiling = "
                      f"{r['wall'] / ceiling:.2f} x (target <= 1.5); peak RSS {r['rss_mb']:.0f} MB; CPU of the audit "
                      f"process {r['cpu']:.1f} s, {1000 * r['cpu'] / max(1, r['keys']):.1f} ms per key", flush=True)
                last = last if last and last["wall"] < r["wall"] else r
            if audit_only:
                return 0
            list_s, get_s, how = aws_cli_loop(config)
            targets = 4 * 3
            loop = targets * list_s + KEYS * get_s
            print(f"AWS CLI loop ({how}): list-keys {list_s:.2f} s, get-key-policy {get_s:.2f} s per key "
                  f"(sample of {SAMPLE_CALLS}); extrapolated: {targets} x {list_s:.2f} + {KEYS:,} x {get_s:.2f} = "
                  f"{loop:,.0f} s; the audit ({last['wall']:.1f} s) is {loop / last['wall']:,.0f} x faster "
                  "(target >= 50)", flush=True)
        with Lab(generate_scenario(BIG_KEYS, seed=SEED).scenario) as lab:
            assert lab.config_path is not None
            r = run_audit(lab, lab.config_path, tmp)
            print(f"audit of {BIG_KEYS:,} keys (no added latency): {r['wall']:.1f} s, {r['keys']:,} keys, "
                  f"{r['requests']:,} requests; peak RSS of the audit process {r['rss_mb']:.0f} MB (target <= 300)",
                  flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
