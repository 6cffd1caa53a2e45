"""Fixtures shared by the test modules."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture
def aws_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private HOME and no AWS_* variables: the developer's real configuration is never read."""
    for var in list(os.environ):
        if var.startswith("AWS_"):
            monkeypatch.delenv(var)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    return tmp_path


def spread_keys_scenario(keys: int, regions: tuple[str, ...] = ("us-east-1", "us-west-2", "eu-west-1"),
                         name: str = "spread-keys") -> dict[str, object]:
    """A lab scenario of ``keys`` keys with the default key policy, spread round-robin over ``regions`` (all
    enabled), and two profiles: ``admin`` (kms:*, IAM reads, ec2:DescribeRegions) and ``app`` (kms:Describe*
    and kms:List* only: no DescribeRegions). Key ids are fixed UUIDs, so runs compare."""
    import uuid

    admin = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": [
        "kms:*", "iam:Get*", "iam:List*", "ec2:DescribeRegions", "sts:AssumeRole"], "Resource": "*"}]}
    app = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": [
        "kms:Describe*", "kms:List*", "kms:GetKeyPolicy"], "Resource": "*"}]}
    return {
        "name": name,
        "description": f"{keys} keys with the default key policy over {', '.join(regions)}: every one manageable "
                       "by admin (the audit's tests).",
        "expected_verdict": "manageable",
        "account": "111122223333",
        "region": regions[0],
        "enabled_regions": list(regions),
        "identities": [{"profile": "admin", "role": "Admin", "policies": [admin]},
                       {"profile": "app", "role": "App", "policies": [app]}],
        "keys": [{"id": str(uuid.UUID(int=0x5CA1E << 80 | i)), "region": regions[i % len(regions)],
                  "description": f"key {i}"} for i in range(keys)],
    }


@pytest.fixture
def spread_keys() -> object:
    """:func:`spread_keys_scenario`, as a fixture."""
    return spread_keys_scenario


@pytest.fixture
def lab_cli_env(aws_home: Path):
    """``env(lab)``: the environment for the installed CLI against ``lab`` (its AWS config; a private HOME; no
    AWS_* variable of the developer's; no colour)."""
    def env(lab: object) -> dict[str, str]:
        out = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        out.update({"HOME": str(aws_home), "AWS_CONFIG_FILE": str(lab.config_path),  # type: ignore[attr-defined]
                    "AWS_SHARED_CREDENTIALS_FILE": str(aws_home / "no-credentials"), "NO_COLOR": "1"})
        return out
    return env
