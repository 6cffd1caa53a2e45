"""``kms-rescue audit`` tried as a new user would (docs/audit.md): output cut short by a reader that goes away,
the help's exit codes, and other wrong input on purpose, through the installed CLI against the lab."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from kms_rescue.lab import Lab
from kms_rescue.status import ExitStatus
from tests.helpers.paths import REPO, SCRIPT

pytest.importorskip("moto")

SCENARIO = REPO / "docs" / "examples" / "audit-scenario.json"
CLI = str(SCRIPT)


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with Lab(SCENARIO) as running:
        yield running


@pytest.mark.parametrize("fmt", ["text", "json", "sarif", "markdown", "csv"])
def test_every_format_piped_to_head_exits_as_sigpipe(fmt: str, lab: Lab, lab_cli_env, tmp_path: Path) -> None:
    """A reader that stops after one line (`| head -1`) ends the audit as SIGPIPE would (128 + 13), not with 1,
    which docs/exit-status.md keeps for internal errors; no traceback, no error line."""
    script = f'{CLI} audit --profile auditor --format {fmt} | head -1 >/dev/null; echo "rc=${{PIPESTATUS[0]}}"'
    result = subprocess.run(["bash", "-c", script], env=lab_cli_env(lab), capture_output=True, text=True,
                            timeout=120, cwd=tmp_path, stdin=subprocess.DEVNULL)
    rc = int(result.stdout.strip().rpartition("rc=")[2])
    if fmt in ("text", "markdown"):  # written at the end, sorted by risk: the pipe may take it all before closing
        assert rc in (ExitStatus.LOCKED_OUT, 128 + signal.SIGPIPE), result.stderr
    else:
        assert rc == 128 + signal.SIGPIPE, result.stderr
    assert "Traceback" not in result.stderr
    assert "error" not in result.stderr


def test_help_names_the_exit_codes_the_audit_returns(tmp_path: Path) -> None:
    """The help's exit codes are docs/audit.md's: 8 for findings at --fail-on (1 is only an internal error)."""
    result = subprocess.run([CLI, "audit", "--help"], capture_output=True, text=True, timeout=60, cwd=tmp_path,
                            env={"PATH": "/usr/bin:/bin", "COLUMNS": "400", "HOME": str(tmp_path)},
                            stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.split())
    assert f"{int(ExitStatus.FINDINGS)} findings reach --fail-on" in text
    assert f"Exit {int(ExitStatus.FINDINGS)} when a finding" in text
    assert "Exit 1 " not in text and "1 findings" not in text


def test_resume_of_another_accounts_checkpoint_is_refused(lab: Lab, lab_cli_env, tmp_path: Path) -> None:
    """A checkpoint whose finished targets are all of another account is another audit's: --resume of it is one
    line and exit 2, before anything is written (not a silent full audit appended to the other audit's file)."""
    env = lab_cli_env(lab)
    made = subprocess.run([CLI, "audit", "--profile", "auditor", "--format", "json", "--checkpoint", "cp.jsonl"],
                          env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path,
                          stdin=subprocess.DEVNULL)
    assert made.returncode == ExitStatus.LOCKED_OUT, made.stderr
    other = tmp_path / "other.jsonl"  # the same audit, as another account's would record it
    other.write_text((tmp_path / "cp.jsonl").read_text().replace("111122223333", "444455556666"))
    before = other.read_bytes()
    result = subprocess.run([CLI, "audit", "--profile", "auditor", "--format", "json", "--resume", str(other)],
                            env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path,
                            stdin=subprocess.DEVNULL)
    assert result.returncode == ExitStatus.USAGE, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "444455556666" in lines[0] and "111122223333" in lines[0], result.stderr
    assert result.stdout == ""
    assert other.read_bytes() == before
    again = subprocess.run([CLI, "audit", "--profile", "auditor", "--format", "json", "--resume", "cp.jsonl"],
                           env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path,
                           stdin=subprocess.DEVNULL)
    assert again.returncode == ExitStatus.LOCKED_OUT, again.stderr  # its own checkpoint still resumes


def test_checkpoint_to_an_existing_file_leaves_it_and_prints_nothing(lab: Lab, lab_cli_env, tmp_path: Path) -> None:
    """--checkpoint to a file that exists: one line, exit 2, the file as it was, and no half-opened JSON on stdout."""
    mine = tmp_path / "notes.txt"
    mine.write_text("my own notes\n")
    result = subprocess.run([CLI, "audit", "--profile", "auditor", "--format", "json", "--checkpoint", str(mine)],
                            env=lab_cli_env(lab), capture_output=True, text=True, timeout=120, cwd=tmp_path,
                            stdin=subprocess.DEVNULL)
    assert result.returncode == ExitStatus.USAGE, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "--checkpoint" in result.stderr
    assert result.stdout == ""
    assert mine.read_text() == "my own notes\n"
