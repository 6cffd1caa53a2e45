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
