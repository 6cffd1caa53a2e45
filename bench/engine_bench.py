"""Engine benchmarks: decisions per second on a 20-statement key policy with conditions (goal ≥ 20,000/s on one
core), the whole-process time of ``kms-rescue lint`` on one policy (goal ≤ 0.3 s), and on a CloudFormation
template (goal ≤ 2 s: cfn-lint, which decodes templates, is imported only then)."""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from kms_rescue.policy import evaluate, parse_policy

ACCOUNT = "111122223333"
KEY = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
DECISIONS_GOAL = 20_000
LINT_GOAL_S = 0.3
LINT_TEMPLATE_GOAL_S = 2.0


def twenty_statement_policy() -> dict[str, object]:
    statements: list[dict[str, object]] = [
        {"Sid": "Enable IAM User Permissions", "Effect": "Allow",
         "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "kms:*", "Resource": "*"},
    ]
    for i in range(13):
        statements.append({
            "Sid": f"App{i}", "Effect": "Allow", "Principal": {"AWS": "*"},
            "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*"], "Resource": "*",
            "Condition": {
                "StringEquals": {"kms:CallerAccount": ACCOUNT, "kms:ViaService": f"svc{i}.us-east-1.amazonaws.com"},
                "StringLike": {"aws:PrincipalArn": f"arn:aws:iam::{ACCOUNT}:role/app-{i}-*"},
            },
        })
    for i in range(3):
        statements.append({
            "Sid": f"Admin{i}", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:role/Admin{i}"},
            "Action": ["kms:Create*", "kms:Describe*", "kms:Enable*", "kms:List*", "kms:Put*", "kms:Update*",
                       "kms:Revoke*", "kms:Disable*", "kms:Get*", "kms:Delete*", "kms:ScheduleKeyDeletion",
                       "kms:CancelKeyDeletion"],
            "Resource": "*", "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "true"}},
        })
    statements.append({
        "Sid": "DenyOutsideNetwork", "Effect": "Deny", "Principal": "*", "Action": "kms:PutKeyPolicy",
        "Resource": "*", "Condition": {"NotIpAddress": {"aws:SourceIp": ["192.0.2.0/24", "198.51.100.0/24"]},
                                        "Bool": {"aws:ViaAWSService": "false"}},
    })
    statements.append({
        "Sid": "DenyDeletion", "Effect": "Deny", "Principal": "*", "Action": "kms:ScheduleKeyDeletion",
        "Resource": "*", "Condition": {"StringNotLike": {"aws:PrincipalArn": f"arn:aws:iam::{ACCOUNT}:role/Admin*"}},
    })
    statements.append({
        "Sid": "Grants", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:role/app-0-web"},
        "Action": ["kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant"], "Resource": "*",
        "Condition": {"Bool": {"kms:GrantIsForAWSResource": "true"}},
    })
    assert len(statements) == 20
    return {"Version": "2012-10-17", "Statement": statements}


REQUESTS = [
    (f"arn:aws:sts::{ACCOUNT}:assumed-role/Admin1/alice", "kms:PutKeyPolicy",
     {"aws:MultiFactorAuthPresent": "true", "aws:SourceIp": "192.0.2.7"}),
    (f"arn:aws:sts::{ACCOUNT}:assumed-role/app-3-worker/i-0abc", "kms:Decrypt",
     {"kms:ViaService": "svc3.us-east-1.amazonaws.com"}),
    (f"arn:aws:iam::{ACCOUNT}:user/bob", "kms:ScheduleKeyDeletion", {"aws:SourceIp": "203.0.113.9"}),
    (f"arn:aws:iam::{ACCOUNT}:root", "kms:PutKeyPolicy", {"aws:SourceIp": "198.51.100.20"}),
]


def decisions_per_second(seconds: float = 2.0) -> float:
    """Decisions per CPU-second of this process (one core), so other load on the machine does not skew it."""
    policy = parse_policy(twenty_statement_policy())
    count = 0
    start = time.process_time()
    deadline = start + seconds
    while time.process_time() < deadline:
        for principal, action, context in REQUESTS:
            evaluate(principal=principal, action=action, resource=KEY, key_policy=policy, identity_policies=[],
                     context=context)
        count += len(REQUESTS)
    return count / (time.process_time() - start)


def lint_process_seconds(runs: int = 7, *, template: bool = False) -> float:
    exe = shutil.which("kms-rescue", path=str(Path(sys.executable).parent)) or "kms-rescue"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / ("template.json" if template else "key-policy.json")
        document: dict[str, object] = twenty_statement_policy()
        if template:
            document = {"AWSTemplateFormatVersion": "2010-09-09",
                        "Resources": {"Key": {"Type": "AWS::KMS::Key", "Properties": {"KeyPolicy": document}}}}
        path.write_text(json.dumps(document))
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            subprocess.run([exe, "lint", str(path), "--account", ACCOUNT, "--fail-on", "critical"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False,
                           env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    rate = decisions_per_second()
    print(f"engine: {rate:,.0f} decisions/s on a 20-statement policy with conditions "
          f"(goal ≥ {DECISIONS_GOAL:,}) {'OK' if rate >= DECISIONS_GOAL else 'BELOW GOAL'}")
    lint_s = lint_process_seconds()
    print(f"lint: {lint_s:.3f} s whole process, median of 7 (goal ≤ {LINT_GOAL_S} s) "
          f"{'OK' if lint_s <= LINT_GOAL_S else 'ABOVE GOAL'}")
    template_s = lint_process_seconds(template=True)
    print(f"lint of a CloudFormation template: {template_s:.3f} s whole process, median of 7 "
          f"(goal ≤ {LINT_TEMPLATE_GOAL_S} s) {'OK' if template_s <= LINT_TEMPLATE_GOAL_S else 'ABOVE GOAL'}")


if __name__ == "__main__":
    main()
