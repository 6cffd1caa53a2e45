"""The AWS CLI's conventions through the CLI, against the lab: the Region chain for a key id (``--region``,
``AWS_REGION``, ``AWS_DEFAULT_REGION``, the profile's ``region``), strict Region values, ``AWS_PROFILE`` (an
unknown one is exit 2; a known one is probed first, with every other identity), and ``--region`` reaching the STS
client of a role profile's chain.

AWS facts: AWS CLI User Guide, "Configuring environment variables for the AWS CLI" (AWS_PROFILE names the profile;
AWS_REGION overrides AWS_DEFAULT_REGION and the profile's region; a command-line option overrides both) and the
AWS SDKs and Tools Reference Guide, "AWS Region".
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.helpers.cli import clean_env, lab_secrets, run_cli

pytest.importorskip("moto")


KEY_ID = "1234abcd-12ab-34cd-56ef-1234567890ab"


def _without_regions(config: Path, dest: Path, extra: str = "") -> Path:
    text = re.sub(r"(?m)^region = .*\n", "", config.read_text(encoding="utf-8"))
    dest.write_text(text + extra, encoding="utf-8")
    dest.chmod(0o600)
    return dest


#: The scenario of the lab the module's tests share (the ``lab`` fixture of tests/conftest.py).
SCENARIO = "healthy-default"


def _env(tmp_path: Path, config: Path, **extra: str) -> dict[str, str]:
    env = clean_env(tmp_path, config)
    env.update(extra)
    return env


def _one_line_usage_error(proc, *words: str) -> None:
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kms-rescue: error: "), proc.stderr
    assert "Traceback" not in proc.stderr
    for word in words:
        assert word in lines[0]


def test_a_key_id_without_any_region_is_a_usage_error(lab, tmp_path: Path):
    config = _without_regions(lab.config_path, tmp_path / "config")
    proc = run_cli(["report", KEY_ID, "--profile", "admin"], _env(tmp_path, config))
    _one_line_usage_error(proc, "needs --region", "AWS_REGION")


@pytest.mark.parametrize("variable", ["AWS_REGION", "AWS_DEFAULT_REGION"])
def test_a_key_id_uses_the_region_from_the_environment(lab, tmp_path: Path, variable: str):
    config = _without_regions(lab.config_path, tmp_path / "config")
    proc = run_cli(["report", KEY_ID, "--profile", "admin", "--format", "json", "--no-history"],
                   _env(tmp_path, config, **{variable: lab.region}))
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["key"]["arn"] == lab.key_arn(KEY_ID) and doc["verdict"] == "manageable"


def test_aws_region_wins_over_aws_default_region(lab, tmp_path: Path):
    config = _without_regions(lab.config_path, tmp_path / "config")
    proc = run_cli(["report", KEY_ID, "--profile", "admin", "--format", "json", "--no-history", "--verbose"],
                   _env(tmp_path, config, AWS_REGION=lab.region, AWS_DEFAULT_REGION="eu-west-1"))
    assert proc.returncode == 0, proc.stderr
    assert f"Region {lab.region} from AWS_REGION" in proc.stderr
    assert f"key {KEY_ID}: Region {lab.region}, partition aws" in proc.stderr
    assert "1 identity to probe: admin (static)" in proc.stderr


def test_a_key_id_uses_the_profiles_region(lab, tmp_path: Path):
    # Only the admin profile sets a region; --profile admin (as `aws --profile admin`) uses it.
    text = re.sub(r"(?m)^region = .*\n", "", lab.config_path.read_text(encoding="utf-8"))
    text = text.replace("[profile admin]\n", f"[profile admin]\nregion = {lab.region}\n")
    config = tmp_path / "config"
    config.write_text(text, encoding="utf-8")
    proc = run_cli(["report", KEY_ID, "--profile", "admin", "--format", "json", "--no-history", "--verbose"],
                   _env(tmp_path, config))
    assert proc.returncode == 0, proc.stderr
    assert "from profile admin" in proc.stderr
    # ... and `ticket` resolves an alias name in the same Region.
    proc = run_cli(["ticket", "alias/payments", "--profile", "admin"], _env(tmp_path, config))
    assert proc.returncode == 0, proc.stderr
    assert lab.key_arn(KEY_ID) in proc.stdout


@pytest.mark.parametrize("value", ["us-east-1\n", "us-east-1 ", "US-EAST-1", "us-east-１"])
def test_region_values_are_strict(lab, tmp_path: Path, value: str):
    proc = run_cli(["report", KEY_ID, "--region", value], _env(tmp_path, lab.config_path))
    _one_line_usage_error(proc, "is not an AWS Region code")
    proc = run_cli(["report", KEY_ID], _env(tmp_path, lab.config_path, AWS_REGION=value))
    _one_line_usage_error(proc, "AWS_REGION", "is not an AWS Region code")


def test_a_region_typo_gets_a_hint_and_is_not_blocked(lab, tmp_path: Path):
    proc = run_cli(["report", KEY_ID, "--region", "us-esat-1", "--profile", "admin", "--format", "json",
                    "--no-history", "--timeout", "5"], _env(tmp_path, lab.config_path))
    assert "hint: us-esat-1 is not a Region botocore knows: did you mean" in proc.stderr
    assert proc.returncode not in (1, 2), proc.stderr
    assert json.loads(proc.stdout)["key"]["region"] == "us-esat-1"


def test_an_unknown_aws_profile_is_a_usage_error(lab, tmp_path: Path):
    proc = run_cli(["report", lab.key_arn(KEY_ID)], _env(tmp_path, lab.config_path, AWS_PROFILE="nosuch"))
    _one_line_usage_error(proc, "AWS_PROFILE='nosuch'", "admin")
    # --profile overrides AWS_PROFILE, as for the AWS CLI.
    proc = run_cli(["report", lab.key_arn(KEY_ID), "--profile", "admin", "--no-history", "--format", "json"],
                   _env(tmp_path, lab.config_path, AWS_PROFILE="nosuch"))
    assert proc.returncode == 0, proc.stderr


def test_aws_profile_is_probed_first_with_every_other_identity(lab, tmp_path: Path):
    secrets = lab_secrets(lab.config_path)
    proc = run_cli(["report", lab.key_arn(KEY_ID), "--format", "json", "--no-history"],
                   _env(tmp_path, lab.config_path, AWS_PROFILE="intern"))
    assert proc.returncode == 0, proc.stderr
    names = [i["name"] for i in json.loads(proc.stdout)["identities"]]
    assert names[0] == "intern" and {"admin", "app", "auditor", "root"} <= set(names)
    assert "AWS_PROFILE=intern: probing it first" in proc.stderr
    assert not any(s in proc.stdout + proc.stderr for s in secrets)
    quiet = run_cli(["report", lab.key_arn(KEY_ID), "--format", "json", "--no-history", "--quiet"],
                    _env(tmp_path, lab.config_path, AWS_PROFILE="intern"))
    assert quiet.returncode == 0 and quiet.stderr == ""


def test_region_reaches_the_sts_client_of_a_role_profile(lab, tmp_path: Path):
    # A role profile, no region anywhere: botocore's AssumeRole client needs one (NoRegionError before).
    extra = (f"\n[profile chain]\nrole_arn = arn:aws:iam::{lab.account}:role/Admin\nsource_profile = admin\n"
             f"endpoint_url = {lab.endpoint}\n")
    config = _without_regions(lab.config_path, tmp_path / "config", extra)
    proc = run_cli(["report", KEY_ID, "--region", lab.region, "--profile", "chain", "--format", "json",
                    "--no-history"], _env(tmp_path, config))
    doc = json.loads(proc.stdout)
    chain = doc["identities"][0]
    assert chain["name"] == "chain" and chain["status"] == "ok", chain
    assert chain["arn"].startswith(f"arn:aws:sts::{lab.account}:assumed-role/Admin/")
    assert proc.returncode == 0, proc.stderr
