"""Applying a repaired policy: backup first (0600), engine check, PutKeyPolicy with the lockout safety check on
(never bypassed), verification, and the restore command (docs/engine.md: lockout check)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import stat
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from botocore.stub import Stubber

from kms_rescue.aws.apply import (
    Applier,
    ApplyError,
    FixRefused,
    apply_fix,
    parse_restore_command,
    restore_command,
    write_backup,
)
from kms_rescue.plan import policy_text, propose_fix
from tests.helpers.plans import ACCOUNT, KEY, ROLE_ONLY, SOLE_ADMIN_DELETED

BREAK_GLASS_SESSION = f"arn:aws:sts::{ACCOUNT}:assumed-role/BreakGlass/oncall"
NOW = dt.datetime(2026, 11, 2, 9, 30, 0, tzinfo=dt.timezone.utc)


def kms_client() -> Any:
    session = botocore.session.Session()
    return session.create_client("kms", region_name="us-east-1", aws_access_key_id="testing",
                                 aws_secret_access_key="testing")


def applier(arn: str = BREAK_GLASS_SESSION, policies: Any = ()) -> Applier:
    return Applier(arn=arn, identity_policies=list(policies), profile="ops", source="profile")


def test_apply_backs_up_checks_writes_without_bypass_and_verifies(tmp_path: Path) -> None:
    """The write carries exactly KeyId, PolicyName and Policy: BypassPolicyLockoutSafetyCheck is never sent, so
    KMS's own lockout safety check stays on."""
    plan = propose_fix(ROLE_ONLY, key_arn=KEY)
    current_text = json.dumps(ROLE_ONLY)  # as KMS returns it: its own formatting
    kms = kms_client()
    with Stubber(kms) as stub:
        stub.add_response("get_key_policy", {"Policy": current_text, "PolicyName": "default"},
                          {"KeyId": KEY, "PolicyName": "default"})
        stub.add_response("put_key_policy", {},
                          {"KeyId": KEY, "PolicyName": "default", "Policy": plan.proposed_text})
        stub.add_response("get_key_policy", {"Policy": plan.proposed_text}, {"KeyId": KEY, "PolicyName": "default"})
        result = apply_fix(plan, kms, applier(), backup_dir=tmp_path, now=NOW)
        stub.assert_no_pending_responses()
    assert result.applied and result.verified
    assert result.backup_path == tmp_path / "kms-key-policy-1234abcd-12ab-34cd-56ef-1234567890ab-20261102T093000Z.json"
    assert result.backup_path.read_bytes() == current_text.encode()  # byte for byte what KMS returned
    assert stat.S_IMODE(result.backup_path.stat().st_mode) == 0o600
    assert [c.allowed for c in result.checks] == [True]
    opts = parse_restore_command(result.restore_command)
    assert opts == {"key-id": KEY, "policy-name": "default", "policy": f"file://{result.backup_path}",
                    "profile": "ops", "region": "us-east-1"}


def test_refused_when_the_applier_would_lose_put_key_policy(tmp_path: Path) -> None:
    """A policy that drops the applier (a hand-edited one) is refused before the write: the backup exists, and no
    PutKeyPolicy call is made (the stubber has none to answer)."""
    plan = propose_fix(ROLE_ONLY, key_arn=KEY)
    locked = dataclasses.replace(plan, proposed={"Version": "2012-10-17", "Statement": [
        {"Sid": "Other", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:role/Someone"},
         "Action": "kms:*", "Resource": "*"}]})
    kms = kms_client()
    with Stubber(kms) as stub:
        stub.add_response("get_key_policy", {"Policy": json.dumps(ROLE_ONLY)}, {"KeyId": KEY, "PolicyName": "default"})
        with pytest.raises(FixRefused) as info:
            apply_fix(locked, kms, applier(), backup_dir=tmp_path, now=NOW)
        stub.assert_no_pending_responses()
    err = info.value
    assert str(err).startswith("refused: you (the identity applying it) would lose kms:PutKeyPolicy")
    assert "\n" not in str(err)
    assert err.backup_path is not None and err.backup_path.is_file() and not err.applied
    assert [c.allowed for c in err.checks] == [False]


def test_refused_when_the_policy_would_lock_the_key_out(tmp_path: Path) -> None:
    plan = propose_fix(ROLE_ONLY, key_arn=KEY)
    nobody = dataclasses.replace(plan, proposed={"Version": "2012-10-17", "Statement": [
        {"Sid": "UseOnly", "Effect": "Allow", "Principal": {"AWS": BREAK_GLASS_SESSION}, "Action": "kms:Decrypt",
         "Resource": "*"}]})
    kms = kms_client()
    with Stubber(kms) as stub:
        stub.add_response("get_key_policy", {"Policy": json.dumps(ROLE_ONLY)}, {"KeyId": KEY, "PolicyName": "default"})
        with pytest.raises(FixRefused, match="would lose"):
            apply_fix(nobody, kms, applier(), backup_dir=tmp_path, now=NOW)


def test_policy_changed_since_it_was_read_is_refused_before_any_backup(tmp_path: Path) -> None:
    plan = propose_fix(ROLE_ONLY, key_arn=KEY)
    kms = kms_client()
    with Stubber(kms) as stub:
        stub.add_response("get_key_policy", {"Policy": json.dumps(SOLE_ADMIN_DELETED)},
                          {"KeyId": KEY, "PolicyName": "default"})
        with pytest.raises(ApplyError, match="changed since it was read"):
            apply_fix(plan, kms, applier(), backup_dir=tmp_path, now=NOW)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(("code", "message"), [
    ("MalformedPolicyDocumentException", "The new key policy will not allow you to update the key policy in the "
                                         "future."),
    ("AccessDeniedException", "User is not authorized to perform: kms:PutKeyPolicy"),
])
def test_kms_refusal_is_one_line_and_leaves_the_backup(tmp_path: Path, code: str, message: str) -> None:
    """KMS's lockout safety check (MalformedPolicyDocumentException) or a denial: nothing changed, one line."""
    plan = propose_fix(ROLE_ONLY, key_arn=KEY)
    kms = kms_client()
    with Stubber(kms) as stub:
        stub.add_response("get_key_policy", {"Policy": json.dumps(ROLE_ONLY)}, {"KeyId": KEY, "PolicyName": "default"})
        stub.add_client_error("put_key_policy", service_error_code=code, service_message=message, http_status_code=400)
        stub.add_response("get_key_policy", {"Policy": json.dumps(ROLE_ONLY)}, {"KeyId": KEY, "PolicyName": "default"})
        with pytest.raises(ApplyError) as info:
            apply_fix(plan, kms, applier(), backup_dir=tmp_path, now=NOW)
        stub.assert_no_pending_responses()  # the fresh read after the failed write was made
    assert str(info.value).startswith(f"not applied: KMS answered {code}: ")
    assert "a fresh read shows the key still has the old policy" in str(info.value) and "\n" not in str(info.value)
    assert not info.value.applied and info.value.state == "old"
    assert info.value.backup_path is not None and info.value.backup_path.is_file()


@pytest.mark.parametrize(("after", "state"), [("new", "new"), ("other", "other"), ("error", "unknown")])
def test_after_a_failed_write_a_fresh_read_says_what_is_on_the_key(tmp_path: Path, after: str, state: str) -> None:
    """Issue 10: a write that errors may still have landed (a timeout after the service applied it). The answer
    is a fresh read: the new policy (go on to verify), someone else's policy (show the diff), or unknown."""
    plan = propose_fix(ROLE_ONLY, key_arn=KEY)
    other = {"Version": "2012-10-17", "Statement": [*ROLE_ONLY["Statement"], {
        "Sid": "SomeoneElse", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
        "Action": "kms:*", "Resource": "*"}]}
    kms = kms_client()
    with Stubber(kms) as stub:
        stub.add_response("get_key_policy", {"Policy": json.dumps(ROLE_ONLY)}, None)
        stub.add_client_error("put_key_policy", service_error_code="KMSInternalException", service_message="boom",
                              http_status_code=500)
        if after == "new":
            stub.add_response("get_key_policy", {"Policy": plan.proposed_text}, None)
            stub.add_response("get_key_policy", {"Policy": plan.proposed_text}, None)
            result = apply_fix(plan, kms, applier(), backup_dir=tmp_path, now=NOW)
            assert result.applied and result.verified
            assert "a fresh read shows the new policy on the key" in result.verification[0]
            assert result.journal is not None
            assert json.loads(result.journal.read_text().splitlines()[-1])["outcome"] == "verified"
            return
        if after == "other":
            stub.add_response("get_key_policy", {"Policy": json.dumps(other)}, None)
        else:
            stub.add_client_error("get_key_policy", service_error_code="ThrottlingException", http_status_code=400)
        with pytest.raises(ApplyError) as info:
            apply_fix(plan, kms, applier(), backup_dir=tmp_path, now=NOW)
    assert info.value.state == state
    if state == "other":
        assert '+      "Sid": "SomeoneElse",' in info.value.diff
    else:
        assert "whether the write landed is unknown" in str(info.value)
    entries = [json.loads(x) for x in (tmp_path / f"kms-rescue-journal-{KEY.rsplit('/', 1)[-1]}.jsonl")
               .read_text().splitlines()]
    assert [e["outcome"] for e in entries] == ["writing", state]


def test_verification_reports_a_different_policy(tmp_path: Path) -> None:
    plan = propose_fix(ROLE_ONLY, key_arn=KEY)
    kms = kms_client()
    with Stubber(kms) as stub:
        stub.add_response("get_key_policy", {"Policy": json.dumps(ROLE_ONLY)}, {"KeyId": KEY, "PolicyName": "default"})
        stub.add_response("put_key_policy", {}, None)
        stub.add_response("get_key_policy", {"Policy": json.dumps(ROLE_ONLY)}, None)
        result = apply_fix(plan, kms, applier(), backup_dir=tmp_path, now=NOW)
    assert result.applied and not result.verified
    assert any("differs" in n for n in result.verification)


def test_unchanged_plan_is_not_applied(tmp_path: Path) -> None:
    plan = propose_fix({"Version": "2012-10-17", "Statement": [
        {"Sid": "x", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "kms:*",
         "Resource": "*"}]}, key_arn=KEY)
    with pytest.raises(ApplyError, match="nothing to apply"):
        apply_fix(plan, kms_client(), applier(), backup_dir=tmp_path)


def test_backup_never_overwrites(tmp_path: Path) -> None:
    first = write_backup("{}", key_id="k", directory=tmp_path, now=NOW)
    second = write_backup("{}", key_id="k", directory=tmp_path, now=NOW)
    assert first != second and second.name.endswith("-2.json")
    assert stat.S_IMODE(second.stat().st_mode) == 0o600


def test_backup_dir_not_writable_is_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ApplyError, match="nothing was changed"):
        write_backup("{}", key_id="k", directory=blocker / "sub")


@pytest.mark.parametrize(("who", "expected"), [
    (Applier("arn", None, profile="ops", endpoint_url="http://127.0.0.1:4566", config_file="/tmp/lab config"),
     "AWS_CONFIG_FILE='/tmp/lab config' aws kms put-key-policy"),
    (Applier("arn", None, source="env"), "# with the same AWS_ACCESS_KEY_ID"),
])
def test_restore_command_variants(tmp_path: Path, who: Applier, expected: str) -> None:
    command = restore_command(KEY, tmp_path / "b.json", who)
    assert expected in command
    opts = parse_restore_command(command)
    assert opts["key-id"] == KEY and opts["policy"] == f"file://{tmp_path / 'b.json'}"
    if who.endpoint_url:
        assert opts["endpoint-url"] == who.endpoint_url
    if who.source == "env":
        assert "profile" not in opts


def test_restore_for_an_assumed_role_runs_as_printed(tmp_path: Path) -> None:
    """Issue 10: for an assumed role the printed command is one line that runs the saved script, which assumes the
    role again from the same base profile before putting the backup back (a bare --profile would be the base
    identity, which KMS's safety check refuses)."""
    from kms_rescue.aws.apply import restore_for

    backup = write_backup("{}", key_id="k", directory=tmp_path, now=NOW)
    who = Applier(f"arn:aws:sts::{ACCOUNT}:assumed-role/KeyAdmin/oncall", None, profile="base", source="assume_role",
                  role_arn=f"arn:aws:iam::{ACCOUNT}:role/KeyAdmin")
    line, script = restore_for(KEY, backup, who)
    assert line == f"sh {script}" and "\n" not in line
    text = script.read_text()
    assert f"aws sts assume-role --role-arn arn:aws:iam::{ACCOUNT}:role/KeyAdmin --role-session-name oncall" in text
    assert "--profile base" in text.split("assume-role", 1)[1].splitlines()[0]
    last = text.splitlines()[-1]
    assert last.startswith("aws kms put-key-policy") and "--profile" not in last
    assert stat.S_IMODE(script.stat().st_mode) == 0o600
    again = restore_for(KEY, backup, who)[1]
    assert again != script, "a second script never overwrites the first"


def test_lab_refuses_nothing_written_when_the_applier_would_be_locked_out(lab_for: Any, clean_env: Path) -> None:
    """End to end in the lab: a plan whose policy would drop the applier is refused by the engine check, and the
    key's policy is untouched."""
    from kms_rescue.aws.apply import applier_for, kms_client_for
    from kms_rescue.aws.results import IdentitySpec

    lab = lab_for("principalarn-condition")
    key = lab.key_arn(lab.scenario.keys[0].id)
    before = lab.admin.raw_key_policy(key)
    plan = propose_fix(json.loads(before), key_arn=key)
    drop_root = dataclasses.replace(plan, proposed={"Version": "2012-10-17", "Statement": [
        s for s in plan.proposed["Statement"] if s.get("Sid") != "AllowAdministration"
        and s.get("Sid") != "Enable IAM User Permissions"]})
    spec = IdentitySpec(name="root", source="profile", profile="root", kind="static")
    kms, arn = kms_client_for(spec, lab.region)
    assert arn == f"arn:aws:iam::{ACCOUNT}:root"
    who = applier_for(spec, arn, None)
    assert who.endpoint_url == lab.endpoint
    with pytest.raises(FixRefused, match="you \\(the identity applying it\\) would lose"):
        apply_fix(drop_root, kms, who, backup_dir=clean_env)
    assert lab.admin.raw_key_policy(key) == before
    # And KMS itself (the lab) would have refused it too: its lockout safety check is on.
    import botocore.exceptions

    with pytest.raises(botocore.exceptions.ClientError) as info:
        lab.client("root", "kms").put_key_policy(KeyId=key, PolicyName="default",
                                                 Policy=policy_text(drop_root.proposed))
    assert info.value.response["Error"]["Code"] == "MalformedPolicyDocumentException"
