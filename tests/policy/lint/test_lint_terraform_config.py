"""Terraform plan findings point at the ``.tf`` file and line of the resource block when the configuration is beside
the plan (the plan's ``configuration`` names each module call's source); a plan read from standard input is
mapped from the directory of the name it is reported as; a resource in a registry module keeps the plan's line."""

from __future__ import annotations

import copy
import io
import json
from pathlib import Path

import pytest

from kms_rescue.cli.app import main
from kms_rescue.policy.lint import lint_files
from kms_rescue.status import ExitStatus
from tests.helpers import paths

FIXTURES = paths.FIXTURES / "lint"
ACCOUNT = "111122223333"
PLAN = json.loads((FIXTURES / "terraform-plan.json").read_text())

#: The configuration beside the plan, as docs/lint.md shows it (tests/fixtures/lint/tf).
TF = FIXTURES / "tf"
MAIN_TF = (TF / "main.tf").read_text()
SHARED_TF = (TF / "shared.tf").read_text()
LOGS_TF = (TF / "modules" / "logs" / "main.tf").read_text()


def _plan(logs_source: str = "./modules/logs") -> dict:
    plan = copy.deepcopy(PLAN)
    plan["configuration"] = {
        "provider_config": PLAN["configuration"]["provider_config"],
        "root_module": {
            "resources": [
                {"address": "aws_kms_key.this", "mode": "managed", "type": "aws_kms_key", "name": "this"},
                {"address": "aws_kms_key_policy.shared", "mode": "managed", "type": "aws_kms_key_policy",
                 "name": "shared"},
            ],
            "module_calls": {"logs": {"source": logs_source, "module": {"resources": [
                {"address": "aws_kms_key.logs", "mode": "managed", "type": "aws_kms_key", "name": "logs"}]}}},
        },
    }
    return plan


@pytest.fixture
def configuration(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "infra"
    (root / "modules" / "logs").mkdir(parents=True)
    (root / "main.tf").write_text(MAIN_TF)
    (root / "shared.tf").write_text(SHARED_TF)
    (root / "modules" / "logs" / "main.tf").write_text(LOGS_TF)
    (root / "plan.json").write_text(json.dumps(_plan(), indent=2))
    monkeypatch.chdir(tmp_path)
    return root


def test_the_fixture_plan_is_the_one_these_tests_build() -> None:
    assert json.loads((TF / "plan.json").read_text()) == _plan()


def _line(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def test_findings_point_at_the_resource_blocks(configuration: Path) -> None:
    report = lint_files(["infra/plan.json"], account=ACCOUNT)
    where = {(r.location.name, f.rule_id): (r.location.source, f.line) for r, f in report.findings}
    assert where[("aws_kms_key.this", "KR005")] == ("infra/main.tf", _line(MAIN_TF, 'Sid       = "PlatformAdmins"'))
    assert where[("aws_kms_key_policy.shared", "KR012")] == ("infra/shared.tf", _line(SHARED_TF, '"Sid": "Admins"'))
    assert where[("module.logs.aws_kms_key.logs", "KR019")] == (
        "infra/modules/logs/main.tf", _line(LOGS_TF, "policy      ="))
    assert {r.location.input_file for r in report.results} == {"infra/plan.json"}
    assert report.files_without_policies() == []


def test_text_output_names_the_tf_file(configuration: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lint", "infra/plan.json", "--account", ACCOUNT]) == ExitStatus.FINDINGS
    out = capsys.readouterr().out
    line = _line(SHARED_TF, '"Sid": "Admins"')
    assert f"infra/shared.tf:{line}: HIGH KR012 [aws_kms_key_policy.shared]" in out


def test_a_hcl_comment_suppresses_a_finding_in_the_tf_file(
    configuration: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = SHARED_TF.splitlines()
    sid = _line(SHARED_TF, '"Sid": "Admins"')
    lines.insert(sid - 1, "        // kms-rescue: ignore KR012 rewritten in PLAT-9 before apply")
    (configuration / "shared.tf").write_text("\n".join(lines) + "\n")
    assert main(["lint", "infra/plan.json", "--account", ACCOUNT]) == 0
    captured = capsys.readouterr()
    assert "KR012" not in captured.out and "1 suppressed" in captured.err


def test_a_plan_from_standard_input_is_mapped_from_its_reported_name(configuration: Path) -> None:
    text = (configuration / "plan.json").read_text()
    (configuration / "plan.json").unlink()  # terraform show -json plan.out | kms-rescue lint - --stdin-name ...
    report = lint_files(["-"], account=ACCOUNT, stdin=io.StringIO(text), stdin_name="infra/plan.json")
    assert {r.location.source for r in report.results} == {
        "infra/main.tf", "infra/shared.tf", "infra/modules/logs/main.tf"}
    report = lint_files(["-"], account=ACCOUNT, stdin=io.StringIO(text))
    assert {r.location.source for r in report.results} == {"stdin"}, "no .tf files in the current directory"


def test_a_registry_module_stays_on_the_plan(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "main.tf").write_text(MAIN_TF)
    (tmp_path / "plan.json").write_text(json.dumps(_plan("terraform-aws-modules/kms/aws"), indent=2))
    monkeypatch.chdir(tmp_path)
    report = lint_files(["plan.json"], account=ACCOUNT)
    sources = {r.location.name: r.location.source for r in report.results}
    assert sources["aws_kms_key.this"] == "main.tf"
    assert sources["module.logs.aws_kms_key.logs"] == "plan.json", "a registry module is not beside the plan"


def test_without_tf_files_the_plan_keeps_its_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "plan.json").write_text(json.dumps(_plan(), indent=2))
    monkeypatch.chdir(tmp_path)
    report = lint_files(["plan.json"], account=ACCOUNT)
    assert {r.location.source for r in report.results} == {"plan.json"}
