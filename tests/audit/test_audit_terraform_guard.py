"""audit --terraform-plan against the lab (kms_rescue/audit/terraform_guard.py; docs/audit.md, "What a deletion
would break: Terraform plans"): the pre-delete guard. A plan that deletes the only admin role of one key and
replaces the permission set whose Identity Center role is the only admin of another exits 4, and says which keys
would lose their last manager."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("moto")

from kms_rescue.lab import Lab
from kms_rescue.status import ExitStatus
from tests.helpers.paths import DOCS, FIXTURES

SCENARIO = DOCS / "examples" / "audit-cloud-scenario.json"
PLANS = FIXTURES / "terraform_plan"
SCRIPT = Path(sys.executable).parent / "kms-rescue"


def _cli(args: list[str], config: Path, home: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update({"HOME": str(home), "AWS_CONFIG_FILE": str(config), "NO_COLOR": "1",
                "AWS_SHARED_CREDENTIALS_FILE": str(home / "no-credentials")})
    return subprocess.run([str(SCRIPT), "audit", *args], env=env, capture_output=True, text=True, timeout=180,
                          stdin=subprocess.DEVNULL)


def test_the_plan_would_lock_two_keys_out(tmp_path: Path) -> None:
    with Lab(str(SCENARIO)) as lab:
        done = _cli(["--profile", "auditor", "--regions", "us-east-1", "--format", "json",
                     "--terraform-plan", str(PLANS / "guard.json")], lab.config_path, tmp_path)
        unchanged = _cli(["--profile", "auditor", "--regions", "us-east-1", "--format", "json",
                          "--terraform-plan", str(PLANS / "deletes-admins.json")], lab.config_path, tmp_path)
    assert done.returncode == 4, done.stderr
    after = {k["aliases"][0]: (k["verdict"], k.get("verdict_if_deleted")) for k in json.loads(done.stdout)["keys"]}
    assert after == {
        "alias/healthy": ("recoverable", "recoverable"),
        "alias/payments": ("recoverable", "locked_out"),  # its only admin role is deleted
        "alias/sso-managed": ("recoverable", "locked_out"),  # its Identity Center role is recreated
    }
    assert "aws_iam_role.payments_admin: deleted: arn:aws:iam::111122223333:role/PaymentsAdmin" in done.stderr
    assert ("1 role(s) of 111122223333 match (arn:aws:iam::111122223333:role/aws-reserved/sso.amazonaws.com/"
            "AWSReservedSSO_KeyAdmins_0123456789abcdef)") in done.stderr
    # A plan whose deletions no key depends on: the guard passes on the live findings alone (1: high findings).
    assert unchanged.returncode == ExitStatus.FINDINGS, unchanged.stderr
    assert all(k["verdict_if_deleted"] == k["verdict"] for k in json.loads(unchanged.stdout)["keys"])


@pytest.mark.parametrize(("plan", "message"), [
    ("/dev/null", "not a regular file"),
    (str(PLANS), "is a directory"),
    ("/nonexistent/plan.json", "no such file"),
])
def test_a_bad_plan_stops_before_any_aws_call(tmp_path: Path, plan: str, message: str) -> None:
    """No lab is running and no profile exists: the plan is refused first, in one line, exit 2."""
    done = _cli(["--profile", "nosuch", "--terraform-plan", plan], tmp_path / "no-config", tmp_path)
    assert done.returncode == 2
    assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
