"""The rescue session, branch by branch, with a scripted prompter against the lab (issue 5).

Every test runs with HOME isolated, every AWS_* variable unset, and the AWS config pointing at the lab's profiles
only: nothing can reach a real account.
"""

from __future__ import annotations

import io
import json
import os
import re
import stat
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from kms_rescue.aws.apply import parse_restore_command
from kms_rescue.cli.app import main
from kms_rescue.cli.prompter import Choice, FakePrompter, ScriptError
from kms_rescue.cli.rescue import RescueSession, SessionSettings, run_rescue
from kms_rescue.lab import Lab
from kms_rescue.lab.scenario import load_scenario
from kms_rescue.policy import analyze_management
from tests.helpers.lab import scenario_with, stale_principal_scenario
from tests.helpers.session import START, assert_no_secrets, run_session

ACCOUNT = "111122223333"


# --- locked out: escalate and draft the ticket -------------------------------------------------------------------


def test_locked_out_escalates_and_saves_the_ticket(lab_for: Any, clean_env: Path) -> None:
    """Rule 5 (docs/engine.md) and the escalation (docs/rescue.md, "Locked out: escalate"): the sole administrator
    was deleted, nobody in the account can manage the key: the session gives the escalation path and drafts the
    ticket."""
    lab = lab_for("sole-admin-deleted")
    key = lab.key_arn("alias/payments")
    run = run_session(key, [*START, ("confirm", "Draft the escalation ticket", True),
                            ("select", "format", "markdown"), ("text", "Save the ticket", "default"),
                            ("confirm", "AWS Support case", False)])
    assert run.code == 4
    assert "Verdict: LOCKED OUT" in run.out
    assert "cloud team or AWS Support" in run.out
    assert "a principal that was deleted" in run.out  # the deciding statement, in plain words
    saved = run.session.saved_ticket
    assert saved is not None and saved.parent == clean_env and saved.suffix == ".md"
    text = saved.read_text()
    assert key in text and "What AWS will ask for" in text and "phone number" in text
    assert "Enable IAM User Permissions" in text  # the policy to restore
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    assert_no_secrets(lab, run.out, run.err, text)
    # Nothing was changed in the account.
    assert "AROA" in lab.admin.raw_key_policy(key)


def test_ctrl_c_while_drafting_saves_the_draft(lab_for: Any, clean_env: Path) -> None:
    lab = lab_for("sole-admin-deleted")
    key = lab.key_arn("alias/payments")
    run = run_session(key, [*START, ("confirm", "Draft", True), ("select", "format", KeyboardInterrupt())])
    assert run.code == 130
    draft = clean_env / f"kms-rescue-ticket-{key.rsplit('/', 1)[1]}.md"
    assert draft.is_file() and key in draft.read_text()
    assert "draft is saved" in run.err
    assert_no_secrets(lab, draft.read_text(), run.out, run.err)


def test_ctrl_c_at_the_first_question_exits_130(lab_for: Any) -> None:
    lab = lab_for("sole-admin-deleted")
    run = run_session(lab.key_arn("alias/payments"), [("confirm", KeyboardInterrupt())])
    assert run.code == 130 and "interrupted" in run.err


def test_declining_the_ticket_points_to_the_command(lab_for: Any, clean_env: Path) -> None:
    lab = lab_for("other-account-only")
    key = lab.key_arn(lab.scenario.keys[0].id)
    run = run_session(key, [*START, ("confirm", "Draft", False)])
    assert run.code == 4
    assert f"kms-rescue ticket {key}" in run.out
    assert not list(clean_env.glob("kms-rescue-ticket-*"))


def test_email_ticket_with_address_and_support_case_fallback(lab_for: Any, clean_env: Path) -> None:
    """--open-case without a support plan falls back to the draft and the console link (the lab has no Support
    API, like an account without a Business plan): the ticket says so."""
    lab = lab_for("sole-admin-deleted")
    key = lab.key_arn("alias/payments")
    run = run_session(key, [*START, ("confirm", "Draft", True), ("select", "format", "email"),
                            ("text", "Send it to", "cloud-team@example.com"), ("text", "Save", "default"),
                            ("confirm", "AWS Support case", True)])
    assert run.code == 4
    text = run.session.saved_ticket.read_text()  # type: ignore[union-attr]
    assert text.startswith("To: cloud-team@example.com\nSubject: KMS key locked out")
    assert "No case was opened" in run.out
    assert "support.console.aws.amazon.com" in text
    assert_no_secrets(lab, run.out, run.err, text)


# --- manageable: the fix ----------------------------------------------------------------------------------------


def test_fix_applied_end_to_end_and_rollback_restores(lab_for: Any, clean_env: Path) -> None:
    """The fix: backup (0600) first, PutKeyPolicy with the safety check on, re-read and re-evaluated; the printed
    restore command puts the backup back."""
    lab = lab_for("principalarn-condition")
    key = lab.key_arn(lab.scenario.keys[0].id)
    before = json.loads(lab.admin.raw_key_policy(key))
    run = run_session(key, [*START, ("select", "apply the fix", "admin"), ("confirm", "Plan a fix", True),
                            ("confirm", "administrator role", False), ("confirm_write", "Apply this policy", True)])
    assert run.code == 0, run.out
    result = run.session.applied
    assert result is not None and result.verified
    # Backup first, private, and exactly the policy that was there.
    backup = Path(result.backup_path)
    assert backup.parent == clean_env
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600
    assert json.loads(backup.read_text()) == before
    # The policy changed: every statement kept, the default statement added; the engine says manageable.
    after = json.loads(lab.admin.raw_key_policy(key))
    assert after["Statement"][: len(before["Statement"])] == before["Statement"]
    assert after["Statement"][-1]["Sid"] == "Enable IAM User Permissions"
    assert not analyze_management(after, key_account=ACCOUNT, key_arn=key).locked_out
    assert "re-evaluated" in run.out and "Applied." in run.out
    # The diff explained each added line.
    assert "# the account principal" in run.out
    # The rollback: run what the printed command says, with boto3.
    command = result.restore_command
    assert command in run.out.replace("\n", "") or command.split(" --region")[0] in run.out.replace("\n", "")
    opts = parse_restore_command(command)
    assert opts["key-id"] == key and opts["policy-name"] == "default"
    assert opts["endpoint-url"] == lab.endpoint and opts["AWS_CONFIG_FILE"] == str(lab.config_path)
    policy_file = opts["policy"].removeprefix("file://")
    lab.client(opts["profile"], "kms", region_name=opts["region"]).put_key_policy(
        KeyId=opts["key-id"], PolicyName=opts["policy-name"], Policy=Path(policy_file).read_text())
    assert json.loads(lab.admin.raw_key_policy(key)) == before
    assert_no_secrets(lab, run.out, run.err, backup.read_text())


def test_fix_with_named_admin_role(lab_for: Any, clean_env: Path) -> None:
    """healthy-default already delegates to the account: only the administrator statement is added."""
    lab = lab_for("healthy-default")
    key = lab.key_arn("alias/payments")
    admin_role = lab.admin.create_role("KeyAdmin")
    run = run_session(key, [*START, ("select", "apply the fix", "default"), ("confirm", "Plan a fix", True),
                            ("confirm", "administrator role", True), ("text", "role ARN", admin_role),
                            ("confirm_write", "Apply", True)])
    assert run.code == 0, run.out
    after = json.loads(lab.admin.raw_key_policy(key))
    assert [s.get("Sid") for s in after["Statement"]][-1] == "Allow access for Key Administrators"
    assert after["Statement"][-1]["Principal"] == {"AWS": admin_role}


def test_applier_choice_and_suggested_admin_is_its_role(lab_for: Any) -> None:
    lab = lab_for("healthy-default")
    key = lab.key_arn("alias/payments")
    run = run_session(key, [*START, ("select", "apply the fix", "admin"), ("confirm", "Plan a fix", True),
                            ("confirm", "administrator role", True), ("text", "role ARN", "default"),
                            ("confirm_write", "Apply", False)])
    assert run.code == 0
    asked = [a for a in run.prompter.asked if a.kind == "text" and "Administrator role ARN" in a.message]
    assert asked[0].default == f"arn:aws:iam::{ACCOUNT}:role/Admin"
    assert "No change made" in run.out


def test_declined_fix_changes_nothing(lab_for: Any, clean_env: Path) -> None:
    lab = lab_for("principalarn-condition")
    key = lab.key_arn(lab.scenario.keys[0].id)
    before = lab.admin.raw_key_policy(key)
    run = run_session(key, [*START, ("select", "apply the fix", "admin"), ("confirm", "Plan a fix", True),
                            ("confirm", "administrator role", False), ("confirm_write", "Apply", False)])
    assert run.code == 0
    assert lab.admin.raw_key_policy(key) == before
    assert not list(clean_env.glob("kms-key-policy-*"))
    assert "+      \"Sid\": \"Enable IAM User Permissions\"" in run.out
    # Issue 10: a declined proposal is saved, and the session says where.
    saved = run.session.saved_proposal
    assert saved is not None and str(saved) in "".join(run.out.split())
    assert "Enable IAM User Permissions" in saved.read_text()
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600


def test_refused_fix_when_the_named_admin_is_denied(lab_for: Any, clean_env: Path) -> None:
    """Explicit deny wins (rule 4): the plan keeps the owner's Deny, so an administrator it covers would not be able
    to manage the key: the engine check refuses before anything is written."""
    deny_all_but_root = {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "Root", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
             "Action": "kms:*", "Resource": "*"},
            {"Sid": "OnlyRootManages", "Effect": "Deny", "NotPrincipal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
             "Action": "kms:PutKeyPolicy", "Resource": "*"},
        ],
    }
    doc = scenario_with("healthy-default")
    doc["keys"][0]["policy"] = deny_all_but_root
    doc["history"] = []
    lab = lab_for(doc)
    key = lab.key_arn("alias/payments")
    admin_role = lab.admin.create_role("KeyAdmin")
    before = lab.admin.raw_key_policy(key)
    run = run_session(key, [*START, ("confirm", "Plan a fix", True), ("confirm", "administrator role", True),
                            ("text", "role ARN", admin_role), ("confirm_write", "Apply", True)])
    assert "Refused: nothing was written to the key" in run.out
    text = " ".join(run.out.split())
    # Issue 10: the role never had kms:PutKeyPolicy, so it "would not gain" it; the blocking statement is named.
    assert f"the administrator {admin_role} would not gain kms:PutKeyPolicy (blocked by key policy statement " \
           '"OnlyRootManages")' in text
    assert "would lose" not in text
    assert lab.admin.raw_key_policy(key) == before
    assert run.code == 0  # the key is still manageable; nothing changed
    assert list(clean_env.glob("kms-key-policy-*")), "the backup is written before the check"


# --- recoverable: next step and re-run ---------------------------------------------------------------------------


def test_recoverable_shows_the_step_and_stops(lab_for: Any) -> None:
    lab = lab_for("rootless-admin-role")
    key = lab.key_arn(lab.scenario.keys[0].id)
    run = run_session(key, [*START, ("select", "Run again", "")])
    assert run.code == 3
    assert "What to do next" in run.out
    assert f"arn:aws:iam::{ACCOUNT}:role/KeyAdmin" in run.out
    choices = next(a for a in run.prompter.asked if a.kind == "select").choices
    assert Choice(f"assume arn:aws:iam::{ACCOUNT}:role/KeyAdmin", f"arn:aws:iam::{ACCOUNT}:role/KeyAdmin") in choices


def test_recoverable_rerun_with_the_admin_role_then_fix(lab_for: Any, clean_env: Path) -> None:
    """Recoverable → re-run assuming the named role (which the app may assume) → manageable → fix applied."""
    doc = scenario_with("rootless-admin-role")
    for ident in doc["identities"]:
        if ident["profile"] == "app":
            ident["policies"][0]["Statement"][0]["Action"].append("sts:AssumeRole")
    lab = lab_for(doc)
    key = lab.key_arn(lab.scenario.keys[0].id)
    role = f"arn:aws:iam::{ACCOUNT}:role/KeyAdmin"
    # The root profile connects, but is never offered as a base for AssumeRole (AWS does not let the root user
    # assume a role): app is the only base, so the session does not ask which.
    run = run_session(key, [*START, ("select", "Run again", role),
                            ("confirm", "Plan a fix", True), ("confirm", "administrator role", True),
                            ("text", "role ARN", "default"), ("confirm_write", "Apply", True)])
    assert run.code == 0, run.out
    assert "Running again with KeyAdmin@app" in run.out
    assert "Verdict: RECOVERABLE" in run.out and "Verdict: MANAGEABLE" in run.out
    after = json.loads(lab.admin.raw_key_policy(key))
    assert after["Statement"][-1]["Sid"] == "Enable IAM User Permissions"
    # The suggested administrator is the role that applied it, which the policy already names with kms:*: the
    # plan does not add a second statement for it (issue 10: the proposal is idempotent).
    assert "already names " + role in run.out
    assert "Allow access for Key Administrators" not in {s.get("Sid") for s in after["Statement"]}
    # The restore command runs as printed: it runs the saved script, which assumes the role again first.
    result = run.session.applied
    assert result.restore_command == f"sh {result.restore_file}"
    assert f"aws sts assume-role --role-arn {role}" in result.restore_file.read_text()
    assert result.restore_command in run.out
    assert_no_secrets(lab, run.out, run.err)


def test_added_role_is_probed(lab_for: Any) -> None:
    """Roles typed at the identities step are assumed from the chosen identity."""
    doc = scenario_with("rootless-admin-role")
    for ident in doc["identities"]:
        if ident["profile"] == "app":
            ident["policies"][0]["Statement"][0]["Action"].append("sts:AssumeRole")
    lab = lab_for(doc)
    key = lab.key_arn(lab.scenario.keys[0].id)
    role = f"arn:aws:iam::{ACCOUNT}:role/KeyAdmin"
    run = run_session(key, [("confirm", "Investigate", True), ("checkbox", "identities", ["app"]),
                            ("text", "Add a role", role), ("text", "Session name", "default"),
                            ("text", "Add a role", ""), ("confirm", "Plan a fix", False)])
    assert run.code == 0
    assert "KeyAdmin@app" in run.out and "Verdict: MANAGEABLE" in run.out


def test_a_policy_that_exempts_one_session_is_completed_with_that_session(lab_for: Any, clean_env: Path) -> None:
    """Issue 10: explicit-deny-trap exempts only the break-glass session of role BreakGlass. The session offers that
    role with the session the policy names (asked, with it as the default), the re-run assumes it as
    BreakGlass/break-glass, and the key is manageable. The root user is never offered as a base for AssumeRole
    (see test_recoverable_rerun_with_the_admin_role_then_fix)."""
    lab = lab_for("explicit-deny-trap")
    key = lab.key_arn(lab.scenario.keys[0].id)
    role = f"arn:aws:iam::{ACCOUNT}:role/BreakGlass"
    run = run_session(key, [*START, ("select", "Run again", role),
                            ("select", "from which identity", "admin"),
                            ("text", "Session name for BreakGlass", "default"),
                            ("confirm", "Plan a fix", False)])
    again = next(a for a in run.prompter.asked if a.kind == "select" and "Run again" in a.message)
    assert any("as session break-glass" in c.title for c in again.choices)
    asked = next(a for a in run.prompter.asked if a.kind == "text" and "Session name" in a.message)
    assert asked.default == "break-glass"
    assert "Verdict: MANAGEABLE" in run.out
    assert "assumed-role/BreakGlass/break-glass" in run.out


def test_a_failed_assume_role_shows_aws_reason_and_offers_the_escalation(lab_for: Any, clean_env: Path) -> None:
    """The re-run's AssumeRole is denied (the admin profile lost sts:AssumeRole): AWS's reason is shown, and with
    no path left the session offers the escalation instead of stopping."""
    doc = scenario_with("explicit-deny-trap")
    for ident in doc["identities"]:
        for pol in ident.get("policies", []):
            for st in pol["Statement"]:
                if isinstance(st["Action"], list) and "sts:AssumeRole" in st["Action"]:
                    st["Action"].remove("sts:AssumeRole")
    lab = lab_for(doc)
    key = lab.key_arn(lab.scenario.keys[0].id)
    role = f"arn:aws:iam::{ACCOUNT}:role/BreakGlass"
    run = run_session(key, [*START, ("select", "Run again", role),
                            ("select", "from which identity", lambda choices: choices[0].value),
                            ("text", "Session name for BreakGlass", "default"),
                            ("confirm", "Draft the escalation ticket", False)])
    text = " ".join(run.out.split())
    assert "sts:AssumeRole of " + role + " failed: AccessDenied" in text
    assert "None of the paths tried could manage the key" in text
    assert any("Draft the escalation ticket" in m for m in run.asked("confirm"))


# --- undetermined and intentional locks --------------------------------------------------------------------------


def test_undetermined_shows_history_then_escalates(lab_for: Any, clean_env: Path) -> None:
    doc = scenario_with("policy-unreadable-history")
    doc["history"] = []
    lab = lab_for(doc)
    key = lab.key_arn(lab.scenario.keys[0].id)
    run = run_session(key, [*START, ("confirm", "Draft", True), ("select", "format", "markdown"),
                            ("text", "Save", "default"), ("confirm", "Support", False)])
    assert run.code == 5
    assert "What CloudTrail recovered" in run.out
    assert "Escalate" in run.out
    text = run.session.saved_ticket.read_text()  # type: ignore[union-attr]
    assert "KMS key policy unreadable" in text and "AWS's default key policy" in text


def test_recoverable_from_history_names_the_role(lab_for: Any) -> None:
    """Nobody can read the policy, but CloudTrail has it: the verdict comes from the history."""
    lab = lab_for("policy-unreadable-history")
    key = lab.key_arn(lab.scenario.keys[0].id)
    run = run_session(key, [*START, ("select", "Run again", "")])
    assert run.code == 3
    assert "last one CloudTrail recorded" in run.out


def test_nitro_enclave_lock_is_reported_as_intentional(lab_for: Any) -> None:
    """docs/rescue.md, "Intentional locks": a key locked to Nitro Enclaves attestation is not a lockout to fix: no
    fix, no ticket."""
    lab = lab_for("nitro-enclave")
    key = lab.key_arn(lab.scenario.keys[0].id)
    run = run_session(key, START)
    assert run.code == 4
    assert "on purpose" in run.out and "Nothing to fix" in run.out
    assert not any("Draft" in m or "fix" in m for m in run.asked())


# --- the key and identities steps ---------------------------------------------------------------------------------


def _without_regions(lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point AWS_CONFIG_FILE at a copy of the lab's config without any `region` (so no Region is found)."""
    assert lab.config_path is not None
    copy = lab.config_path.with_name("aws-config-no-region")
    copy.write_text(re.sub(r"(?m)^region = .*\n", "", lab.config_path.read_text(encoding="utf-8")), encoding="utf-8")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(copy))


def test_a_key_id_uses_the_profiles_region_without_asking(lab_for: Any) -> None:
    # The AWS CLI's Region chain: no --region, no AWS_REGION, so the default profile's region (the lab's config).
    lab = lab_for("sole-admin-deleted")
    key_id = lab.key_id("alias/payments")
    run = run_session(None, [("text", "Which KMS key", key_id), ("confirm", f"in {lab.region}", True),
                             ("checkbox", "default"), ("text", "Add a role", ""), ("confirm", "Draft", False)])
    assert run.code == 4
    assert lab.key_arn(key_id) in run.out


def test_missing_key_is_asked_and_region_too(lab_for: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    lab = lab_for("sole-admin-deleted")
    _without_regions(lab, monkeypatch)
    key_id = lab.key_id("alias/payments")
    run = run_session(None, [("text", "Which KMS key", key_id), ("text", "Region", "us-east-1"),
                             ("confirm", "Investigate", True), ("checkbox", "default"), ("text", "Add a role", ""),
                             ("confirm", "Draft", False)])
    assert run.code == 4
    assert lab.key_arn(key_id) in run.out


def test_declining_the_key_asks_for_another(lab_for: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    lab = lab_for("sole-admin-deleted")
    _without_regions(lab, monkeypatch)
    key = lab.key_arn("alias/payments")
    run = run_session("alias/payments", [("text", "Region", "us-east-1"), ("confirm", "Investigate", False),
                                         ("text", "Which KMS key", key), ("confirm", "Investigate", True),
                                         ("checkbox", "default"), ("text", "Add a role", ""),
                                         ("confirm", "Draft", False)])
    assert run.code == 4


@pytest.mark.parametrize(("value", "problem"), [
    ("not-a-key", "cannot read the key"),
    ("arn:aws:kms:us-east-1:1111:key/x", "12-digit account"),
    ("", "enter the key"),
])
def test_key_validation_messages(clean_env: Path, value: str, problem: str) -> None:
    session = RescueSession(FakePrompter([]), Console(file=io.StringIO()), Console(file=io.StringIO()),
                            SessionSettings(region="us-east-1"))
    assert problem in (session._validate_key(value) or "")
    assert session._validate_key(f"arn:aws:kms:us-east-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab") is None


def test_unticking_everything_asks_again(lab_for: Any) -> None:
    lab = lab_for("sole-admin-deleted")
    run = run_session(lab.key_arn("alias/payments"), [("confirm", "Investigate", True), ("checkbox", []),
                                                      ("checkbox", ["app"]), ("text", "Add a role", ""),
                                                      ("confirm", "Draft", False)])
    assert "Pick at least one identity" in run.out
    assert "root" not in [line.split()[1] for line in run.out.splitlines() if line.startswith("│ ")]


def test_fake_prompter_checks_the_script() -> None:
    p = FakePrompter([("confirm", "Apply", True)])
    with pytest.raises(ScriptError, match="expected a confirm question containing 'Apply'"):
        p.confirm("Draft the ticket?")
    p = FakePrompter([("text", "bad")])
    with pytest.raises(ScriptError, match="invalid"):
        p.text("Role?", validate=lambda v: "no" if v == "bad" else None)
    with pytest.raises(ScriptError, match="script exhausted"):
        FakePrompter([]).select("x", [Choice("a", "a")])


# --- non-interactive ---------------------------------------------------------------------------------------------


def test_no_input_prints_the_report_with_its_exit_code(lab_for: Any, capsys: pytest.CaptureFixture[str]) -> None:
    lab = lab_for("sole-admin-deleted")
    code = main(["rescue", lab.key_arn("alias/payments"), "--no-input"])
    out, err = capsys.readouterr()
    assert code == 4
    assert "kms-rescue report" in out and "LOCKED OUT" in out
    assert_no_secrets(lab, out, err)


def test_bare_key_routes_to_rescue_without_a_terminal(lab_for: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """``kms-rescue KEY`` is ``kms-rescue rescue KEY``; under pytest stdin is not a terminal: the report."""
    lab = lab_for("healthy-default")
    code = main([lab.key_arn("alias/payments")])
    assert code == 0
    assert "MANAGEABLE" in capsys.readouterr().out


def test_no_input_without_key_is_a_usage_error(clean_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rescue", "--no-input"]) == 2
    err = capsys.readouterr().err
    assert "no key given" in err and "Traceback" not in err


def test_bad_key_is_one_line_exit_2(clean_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rescue", "--no-input", "alias/x"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0].startswith("kms-rescue: error:") and "--region" in err[0]


def test_a_bad_key_in_the_session_is_asked_again(lab_for: Any, clean_env: Path) -> None:
    """Issue 10: at a terminal, a mistyped key on the command line is asked again instead of exiting 2."""
    lab = lab_for("healthy-default")
    key = lab.key_arn("alias/payments")
    run = run_session("arn:aws:kms:us-east-1:111122223333:kye/oops",
                      [("text", "Which KMS key", key), *START, ("select", "apply the fix", "admin"),
                       ("confirm", "Plan a fix", False)])
    assert "Enter the key again" in run.out
    assert run.code == 0


def test_help_has_an_example(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rescue", "--help"]) == 0
    assert "Example" in capsys.readouterr().out


def test_is_interactive_needs_two_terminals() -> None:
    from kms_rescue.cli.rescue import is_interactive

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert is_interactive(False, Tty(), Tty())
    assert not is_interactive(True, Tty(), Tty())
    assert not is_interactive(False, io.StringIO(), Tty())
    assert not is_interactive(False, Tty(), io.StringIO())


def test_builtin_scenarios_used_here_exist() -> None:
    for name in ("sole-admin-deleted", "principalarn-condition", "healthy-default", "rootless-admin-role",
                 "policy-unreadable-history", "nitro-enclave", "other-account-only"):
        assert load_scenario(name).name == name


# --- Ctrl-C and MFA ------------------------------------------------------------------------------------------------


def test_sigint_is_held_back_during_the_write() -> None:
    import signal

    from kms_rescue.cli.rescue import sigint_held

    before = signal.getsignal(signal.SIGINT)
    with sigint_held() as pressed:
        os.kill(os.getpid(), signal.SIGINT)  # would raise KeyboardInterrupt here without the hold
        assert pressed == [signal.SIGINT]
    assert signal.getsignal(signal.SIGINT) is before


def test_ctrl_c_before_the_write_stops_before_it(lab_for: Any, clean_env: Path) -> None:
    """Only the write itself is held back (issue 10): Ctrl-C once the backup is made and just before PutKeyPolicy
    is sent still interrupts, and the key keeps its policy. (Signals during the write: tests/cli/test_fix_signals.py,
    with real signals sent to a real process.)"""
    import signal

    lab = lab_for("principalarn-condition")
    key = lab.key_arn(lab.scenario.keys[0].id)
    before = lab.admin.raw_key_policy(key)

    def press_ctrl_c_before_write(session: RescueSession) -> None:
        say = session.say

        def wrapped(text: str = "", style: str | None = None) -> None:
            say(text, style)
            if text.startswith("Backed up the current policy"):
                os.kill(os.getpid(), signal.SIGINT)

        session.say = wrapped  # type: ignore[method-assign]

    out, err = io.StringIO(), io.StringIO()
    prompter = FakePrompter([*START, ("select", "apply the fix", "admin"), ("confirm", "Plan a fix", True),
                             ("confirm", "administrator role", False), ("confirm_write", "Apply", True)])
    code = run_rescue(key, SessionSettings(backup_dir=str(clean_env)), interactive=True, prompter=prompter,
                      consoles=(Console(file=out, width=140), Console(file=err, width=140)), progress_bar=False,
                      on_session=press_ctrl_c_before_write)
    assert code == 130
    assert lab.admin.raw_key_policy(key) == before
    assert "nothing was half-applied" in err.getvalue()


def test_a_write_needs_the_typed_token(lab_for: Any, clean_env: Path) -> None:
    """Issue 10: a write needs the first characters of the key id typed and Enter; a "y" is a No."""
    lab = lab_for("principalarn-condition")
    key = lab.key_arn(lab.scenario.keys[0].id)
    before = lab.admin.raw_key_policy(key)
    run = run_session(key, [*START, ("select", "apply the fix", "admin"), ("confirm", "Plan a fix", True),
                            ("confirm", "administrator role", False), ("confirm_write", "Apply", "y")])
    assert lab.admin.raw_key_policy(key) == before
    asked = next(a for a in run.prompter.asked if a.kind == "confirm_write")
    assert asked.default == lab.scenario.keys[0].id[:8]
    assert "No change made" in run.out


def test_mfa_profiles_are_asked_once_in_the_main_thread(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Role profiles with mfa_serial: the code is asked before probing (never from a probe thread), and the
    resolved role credentials are cached for the probes (write_cli_cache)."""
    import kms_rescue.aws.sessions as sessions
    from kms_rescue.aws.results import IdentitySpec

    seen: list[Any] = []

    def fake_open_session(spec: Any, options: Any, **_kw: Any) -> None:
        seen.append((spec.name, options.write_cli_cache, options.mfa_prompter("Enter MFA code for arn:aws:iam::"
                                                                              "111122223333:mfa/alice: ")))

    monkeypatch.setattr(sessions, "open_session", fake_open_session)
    prompter = FakePrompter([("secret", "MFA code for admin", "123456")])
    session = RescueSession(prompter, Console(file=io.StringIO()), Console(file=io.StringIO()))
    session.unlock_mfa([IdentitySpec(name="admin", source="profile", profile="admin", kind="assume_role",
                                     mfa_serial="arn:aws:iam::111122223333:mfa/alice"),
                        IdentitySpec(name="app", source="profile", profile="app", kind="static")])
    assert seen == [("admin", True, "123456")]
    assert prompter.asked[0].answer == "***"  # the code is never recorded


# --- the key's state and a key that is not found (docs/report.md, "The key's state comes first") -----------------


def test_pending_deletion_is_said_before_anything_else(lab_for: Any, clean_env: Path) -> None:
    lab = lab_for("pending-deletion")
    key = lab.key_arn(lab.scenario.keys[0].id)
    run = run_session(key, [*START, ("confirm_write", "Cancel the scheduled deletion", False),
                            ("confirm", "Plan a fix", False)])
    first = run.out.index("URGENT: The key is scheduled for deletion")
    assert first < run.out.index("Verdict:") and first < run.out.index("DescribeKey")
    assert "admin can cancel it now (kms:CancelKeyDeletion)" in " ".join(run.out.split())
    # Declined: the key stays scheduled, and the session says what runs it back.
    assert "aws kms cancel-key-deletion --key-id " + key in run.out
    assert lab.client("admin", "kms").describe_key(KeyId=key)["KeyMetadata"]["KeyState"] == "PendingDeletion"


def test_pending_deletion_is_cancelled_first_then_the_key_enabled(lab_for: Any, clean_env: Path) -> None:
    """Issue 10: the session offers to cancel a scheduled deletion before anything else (the identity it offers
    was evaluated for kms:CancelKeyDeletion), with a typed confirmation; KMS leaves a cancelled key Disabled (KMS
    Developer Guide, "Deleting AWS KMS keys"), so it then offers kms:EnableKey. Each is read back with DescribeKey."""
    lab = lab_for("pending-deletion")
    key = lab.key_arn(lab.scenario.keys[0].id)
    run = run_session(key, [*START, ("confirm_write", "Cancel the scheduled deletion", True),
                            ("confirm_write", "Enable", True), ("confirm", "Plan a fix", False)])
    text = " ".join(run.out.split())
    assert "Done: the deletion is cancelled; the key's state is now Disabled" in text
    assert "Done: the key is enabled; the key's state is now Enabled" in text
    assert text.index("deletion is cancelled") < text.index("Plan a fix") if "Plan a fix" in text else True
    assert lab.client("admin", "kms").describe_key(KeyId=key)["KeyMetadata"]["KeyState"] == "Enabled"


def test_a_disabled_key_says_how_to_enable_it(lab_for: Any, clean_env: Path) -> None:
    lab = lab_for("pending-deletion")
    key = lab.key_arn(lab.scenario.keys[1].id)
    run = run_session(key, [*START, ("confirm_write", "Enable", "n"), ("confirm", "Plan a fix", False)])
    assert "aws kms enable-key --key-id " + key in run.out
    assert lab.client("admin", "kms").describe_key(KeyId=key)["KeyMetadata"]["KeyState"] == "Disabled"


def test_a_key_that_does_not_exist_is_not_escalated(lab_for: Any, clean_env: Path) -> None:
    lab_for("healthy-default")
    run = run_session("11111111-2222-3333-4444-555555555555", START)  # the Region: the profile's
    assert run.code == 6
    assert "Verdict: NOT FOUND" in run.out and "check the key id" in run.out
    assert not [a for a in run.prompter.asked if "ticket" in a.message.lower()]


def test_the_session_fix_drops_a_deleted_principal_and_kms_accepts_it(lab_for: Any, clean_env: Path) -> None:
    """Issue 10: the default statement plus one naming the deleted role/OldAdmin (shown as AROA…): the session's
    diff removes the id with its reason, and KMS accepts the write (it refused the fix that kept it)."""
    lab = lab_for(stale_principal_scenario())
    key = lab.key_arn("alias/payments")
    unique_id = json.loads(lab.admin.raw_key_policy(key))["Statement"][1]["Principal"]["AWS"]
    run = run_session(key, [*START, ("select", "apply the fix", "admin"), ("confirm", "Plan a fix", True),
                            ("confirm", "administrator role", False), ("confirm_write", "Apply", True)])
    assert run.code == 0, run.out
    assert f"removed: {unique_id}" in run.out and "Applied." in run.out
    after = json.loads(lab.admin.raw_key_policy(key))
    assert unique_id not in json.dumps(after)


def test_the_identities_table_keeps_the_caller_readable_at_100_columns(lab_for: Any, clean_env: Path) -> None:
    """At 100 columns the caller's ARN goes under the identity's name in one column of its own width; it is never
    squeezed to one character per line (the outcome columns use their short spellings)."""
    from kms_rescue.cli.rescue import calls_table

    lab = lab_for("sole-admin-deleted")
    run = run_session(lab.key_arn(lab.scenario.keys[0].id), [*START, ("confirm", "Draft", False)])
    report = run.session.report
    assert report is not None
    out = io.StringIO()
    Console(file=out, width=100, no_color=True, highlight=False).print(calls_table(report))
    lines = out.getvalue().splitlines()
    assert all(len(line) <= 100 for line in lines)
    first_column = [line[2:13].strip() for line in lines[4:] if line.strip()]
    assert not [cell for cell in first_column if len(cell) == 1], out.getvalue()
    assert "denied" in out.getvalue() and "access_denied" not in out.getvalue()
