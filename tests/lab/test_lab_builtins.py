"""Every built-in scenario loads, validates, and behaves in the lab as its description and expected verdict say.

The verdicts (docs/report.md, "The verdict") are checked against the lab's enforcement, not against kms-rescue's
analysis:
manageable = some profile can call PutKeyPolicy now; recoverable = none can, but an existing principal of the
key's account (signed in without a profile, or reached with AssumeRole) can; locked_out = no principal of the
key's account can; not_found = in the profiles' Region every profile is told the key does not exist
(NotFoundException), and the key is in another of the account's enabled Regions.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from kms_rescue.lab import Lab, builtin_names, load_scenario

NO_RETRY = Config(retries={"total_max_attempts": 1})
VERDICTS = {"manageable", "recoverable", "locked_out", "undetermined", "not_found"}


def can_put(client: Any, key: str, policy: str) -> bool:
    """Whether this caller may call PutKeyPolicy (re-putting the policy the key has)."""
    try:
        client.put_key_policy(KeyId=key, Policy=policy)
    except ClientError as exc:
        code = exc.response["Error"]["Code"]
        assert code == "AccessDeniedException", exc.response["Error"]
        return False
    return True


_clients: dict[tuple[int, str], Any] = {}


def kms_client(lab: Lab, profile: str) -> Any:
    key = (id(lab), profile)
    if key not in _clients:
        _clients[key] = lab.client(profile, "kms", config=NO_RETRY)
    return _clients[key]


def managers(lab: Lab, key: str) -> list[str]:
    policy = lab.admin.raw_key_policy(key)
    return [p for p in lab.profiles if can_put(kms_client(lab, p), lab.key_arn(key), policy)]


def error_code(call: Callable[..., Any], **kwargs: Any) -> str | None:
    try:
        call(**kwargs)
    except ClientError as exc:
        return str(exc.response["Error"]["Code"])
    return None


def signed_in_can_put(lab: Lab, ref: str, key: str, session_name: str = "console") -> bool:
    creds = lab.admin.sign_in(ref, session_name=session_name)
    client = lab.client_for(creds, "kms", config=NO_RETRY)
    return can_put(client, lab.key_arn(key), lab.admin.raw_key_policy(key))


def test_there_are_enough_builtins() -> None:
    names = builtin_names()
    assert len(names) >= 9
    for required in ("healthy-default", "sole-admin-deleted", "rootless-admin-role", "principalarn-condition",
                     "explicit-deny-trap", "other-account-only", "policy-unreadable-history", "busy-account",
                     "nitro-enclave", "date-deny-lockout", "admin-window-closed", "admin-window-opens",
                     "principalarn-literal-star", "scp-break-glass-only", "boundary-blocks-admin",
                     "rcp-denies-key-policy-changes", "guardrails-unreadable"):
        assert required in names


@pytest.mark.parametrize("name", builtin_names())
def test_builtin_validates_and_states_its_verdict(name: str) -> None:
    sc = load_scenario(name)
    assert sc.name == name
    assert sc.expected_verdict in VERDICTS
    assert f"Verdict: {sc.expected_verdict}" in sc.description
    assert sc.identities, "a scenario without profiles cannot be probed"


# --- scenario-specific recoveries and checks -------------------------------------------------------------------


def recover_rootless(lab: Lab) -> None:
    key = lab.scenario.keys[0].id
    assert signed_in_can_put(lab, "role/KeyAdmin", key)


def recover_break_glass(lab: Lab) -> None:
    key = lab.scenario.keys[0].id
    sts = lab.client("admin", "sts", config=NO_RETRY)
    role = f"arn:aws:iam::{lab.account}:role/BreakGlass"
    for session_name, allowed in (("break-glass", True), ("someone-else", False)):
        creds = sts.assume_role(RoleArn=role, RoleSessionName=session_name)["Credentials"]
        import boto3

        client = boto3.Session(
            aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
            aws_session_token=creds["SessionToken"], region_name=lab.region,
        ).client("kms", endpoint_url=lab.endpoint, config=NO_RETRY)
        assert can_put(client, lab.key_arn(key), lab.admin.raw_key_policy(key)) is allowed, session_name
    # The admin profile itself hits the explicit deny.
    with pytest.raises(ClientError) as exc:
        lab.client("admin", "kms", config=NO_RETRY).put_key_policy(
            KeyId=key, Policy=lab.admin.raw_key_policy(key))
    assert exc.value.response["Error"]["Message"].endswith("with an explicit deny in a resource-based policy")


def recover_from_history(lab: Lab) -> None:
    key = lab.scenario.keys[0].id
    for profile in lab.profiles:  # nobody can read the policy...
        kms = lab.client(profile, "kms", config=NO_RETRY)
        for call in (kms.get_key_policy, kms.describe_key):
            with pytest.raises(ClientError):
                call(KeyId=key)
    # ...but CloudTrail has the last PutKeyPolicy within 90 days, and it names KeyAdmin, which exists.
    events = lab.client("auditor", "cloudtrail").lookup_events(
        LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "PutKeyPolicy"}])["Events"]
    records = [json.loads(e["CloudTrailEvent"]) for e in events]
    last = next(r for r in records if "errorCode" not in r)
    named = json.loads(last["requestParameters"]["policy"])["Statement"][0]["Principal"]["AWS"]
    assert named == f"arn:aws:iam::{lab.account}:role/KeyAdmin"
    assert json.loads(last["requestParameters"]["policy"]) == json.loads(lab.admin.raw_key_policy(key))
    assert "legacy" not in {e["Username"] for e in events}  # 120 days ago: outside LookupEvents' 90-day window
    assert lab.admin.unique_id("role/KeyAdmin") is not None
    assert signed_in_can_put(lab, "role/KeyAdmin", key)


def check_sole_admin_deleted(lab: Lab) -> None:
    key = lab.scenario.keys[0].id
    shown = json.loads(lab.client("app", "kms").get_key_policy(KeyId=key)["Policy"])
    admin_principal = shown["Statement"][0]["Principal"]["AWS"]
    assert admin_principal.startswith("AROA") and admin_principal == lab.admin.unique_id("role/KeyAdmin")
    # Recreating the role does not help: the policy names the old role's id.
    lab.admin.create_role("KeyAdmin")
    assert not signed_in_can_put(lab, "role/KeyAdmin", key)


def check_other_account(lab: Lab) -> None:
    key_arn = lab.key_arn(lab.scenario.keys[0].id)
    partner = lab.client("partner", "kms", config=NO_RETRY)
    blob = partner.encrypt(KeyId=key_arn, Plaintext=b"x")["CiphertextBlob"]  # use across accounts: allowed
    # KMS API Reference, ReEncrypt: "Cross-account use: Yes", authorized as kms:ReEncryptFrom and kms:ReEncryptTo.
    assert partner.re_encrypt(CiphertextBlob=blob, DestinationKeyId=key_arn)["KeyId"] == key_arn
    with pytest.raises(ClientError):
        partner.get_key_policy(KeyId=key_arn)  # management across accounts: never


def check_nitro(lab: Lab) -> None:
    key = lab.scenario.keys[0].id
    blob = lab.client("builder", "kms").encrypt(KeyId=key, Plaintext=b"x")["CiphertextBlob"]
    with pytest.raises(ClientError):  # no attestation document outside an enclave
        lab.client("enclave", "kms", config=NO_RETRY).decrypt(CiphertextBlob=blob)
    assert not signed_in_can_put(lab, "role/EnclaveApp", key)


def check_principal_arn_path(lab: Lab) -> None:
    assert lab.identities["admin"] == f"arn:aws:sts::{lab.account}:assumed-role/KmsAdmin/admin"  # no path...
    assert managers(lab, lab.scenario.keys[0].id) == ["admin", "root"]  # ...yet aws:PrincipalArn carries it


def check_pending(lab: Lab) -> None:
    kms = lab.client("admin", "kms")
    key = lab.scenario.keys[0].id
    assert kms.cancel_key_deletion(KeyId=key)["KeyId"] == lab.key_arn(key)
    assert kms.describe_key(KeyId=key)["KeyMetadata"]["KeyState"] == "Disabled"


def check_busy(lab: Lab) -> None:
    assert len(lab.scenario.keys) >= 20 and len(lab.profiles) >= 16
    for key in (lab.scenario.keys[19], lab.scenario.keys[20], lab.scenario.keys[22]):
        got = managers(lab, key.id)
        if key.expected_verdict == "manageable":
            assert "admin" in got
        else:
            assert got == []
            assert signed_in_can_put(lab, "role/KeyAdmin", key.id) is (key.expected_verdict == "recoverable")
    events = lab.client("auditor-1", "cloudtrail").get_paginator("lookup_events").paginate()
    assert sum(len(page["Events"]) for page in events) > 50


def check_not_found_here(lab: Lab) -> None:
    """not_found: in the profiles' Region no profile finds the key (by id, ARN or alias); in the key's own Region,
    which DescribeRegions lists as enabled, a permitted profile describes and manages it."""
    spec = lab.scenario.keys[0]
    assert spec.region != lab.region
    refs = [spec.id, f"arn:aws:kms:{lab.region}:{lab.account}:key/{spec.id}", *spec.aliases]
    for profile in lab.profiles:
        kms = lab.client(profile, "kms", config=NO_RETRY)  # the profile's own Region
        assert kms.meta.region_name == lab.region
        for ref in refs:
            assert error_code(kms.describe_key, KeyId=ref) == "NotFoundException", (profile, ref)
    regions = lab.client("admin", "ec2").describe_regions()["Regions"]
    assert spec.region in {r["RegionName"] for r in regions}
    there = lab.client("admin", "kms", region_name=spec.region, config=NO_RETRY)
    for ref in (spec.id, *spec.aliases):
        assert there.describe_key(KeyId=ref)["KeyMetadata"]["Arn"] == lab.key_arn(spec.id)
    assert can_put(there, spec.id, lab.admin.raw_key_policy(spec.id))
    trail = lab.client("admin", "cloudtrail", region_name=spec.region).lookup_events()["Events"]
    assert any(e["EventName"] == "CreateKey" for e in trail)  # the key's history is in its own Region's trail
    assert lab.client("admin", "cloudtrail").lookup_events()["Events"] == []
def at(when: datetime) -> Callable[[], datetime]:
    return lambda: when


def recover_when_the_window_opens(lab: Lab) -> None:
    """The lab enforces aws:CurrentTime from its clock: on 2100-01-02 the admin profile can manage the key."""
    key = lab.scenario.keys[0].id
    with Lab(lab.scenario, clock=at(datetime(2100, 1, 2, tzinfo=timezone.utc))) as later:
        assert managers(later, key) == ["admin"]


def check_window_closed(lab: Lab) -> None:
    """Before 2020 the admin profile could manage the key; the window is past, so nobody can now."""
    key = lab.scenario.keys[0].id
    with Lab(lab.scenario, clock=at(datetime(2019, 6, 1, tzinfo=timezone.utc))) as earlier:
        assert managers(earlier, key) == ["admin"]
    assert not signed_in_can_put(lab, "role/KeyAdmin", key)


def check_date_deny(lab: Lab) -> None:
    """Before 2020 the account principal let root and the IAM admin in; since then the Deny blocks both."""
    key = lab.scenario.keys[0].id
    with Lab(lab.scenario, clock=at(datetime(2019, 6, 1, tzinfo=timezone.utc))) as earlier:
        assert managers(earlier, key) == ["admin", "root"]
    with pytest.raises(ClientError) as exc:
        lab.client("root", "kms", config=NO_RETRY).put_key_policy(KeyId=key, Policy=lab.admin.raw_key_policy(key))
    assert exc.value.response["Error"]["Message"].endswith("with an explicit deny in a resource-based policy")


def check_literal_star(lab: Lab) -> None:
    """StringEquals is exact: the role named in the runbook's pattern cannot manage; signed in as it, neither."""
    key = lab.scenario.keys[0].id
    assert not signed_in_can_put(lab, "role/KeyAdmin", key)


def denied_with(lab: Lab, profile: str, key: str, ending: str) -> None:
    with pytest.raises(ClientError) as exc:
        kms_client(lab, profile).put_key_policy(KeyId=key, Policy=lab.admin.raw_key_policy(key))
    assert exc.value.response["Error"]["Message"].endswith(ending), exc.value.response["Error"]


def recover_scp_break_glass(lab: Lab) -> None:
    key = lab.scenario.keys[0].id
    for profile in ("admin", "root"):  # an SCP restricts the member account's root user too
        denied_with(lab, profile, key, "with an explicit deny in a service control policy")
    assert signed_in_can_put(lab, "role/BreakGlass", key)


def recover_boundary(lab: Lab) -> None:
    key = lab.scenario.keys[0].id
    denied_with(lab, "admin", key, "because no permissions boundary allows the kms:PutKeyPolicy action")
    assert signed_in_can_put(lab, "root", key)


def recover_rcp(lab: Lab) -> None:
    key = lab.scenario.keys[0].id
    denied_with(lab, "admin", key, "with an explicit deny in a resource control policy")
    assert not signed_in_can_put(lab, "root", key)  # an RCP restricts every principal, the root user included
    assert signed_in_can_put(lab, "role/SecurityAdmin", key)


def check_guardrails_unreadable(lab: Lab) -> None:
    org = lab.client("admin", "organizations", config=NO_RETRY)
    management = org.describe_organization()["Organization"]["MasterAccountId"]
    with pytest.raises(ClientError) as exc:
        org.list_parents(ChildId=lab.account)
    assert exc.value.response["Error"]["Code"] == "AccessDeniedException"
    assert all(i.principal.account != management for i in lab.scenario.identities)  # nobody can list them


EXTRA: dict[str, Callable[[Lab], None]] = {
    "admin-window-opens": recover_when_the_window_opens,
    "admin-window-closed": check_window_closed,
    "date-deny-lockout": check_date_deny,
    "principalarn-literal-star": check_literal_star,
    "rootless-admin-role": recover_rootless,
    "explicit-deny-trap": recover_break_glass,
    "policy-unreadable-history": recover_from_history,
    "sole-admin-deleted": check_sole_admin_deleted,
    "other-account-only": check_other_account,
    "nitro-enclave": check_nitro,
    "principalarn-condition": check_principal_arn_path,
    "pending-deletion": check_pending,
    "busy-account": check_busy,
    "key-in-other-region": check_not_found_here,
    "scp-break-glass-only": recover_scp_break_glass,
    "boundary-blocks-admin": recover_boundary,
    "rcp-denies-key-policy-changes": recover_rcp,
    "guardrails-unreadable": check_guardrails_unreadable,
}


@pytest.mark.parametrize("name", builtin_names())
def test_builtin_behaves_as_its_verdict_says(name: str) -> None:
    sc = load_scenario(name)
    with Lab(sc) as lab:
        key = sc.keys[0].id
        if sc.expected_verdict == "not_found":
            assert name in EXTRA, "show where the key is not, and where it is"
            EXTRA[name](lab)
            assert lab.admin.internal_errors == []
            return
        can = managers(lab, key)
        if sc.expected_verdict == "manageable":
            assert can, "a manageable scenario needs a profile that can call PutKeyPolicy now"
        else:
            assert can == [], f"{can} can call PutKeyPolicy, so the scenario is manageable"
        if sc.expected_verdict == "recoverable":
            assert name in EXTRA, "say how the recovery goes"
        if name in EXTRA:
            EXTRA[name](lab)
        assert lab.admin.internal_errors == []
    _clients.clear()
