"""``kms-rescue lint`` end to end: exit codes 0/1/2/4, the three formats, --output, and start-up imports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kms_rescue.cli.app import main
from kms_rescue.cli.lint import LintFormat
from kms_rescue.status import ExitStatus
from tests.helpers import paths
from tests.helpers.paths import SCRIPT

FIXTURES = paths.FIXTURES / "lint"
ACCOUNT = "111122223333"


def fx(name: str) -> str:
    return str(FIXTURES / name)


@pytest.mark.parametrize(
    ("args", "code", "why"),
    [
        ([fx("default-console-policy.json")], 0, "the console's default key policy is clean"),
        ([fx("locked-out.json")], 4, "the only administrator was deleted: locked out"),
        ([fx("default-console-policy.json"), fx("locked-out.json")], 4, "any locked-out policy makes it 4"),
        ([fx("terraform-plan.json")], ExitStatus.FINDINGS, "a partial-wildcard principal is a high finding"),
        ([fx("terraform-plan.json"), "--fail-on", "critical"], 0, "--fail-on raises the bar"),
        ([fx("cfn-template.yaml")], 0, "only a low finding (an unresolved !Ref)"),
        ([fx("cfn-template.yaml"), "--fail-on", "low"], ExitStatus.FINDINGS, "--fail-on low counts it"),
        ([fx("cfn-template.json"), "--fail-on", "medium"], ExitStatus.FINDINGS, "a session principal is medium"),
        ([fx("locked-out.json"), "--fail-on", "critical"], 4, "a lockout is 4 whatever --fail-on says"),
    ],
)
def test_exit_codes(args: list[str], code: int, why: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lint", *args, "--account", ACCOUNT]) == code, why
    assert "Traceback" not in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([fx("malformed.json"), "--account", ACCOUNT], "malformed.json:5:3: invalid JSON: "),
        ([fx("nope.json"), "--account", ACCOUNT], "nope.json: no such file"),
        ([fx("default-console-policy.json"), "--account", "1111-2222-3333"], "--account must be a 12-digit"),
        ([fx("default-console-policy.json"), "--account", ACCOUNT, "--region", "mars"], "--region must be"),
    ],
)
def test_bad_input_exits_2_with_one_line(args: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lint", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("kms-rescue: error: ") and message in err
    assert len(err.strip().splitlines()) == 1


def test_missing_account_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lint", fx("default-console-policy.json")]) == 2
    assert "--account" in capsys.readouterr().err


def test_text_output_one_line_per_finding_with_fix(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lint", fx("locked-out.json"), "--account", ACCOUNT]) == 4
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0].startswith(f"{fx('locked-out.json')}:1: CRITICAL KR001 ")
    assert lines[1].startswith("    fix: ")
    assert lines[2].startswith(f"{fx('locked-out.json')}:4: HIGH KR003 ")
    assert "2 findings (1 critical, 1 high)" in err and "LOCKED OUT" in err


def test_text_output_names_the_resource_for_plans(capsys: pytest.CaptureFixture[str]) -> None:
    main(["lint", fx("terraform-plan.json"), "--account", ACCOUNT])
    out = capsys.readouterr().out
    assert "HIGH KR012 [aws_kms_key_policy.shared]" in out
    assert "LOW KR019 [module.logs.aws_kms_key.logs]" in out


def test_json_output_shape(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["lint", fx("terraform-plan.json"), "--account", ACCOUNT, "--format", "json"])
    assert code == ExitStatus.FINDINGS
    data = json.loads(capsys.readouterr().out)
    assert set(data) == {"schema_version", "tool", "account", "files", "fail_on", "locked_out", "summary", "policies",
                         "skipped", "errors"}
    assert data["schema_version"] == 1 and data["fail_on"] == "high" and data["locked_out"] is False
    assert data["summary"]["policies"] == 3
    assert data["summary"]["by_severity"] == {"low": 1, "medium": 1, "high": 1, "critical": 0}
    names = [p["name"] for p in data["policies"]]
    assert names == ["aws_kms_key.this", "aws_kms_key_policy.shared", "module.logs.aws_kms_key.logs"]
    finding = data["policies"][1]["findings"][0]
    assert set(finding) == {"rule_id", "rule", "severity", "message", "statement", "statement_index", "line",
                            "column", "fix"}
    assert (finding["rule_id"], finding["severity"], finding["statement"]) == ("KR012", "high", '"Admins"')
    assert data["policies"][2]["known"] is False


def test_output_file_gets_the_payload_and_stdout_stays_empty(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "out.sarif"
    assert main(["lint", fx("locked-out.json"), "--account", ACCOUNT, "--format", "sarif", "-o", str(target)]) == 4
    out, err = capsys.readouterr()
    assert out == "" and "LOCKED OUT" in err
    assert json.loads(target.read_text())["version"] == "2.1.0"


@pytest.mark.parametrize("fmt", list(LintFormat))
def test_every_format_renders_a_clean_run(fmt: LintFormat, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lint", fx("default-console-policy.json"), "--account", ACCOUNT, "--format", fmt.value]) == 0
    out = capsys.readouterr().out
    if fmt is LintFormat.text:
        assert out == ""
    else:
        assert json.loads(out)


def test_template_without_keys_warns_on_stderr(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    template = tmp_path / "bucket.yaml"
    template.write_text("Resources:\n  B:\n    Type: AWS::S3::Bucket\n")
    assert main(["lint", str(template), "--account", ACCOUNT]) == 0
    assert "no KMS key policies found" in capsys.readouterr().err


def test_help_has_an_example(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lint", "--help"]) == 0
    out = capsys.readouterr().out
    assert "Examples: kms-rescue lint key-policy.json --account 111122223333" in out
    assert "--fail-on" in out and "sarif" in out


# --- the installed script -----------------------------------------------------------------------------------------


needs_script = pytest.mark.skipif(not SCRIPT.exists(), reason="the kms-rescue script is not installed")


@needs_script
def test_installed_script_exit_codes() -> None:
    locked = subprocess.run([str(SCRIPT), "lint", fx("locked-out.json"), "--account", ACCOUNT],
                            capture_output=True, text=True)
    assert locked.returncode == 4 and "KR001" in locked.stdout
    bad = subprocess.run([str(SCRIPT), "lint", fx("malformed.json"), "--account", ACCOUNT],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.startswith("kms-rescue: error: ") and "Traceback" not in bad.stderr


@needs_script
def test_lint_does_not_import_boto3_or_botocore() -> None:
    """Start-up time: lint reads botocore's KMS model as data and never imports the SDK."""
    env = {**os.environ, "PYTHONPROFILEIMPORTTIME": "1"}
    run = subprocess.run(
        [str(SCRIPT), "lint", fx("cfn-template.yaml"), fx("terraform-plan.json"), "--account", ACCOUNT,
         "--format", "sarif"],
        capture_output=True, text=True, env=env,
    )
    assert run.returncode == ExitStatus.FINDINGS, run.stderr[-500:]
    imported = {line.rsplit("|", 1)[-1].strip() for line in run.stderr.splitlines() if line.startswith("import time:")}
    assert "kms_rescue.policy.lint" in imported, "the import profile was recorded"
    assert not {m for m in imported if m.split(".")[0] in ("boto3", "botocore", "moto")}


def test_dash_reads_standard_input(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import io

    monkeypatch.setattr(sys, "stdin", io.StringIO((FIXTURES / "locked-out.json").read_text()))
    assert main(["lint", "-", "--account", ACCOUNT]) == 4
    assert capsys.readouterr().out.startswith("stdin:1: CRITICAL KR001 ")
    monkeypatch.setattr(sys, "stdin", io.StringIO((FIXTURES / "default-console-policy.json").read_text()))
    assert main(["lint", "-", "-", "--account", ACCOUNT]) == 2
    assert "standard input (-) can be given only once" in capsys.readouterr().err
