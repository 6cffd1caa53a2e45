"""One exit-status table (kms_rescue.status.ExitStatus), documented in one place (docs/exit-status.md): the two
are equal, every number has one meaning, and the commands' edges exit with the table's members."""

from __future__ import annotations

import ast
import re
import signal
from pathlib import Path

import pytest

from kms_rescue.cli.app import main
from kms_rescue.contract import EXIT_CODES, VERDICTS, exit_code_for
from kms_rescue.errors import KmsRescueError, UsageError
from kms_rescue.status import SIGNAL_BASE, VERDICT_STATUS, ExitStatus, signal_status, verdict_status
from tests.helpers.paths import REPO

ROOT = REPO
DOC = ROOT / "docs" / "exit-status.md"
ROW = re.compile(r"^\| (\d+) \| `([A-Z_]+)` \| ([^|]+) \|")


def documented() -> dict[str, int]:
    rows: dict[str, int] = {}
    text = DOC.read_text(encoding="utf-8")
    table = text.split("| Status | Name | Meaning | Commands |", 1)[1].split("\n\n", 1)[0]
    for line in table.splitlines():
        if m := ROW.match(line):
            assert m.group(2) not in rows, f"{m.group(2)} twice in docs/exit-status.md"
            rows[m.group(2)] = int(m.group(1))
    return rows


def test_the_documented_table_is_the_enum() -> None:
    assert documented() == {s.name: s.value for s in ExitStatus}


def test_each_number_has_one_meaning() -> None:
    values = [s.value for s in ExitStatus]
    assert len(values) == len(set(values)), "an IntEnum alias would give one number two names"
    assert ExitStatus.INTERNAL_ERROR == 1 and ExitStatus.USAGE == 2 and ExitStatus.INTERRUPTED == 130
    assert ExitStatus.FINDINGS != ExitStatus.INTERNAL_ERROR != ExitStatus.NOT_APPLIED


def test_signals_follow_the_shell_convention() -> None:
    assert signal_status(signal.SIGINT) == ExitStatus.INTERRUPTED == SIGNAL_BASE + 2
    assert signal_status(signal.SIGTERM) == 143 and signal_status(signal.SIGHUP) == 129
    assert signal_status(signal.SIGPIPE) not in {s.value for s in ExitStatus}


@pytest.mark.parametrize("verdict", VERDICTS)
def test_every_verdict_has_its_status(verdict: str) -> None:
    assert verdict_status(verdict) is VERDICT_STATUS[verdict]
    assert exit_code_for(verdict) == EXIT_CODES[verdict] == verdict_status(verdict).value
    assert verdict.upper() == verdict_status(verdict).name or verdict == "manageable"


def test_an_unknown_verdict_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown verdict 'fine'"):
        verdict_status("fine")


def test_domain_errors_carry_members_of_the_table() -> None:
    assert KmsRescueError("x").exit_code is ExitStatus.INTERNAL_ERROR
    assert UsageError("x").exit_code is ExitStatus.USAGE


def test_no_exit_status_is_a_bare_number_in_the_cli() -> None:
    """Every typer.Exit, SystemExit and literal return in kms_rescue/cli goes through the table (0 and 1 are the
    ones that crept back in before)."""
    found = []
    for path in sorted((ROOT / "kms_rescue" / "cli").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            value = None
            if isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in {
                    "Exit", "SystemExit", "finish"}:
                value = node.args[0] if node.args else None
            elif isinstance(node, ast.Return):
                value = node.value
            candidates = [value.body, value.orelse] if isinstance(value, ast.IfExp) else [value]
            for v in candidates:
                if isinstance(v, ast.Constant) and isinstance(v.value, int) and not isinstance(v.value, bool):
                    found.append(f"{path.name}:{v.lineno}: {v.value}")
    assert not found, found


def test_the_error_boundary_maps_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["lint", "--account"])  # typer's own usage error
    assert code == ExitStatus.USAGE
    assert main(["lnit"]) == ExitStatus.USAGE
    capsys.readouterr()


def test_lint_findings_and_a_lockout_have_their_own_statuses(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    fixtures = ROOT / "tests" / "fixtures" / "lint"
    locked = main(["lint", str(fixtures / "locked-out.json"), "--account", "111122223333"])
    findings = main(["lint", str(fixtures / "cfn-template.yaml"), "--account", "111122223333", "--region",
                     "eu-west-2", "--fail-on", "low"])
    clean = main(["lint", str(fixtures / "default-console-policy.json"), "--account", "111122223333"])
    capsys.readouterr()
    assert (locked, findings, clean) == (ExitStatus.LOCKED_OUT, ExitStatus.FINDINGS, ExitStatus.OK)


def test_explain_expectation_failed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    policy = ROOT / "tests" / "fixtures" / "lint" / "default-console-policy.json"
    args = ["explain", "--policy", str(policy), "--principal", "arn:aws:iam::444455556666:user/outsider",
            "--action", "kms:PutKeyPolicy",
            "--key-arn", "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"]
    assert main([*args, "--expect", "deny"]) == ExitStatus.OK
    assert main([*args, "--expect", "allow"]) == ExitStatus.EXPECTATION_FAILED
    assert "expected allow, got" in capsys.readouterr().err
