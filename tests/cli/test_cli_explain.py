"""`kms-rescue explain` through the CLI entry point and the installed script; the error boundary."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import kms_rescue.cli.explain as explain_cli
from kms_rescue.cli.app import main
from kms_rescue.status import ExitStatus
from tests.helpers import paths

DOCS = paths.DOCS / "examples"
KEY = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
ALICE = "arn:aws:iam::111122223333:user/alice"
ADMIN_SESSION = "arn:aws:sts::111122223333:assumed-role/KeyAdmin/oncall"


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_explain_json_allow_through_delegation(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "explain", "--policy", str(DOCS / "default-key-policy.json"), "--principal", ALICE,
                       "--action", "kms:PutKeyPolicy", "--key-arn", KEY, "--identity-policy",
                       str(DOCS / "admin-identity-policy.json"), "--format", "json")
    assert code == 0
    data = json.loads(out)
    assert data["decision"] == "allow"
    assert data["key_policy_grant"] == "delegated"


def test_explain_text_names_the_statement(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "explain", "--policy", str(DOCS / "principalarn-condition.json"), "--principal",
                       ADMIN_SESSION, "--action", "kms:PutKeyPolicy", "--key-arn", KEY)
    assert code == 0
    assert out.startswith("Decision: ALLOW")
    assert '"AllowAdministration"' in out


@pytest.mark.parametrize("expect, code", [("allow", ExitStatus.EXPECTATION_FAILED), ("deny", ExitStatus.OK)])
def test_expect_sets_the_exit_code(capsys: pytest.CaptureFixture[str], expect: str, code: int) -> None:
    got, out, _ = run(capsys, "explain", "--policy", str(DOCS / "sole-admin-deleted.json"), "--principal",
                      "arn:aws:iam::111122223333:root", "--action", "kms:PutKeyPolicy", "--key-arn", KEY,
                      "--expect", expect)
    assert got == code
    assert "IMPLICIT DENY" in out


def test_context_option_feeds_conditions(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    policy = tmp_path / "p.json"
    policy.write_text(json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": ALICE}, "Action": "kms:Decrypt", "Resource": "*",
        "Condition": {"StringEquals": {"kms:ViaService": "s3.us-east-1.amazonaws.com"}}}]}))
    args = ["explain", "--policy", str(policy), "--principal", ALICE, "--action", "kms:Decrypt", "--key-arn", KEY,
            "--format", "json"]
    assert json.loads(run(capsys, *args)[1])["decision"] == "implicit_deny"
    assert json.loads(run(capsys, *args, "--context", "kms:ViaService=s3.us-east-1.amazonaws.com")[1])[
        "decision"] == "allow"


def test_missing_key_arn_assumes_principals_account(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "explain", "--policy", str(DOCS / "default-key-policy.json"), "--principal",
                         "arn:aws:iam::111122223333:root", "--action", "kms:PutKeyPolicy")
    assert code == 0 and "ALLOW" in out and "111122223333" in err


@pytest.mark.parametrize(
    "content, message",
    [
        ('{"Version": "2012-10-17",\n  "Statement": [ {"Effect": "Allow",, } ]}', ":2:"),
        ('{"Version": "2012-10-17"}', "no Statement"),
        ('[1, 2]', "not a policy"),
    ],
)
def test_bad_policy_file_is_one_line_exit_2(capsys: pytest.CaptureFixture[str], tmp_path: Path, content: str,
                                            message: str) -> None:
    policy = tmp_path / "bad.json"
    policy.write_text(content)
    code, _, err = run(capsys, "explain", "--policy", str(policy), "--principal", ALICE, "--action",
                       "kms:PutKeyPolicy", "--key-arn", KEY)
    assert code == 2
    assert message in err and "bad.json" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


@pytest.mark.parametrize(
    "args, message",
    [
        (["--principal", "alice"], "not a principal ARN"),
        (["--context", "novalue"], "KEY=VALUE"),
        (["--policy", "/nonexistent/p.json"], "no such file"),
    ],
)
def test_bad_options_are_one_line_exit_2(capsys: pytest.CaptureFixture[str], args: list[str], message: str) -> None:
    base = {"--policy": str(DOCS / "default-key-policy.json"), "--principal": ALICE, "--action": "kms:PutKeyPolicy",
            "--key-arn": KEY}
    extra: list[str] = []
    for flag, value in zip(args[::2], args[1::2], strict=True):
        if flag in base:
            base[flag] = value
        else:
            extra += [flag, value]
    flat = [x for kv in base.items() for x in kv]
    code, _, err = run(capsys, "explain", *flat, *extra)
    assert code == 2 and message in err and "Traceback" not in err


def test_internal_errors_are_one_line_unless_debug(capsys: pytest.CaptureFixture[str],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(**_: object) -> None:
        raise RuntimeError("simulated bug")

    monkeypatch.setattr(explain_cli, "evaluate", boom)  # the command's own name for the engine (imported at top)
    args = ["explain", "--policy", str(DOCS / "default-key-policy.json"), "--principal", ALICE, "--action",
            "kms:PutKeyPolicy", "--key-arn", KEY]
    code, _, err = run(capsys, *args)
    assert code == 1 and "internal error" in err and "Traceback" not in err
    code, _, err = run(capsys, "--debug", *args)
    assert code == 1 and "Traceback" in err


def _script() -> str:
    found = shutil.which("kms-rescue", path=str(Path(sys.executable).parent))
    assert found, "the console script is installed with the package"
    return found


@pytest.mark.parametrize("args", [["--help"], ["explain", "--help"], ["lint", "--help"],
                                  ["explain", "--policy", str(DOCS / "default-key-policy.json"), "--principal",
                                   ALICE, "--action", "kms:Decrypt", "--key-arn", KEY]])
def test_offline_commands_do_not_import_boto3(args: list[str]) -> None:
    """lint, explain and --help must start fast: no boto3/botocore import (issue 2)."""
    code = (
        "import sys\n"
        "from kms_rescue.cli.app import main\n"
        f"rc = main({args!r})\n"
        "bad = sorted(m for m in ('boto3', 'botocore', 'moto') if m in sys.modules)\n"
        "print('IMPORTED', bad)\n"
        "sys.exit(rc)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "IMPORTED []" in proc.stdout


def test_installed_script_explain_and_version() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    proc = subprocess.run([_script(), "explain", "--policy", str(DOCS / "sole-admin-deleted.json"), "--principal",
                           "arn:aws:iam::111122223333:root", "--action", "kms:PutKeyPolicy", "--key-arn", KEY,
                           "--format", "json", "--expect", "deny"], capture_output=True, text=True, env=env,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["decision"] == "implicit_deny"
    version = subprocess.run([_script(), "--version"], capture_output=True, text=True, check=False)
    assert version.returncode == 0 and version.stdout.startswith("kms-rescue ")
