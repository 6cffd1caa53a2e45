"""The lab's maximum request rate: DescribeKey through the gate from 8, 32 and 64 client threads, with no added
latency and with 50 ms per request (the audit benchmark's setting), on a generated 2,000-key scenario.

Measured twice: with the lab in the benchmark's own process (the clients' botocore work competes with the lab's
for the interpreter, as in an in-process audit benchmark), and with the lab served by ``kms-rescue lab
--generate`` in a process of its own (the lab's own ceiling). With latency L and T threads the rate is at most
T / L. The figures are printed, not asserted (docs/lab.md, "Measuring the lab's request rate")."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from kms_rescue.lab import Lab, load_scenario
from kms_rescue.lab.generate import generate_scenario
from kms_rescue.lab.rate import NO_RETRY, Rate, describe_key_rate, measure

THREADS = (8, 32, 64)
LATENCIES_MS = (0.0, 50.0)
SECONDS = 2.0
KEYS, SEED = 2000, 1


def _line(where: str, latency: float, rate: Rate, in_flight: int | None) -> str:
    ceiling = f", at most {rate.threads / (latency / 1000):,.0f}/s at this latency" if latency else ""
    flight = f"; most in flight at once: {in_flight}" if in_flight is not None else ""
    return (f"lab max rate ({where}), latency {latency:>2.0f} ms, {rate.threads:>2} threads: "
            f"{rate.per_second:,.0f} requests/s ({rate.requests} in {rate.seconds:.1f} s, {rate.errors} errors"
            f"{ceiling}){flight}")


def _in_process(scenario: Any) -> None:
    for latency in LATENCIES_MS:
        with Lab(scenario, latency_ms=latency) as lab:
            for threads in THREADS:
                rate = describe_key_rate(lab, threads=threads, seconds=SECONDS, profile="auditor")
                print(_line("in process", latency, rate, lab.admin.stats()["max_in_flight"]), flush=True)
            assert lab.admin.internal_errors == []


def _own_process(scenario: Any) -> None:
    import boto3
    import botocore.session

    home = [k.id for k in scenario.keys if k.account == scenario.account and k.region == scenario.region][:20]
    script = Path(sys.executable).with_name("kms-rescue")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    for latency in LATENCIES_MS:
        with tempfile.TemporaryDirectory() as tmp:
            config = Path(tmp) / "lab.ini"
            proc = subprocess.Popen(
                [str(script), "lab", "--generate", str(KEYS), "--seed", str(SEED), "--latency-ms", str(latency),
                 "--aws-config", str(config)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                env=env)
            try:
                assert proc.stdout is not None
                proc.stdout.readline()  # the export line: the lab serves
                deadline = time.monotonic() + 60
                while not config.exists() and time.monotonic() < deadline:
                    time.sleep(0.05)

                def make(config: Path = config) -> Any:
                    core = botocore.session.Session()
                    core.set_config_variable("config_file", str(config))
                    core.set_config_variable("credentials_file", os.devnull)
                    return boto3.Session(botocore_session=core, profile_name="auditor").client("kms", config=NO_RETRY)

                def call(client: Any, n: int) -> object:
                    return client.describe_key(KeyId=home[n % len(home)])

                for threads in THREADS:
                    print(_line("own process", latency, measure(make, call, threads=threads, seconds=SECONDS), None),
                          flush=True)
            finally:
                proc.terminate()
                proc.wait(timeout=30)


def main() -> int:
    scenario = load_scenario(generate_scenario(KEYS, seed=SEED).scenario)
    _in_process(scenario)
    _own_process(scenario)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
