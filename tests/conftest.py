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
