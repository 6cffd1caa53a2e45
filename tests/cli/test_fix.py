"""``kms-rescue fix``: the non-interactive fix, through the installed CLI against the lab (issue 10, docs/fix.md).

Each case names the AWS fact it rests on. The lab's KMS refuses a policy naming a principal that does not exist
("Policy contains a statement with one or more invalid principals": AWS Knowledge Center,
kms-policy-error-invalid-principals), as KMS does.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from kms_rescue.lab import Lab
from tests.helpers.docs import console_commands
from tests.helpers.lab import env_for, scenario_with, stale_principal_scenario
from tests.helpers.paths import DOCS, SCRIPT

ACCOUNT = "111122223333"
CLI = str(SCRIPT)


def fix(lab: Lab, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CLI, "fix", *args], env=env_for(lab), cwd=cwd, capture_output=True, text=True,
                          timeout=120)


def test_plan_drops_the_deleted_principal_and_kms_accepts_the_fix(clean_env: Path) -> None:
    """The plan removes the AROA… id with its reason, the plan writes nothing, and --apply --yes lands: KMS
    accepts the policy (before issue 10 the fix kept the id and KMS refused it)."""
    with Lab(stale_principal_scenario()) as lab:
        key = lab.key_arn("alias/payments")
        before = lab.admin.raw_key_policy(key)
        unique_id = json.loads(before)["Statement"][1]["Principal"]["AWS"]
        assert unique_id.startswith("AROA")
        plan = fix(lab, key, cwd=clean_env)
        assert plan.returncode == 0, plan.stderr
        assert f'-        "AWS": "{unique_id}"' in plan.stdout
        assert f"#   ^ removed: {unique_id} (a unique id in place of an ARN" in plan.stdout
        assert "Plan only: nothing was written" in plan.stdout
        assert lab.admin.raw_key_policy(key) == before and not list(clean_env.glob("kms-key-policy-*"))

        applied = fix(lab, key, "--apply", "--yes", "--format", "json", cwd=clean_env)
        assert applied.returncode == 0, applied.stdout + applied.stderr
        out = json.loads(applied.stdout)
        assert out["applied"] is True and out["verified"] is True and out["state"] == "new"
        assert [c["change"] for c in out["changes"]] == ["remove_statement"]
        assert out["changes"][0]["principal"] == unique_id and "deleted" in out["changes"][0]["reason"]
        after = json.loads(lab.admin.raw_key_policy(key))
        assert after == out["proposed_policy"]
        assert [s["Sid"] for s in after["Statement"]] == ["Enable IAM User Permissions"]
        # Byte-exact backup (issue 10), and the restore command saved beside it.
        assert Path(out["backup"]).read_bytes() == before.encode()
        script = Path(out["restore_file"]).read_text()
        assert script.splitlines()[-1].startswith("aws kms put-key-policy --key-id " + key)
        assert f"--policy file://{out['backup']}" in script

        # Idempotent: run again, nothing to change, and it says what the last session did (the journal).
        again = fix(lab, key, "--format", "json", cwd=clean_env)
        assert again.returncode == 0
        second = json.loads(again.stdout)
        assert second["proposed_policy"] is None and second["changes"] == []
        assert "the new policy was applied and verified" in second["last_session"]
        assert out["backup"] in second["last_session"]


def test_admin_role_is_added_once(clean_env: Path) -> None:
    """Re-running after a fix proposes nothing: no "Allow access for Key Administrators 2" (issue 10)."""
    with Lab("healthy-default") as lab:
        key = lab.key_arn("alias/payments")
        role = lab.admin.create_role("KeyAdmin")
        first = fix(lab, key, "--apply", "--yes", "--admin-role", role, "--format", "json", cwd=clean_env)
        assert first.returncode == 0, first.stdout + first.stderr
        assert [c["statement"] for c in json.loads(first.stdout)["changes"]] == ["Allow access for Key Administrators"]
        second = fix(lab, key, "--apply", "--yes", "--admin-role", role, "--format", "json", cwd=clean_env)
        assert second.returncode == 0
        assert json.loads(second.stdout)["proposed_policy"] is None
        sids = [s.get("Sid") for s in json.loads(lab.admin.raw_key_policy(key))["Statement"]]
        assert sids.count("Allow access for Key Administrators") == 1 and not any(str(s).endswith(" 2") for s in sids)


def test_a_write_that_times_out_but_lands_is_reported_as_applied(clean_env: Path) -> None:
    """PutKeyPolicy slower than --timeout: botocore gives up, the service applied it. The write is not resent (one
    attempt), a fresh read finds the new policy, and the fix says so (issue 10: "a write that lies")."""
    with Lab("principalarn-condition", op_latency_ms={"PutKeyPolicy": 2500}) as lab:
        key = lab.key_arn(lab.scenario.keys[0].id)
        result = fix(lab, key, "--apply", "--yes", "--timeout", "1", "--format", "json", cwd=clean_env)
        out = json.loads(result.stdout)
        assert result.returncode == 0, result.stdout + result.stderr
        assert out["state"] == "new" and out["applied"] is True
        assert any("but a fresh read shows the new policy on the key" in n for n in out["notes"])
        assert "Not applied" not in result.stdout and "unchanged" not in result.stdout
        assert "Enable IAM User Permissions" in lab.admin.raw_key_policy(key)
        assert lab.admin.stats()["requests"] > 0


def test_not_manageable_plans_nothing_with_the_report_code(clean_env: Path) -> None:
    with Lab("sole-admin-deleted") as lab:
        key = lab.key_arn(lab.scenario.keys[0].id)
        result = fix(lab, key, "--format", "json", cwd=clean_env)
        assert result.returncode == 4
        out = json.loads(result.stdout)
        assert out["verdict"] == "locked_out" and out["proposed_policy"] is None and out["applied"] is False


@pytest.mark.parametrize(("args", "needle"), [
    (["--apply"], "add --yes"),
    (["--apply", "--plan", "--yes"], "exclude each other"),
    (["--timeout", "0"], "--timeout must be a positive number"),
])
def test_bad_input_is_one_line_exit_2(clean_env: Path, args: list[str], needle: str) -> None:
    with Lab("healthy-default") as lab:
        result = fix(lab, lab.key_arn("alias/payments"), *args, cwd=clean_env)
    assert result.returncode == 2, result.stderr
    assert needle in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) <= 2


# --- docs/fix.md's examples run ------------------------------------------------------------------------------------

DOC = DOCS / "fix.md"


def test_fix_doc_examples_run_in_order_against_one_lab(clean_env: Path) -> None:
    import shlex

    commands = console_commands(DOC)
    assert len(commands) >= 5
    with Lab("healthy-default") as lab:
        outputs = []
        for command, code in commands:
            result = subprocess.run([CLI, *shlex.split(command)[1:]], env=env_for(lab), cwd=clean_env,
                                    capture_output=True, text=True, timeout=120)
            assert result.returncode == code, f"{command}: {result.stdout}{result.stderr}"
            assert "Traceback" not in result.stderr and "internal error" not in result.stderr
            outputs.append(result.stdout)
    assert "Nothing to change" in outputs[0]
    assert '+      "Sid": "Allow access for Key Administrators",' in outputs[1]
    assert "Applied." in outputs[2] and list((clean_env / "backups").glob("kms-key-policy-*.json"))
    payload = json.loads(outputs[3])
    assert payload["proposed_policy"] is None and "applied and verified" in payload["last_session"]


def test_apply_as_an_assumed_role_restores_through_its_script(clean_env: Path) -> None:
    """--profile app --role-arn KeyAdmin: the fix is applied as the role (not the base profile), and the restore
    command is the saved script, which assumes the role again before putting the backup back."""
    doc = scenario_with("rootless-admin-role")
    for ident in doc["identities"]:
        if ident["profile"] == "app":
            ident["policies"][0]["Statement"][0]["Action"].append("sts:AssumeRole")
    with Lab(doc) as lab:
        key = lab.key_arn(lab.scenario.keys[0].id)
        role = f"arn:aws:iam::{ACCOUNT}:role/KeyAdmin"
        result = fix(lab, key, "--apply", "--yes", "--profile", "app", "--role-arn", role,
                     "--role-session-name", "oncall", "--format", "json", cwd=clean_env)
        assert result.returncode == 0, result.stdout + result.stderr
        out = json.loads(result.stdout)
        assert out["applier"]["arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/KeyAdmin/oncall"
        assert out["restore_command"] == f"sh {out['restore_file']}"
        script = Path(out["restore_file"]).read_text()
        assert f"aws sts assume-role --role-arn {role} --role-session-name oncall" in script
        assert "--profile app" in script


def test_an_alias_without_region_takes_the_aws_cli_region_chain(clean_env: Path) -> None:
    """As `report` does: a key id or alias without --region is resolved in AWS_REGION / AWS_DEFAULT_REGION / the
    profile's region (the lab's config sets one), and a typo in --region is not a Region for the key: not found,
    exit 6, with where it is."""
    with Lab("healthy-default") as lab:
        alias = lab.scenario.keys[0].aliases[0]
        plan = fix(lab, alias, cwd=clean_env)
        typo = fix(lab, alias, "--region", "us-east-9", "--format", "json", cwd=clean_env)
    assert plan.returncode == 0, plan.stderr
    assert "needs --region" not in plan.stderr
    assert typo.returncode == 6, typo.stderr
    assert "did you mean" in typo.stderr
