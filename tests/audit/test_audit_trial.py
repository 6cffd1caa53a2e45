"""``kms-rescue audit`` tried as a new user would (docs/audit.md): output cut short by a reader that goes away,
the help's exit codes, and other wrong input on purpose, through the installed CLI against the lab."""

from __future__ import annotations

import json
import re
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from kms_rescue.lab import Lab
from kms_rescue.status import ExitStatus
from tests.helpers.paths import REPO, SCRIPT
from tests.helpers.terminal import ANSI

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


TRIAL = {
    "name": "audit-trial",
    "description": "A key naming a healthy admin beside a deleted role, a key managed only through IAM, a multi-Region "
                   "key; an auditor who reads IAM, a reader who cannot, and a role that manages keys through IAM only.",
    "account": "111122223333", "region": "us-east-1", "enabled_regions": ["us-east-1", "us-west-2"],
    "identities": [
        {"profile": "auditor", "role": "Auditor", "policies": [{"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": ["kms:List*", "kms:Describe*", "kms:Get*", "iam:Get*", "iam:List*",
                                           "ec2:DescribeRegions"], "Resource": "*"}]}]},
        {"profile": "reader", "role": "Reader", "policies": [{"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": ["kms:List*", "kms:Describe*", "kms:Get*", "ec2:DescribeRegions"],
             "Resource": "*"}]}]},
        {"profile": "iamadmin", "role": "IamKeyAdmin", "policies": [{"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": ["kms:*"], "Resource": "*"}]}]},
    ],
    "roles": [{"name": "Admin"}, {"name": "Gone"}],
    "deleted": ["role/Gone"],
    "keys": [
        {"id": "11111111-1111-4111-8111-111111111111", "alias": "alias/admin-and-orphan", "policy": {
            "Version": "2012-10-17", "Statement": [
                {"Sid": "Admin", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:role/Admin"},
                 "Action": "kms:*", "Resource": "*"},
                {"Sid": "Former", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:role/Gone"},
                 "Action": "kms:*", "Resource": "*"},
                {"Sid": "Read", "Effect": "Allow", "Principal": {"AWS": [
                    "arn:aws:iam::111122223333:role/Auditor", "arn:aws:iam::111122223333:role/Reader"]},
                 "Action": ["kms:Describe*", "kms:GetKeyPolicy"], "Resource": "*"}]}},
        {"id": "22222222-2222-4222-8222-222222222222", "alias": "alias/iam-only"},
        {"id": "mrk-0123456789abcdef0123456789abcdef", "alias": "alias/multi", "multi_region": True,
         "region": "us-west-2"},
    ],
}


@pytest.fixture(scope="module")
def trial_lab() -> Iterator[Lab]:
    with Lab(TRIAL) as running:
        yield running


def _audit(lab: Lab, env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CLI, "audit", "--format", "json", *args], env=env, capture_output=True, text=True,
                          timeout=120, cwd=cwd, stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("arn", ["arn:aws:iam::111122223333:role/NoSuchRole", "arn:aws:iam::111122223333:user/nobody"])
def test_if_deleted_of_a_principal_that_does_not_exist_is_bad_input(arn: str, trial_lab: Lab, lab_cli_env,
                                                                    tmp_path: Path) -> None:
    """A typo in --if-deleted would pass the guard (nothing names it, so nothing would break): IAM's GetRole /
    GetUser answer NoSuchEntity (IAM API Reference, GetRole, "Errors"), and that is one line and exit 2."""
    result = _audit(trial_lab, lab_cli_env(trial_lab), tmp_path, "--profile", "auditor", "--if-deleted", arn,
                    "--fail-on", "none")
    assert result.returncode == ExitStatus.USAGE, result.stderr
    assert result.stderr.count("\n") == 1 and arn in result.stderr and "no such" in result.stderr
    assert result.stdout == ""


def test_if_deleted_that_cannot_be_checked_is_said_and_audited(trial_lab: Lab, lab_cli_env, tmp_path: Path) -> None:
    """An auditor who may not read IAM cannot tell a typo: one line says so, and the audit goes on."""
    arn = "arn:aws:iam::111122223333:role/NoSuchRole"
    result = _audit(trial_lab, lab_cli_env(trial_lab), tmp_path, "--profile", "reader", "--if-deleted", arn,
                    "--fail-on", "none")
    assert result.returncode == ExitStatus.OK, result.stderr
    assert "could not check that it exists" in result.stderr and "iam:GetRole" in result.stderr
    assert {k["verdict_if_deleted"] for k in json.loads(result.stdout)["keys"]} == {"recoverable"}


def test_if_deleted_of_a_role_that_manages_through_iam_only(trial_lab: Lab, lab_cli_env, tmp_path: Path) -> None:
    """A role the key policies never name, with kms:* in IAM: deleting it leaves the account principal, so every
    key stays recoverable (KMS Developer Guide, "Default key policy": the root user keeps access) and exit 0."""
    result = _audit(trial_lab, lab_cli_env(trial_lab), tmp_path, "--profile", "auditor", "--if-deleted",
                    "arn:aws:iam::111122223333:role/IamKeyAdmin", "--fail-on", "none")
    assert result.returncode == ExitStatus.OK, result.stderr
    keys = {k["aliases"][0]: k for k in json.loads(result.stdout)["keys"]}
    assert keys["alias/iam-only"]["verdict_if_deleted"] == "recoverable"
    assert keys["alias/multi"]["verdict_if_deleted"] == "recoverable"


def test_a_deleted_principal_beside_a_healthy_admin_is_a_finding_not_a_lockout(trial_lab: Lab, lab_cli_env,
                                                                                tmp_path: Path) -> None:
    """The policy names the existing role Admin for kms:* and the deleted role Gone (shown as its unique id):
    the key is not locked out, the orphan is KA002 (IAM User Guide, "Principal": a recreated role does not
    match), and Admin is its one manager (KA001)."""
    result = _audit(trial_lab, lab_cli_env(trial_lab), tmp_path, "--profile", "auditor", "--fail-on", "none")
    assert result.returncode == ExitStatus.OK, result.stderr
    keys = {k["aliases"][0]: k for k in json.loads(result.stdout)["keys"]}
    key = keys["alias/admin-and-orphan"]
    assert key["verdict"] == "recoverable"
    assert {f["rule"] for f in key["findings"]} >= {"KA002", "KA001"}
    assert [m["principal"] for m in key["managers"]] == ["arn:aws:iam::111122223333:role/Admin"]
    assert keys["alias/multi"]["region"] == "us-west-2" and keys["alias/multi"]["verdict"] == "recoverable"


def _transcript(lab: Lab, env: dict[str, str], cwd: Path, columns: int, command: str) -> str:
    pexpect = pytest.importorskip("pexpect")
    env = {k: v for k, v in env.items() if k != "COLUMNS"} | {"TERM": "xterm"}
    child = pexpect.spawn("bash", ["-c", command], env=env, cwd=str(cwd), encoding="utf-8", timeout=120,
                          dimensions=(50, columns))
    child.expect(pexpect.EOF)
    child.close()
    return ANSI.sub("", child.before or "")


@pytest.mark.parametrize("columns", [80, 200])
@pytest.mark.parametrize("pipe", ["", " | cat"])
def test_text_table_fits_the_terminal_and_never_cuts_an_id(columns: int, pipe: str, lab: Lab, lab_cli_env,
                                                           tmp_path: Path) -> None:
    """In a real terminal of 80 and 200 columns, on it or through a pipe (`| less`, `| head`): every line fits,
    the table's right edge is drawn, and no account id, alias or rule id is folded in two (an account id cut to
    11 digits reads as another, wrong, id)."""
    text = _transcript(lab, lab_cli_env(lab), tmp_path, columns,
                       f"{CLI} audit --profile auditor --regions us-east-1 --if-deleted "
                       f"arn:aws:iam::111122223333:role/KeyAdmin{pipe}")
    assert "keys" in text.partition("KMS keys")[0]  # the progress bar came first, on stderr
    text = "KMS keys" + text.partition("KMS keys")[2]  # the table, and what follows it
    lines = text.splitlines()
    table = [line for line in lines if line.startswith("│")]
    assert table, text
    assert all(len(line) <= columns for line in lines), text
    assert all(line.endswith("│") for line in table), text
    digits = {len(run) for run in re.findall(r"(?<!\w)\d{6,}(?!\w)", text)}
    assert digits <= {12}, text  # only whole account ids
    for alias in ("alias/one-admin", "alias/orphaned", "alias/unreadable", "alias/locked"):
        assert alias in text, text
    assert re.search(r"alias/one-admin.*KA001", text), text
    assert "would be locked out by the deletions" in " ".join(text.split())


@pytest.fixture(scope="module")
def org_lab() -> Iterator[Lab]:
    from kms_rescue.lab.generate import generate_scenario

    with Lab(generate_scenario(12, regions=("us-east-1",), seed=11).scenario) as running:
        yield running


def test_organization_from_a_member_account_says_what_to_do(org_lab: Lab, lab_cli_env, tmp_path: Path) -> None:
    """ListAccounts "can be called only from the organization's management account or by a member account that
    is a delegated administrator" (AWS Organizations API Reference, ListAccounts): the row and its stderr line
    say so and what to use instead; the member's own account is still audited."""
    result = _audit(org_lab, lab_cli_env(org_lab), tmp_path, "--profile", "auditor-444455556666", "--organization",
                    "--fail-on", "none")
    assert result.returncode in (ExitStatus.OK, ExitStatus.LOCKED_OUT), result.stderr
    lines = [line for line in result.stderr.splitlines() if "list_accounts" in line]
    assert len(lines) == 1 and "management account" in lines[0] and "--accounts" in lines[0], result.stderr
    doc = json.loads(result.stdout)
    assert {k["account"] for k in doc["keys"]} == {"444455556666"}
    assert "management account" in doc["errors"][0]["message"]


def test_merge_of_a_directory_with_one_truncated_line(lab: Lab, lab_cli_env, tmp_path: Path) -> None:
    """A results directory whose last line was cut short (a Lambda stopped mid-write): every whole line is in the
    report, the cut one is one stderr line naming FILE:LINE (not 'could not audit the account'), and exit 2."""
    full = subprocess.run([CLI, "audit", "--profile", "auditor", "--format", "json", "--fail-on", "none"],
                          env=lab_cli_env(lab), capture_output=True, text=True, timeout=120, cwd=tmp_path,
                          stdin=subprocess.DEVNULL)
    keys = [json.dumps(k) for k in json.loads(full.stdout)["keys"]]
    results = tmp_path / "results"
    results.mkdir()
    (results / "a.jsonl").write_text("\n".join(keys[:-1]) + "\n" + keys[-1][:40])
    merged = subprocess.run([CLI, "audit", "--merge", str(results), "--format", "json"], env=lab_cli_env(lab),
                            capture_output=True, text=True, timeout=120, cwd=tmp_path, stdin=subprocess.DEVNULL)
    assert merged.returncode == ExitStatus.USAGE, merged.stderr
    lines = merged.stderr.strip().splitlines()
    where = f"{results / 'a.jsonl'}:{len(keys)}:"
    assert lines[0].startswith(f"kms-rescue: {where}"), merged.stderr
    assert "could not audit" not in merged.stderr and "Traceback" not in merged.stderr
    assert len(json.loads(merged.stdout)["keys"]) == len(keys) - 1


GRANT_ONLY = {
    "name": "audit-grant-only-admin",
    "description": "A key whose only would-be administrator holds a grant: the policy lets Admin create grants and "
                   "the auditor read; no statement allows kms:PutKeyPolicy and none names the account.",
    "account": "111122223333", "region": "us-east-1", "enabled_regions": ["us-east-1"],
    "identities": [
        {"profile": "auditor", "role": "Auditor", "policies": [{"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": ["kms:List*", "kms:Describe*", "kms:Get*", "iam:Get*", "iam:List*",
                                           "ec2:DescribeRegions"], "Resource": "*"}]}]},
        {"profile": "admin", "role": "Admin", "policies": [{"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "kms:*", "Resource": "*"}]}]},
    ],
    "roles": [{"name": "KeyAdmin"}],
    "keys": [{"id": "33333333-3333-4333-8333-333333333333", "alias": "alias/grant-only", "policy": {
        "Version": "2012-10-17", "Statement": [
            {"Sid": "Grants", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:role/Admin"},
             "Action": ["kms:CreateGrant", "kms:DescribeKey"], "Resource": "*"},
            {"Sid": "Read", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:role/Auditor"},
             "Action": ["kms:Describe*", "kms:GetKeyPolicy"], "Resource": "*"}]}}],
}


def test_a_grant_only_administrator_manages_nothing(lab_cli_env, tmp_path: Path) -> None:
    """A grant's operations are cryptographic operations, CreateGrant, RetireGrant, DescribeKey and the like:
    never PutKeyPolicy (KMS API Reference, CreateGrant, "Operations": its valid values; KMS Developer Guide,
    "Controlling access to grants": even ListGrants and RevokeGrant are not grantable). So a key whose policy
    gives its one would-be administrator only a grant is locked out, and the grantee is no manager."""
    with Lab(GRANT_ONLY) as lab:
        key_id = GRANT_ONLY["keys"][0]["id"]  # type: ignore[index]
        lab.client("admin", "kms").create_grant(
            KeyId=key_id, GranteePrincipal="arn:aws:iam::111122223333:role/KeyAdmin",
            Operations=["Decrypt", "Encrypt", "CreateGrant", "DescribeKey", "RetireGrant"])
        result = _audit(lab, lab_cli_env(lab), tmp_path, "--profile", "auditor", "--fail-on", "none")
    assert result.returncode == ExitStatus.LOCKED_OUT, result.stderr
    (key,) = json.loads(result.stdout)["keys"]
    assert key["verdict"] == "locked_out"
    assert key["managers"] == []
    assert {"KA008", "KA004"} <= {f["rule"] for f in key["findings"]}
