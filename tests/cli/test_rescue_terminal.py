"""The session in a real pseudo-terminal (pexpect), for what is about the terminal (issue 10): a 40-column screen
still shows who can manage the key, yes/no answers need Enter, a write needs the key id's first characters typed,
a declined fix is saved, and the restore command is printed on one line (never wrapped by the renderer)."""

from __future__ import annotations

import io
import os
import re
from pathlib import Path
from typing import Any

import pytest

from kms_rescue.lab import Lab
from tests.helpers.paths import SCRIPT
from tests.helpers.terminal import ANSI

CLI = str(SCRIPT)


def spawn(lab: Lab, key: str, cwd: Path, columns: int) -> tuple[Any, io.StringIO]:
    pexpect = pytest.importorskip("pexpect")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(HOME=str(cwd), TERM="xterm", NO_COLOR="1", COLUMNS=str(columns), LINES="40",
               PROMPT_TOOLKIT_NO_CPR="1", AWS_CONFIG_FILE=str(lab.config_path),
               AWS_SHARED_CREDENTIALS_FILE=str(cwd / "no-credentials"), AWS_EC2_METADATA_DISABLED="true")
    child = pexpect.spawn(CLI, [key, "--backup-dir", str(cwd)], env=env, cwd=str(cwd), encoding="utf-8",
                          timeout=90, dimensions=(40, columns))
    log = io.StringIO()
    child.logfile_read = log
    return child, log


def to_the_fix(child: Any) -> None:
    child.expect("Investigate")
    child.send("y\r")
    child.expect("Which identities")
    child.send("\r")
    child.expect("Add a role")
    child.send("\r")
    child.expect("apply the")
    child.send("\r")  # the first manager
    child.expect("Plan")
    child.send("y\r")
    child.expect("administrator")
    child.send("\r")  # default: no
    child.expect("Apply")


@pytest.mark.slow
def test_narrow_terminal_typed_confirmation_and_a_restore_command_that_pastes(clean_env: Path) -> None:
    pexpect = pytest.importorskip("pexpect")
    with Lab("principalarn-condition") as lab:
        key_id = lab.scenario.keys[0].id
        key = lab.key_arn(key_id)
        before = lab.admin.raw_key_policy(key)

        # 1. At 40 columns: who can manage is shown; "y" at the write is a No, and the proposal is saved.
        child, log = spawn(lab, key, clean_env, 40)
        try:
            to_the_fix(child)
            child.send("y\r")
            child.expect("No change made")
            child.expect(pexpect.EOF)
        finally:
            child.close()
        narrow = ANSI.sub("", log.getvalue())
        assert child.exitstatus == 0, narrow[-3000:]
        assert re.search(r"admin: can manage:\s+yes", narrow), narrow[-4000:]
        assert lab.admin.raw_key_policy(key) == before
        assert list(clean_env.glob(f"kms-rescue-proposed-policy-{key_id}*.json"))

        # 2. Typing the key id's first characters applies it; the restore command is one unbroken line.
        child, log = spawn(lab, key, clean_env, 60)
        try:
            to_the_fix(child)
            child.send(key_id[:8] + "\r")
            child.expect("Applied.")
            child.expect(pexpect.EOF)
        finally:
            child.close()
        wide = ANSI.sub("", log.getvalue())
        assert child.exitstatus == 0, wide[-3000:]
        assert "Enable IAM User Permissions" in lab.admin.raw_key_policy(key)
        restore = next(line for line in wide.splitlines() if "aws kms put-key-policy" in line)
        assert f"--key-id {key}" in restore and "--region us-east-1" in restore and "--endpoint-url" in restore
        assert "Traceback" not in narrow + wide


@pytest.mark.slow
def test_a_validation_message_wraps_and_the_answer_can_be_fixed(clean_env: Path) -> None:
    """At 40 columns the message for a mistyped key is printed in full (wrapped, not cut at the screen edge), and
    the key is asked again with what was typed, to correct it."""
    pexpect = pytest.importorskip("pexpect")
    with Lab("healthy-default") as lab:
        env_key = "arn:aws:kms:us-east-1:111122223333:kye/oops"
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(HOME=str(clean_env), TERM="xterm", NO_COLOR="1", COLUMNS="40", LINES="40",
                   PROMPT_TOOLKIT_NO_CPR="1", AWS_CONFIG_FILE=str(lab.config_path),
                   AWS_SHARED_CREDENTIALS_FILE=str(clean_env / "no-credentials"))
        child = pexpect.spawn(CLI, ["rescue"], env=env, cwd=str(clean_env), encoding="utf-8", timeout=90,
                              dimensions=(40, 40))
        log = io.StringIO()
        child.logfile_read = log
        try:
            child.expect("Which KMS key")
            child.send(env_key + "\r")
            child.expect("Which KMS key")  # asked again
            child.send("\x03")
            child.expect(pexpect.EOF)
        finally:
            child.close()
    from kms_rescue.cli.rescue import RescueSession, SessionSettings

    session = RescueSession(None, None, None, SessionSettings())  # type: ignore[arg-type]
    problem = session._validate_key(env_key)
    assert problem and len(problem) > 40, "the case needs a message longer than the screen"
    flat = "".join(ANSI.sub("", log.getvalue()).split())
    assert "".join(problem.split()) in flat, ANSI.sub("", log.getvalue())[-2000:]
