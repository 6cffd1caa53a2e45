"""The lab's gate, end to end with boto3: each case names the AWS behaviour it reproduces."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from kms_rescue.lab import Lab

ACCOUNT = "123456789012"
OTHER = "444455556666"
REGION = "eu-west-1"
MAIN = "aaaaaaaa-0000-4000-8000-000000000001"
ROOTLESS = "aaaaaaaa-0000-4000-8000-000000000002"
LOCKOUT = "aaaaaaaa-0000-4000-8000-000000000003"
DISABLED = "aaaaaaaa-0000-4000-8000-000000000004"
PENDING = "aaaaaaaa-0000-4000-8000-000000000005"
V = "2012-10-17"


def arn(kind: str, name: str, account: str = ACCOUNT) -> str:
    return f"arn:aws:iam::{account}:{kind}/{name}"


def key_arn(key_id: str, account: str = ACCOUNT, region: str = REGION) -> str:
    return f"arn:aws:kms:{region}:{account}:key/{key_id}"


def allow(*actions: str, resource: str = "*") -> dict[str, Any]:
    return {"Version": V, "Statement": [{"Effect": "Allow", "Action": list(actions), "Resource": resource}]}


MAIN_POLICY = {
    "Version": V,
    "Statement": [
        {"Sid": "EnableIAM", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
         "Action": "kms:*", "Resource": "*"},
        {"Sid": "NamedUse", "Effect": "Allow", "Principal": {"AWS": arn("role", "Named")},
         "Action": ["kms:DescribeKey", "kms:GetKeyPolicy", "kms:Encrypt"], "Resource": "*"},
        {"Sid": "PartnerAccount", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{OTHER}:root"},
         "Action": ["kms:Encrypt", "kms:Decrypt", "kms:DescribeKey", "kms:GetKeyPolicy", "kms:PutKeyPolicy"],
         "Resource": "*"},
        {"Sid": "GhostAdmin", "Effect": "Allow", "Principal": {"AWS": arn("role", "Ghost")}, "Action": "kms:*",
         "Resource": "*"},
        {"Sid": "VictimUse", "Effect": "Allow", "Principal": {"AWS": arn("role", "Victim")},
         "Action": "kms:DescribeKey", "Resource": "*"},
        {"Sid": "NoDeletion", "Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "kms:ScheduleKeyDeletion",
         "Resource": "*"},
    ],
}

SEED_POLICY = {"Version": V, "Statement": [
    {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "kms:*", "Resource": "*"}]}

SCENARIO: dict[str, Any] = {
    "name": "gate-tests",
    "account": ACCOUNT,
    "region": REGION,
    "identities": [
        {"profile": "admin", "role": "Admin",
         "policies": [allow("kms:*", "iam:*", "sts:AssumeRole", "cloudtrail:LookupEvents")]},
        {"profile": "reader", "role": "Reader",
         "policies": [allow("kms:DescribeKey", "kms:GetKeyPolicy", resource=f"arn:aws:kms:{REGION}:{ACCOUNT}:key/*")]},
        {"profile": "nobody", "role": "Nobody"},
        {"profile": "named", "role": "Named"},
        {"profile": "mallory", "user": "mallory",
         "policies": [{"Version": V, "Statement": [
             {"Effect": "Allow", "Action": "kms:*", "Resource": "*"},
             {"Effect": "Deny", "Action": "kms:GetKeyPolicy", "Resource": "*"}]}]},
        {"profile": "partner", "role": "Partner", "account": OTHER, "policies": [allow("kms:*")]},
        {"profile": "partner-noiam", "role": "PartnerNoIam", "account": OTHER},
        {"profile": "auditor", "user": "auditor", "groups": ["Auditors"]},
        {"profile": "tagged", "role": "Tagged", "tags": {"team": "payments"}},
        {"profile": "root", "root": True},
    ],
    "roles": [{"name": "Victim"}],
    "groups": [{"name": "Auditors", "policies": [allow("cloudtrail:LookupEvents")], "attach": ["IamRead"]}],
    "managed_policies": [{"name": "IamRead", "document": allow("iam:Get*", "iam:List*")}],
    "deleted": ["role/Ghost"],
    "keys": [
        {"id": MAIN, "alias": ["alias/main", "alias/main-too"], "policy": MAIN_POLICY,
         "tags": {"team": "payments"}},
        {"id": ROOTLESS, "alias": "alias/rootless", "policy": {"Version": V, "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": arn("role", "Named")}, "Action": "kms:DescribeKey",
             "Resource": "*"},
            {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "kms:DescribeKey", "Resource": "*",
             "Condition": {"StringEquals": {"aws:PrincipalTag/team": "payments"}}}]}},
        {"id": LOCKOUT, "alias": "alias/lockout"},
        {"id": DISABLED, "alias": "alias/disabled", "state": "Disabled"},
        {"id": PENDING, "alias": "alias/pending", "state": "PendingDeletion"},
    ],
    "history": [
        # 55 events within the window, one outside it (LookupEvents covers 90 days).
        *({"event": "PutKeyPolicy", "key": LOCKOUT, "principal": f"arn:aws:sts::{ACCOUNT}:assumed-role/Admin/seed",
           "time": f"-{n + 1}h", "policy": SEED_POLICY} for n in range(55)),
        {"event": "CreateKey", "key": LOCKOUT, "principal": arn("user", "auditor"), "time": "-100d"},
        {"event": "DisableKey", "key": DISABLED, "principal": arn("user", "auditor"), "time": "-3d"},
        {"event": "DeleteRole", "target": "role/Ghost", "principal": f"arn:aws:sts::{ACCOUNT}:assumed-role/Admin/x",
         "time": "-2d"},
    ],
}

NO_RETRY = Config(retries={"total_max_attempts": 1})


def kms(lab: Lab, profile: str) -> Any:
    return lab.client(profile, "kms", config=NO_RETRY)


def err(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    e = exc.value.response["Error"]
    return e["Code"], e.get("Message", "")


def caller(lab: Lab, profile: str) -> str:
    return lab.identities[profile]


# --- the key policy is the gatekeeper ---------------------------------------------------------------------------

ALLOWED = [
    # (profile, action, key) — why it is allowed
    ("admin", "GetKeyPolicy", MAIN),  # the account principal delegates to IAM; Admin's IAM policy allows kms:*
    ("reader", "DescribeKey", MAIN),  # delegation + an identity policy scoped to the account's keys
    ("named", "GetKeyPolicy", MAIN),  # a direct grant needs no identity policy
    ("root", "GetKeyPolicy", MAIN),  # the account principal covers the root user, who needs no identity policy
    ("tagged", "DescribeKey", ROOTLESS),  # "*" narrowed by aws:PrincipalTag: the lab passes the role's tags
]


@pytest.mark.parametrize(("profile", "op", "key"), ALLOWED)
def test_allowed(lab: Lab, profile: str, op: str, key: str) -> None:
    client = kms(lab, profile)
    if op == "GetKeyPolicy":
        assert json.loads(client.get_key_policy(KeyId=key)["Policy"])["Statement"]
    else:
        assert client.describe_key(KeyId=key)["KeyMetadata"]["KeyId"] == key


DENIED = [
    # (profile, op, key, message tail) — AWS's access-denied wording for each cause
    ("nobody", "DescribeKey", MAIN, "because no identity-based policy allows the kms:DescribeKey action"),
    ("admin", "DescribeKey", ROOTLESS, "because no resource-based policy allows the kms:DescribeKey action"),
    ("root", "DescribeKey", ROOTLESS, "because no resource-based policy allows the kms:DescribeKey action"),
    ("mallory", "GetKeyPolicy", MAIN, "with an explicit deny in an identity-based policy"),
    ("admin", "ScheduleKeyDeletion", MAIN, "with an explicit deny in a resource-based policy"),
    ("named", "PutKeyPolicy", MAIN, "because no identity-based policy allows the kms:PutKeyPolicy action"),
]


@pytest.mark.parametrize(("profile", "op", "key", "tail"), DENIED)
def test_denied_like_kms(lab: Lab, profile: str, op: str, key: str, tail: str) -> None:
    client = kms(lab, profile)
    with pytest.raises(ClientError) as exc:
        if op == "DescribeKey":
            client.describe_key(KeyId=key)
        elif op == "GetKeyPolicy":
            client.get_key_policy(KeyId=key)
        elif op == "ScheduleKeyDeletion":
            client.schedule_key_deletion(KeyId=key, PendingWindowInDays=7)
        else:
            client.put_key_policy(KeyId=key, Policy=json.dumps(MAIN_POLICY))
    code, message = err(exc)
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert code == "AccessDeniedException"
    assert message == (
        f"User: {caller(lab, profile)} is not authorized to perform: kms:{op} on resource: {key_arn(key)} {tail}"
    )


def test_delegation_needs_an_identity_policy_but_a_direct_grant_does_not(lab: Lab) -> None:
    # Reader and Nobody are both covered only by the account principal; only Reader has an IAM policy.
    assert kms(lab, "reader").describe_key(KeyId=MAIN)
    with pytest.raises(ClientError):
        kms(lab, "nobody").describe_key(KeyId=MAIN)
    # Named has no IAM policy at all, and the key policy names it.
    assert kms(lab, "named").encrypt(KeyId=MAIN, Plaintext=b"x")["KeyId"] == key_arn(MAIN)


def test_unknown_credentials_are_unrecognized(lab: Lab) -> None:
    import boto3

    session = boto3.Session(aws_access_key_id="AKIAIOSFODNN7EXAMPLE", aws_secret_access_key="x" * 40,
                            region_name=REGION)
    with pytest.raises(ClientError) as exc:
        session.client("kms", endpoint_url=lab.endpoint, config=NO_RETRY).list_keys()
    assert err(exc)[0] == "UnrecognizedClientException"
    with pytest.raises(ClientError) as exc:
        session.client("iam", endpoint_url=lab.endpoint, config=NO_RETRY).list_roles()
    assert err(exc)[0] == "InvalidClientTokenId"


# --- aliases ----------------------------------------------------------------------------------------------------


def test_alias_resolution(lab: Lab) -> None:
    client = kms(lab, "admin")
    alias_arn = f"arn:aws:kms:{REGION}:{ACCOUNT}:alias/main-too"
    for ref in ("alias/main", alias_arn, key_arn(MAIN), MAIN):
        assert client.describe_key(KeyId=ref)["KeyMetadata"]["Arn"] == key_arn(MAIN)
    # GetKeyPolicy takes a key id or key ARN only.
    with pytest.raises(ClientError) as exc:
        client.get_key_policy(KeyId="alias/main")
    assert err(exc) == ("NotFoundException", "Invalid keyId alias/main")
    with pytest.raises(ClientError) as exc:
        client.describe_key(KeyId="alias/nope")
    assert err(exc) == ("NotFoundException", f"Alias arn:aws:kms:{REGION}:{ACCOUNT}:alias/nope is not found.")


def test_describe_key_by_alias_needs_permission_on_the_key(lab: Lab) -> None:
    with pytest.raises(ClientError) as exc:
        kms(lab, "admin").describe_key(KeyId="alias/rootless")
    assert err(exc)[1].endswith(f"on resource: {key_arn(ROOTLESS)} because no resource-based policy allows the "
                                "kms:DescribeKey action")


def test_list_aliases_is_authorised_by_iam_alone(lab: Lab) -> None:
    names = {a["AliasName"] for a in kms(lab, "admin").list_aliases()["Aliases"]}
    assert {"alias/main", "alias/main-too", "alias/rootless"} <= names
    # Named is allowed on the key by the key policy, but has no IAM policy: ListAliases is IAM-only.
    with pytest.raises(ClientError) as exc:
        kms(lab, "named").list_aliases()
    assert err(exc)[1].endswith("on resource: * because no identity-based policy allows the kms:ListAliases action")
    assert kms(lab, "root").list_keys()["Keys"]  # the root user needs no identity policy in its account


# --- another account, another region ----------------------------------------------------------------------------


def test_key_arn_of_another_account_or_region_is_not_found(lab: Lab) -> None:
    client = kms(lab, "admin")
    for ref in (key_arn(MAIN, account=OTHER), key_arn(MAIN, region="us-west-2")):
        with pytest.raises(ClientError) as exc:
            client.describe_key(KeyId=ref)
        assert err(exc) == ("NotFoundException", f"Key '{ref}' does not exist")


def test_cross_account_needs_key_policy_and_own_identity_policy(lab: Lab) -> None:
    # The key policy names account 444455556666; Partner's own IAM policy allows kms:*.
    assert kms(lab, "partner").encrypt(KeyId=key_arn(MAIN), Plaintext=b"x")
    with pytest.raises(ClientError) as exc:
        kms(lab, "partner-noiam").encrypt(KeyId=key_arn(MAIN), Plaintext=b"x")
    assert err(exc)[1].endswith("because no identity-based policy allows the kms:Encrypt action")
    # A bare key id is looked up in the caller's own account.
    with pytest.raises(ClientError) as exc:
        kms(lab, "partner").describe_key(KeyId=MAIN)
    assert err(exc)[0] == "NotFoundException"


def test_management_is_never_cross_account(lab: Lab) -> None:
    # The key policy even lists kms:PutKeyPolicy and kms:GetKeyPolicy for the other account: KMS does not offer them
    # across accounts ("Cross-account use: No").
    for call in ("get_key_policy", "put_key_policy"):
        kwargs: dict[str, Any] = {"KeyId": key_arn(MAIN)}
        if call == "put_key_policy":
            kwargs["Policy"] = json.dumps(MAIN_POLICY)
        with pytest.raises(ClientError) as exc:
            getattr(kms(lab, "partner"), call)(**kwargs)
        assert err(exc)[0] == "AccessDeniedException"
        assert "because no resource-based policy allows" in err(exc)[1]


# --- deleted principals -----------------------------------------------------------------------------------------


def test_deleted_principal_shows_as_unique_id_and_a_namesake_does_not_match(lab: Lab) -> None:
    policy = json.loads(kms(lab, "admin").get_key_policy(KeyId=MAIN)["Policy"])
    ghost = next(s for s in policy["Statement"] if s["Sid"] == "GhostAdmin")
    ghost_id = ghost["Principal"]["AWS"]
    assert ghost_id.startswith("AROA") and ghost_id == lab.admin.unique_id("role/Ghost")
    assert arn("role", "Ghost") not in json.dumps(policy)

    # A new role called Ghost (no IAM policy), assumed through STS, is not the old one: GhostAdmin no longer
    # grants anything, so the new Ghost is denied.
    lab.admin.create_role("Ghost")
    assert lab.admin.unique_id("role/Ghost") != ghost_id
    sts = lab.client("admin", "sts", config=NO_RETRY)
    creds = sts.assume_role(RoleArn=arn("role", "Ghost"), RoleSessionName="impostor")["Credentials"]
    import boto3

    impostor = boto3.Session(
        aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"], region_name=REGION,
    ).client("kms", endpoint_url=lab.endpoint, config=NO_RETRY)
    with pytest.raises(ClientError) as exc:
        impostor.describe_key(KeyId=MAIN)
    assert err(exc) == (
        "AccessDeniedException",
        f"User: arn:aws:sts::{ACCOUNT}:assumed-role/Ghost/impostor is not authorized to perform: kms:DescribeKey "
        f"on resource: {key_arn(MAIN)} because no identity-based policy allows the kms:DescribeKey action",
    )


def test_put_key_policy_naming_a_missing_principal_is_malformed(lab: Lab) -> None:
    policy = {"Version": V, "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "kms:*", "Resource": "*"},
        {"Effect": "Allow", "Principal": {"AWS": arn("role", "NeverExisted")}, "Action": "kms:*", "Resource": "*"},
    ]}
    with pytest.raises(ClientError) as exc:
        kms(lab, "admin").put_key_policy(KeyId=LOCKOUT, Policy=json.dumps(policy))
    assert err(exc) == ("MalformedPolicyDocumentException",
                        "Policy contains a statement with one or more invalid principals.")


def test_deleting_a_role_through_iam_rewrites_key_policies(lab: Lab) -> None:
    victim_id = lab.admin.unique_id("role/Victim")
    assert arn("role", "Victim") in lab.admin.raw_key_policy(MAIN)
    lab.client("admin", "iam", config=NO_RETRY).delete_role(RoleName="Victim")
    stored = lab.admin.raw_key_policy(MAIN)
    assert arn("role", "Victim") not in stored and json.dumps(victim_id) in stored
    events = lab.client("admin", "cloudtrail", region_name="us-east-1").lookup_events(
        LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "DeleteRole"}])["Events"]
    assert any(json.loads(e["CloudTrailEvent"])["requestParameters"] == {"roleName": "Victim"} for e in events)


# --- the policy lockout safety check ----------------------------------------------------------------------------

LOCKOUT_MESSAGE = "The new key policy will not allow you to update the key policy in the future."
NAMED_ONLY = {"Version": V, "Statement": [
    {"Effect": "Allow", "Principal": {"AWS": arn("role", "Named")}, "Action": "kms:*", "Resource": "*"}]}


def test_lockout_safety_check_and_bypass(lab: Lab) -> None:
    admin = kms(lab, "admin")
    with pytest.raises(ClientError) as exc:
        admin.put_key_policy(KeyId=LOCKOUT, Policy=json.dumps(NAMED_ONLY))
    assert err(exc) == ("MalformedPolicyDocumentException", LOCKOUT_MESSAGE)
    before = lab.admin.raw_key_policy(LOCKOUT)
    # Omitted PolicyName means "default"; with the bypass, KMS takes the policy and the caller locks itself out.
    admin.put_key_policy(KeyId=LOCKOUT, Policy=json.dumps(NAMED_ONLY), BypassPolicyLockoutSafetyCheck=True)
    assert json.loads(lab.admin.raw_key_policy(LOCKOUT)) == NAMED_ONLY
    with pytest.raises(ClientError) as exc:
        admin.get_key_policy(KeyId=LOCKOUT)
    assert err(exc)[0] == "AccessDeniedException"
    got = kms(lab, "named").get_key_policy(KeyId=LOCKOUT)
    assert got["PolicyName"] == "default"
    lab.admin.set_key_policy(LOCKOUT, before)


def test_create_key_default_policy_and_lockout_check(lab: Lab) -> None:
    admin = kms(lab, "admin")
    meta = admin.create_key(Description="made in a test")["KeyMetadata"]
    policy = json.loads(admin.get_key_policy(KeyId=meta["KeyId"], PolicyName="default")["Policy"])
    assert policy["Statement"][0]["Principal"] == {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}
    assert meta["Arn"] == key_arn(meta["KeyId"])
    with pytest.raises(ClientError) as exc:
        admin.create_key(Policy=json.dumps(NAMED_ONLY))
    assert err(exc) == ("MalformedPolicyDocumentException", LOCKOUT_MESSAGE)
    with pytest.raises(ClientError) as exc:
        kms(lab, "nobody").create_key()
    assert err(exc)[1].endswith("on resource: * because no identity-based policy allows the kms:CreateKey action")


# --- key states -------------------------------------------------------------------------------------------------


def test_key_states(lab: Lab) -> None:
    admin = kms(lab, "admin")
    with pytest.raises(ClientError) as exc:
        admin.encrypt(KeyId=DISABLED, Plaintext=b"x")
    assert err(exc) == ("DisabledException", f"{key_arn(DISABLED)} is disabled.")
    with pytest.raises(ClientError) as exc:
        admin.encrypt(KeyId=PENDING, Plaintext=b"x")
    assert err(exc) == ("KMSInvalidStateException", f"{key_arn(PENDING)} is pending deletion.")
    # Management of the policy works in every state.
    for key in (DISABLED, PENDING):
        assert admin.describe_key(KeyId=key)["KeyMetadata"]["KeyId"] == key
        assert admin.get_key_policy(KeyId=key)["Policy"]
    with pytest.raises(ClientError) as exc:
        admin.enable_key(KeyId=PENDING)
    assert err(exc)[0] == "KMSInvalidStateException"
    with pytest.raises(ClientError) as exc:
        admin.cancel_key_deletion(KeyId=DISABLED)
    assert err(exc) == ("KMSInvalidStateException", f"{key_arn(DISABLED)} is not pending deletion.")


def test_encrypt_decrypt_round_trip_is_enforced(lab: Lab) -> None:
    blob = kms(lab, "named").encrypt(KeyId=MAIN, Plaintext=b"secret")["CiphertextBlob"]
    assert kms(lab, "admin").decrypt(CiphertextBlob=blob)["Plaintext"] == b"secret"
    with pytest.raises(ClientError) as exc:
        kms(lab, "named").decrypt(CiphertextBlob=blob)  # NamedUse has no kms:Decrypt
    assert err(exc)[1].endswith("kms:Decrypt action")


# --- IAM and STS ------------------------------------------------------------------------------------------------


def test_iam_calls_are_authorised_by_identity_policies(lab: Lab) -> None:
    auditor = lab.client("auditor", "iam", config=NO_RETRY)
    assert auditor.get_role(RoleName="Admin")["Role"]["Arn"] == arn("role", "Admin")  # group's managed policy
    with pytest.raises(ClientError) as exc:
        lab.client("named", "iam", config=NO_RETRY).get_role(RoleName="Admin")
    assert err(exc) == (
        "AccessDenied",
        f"User: {caller(lab, 'named')} is not authorized to perform: iam:GetRole on resource: {arn('role', 'Admin')} "
        "because no identity-based policy allows the iam:GetRole action",
    )
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_caller_identity(lab: Lab) -> None:
    for profile in ("admin", "mallory", "root"):
        ident = lab.client(profile, "sts").get_caller_identity()
        assert ident["Arn"] == caller(lab, profile)
    assert lab.client("root", "sts").get_caller_identity()["UserId"] == ACCOUNT
    assert lab.client("mallory", "sts").get_caller_identity()["UserId"].startswith("AIDA")
    assert lab.client("admin", "sts").get_caller_identity()["UserId"].endswith(":admin")


def test_assume_role_follows_trust_and_identity_policies(lab: Lab) -> None:
    # Reader trusts the account (the lab's default trust policy): Admin may (its IAM policy allows
    # sts:AssumeRole), Nobody may not, and the root user can never assume a role.
    ok = lab.client("admin", "sts").assume_role(RoleArn=arn("role", "Reader"), RoleSessionName="probe")
    assert ok["AssumedRoleUser"]["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/Reader/probe"
    with pytest.raises(ClientError) as exc:
        lab.client("nobody", "sts", config=NO_RETRY).assume_role(RoleArn=arn("role", "Reader"), RoleSessionName="probe")
    assert err(exc) == ("AccessDenied", f"User: {caller(lab, 'nobody')} is not authorized to perform: "
                                        f"sts:AssumeRole on resource: {arn('role', 'Reader')}")
    with pytest.raises(ClientError) as exc:
        lab.client("root", "sts", config=NO_RETRY).assume_role(RoleArn=arn("role", "Reader"), RoleSessionName="probe")
    assert err(exc) == ("AccessDenied", "Roles may not be assumed by root accounts.")


# --- CloudTrail -------------------------------------------------------------------------------------------------


def lookup_all(client: Any, **kwargs: Any) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    token = None
    while True:
        page = client.lookup_events(**kwargs, **({"NextToken": token} if token else {}))
        assert len(page["Events"]) <= 50
        events += page["Events"]
        token = page.get("NextToken")
        if not token:
            return events


def test_cloudtrail_paging_and_90_day_window(lab: Lab) -> None:
    ct = lab.client("auditor", "cloudtrail")
    attr = [{"AttributeKey": "ResourceName", "AttributeValue": key_arn(LOCKOUT)}]
    first = ct.lookup_events(LookupAttributes=attr)
    assert len(first["Events"]) == 50 and first.get("NextToken")
    seeded = [e for e in lookup_all(ct, LookupAttributes=attr) if e["Username"] == "seed"]
    assert len(seeded) == 55  # the CreateKey 100 days ago is outside the window
    times = [e["EventTime"] for e in seeded]
    assert times == sorted(times, reverse=True)  # newest first
    assert len({e["EventId"] for e in seeded}) == 55  # pages do not overlap
    paginator = ct.get_paginator("lookup_events")
    by_id = [e for page in paginator.paginate(LookupAttributes=[
        {"AttributeKey": "ResourceName", "AttributeValue": LOCKOUT}]) for e in page["Events"]]
    assert {e["EventId"] for e in seeded} <= {e["EventId"] for e in by_id}


@pytest.mark.parametrize(
    ("attribute", "value"),
    [
        ("EventName", "DisableKey"),
        ("Username", "auditor"),
        ("ResourceName", key_arn(DISABLED)),
        ("ResourceName", DISABLED),  # the lab also matches a key id against the key ARN it recorded
    ],
)
def test_cloudtrail_filters(lab: Lab, attribute: str, value: str) -> None:
    ct = lab.client("auditor", "cloudtrail")
    events = lookup_all(ct, LookupAttributes=[{"AttributeKey": attribute, "AttributeValue": value}])
    seeded = [e for e in events if e["EventName"] == "DisableKey" and e["Username"] == "auditor"]
    assert len(seeded) == 1
    assert seeded[0]["Resources"] == [{"ResourceType": "AWS::KMS::Key", "ResourceName": key_arn(DISABLED)}]
    for e in events:  # and nothing that does not match
        if attribute == "EventName":
            assert e["EventName"] == value
        elif attribute == "Username":
            assert e["Username"] == value
        else:
            assert e["Resources"][0]["ResourceName"] == key_arn(DISABLED)


def test_cloudtrail_time_range(lab: Lab) -> None:
    from datetime import datetime, timedelta, timezone

    now = datetime.now(timezone.utc)
    ct = lab.client("auditor", "cloudtrail")
    events = lookup_all(ct, StartTime=now - timedelta(hours=10, minutes=30),
                        EndTime=now - timedelta(hours=2, minutes=30),
                        LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "PutKeyPolicy"}])
    assert len([e for e in events if e["Username"] == "seed"]) == 8  # the seeds 3h, 4h, ... 10h ago


def test_calls_through_the_lab_are_recorded_like_cloudtrail(lab: Lab) -> None:
    admin = kms(lab, "admin")
    policy = lab.admin.raw_key_policy(LOCKOUT)
    admin.put_key_policy(KeyId=key_arn(LOCKOUT), Policy=policy)
    with pytest.raises(ClientError):
        kms(lab, "nobody").put_key_policy(KeyId=LOCKOUT, Policy=policy)
    ct = lab.client("auditor", "cloudtrail")
    events = ct.lookup_events(LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "PutKeyPolicy"}],
                              MaxResults=2)["Events"]
    failed, ok = (json.loads(e["CloudTrailEvent"]) for e in events)
    assert ok["requestParameters"] == {"keyId": key_arn(LOCKOUT), "policy": policy, "policyName": "default",
                                       "bypassPolicyLockoutSafetyCheck": False}
    assert ok["userIdentity"]["type"] == "AssumedRole"
    assert ok["userIdentity"]["sessionContext"]["sessionIssuer"]["arn"] == arn("role", "Admin")
    assert "errorCode" not in ok and ok["eventSource"] == "kms.amazonaws.com"
    assert failed["errorCode"] == "AccessDenied"
    assert failed["errorMessage"].startswith(f"User: {caller(lab, 'nobody')} is not authorized")
    assert failed["resources"] == [{"accountId": ACCOUNT, "type": "AWS::KMS::Key", "ARN": key_arn(LOCKOUT)}]


def test_lookup_events_needs_permission_and_valid_input(lab: Lab) -> None:
    with pytest.raises(ClientError) as exc:
        lab.client("nobody", "cloudtrail", config=NO_RETRY).lookup_events()
    assert err(exc)[1].endswith("because no identity-based policy allows the cloudtrail:LookupEvents action")
    ct = lab.client("auditor", "cloudtrail", config=NO_RETRY)
    with pytest.raises(ClientError) as exc:
        ct.lookup_events(LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "A"},
                                           {"AttributeKey": "Username", "AttributeValue": "B"}])
    assert err(exc)[0] == "InvalidLookupAttributesException"
    with pytest.raises(ClientError) as exc:
        ct.lookup_events(NextToken="garbage")
    assert err(exc)[0] == "InvalidNextTokenException"


def test_other_services_get_an_identity_check_then_moto(lab: Lab) -> None:
    # AWS Support (kms-rescue can open a case): the root user needs no policy; Named has none allowing it.
    case = lab.client("root", "support", region_name="us-east-1").create_case(subject="key", communicationBody="x")
    assert case["caseId"]
    with pytest.raises(ClientError) as exc:
        lab.client("named", "support", region_name="us-east-1", config=NO_RETRY).describe_cases()
    assert err(exc)[1].endswith("because no identity-based policy allows the support:DescribeCases action")
