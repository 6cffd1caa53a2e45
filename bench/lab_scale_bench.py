"""Loading the generated scenario: keys per second from the JSON document to a serving lab (validation, moto's
keys, the gate), and the process's peak memory, for 2,000 and 10,000 keys over 4 Regions and 3 accounts. Each size
runs in its own process so its peak memory is its own."""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time

SIZES = (2000, 10_000)


def _one(keys: int) -> dict[str, float]:
    from kms_rescue.lab import Lab, load_scenario
    from kms_rescue.lab.generate import generate_scenario

    t0 = time.perf_counter()
    doc = generate_scenario(keys, seed=1).scenario
    t1 = time.perf_counter()
    scenario = load_scenario(doc)
    t2 = time.perf_counter()
    lab = Lab(scenario).start()
    t3 = time.perf_counter()
    try:
        kms = lab.client("auditor", "kms")
        listed = sum(len(p["Keys"]) for p in kms.get_paginator("list_keys").paginate())
    finally:
        lab.stop()
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    return {"generate_s": t1 - t0, "validate_s": t2 - t1, "start_s": t3 - t2, "keys_per_s": keys / (t3 - t1),
            "peak_rss_mb": rss_mb, "listed_home": listed}


def main() -> int:
    for keys in SIZES:
        done = subprocess.run([sys.executable, "-m", "bench.lab_scale_bench", str(keys)], capture_output=True,
                              text=True, check=False)
        if done.returncode != 0:
            print(done.stderr, file=sys.stderr)
            return 1
        r = json.loads(done.stdout.splitlines()[-1])
        print(f"generated scenario, {keys:>6,} keys: load {r['validate_s'] + r['start_s']:.1f} s "
              f"(validate {r['validate_s']:.1f} s, start {r['start_s']:.1f} s) = {r['keys_per_s']:,.0f} keys/s; "
              f"peak RSS {r['peak_rss_mb']:.0f} MB; ListKeys in the home account and Region: {r['listed_home']:.0f}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1:
        print(json.dumps(_one(int(sys.argv[1]))))
    else:
        raise SystemExit(main())
