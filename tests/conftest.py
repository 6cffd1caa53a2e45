"""Fixtures shared by the test modules in every folder of ``tests/`` (docs/testing.md).

Each keeps the developer's own AWS configuration out of reach: no AWS_* variable of the shell survives, HOME is a
private directory, and the AWS config, when there is one, is the lab's. Plain helpers (paths, builders, the report
schema check) are in ``tests/helpers/``; a test module imports those, never another test module.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from kms_rescue.aws.runtime import AwsRuntime
from kms_rescue.lab import Lab


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
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """For in-process runs (main([...])): private HOME, no AWS_* variables, no credentials file. The test points
    AWS_CONFIG_FILE at its lab."""
    for var in list(os.environ):
        if var.startswith("AWS_"):
            monkeypatch.delenv(var)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    return tmp_path


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """HOME isolated, AWS_* unset, no credentials file, no instance metadata, no escalation address or XDG config
    of the developer's, cwd = a fresh directory (returned)."""
    for name in list(os.environ):
        if name.startswith("AWS_") or name in ("KMS_RESCUE_ESCALATION_EMAIL", "XDG_CONFIG_HOME"):
            monkeypatch.delenv(name)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


@pytest.fixture
def lab_for(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[Any], Lab]]:
    """``lab_for(scenario)`` starts a lab (a built-in scenario's name or a scenario document) and points
    AWS_CONFIG_FILE at it; every lab it started is stopped at the end of the test."""
    started: list[Lab] = []

    def start(scenario: Any) -> Lab:
        lab = Lab(scenario).start()
        started.append(lab)
        monkeypatch.setenv("AWS_CONFIG_FILE", str(lab.config_path))
        return lab

    yield start
    for lab in started:
        lab.stop()


@pytest.fixture(scope="module")
def lab(request: pytest.FixtureRequest) -> Iterator[Lab]:
    """One running lab for all the tests of a module, of the scenario the module names in ``SCENARIO``. It must
    end without an internal error (a request the lab could not serve is a bug of the lab, not an AWS answer)."""
    scenario = getattr(request.module, "SCENARIO", None)
    if scenario is None:
        pytest.fail(f"{request.module.__name__} uses the lab fixture but names no SCENARIO")
    with Lab(scenario) as running:
        yield running
        assert running.admin.internal_errors == []


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


@pytest.fixture(scope="session")
def as_lambda():
    """``as_lambda(mp, lab, home)``: the environment Lambda gives a function, on the MonkeyPatch ``mp``: no AWS_*
    variable of the developer's, a private HOME, a lab identity's credentials (profile ``function``), the Region,
    and the SDK's own ``AWS_ENDPOINT_URL`` at the lab (docs/audit-cloud.md, "Testing the function locally")."""
    def use(mp: pytest.MonkeyPatch, lab: object, home: Path, profile: str = "function") -> None:
        for var in list(os.environ):
            if var.startswith("AWS_"):
                mp.delenv(var)
        creds = lab.credentials(profile)  # type: ignore[attr-defined]
        mp.setenv("HOME", str(home))
        mp.setenv("AWS_CONFIG_FILE", str(home / "no-config"))
        mp.setenv("AWS_SHARED_CREDENTIALS_FILE", str(home / "no-credentials"))
        mp.setenv("AWS_ACCESS_KEY_ID", creds.access_key_id)
        mp.setenv("AWS_SECRET_ACCESS_KEY", creds.secret_access_key)
        if creds.session_token:
            mp.setenv("AWS_SESSION_TOKEN", creds.session_token)
        mp.setenv("AWS_REGION", "us-east-1")
        mp.setenv("AWS_ENDPOINT_URL", lab.endpoint)  # type: ignore[attr-defined]
    return use


@pytest.fixture
def runtime() -> Iterator[AwsRuntime]:
    """A fresh AWS runtime (loader, clients, thread pool) for the test, closed after it."""
    with AwsRuntime() as fresh:
        yield fresh
