"""deploy/audit-org.yaml, the audit past one machine (docs/audit.md, "Past one machine"): cfn-lint, AWS's own
template linter, finds nothing in it, and checks its Step Functions definition (rule E3601); the roles grant only
what the audit needs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import decode_str

from tests.helpers.paths import REPO

ROOT = REPO
TEMPLATE = ROOT / "deploy" / "audit-org.yaml"


def _cfn_lint(path: Path) -> subprocess.CompletedProcess[str]:
    # cfn-lint's own console entry point (cfnlint.runner.main), in this interpreter
    entry = "import sys; from cfnlint.runner import main; sys.argv[0] = 'cfn-lint'; sys.exit(main())"
    return subprocess.run([sys.executable, "-c", entry, "--format", "parseable", str(path)],
                          capture_output=True, text=True, timeout=300, check=False)


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    document, matches = decode_str(TEMPLATE.read_text(encoding="utf-8"))
    assert not matches and document is not None
    return dict(document)


def _statements(template: dict[str, Any], role: str) -> dict[str, dict[str, Any]]:
    policies = template["Resources"][role]["Properties"]["Policies"]
    return {s["Sid"]: s for p in policies for s in p["PolicyDocument"]["Statement"]}


def _actions(statement: dict[str, Any]) -> set[str]:
    action = statement["Action"]
    return {action} if isinstance(action, str) else set(action)


def test_cfn_lint_finds_nothing() -> None:
    result = _cfn_lint(TEMPLATE)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == ""


def test_cfn_lint_checks_the_state_machine_definition(tmp_path: Path) -> None:
    """The same run catches a broken state in the Distributed Map's definition: the check above is not vacuous."""
    broken = tmp_path / "broken.yaml"
    broken.write_text(TEMPLATE.read_text(encoding="utf-8").replace("Type: Choice", "Type: Choise"),
                      encoding="utf-8")
    result = _cfn_lint(broken)
    assert result.returncode != 0
    assert "E3601" in result.stdout


def test_distributed_map(template: dict[str, Any]) -> None:
    """Step Functions Developer Guide, "Distributed Map state" and "ItemReader": a DISTRIBUTED processor reading
    a JSON items file from S3, its concurrency and tolerated failures from the stack's parameters, results written
    to S3 by ResultWriter."""
    states = template["Resources"]["AuditStateMachine"]["Properties"]["Definition"]["States"]
    audit = states["AuditAccounts"]
    assert audit["Type"] == "Map"
    assert audit["ItemProcessor"]["ProcessorConfig"]["Mode"] == "DISTRIBUTED"
    assert audit["ItemReader"]["Resource"] == "arn:aws:states:::s3:getObject"
    assert audit["ItemReader"]["ReaderConfig"]["InputType"] == "JSON"
    assert audit["ResultWriter"]["Resource"] == "arn:aws:states:::s3:putObject"
    assert audit["MaxConcurrencyPath"] == "$.settings.max_concurrency"
    assert audit["ToleratedFailurePercentagePath"] == "$.settings.tolerated_failure_percentage"
    settings = states["Settings"]["Parameters"]
    assert "${MaxConcurrency}" in settings["max_concurrency.$"]
    assert "${ToleratedFailurePercentage}" in settings["tolerated_failure_percentage.$"]
    assert audit["ItemSelector"]["action"] == "audit_account"
    assert states["ListAccounts"]["Parameters"]["Payload"]["action"] == "list_accounts"


def test_function_role_is_least_privilege(template: dict[str, Any]) -> None:
    """The function reads keys and principals, assumes only the named member role, and writes only under the
    results prefix; it can change nothing (no kms:Put*, no iam:Create*/Delete*/Put*)."""
    statements = _statements(template, "AuditFunctionRole")
    every = set().union(*(_actions(s) for s in statements.values()))
    assert _actions(statements["ReadKeysInOwnAccount"]) == {
        "kms:ListKeys", "kms:ListAliases", "kms:DescribeKey", "kms:GetKeyPolicy", "kms:ListGrants"}
    assert all(a.startswith(("iam:Get", "iam:List")) for a in _actions(statements["ReadPrincipalsInOwnAccount"]))
    assert not any("*" in a for a in every)
    assert not any(a.split(":")[1].startswith(("Put", "Create", "Delete", "Update", "Schedule", "Disable"))
                   for a in every if not a.startswith(("s3:", "logs:")))
    assert _actions(statements["WriteResults"]) == {"s3:PutObject"}
    assert statements["WriteResults"]["Resource"] == {
        "Fn::Sub": "arn:${AWS::Partition}:s3:::${ResultsBucket}/${ResultsPrefix}/*"}
    assert statements["EnterMemberAccounts"]["Resource"] == {
        "Fn::Sub": "arn:${AWS::Partition}:iam::*:role${MemberRolePath}${MemberRoleName}"}
    assert template["Parameters"]["MemberRoleName"]["Default"] == "OrganizationAccountAccessRole"


def test_the_handler_the_template_names_exists(template: dict[str, Any]) -> None:
    handler = template["Resources"]["AuditFunction"]["Properties"]["Handler"]
    module, _, function = handler.rpartition(".")
    assert (ROOT / (module.replace(".", "/") + ".py")).is_file()
    assert f"def {function}(" in (ROOT / (module.replace(".", "/") + ".py")).read_text(encoding="utf-8")
