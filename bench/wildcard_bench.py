"""Worst cases of IAM wildcard matching (issue 11: patterns such as ``role/*a*a*a*b`` used to become backtracking
regexes). Goal: every case below in at most 10 ms per match, however many stars, and the whole ``lint`` of the
issue's 12-star policy in at most 1 s."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from kms_rescue.policy.policy_variables import parse_template
from kms_rescue.policy.wildcard import wildcard_match

MATCH_GOAL_S = 0.010
LINT_GOAL_S = 1.0
ACCOUNT = "111122223333"


def _per_match(pattern: str, value: str, repeat: int) -> float:
    start = time.perf_counter()
    for _ in range(repeat):
        wildcard_match(pattern, value)
    return (time.perf_counter() - start) / repeat


def _lint_seconds(stars: int) -> float:
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:role/{'a' * 80}"}, "Action": "kms:*",
             "Resource": "*"},
            {"Effect": "Deny", "Principal": "*", "Action": "kms:*", "Resource": "*",
             "Condition": {"ArnNotLike": {"aws:PrincipalArn": f"arn:aws:iam::{ACCOUNT}:role/" + "*a" * stars + "*b"}}},
        ],
    }
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "redos.json"
        path.write_text(json.dumps(policy))
        script = Path(sys.executable).parent / "kms-rescue"
        start = time.perf_counter()
        subprocess.run([str(script), "lint", str(path), "--account", ACCOUNT], capture_output=True, timeout=120)
        return time.perf_counter() - start


def main() -> int:
    ok = True
    for stars, size in ((7, 80), (12, 80), (12, 10_000), (50, 32_000)):
        pattern = "*a" * stars + "*b"
        value = "a" * size
        per = _per_match(pattern, value, repeat=200 if size < 1000 else 5)
        good = per <= MATCH_GOAL_S
        ok &= good
        print(f"wildcard: {stars} stars vs {size:,} characters: {per * 1e6:,.1f} µs per match "
              f"(goal ≤ {MATCH_GOAL_S * 1e3:.0f} ms) {'OK' if good else 'ABOVE GOAL'}")
    for pattern, value in (("*?" * 200 + "b", "a" * 32_000), ("?a*" * 40 + "b", "xa" * 16_000),
                           ("*" + "a?" * 20 + "b*", "a" * 32_000), ("*" + "a?b?" * 10 + "*", "ab" * 16_000)):
        per = _per_match(pattern, value, repeat=5)
        good = per <= MATCH_GOAL_S * 10
        ok &= good
        print(f"wildcard: {len(pattern)}-character ?-pattern vs {len(value):,} characters: {per * 1e3:,.2f} ms "
              f"per match (goal ≤ {MATCH_GOAL_S * 1e4:.0f} ms) {'OK' if good else 'ABOVE GOAL'}")
    start = time.perf_counter()
    parse_template("${" + " " * 30_000)
    took = time.perf_counter() - start
    print(f"variables: '${{' and 30,000 spaces read in {took * 1e3:.1f} ms")
    lint = sorted(_lint_seconds(12) for _ in range(3))[1]
    good = lint <= LINT_GOAL_S
    ok &= good
    print(f"lint: the issue's 444-byte policy with 12 wildcards: {lint:.2f} s whole process, median of 3 "
          f"(goal ≤ {LINT_GOAL_S:.0f} s) {'OK' if good else 'ABOVE GOAL'}")
    return 0 if ok else 1
