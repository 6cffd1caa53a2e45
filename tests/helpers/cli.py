"""Running the installed CLI in a subprocess against a lab: a clean environment, the run, and the lab's secrets to
look for in what it printed."""

from __future__ import annotations

import configparser
import os
import subprocess
from pathlib import Path

import pytest

from kms_rescue.cli.app import main
from tests.helpers.paths import SCRIPT

__all__ = ["SCRIPT", "assert_no_secrets", "clean_env", "in_process", "lab_secrets", "run_cli"]


def lab_secrets(config_path: Path | str) -> list[str]:
    """Every credential value in the lab's AWS config: access key ids, secret keys, session tokens."""
    parser = configparser.RawConfigParser()
    parser.read(config_path)
    found = []
    for section in parser.sections():
        for key in ("aws_access_key_id", "aws_secret_access_key", "aws_session_token"):
            if parser.has_option(section, key):
                found.append(parser.get(section, key))
    assert found, "the lab's config has credentials to look for"
    return found


def assert_no_secrets(texts: list[str], secrets: list[str]) -> None:
    for text in texts:
        for secret in secrets:
            assert secret not in text, "a lab credential appeared in an output"


def clean_env(home: Path, config: Path | str) -> dict[str, str]:
    """The environment of a subprocess: no AWS_* of the developer's, a private HOME, the lab's config only."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update({"HOME": str(home), "AWS_CONFIG_FILE": str(config),
                "AWS_SHARED_CREDENTIALS_FILE": str(home / "no-credentials"), "NO_COLOR": "1"})
    return env


def run_cli(args: list[str], env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def in_process(args: list[str], config: Path | str, capsys: pytest.CaptureFixture[str],
               monkeypatch: pytest.MonkeyPatch) -> tuple[int, str, str]:
    """``kms-rescue report ARGS`` through ``main`` in this process, against the lab's config."""
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    code = main(["report", *args])
    out, err = capsys.readouterr()
    return code, out, err
