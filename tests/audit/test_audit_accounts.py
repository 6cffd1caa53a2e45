"""``kms-rescue audit`` over many accounts (docs/audit.md, "Many accounts") through the installed CLI against
a lab serving three accounts of one organization (the generated scenario), and the options' bad input."""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from collections.abc import Iterator
from importlib.resources import files
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from kms_rescue.audit.account import AuditTarget
from kms_rescue.audit.accounts import DEFAULT_ROLE_NAME, member_identity, parse_accounts, parse_role_name, plan_targets
from kms_rescue.audit.model import AuditError
from kms_rescue.errors import UsageError
from kms_rescue.observations import IdentitySpec

pytest.importorskip("moto")

from kms_rescue.lab import Lab
from kms_rescue.lab.generate import generate_scenario
from tests.helpers.paths import DOCS, SCRIPT

CLI = str(SCRIPT)
MGMT, MEMBER_A, MEMBER_B = "111122223333", "444455556666", "123456789012"
REGIONS = ("us-east-1", "eu-west-1")
ORGS_ACCESS = "https://docs.aws.amazon.com/organizations/latest/userguide/orgs_manage_accounts_access.html"


def validate(doc: dict[str, Any]) -> None:
    schema = json.loads(files("kms_rescue").joinpath("audit.schema.json").read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator(schema).validate(doc)


@pytest.fixture(scope="module")
def org_lab() -> Iterator[Lab]:
    with Lab(generate_scenario(24, regions=REGIONS, seed=5).scenario) as lab:
        yield lab


@pytest.fixture
def run(org_lab: Lab, lab_cli_env: Any) -> Any:
    def go(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([CLI, "audit", *args], capture_output=True, text=True, timeout=300,
                              env=lab_cli_env(org_lab), stdin=subprocess.DEVNULL)
    return go


def keys_per_account(doc: dict[str, Any]) -> Counter[str]:
    return Counter(k["account"] for k in doc["keys"])


def test_the_organization_every_account_every_region(run: Any) -> None:
    """ListAccounts from the management account; each member entered through OrganizationAccountAccessRole
    (AWS Organizations User Guide, "Accessing member accounts"); the caller's own account directly."""
    result = run("--profile", "auditor", "--organization", "--format", "json", "--fail-on", "none")
    assert result.returncode in (0, 4), result.stderr
    doc = json.loads(result.stdout)
    validate(doc)
    assert keys_per_account(doc) == {MGMT: 8, MEMBER_A: 8, MEMBER_B: 8}
    assert {(k["account"], k["region"]) for k in doc["keys"]} == {(a, r) for a in (MGMT, MEMBER_A, MEMBER_B)
                                                                 for r in REGIONS}
    assert doc["errors"] == []


def test_named_accounts_only(run: Any) -> None:
    result = run("--profile", "auditor", "--accounts", f"{MEMBER_A},{MGMT}", "--regions", "eu-west-1",
                 "--format", "json", "--fail-on", "none")
    assert result.returncode in (0, 4), result.stderr
    doc = json.loads(result.stdout)
    assert keys_per_account(doc) == {MGMT: 4, MEMBER_A: 4}
    assert {k["region"] for k in doc["keys"]} == {"eu-west-1"}


def test_a_role_that_cannot_be_assumed_is_a_row_per_account(run: Any) -> None:
    result = run("--profile", "auditor", "--organization", "--role-name", "NoSuchRole", "--format", "json",
                 "--fail-on", "none")
    assert result.returncode in (0, 4), result.stderr
    doc = json.loads(result.stdout)
    validate(doc)
    assert keys_per_account(doc) == {MGMT: 8}  # the caller's own account needs no role
    rows = sorted((e["account"], e["stage"]) for e in doc["errors"])
    assert rows == [(MEMBER_B, "assume_role"), (MEMBER_A, "assume_role")]
    assert all("role/NoSuchRole" in e["message"] for e in doc["errors"])
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 2


def test_a_member_cannot_list_the_organization(run: Any) -> None:
    """ListAccounts "can be called only from the organization's management account or by a member account that
    is a delegated administrator" (AWS Organizations API reference, ListAccounts): a row, and the caller's own
    account is still audited."""
    result = run("--profile", f"auditor-{MEMBER_A}", "--organization", "--regions", "us-east-1", "--format",
                 "json", "--fail-on", "none")
    assert result.returncode in (0, 4), result.stderr
    doc = json.loads(result.stdout)
    assert [(e["account"], e["stage"]) for e in doc["errors"]] == [(MEMBER_A, "list_accounts")]
    assert keys_per_account(doc) == {MEMBER_A: 4}


def test_a_region_not_enabled_is_a_row(run: Any) -> None:
    result = run("--profile", "auditor", "--regions", "eu-west-1,ap-northeast-1", "--format", "json",
                 "--fail-on", "none")
    doc = json.loads(result.stdout)
    assert [(e["region"], e["stage"], e["error"]) for e in doc["errors"]] == [
        ("ap-northeast-1", "describe_regions", "RegionNotEnabled")]
    assert keys_per_account(doc) == {MGMT: 4}


@pytest.mark.parametrize(("args", "needle"), [
    (["--accounts", "1234"], "--accounts"),
    (["--accounts", f"{MGMT},,{MEMBER_A}"], "--accounts"),
    (["--accounts", MGMT, "--organization"], "--organization"),
    (["--regions", "us-esat-1"], "--regions"),
    (["--role-name", "no spaces"], "--role-name"),
    (["--concurrency", "0"], "--concurrency"),
    (["--processes", "0"], "--processes"),
    (["--deadline", "0"], "--deadline"),
    (["--deadline", "nan"], "--deadline"),
    (["--checkpoint", "a.ckpt", "--resume", "b.ckpt"], "--resume"),
    (["--resume", "/nonexistent/ckpt"], "--resume"),
])
def test_bad_options_are_one_line_and_exit_2(run: Any, args: list[str], needle: str) -> None:
    result = run("--profile", "auditor", *args)
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0] and "Traceback" not in result.stderr
    assert result.stdout == ""


def test_an_existing_checkpoint_file_is_never_overwritten(run: Any, tmp_path: Path) -> None:
    mine = tmp_path / "notes"
    mine.write_text("mine\n")
    result = run("--profile", "auditor", "--regions", "eu-west-1", "--checkpoint", str(mine))
    assert result.returncode == 2 and mine.read_text() == "mine\n"
    assert "--resume" in result.stderr and len(result.stderr.strip().splitlines()) == 1


# --- the library ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    ("111122223333", ("111122223333",)),
    ("111122223333,444455556666,111122223333", ("111122223333", "444455556666")),
    (" 111122223333 , 444455556666", ("111122223333", "444455556666")),
])
def test_account_lists(text: str, expected: tuple[str, ...]) -> None:
    assert parse_accounts(text) == expected


@pytest.mark.parametrize("text", ["", ",", "11112222333", "1111222233334", "11112222333x", "111122223333\n1"])
def test_bad_account_lists(text: str) -> None:
    with pytest.raises(UsageError, match="--accounts"):
        parse_accounts(text)


@pytest.mark.parametrize("name", ["", "a b", "x" * 65, "role/Admin", "Admin\n"])
def test_bad_role_names(name: str) -> None:
    with pytest.raises(UsageError, match="--role-name"):
        parse_role_name(name)


def test_a_member_is_entered_through_the_named_role() -> None:
    base = IdentitySpec(name="auditor", source="profile", profile="auditor")
    spec = member_identity(base, MEMBER_A, DEFAULT_ROLE_NAME, "aws-cn")
    assert DEFAULT_ROLE_NAME == "OrganizationAccountAccessRole", ORGS_ACCESS
    assert spec.role_arn == f"arn:aws-cn:iam::{MEMBER_A}:role/OrganizationAccountAccessRole"
    assert spec.source == "assume_role" and spec.profile == "auditor" and spec.base == "auditor"


def test_planning_against_the_lab(org_lab: Lab, aws_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_CONFIG_FILE", str(org_lab.config_path))
    base = IdentitySpec(name="auditor", source="profile", profile="auditor")
    planned = list(plan_targets(base, region="us-east-1", organization=True))
    targets = [p for p in planned if isinstance(p, AuditTarget)]
    assert not [p for p in planned if isinstance(p, AuditError)]
    assert {(t.account, t.region) for t in targets} == {(a, r) for a in (MGMT, MEMBER_A, MEMBER_B) for r in REGIONS}
    own = [t for t in targets if t.account == MGMT]
    assert all(t.identity == base for t in own)
    assert all(t.identity.role_arn == f"arn:aws:iam::{t.account}:role/{DEFAULT_ROLE_NAME}"
               for t in targets if t.account != MGMT)


# --- docs/audit.md's "Many accounts" examples run ----------------------------------------------------------------

DOC = DOCS / "audit.md"


def many_accounts_examples() -> list[tuple[list[str], int]]:
    """(arguments after ``kms-rescue audit``, exit code) of each ``# exit N`` line of the section's shell blocks."""
    import re
    import shlex

    text = DOC.read_text(encoding="utf-8")
    section = text.split("## Many accounts", 1)[1].split("\n## ", 1)[0]
    out = []
    for line in section.splitlines():
        m = re.fullmatch(r"kms-rescue audit (.*?)\s+# exit (\d)", line.strip())
        if m:
            out.append((shlex.split(m.group(1)), int(m.group(2))))
    return out


def test_the_section_has_examples() -> None:
    assert len(many_accounts_examples()) >= 4


@pytest.mark.parametrize(("args", "code"), many_accounts_examples())
def test_many_accounts_examples_run(run: Any, args: list[str], code: int) -> None:
    result = run(*args)
    assert result.returncode == code, (args, result.stderr[-2000:])
    assert "Traceback" not in result.stderr
