"""The Condition evaluator's caches at work (docs/engine.md, "Caches"): decisions per CPU-second on policies whose
conditions read the request's time, address and variables, decisions whose Resource holds a policy variable, role
patterns matched as the verdict layer does, and lint in process. The figures are the "with" column of that table;
removing a cache and running this again gives the other."""

from __future__ import annotations

import time
from collections.abc import Callable

from bench.engine_bench import ACCOUNT, KEY, twenty_statement_policy
from kms_rescue.policy import analyze_management, evaluate, parse_policy
from kms_rescue.policy.like_patterns import like_match
from kms_rescue.policy.lint import lint_policy

SECONDS = 1.0


def _rate(fn: Callable[[], object], seconds: float = SECONDS) -> float:
    """Calls per CPU-second, the best of three slices (other load on the machine only slows a slice down)."""
    best = 0.0
    for _ in range(3):
        count = 0
        start = time.process_time()
        end = start + seconds / 3
        while time.process_time() < end:
            fn()
            count += 1
        best = max(best, count / (time.process_time() - start))
    return best


DATED = parse_policy({"Version": "2012-10-17", "Statement": [
    {"Sid": f"Window{i}", "Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "kms:*", "Resource": "*",
     "Condition": {"DateLessThan": {"aws:CurrentTime": "2027-01-01T00:00:00Z"},
                   "DateGreaterThan": {"aws:CurrentTime": f"2026-0{1 + i % 9}-01T00:00:00Z"},
                   "IpAddress": {"aws:SourceIp": ["192.0.2.0/24", "198.51.100.0/24"]},
                   "StringLike": {"aws:PrincipalArn": f"arn:aws:iam::{ACCOUNT}:role/${{aws:username}}-{i}*"}}}
    for i in range(12)]})
ROOT_ONLY = parse_policy({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "kms:*", "Resource": "*"}]})
RESOURCE_VARIABLES = parse_policy({"Version": "2012-10-17", "Statement": [
    {"Sid": f"S{i}", "Effect": "Allow", "Action": ["kms:Decrypt", "kms:Encrypt"],
     "Resource": [f"arn:aws:kms:us-east-1:{ACCOUNT}:key/${{aws:PrincipalTag/key{i}}}",
                  f"arn:aws:kms:*:{ACCOUNT}:alias/app-{i}-*"]}
    for i in range(10)]})
STARS = parse_policy({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:role/{'a' * 80}"}, "Action": "kms:*",
     "Resource": "*"},
    {"Effect": "Deny", "Principal": "*", "Action": "kms:*", "Resource": "*",
     "Condition": {"ArnNotLike": {"aws:PrincipalArn": f"arn:aws:iam::{ACCOUNT}:role/" + "*a" * 12 + "*b"}}}]})
TWENTY = parse_policy(twenty_statement_policy())
ROLE_PATTERNS = [f"arn:aws:iam::{ACCOUNT}:role/*-admin", f"arn:aws:iam::{ACCOUNT}:role/team?/*",
                 f"arn:aws:iam::{ACCOUNT}:role/ops/*"]


def _dated() -> None:
    for i in range(4):
        evaluate(principal=f"arn:aws:iam::{ACCOUNT}:user/u{i}", action="kms:Decrypt", resource=KEY, key_policy=DATED,
                 identity_policies=[], context={"aws:SourceIp": f"192.0.2.{i}"})


def _resource_variables() -> None:
    evaluate(principal=f"arn:aws:iam::{ACCOUNT}:user/u", action="kms:Decrypt", resource=KEY, key_policy=ROOT_ONLY,
             identity_policies=[RESOURCE_VARIABLES], context={"aws:PrincipalTag/key3": KEY.rsplit("/", 1)[1]})


def _role_patterns() -> None:
    for pattern in ROLE_PATTERNS:
        like_match(pattern, f"arn:aws:iam::{ACCOUNT}:role/x-admin")


def main() -> None:
    figures = [
        ("decisions on twelve date-window statements", _rate(_dated) * 4, "decisions/s"),
        ("decisions with a policy variable in Resource", _rate(_resource_variables), "decisions/s"),
        ("role patterns matched (like_match)", _rate(_role_patterns) * len(ROLE_PATTERNS), "matches/s"),
        ("lint_policy of the 12-wildcard policy, in process", _rate(lambda: lint_policy(STARS, key_account=ACCOUNT)),
         "lints/s"),
        ("lint_policy of the 20-statement policy, in process",
         _rate(lambda: lint_policy(TWENTY, key_account=ACCOUNT)), "lints/s"),
        ("analyze_management of the 20-statement policy",
         _rate(lambda: analyze_management(TWENTY, key_account=ACCOUNT)), "analyses/s"),
    ]
    for what, rate, unit in figures:
        print(f"conditions: {what}: {rate:,.0f} {unit}")


if __name__ == "__main__":
    main()
