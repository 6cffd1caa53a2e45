"""`kms-rescue explain` with guardrails: a permissions boundary, SCPs and RCPs from files (docs/engine.md)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from kms_rescue.cli.app import main
from tests.helpers import paths

DOCS = paths.DOCS / "examples"
KEY = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
ALICE = "arn:aws:iam::111122223333:user/alice"


def write(tmp: Path, name: str, doc: Any) -> str:
    path = tmp / name
    path.write_text(json.dumps(doc) if not isinstance(doc, str) else doc)
    return str(path)


def statement(effect: str, action: str, **extra: Any) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": [{"Effect": effect, "Action": action, "Resource": "*", **extra}]}


def explain(capsys: pytest.CaptureFixture[str], *extra: str, fmt: str = "json") -> tuple[int, str, str]:
    code = main(["explain", "--policy", str(DOCS / "default-key-policy.json"), "--principal", ALICE,
                 "--action", "kms:PutKeyPolicy", "--key-arn", KEY,
                 "--identity-policy", str(DOCS / "admin-identity-policy.json"), "--format", fmt, *extra])
    out, err = capsys.readouterr()
    return code, out, err


def test_without_guardrails_nothing_changes(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = explain(capsys)
    data = json.loads(out)
    assert (code, data["decision"], data["guardrail"], data["assumed"]) == (0, "allow", None, [])


def test_an_scp_that_denies(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scp = write(tmp_path, "scp.json", statement("Deny", "kms:PutKeyPolicy"))
    code, out, _ = explain(capsys, "--scp", scp, "--expect", "deny")
    data = json.loads(out)
    assert (code, data["decision"], data["guardrail"]) == (0, "explicit_deny", "service control policies")


def test_an_scp_beside_full_aws_access_that_denies_something_else(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    scp = write(tmp_path, "scp.json", statement("Deny", "kms:ScheduleKeyDeletion"))
    code, out, _ = explain(capsys, "--scp", scp, "--expect", "allow")
    assert code == 0 and json.loads(out)["decision"] == "allow"


def test_a_boundary_in_text(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    boundary = write(tmp_path, "boundary.json", statement("Allow", "kms:Describe*"))
    code, out, _ = explain(capsys, "--permissions-boundary", boundary, fmt="text")
    assert code == 0
    assert out.splitlines()[0] == "Decision: IMPLICIT DENY"
    assert "  decided by the permissions boundary" in out


def test_an_rcp(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rcp = write(tmp_path, "rcp.json", statement("Deny", "kms:*", Principal="*"))
    _, out, _ = explain(capsys, "--rcp", rcp)
    assert json.loads(out)["guardrail"] == "resource control policies"


def test_a_bad_guardrail_file_is_a_one_line_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = write(tmp_path, "scp.json", '{"Version": "2012-10-17", "Statement": [')
    code, out, err = explain(capsys, "--scp", bad)
    assert code == 2 and out == ""
    assert err.startswith("kms-rescue: error: ") and err.count("\n") == 1 and "scp.json" in err
    code, _, err = explain(capsys, "--permissions-boundary", str(tmp_path / "missing.json"))
    assert code == 2 and "Traceback" not in err and err.count("\n") == 1


def test_explain_still_imports_no_boto3() -> None:
    code = ("import sys; from kms_rescue.cli.app import main; main(['explain', '--help']); "
            "print('boto3' in sys.modules, 'botocore' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False).stdout
    assert out.strip().endswith("False False")
