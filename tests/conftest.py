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
