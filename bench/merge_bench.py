"""``audit --merge`` of 10,000 keys in 20 per-account files (docs/audit-cloud.md): the whole ``kms-rescue audit
--merge DIR --format json`` process, its wall time, lines per second, and peak memory (goal: at most 300 MB, as for
a live audit of 10,000 keys; the merge streams, so it should not grow with the number of keys).

The lines are ``to_json`` of real ``KeyAudit`` objects (a manager, two findings, as a live audit writes them), each
key with its own ARN.
"""

from __future__ import annotations

import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from kms_rescue.audit.model import Finding, KeyAudit, Manager, to_json

KEYS = 10_000
FILES = 20
MEMORY_GOAL_MB = 300.0


def _line(account: str, n: int) -> str:
    key_id = f"{n:08x}-0000-4000-8000-{n:012x}"
    item = KeyAudit(
        key_arn=f"arn:aws:kms:us-east-1:{account}:key/{key_id}", account=account, region="us-east-1",
        key_id=key_id, key_manager="CUSTOMER", key_state="Enabled", aliases=(f"alias/key-{n}",),
        verdict="recoverable", managers=(Manager(f"arn:aws:iam::{account}:role/KeyAdmin", "named", True),),
        findings=(Finding("KA001", "high", "only one principal can manage the key: deleting it locks the key out"),
                  Finding("KA004", "medium", "no statement names the account principal")),
        summary=f"arn:aws:kms:us-east-1:{account}:key/{key_id} is recoverable", policy_read_by="auditor",
        requests=2,
    )
    return json.dumps(to_json(item), separators=(",", ":"))


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="kms-rescue-merge-bench-"))
    try:
        accounts = ["111122223333", "444455556666", "123456789012"]
        per_file = KEYS // FILES
        for f in range(FILES):
            account = accounts[f % len(accounts)]
            lines = [_line(account, f * per_file + i) for i in range(per_file)]
            (work / f"{f:04d}-{account}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
        size = sum(p.stat().st_size for p in work.iterdir())
        script = Path(sys.executable).with_name("kms-rescue")
        out = work / "merged.json"
        start = time.perf_counter()
        done = subprocess.run([str(script), "audit", "--merge", str(work), "--format", "json", "--output", str(out)],
                              capture_output=True, text=True, check=False)
        wall = time.perf_counter() - start
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # KiB on Linux
        keys = len(json.loads(out.read_text())["keys"]) if out.exists() else 0
        print(f"merge: {keys:,} keys from {FILES} files ({size / 1e6:.1f} MB) in {wall:.2f} s "
              f"({keys / wall:,.0f} lines/s); exit {done.returncode}")
        print(f"peak memory: {peak_mb:.0f} MB (goal: at most {MEMORY_GOAL_MB:.0f} MB)")
        ok = keys == KEYS and done.returncode == 1 and peak_mb <= MEMORY_GOAL_MB
        if not ok:
            print(done.stderr[-2000:], file=sys.stderr)
        return 0 if ok else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
