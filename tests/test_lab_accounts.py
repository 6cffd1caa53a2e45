"""The lab serves several accounts, end to end with boto3 against its HTTP endpoint: each case names the AWS page
and the fact it reproduces."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from kms_rescue.errors import UsageError
from kms_rescue.lab import Lab, load_scenario

MGMT, B, C = "111122223333", "444455556666", "123456789012"
HOME, EU = "us-east-1", "eu-west-1"
V = "2012-10-17"
NO_RETRY = Config(retries={"total_max_attempts": 1})
ACCESS_ROLE = "OrganizationAccountAccessRole"


def key_id(n: int) -> str:
    return f"cccccccc-0000-4000-8000-{n:012d}"


def arn(key: str, account: str, region: str = HOME) -> str:
    return f"arn:aws:kms:{region}:{account}:key/{key}"


def allow(*actions: str, resource: str = "*") -> dict[str, Any]:
    return {"Version": V, "Statement": [{"Effect": "Allow", "Action": list(actions), "Resource": resource}]}


def account_principal(account: str, actions: str | list[str] = "kms:*") -> dict[str, Any]:
    return {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{account}:root"}, "Action": actions,
            "Resource": "*"}


SHARED = key_id(1)  # in B: B's own account principal, and A (the management account) may use it
PRIVATE = key_id(2)  # in B: B only
B_EU = key_id(3)  # in B, eu-west-1
A_KEY = key_id(4)  # in the management account
MANY = [key_id(10 + n) for n in range(7)]  # in C, us-east-1: for pagination

SCENARIO: dict[str, Any] = {
    "name": "accounts-tests",
    "account": MGMT,
    "region": HOME,
    "enabled_regions": [HOME, EU],
    "identities": [
        {"profile": "org-admin", "role": "OrgAdmin", "policies": [
            allow("sts:AssumeRole", resource=f"arn:aws:iam::*:role/{ACCESS_ROLE}"),
            allow("organizations:ListAccounts", "organizations:DescribeAccount", "kms:*")]},
        {"profile": "app-a", "role": "App", "policies": [allow("kms:*")]},
        {"profile": "no-assume", "role": "NoAssume", "policies": [allow("organizations:ListAccounts")]},
        {"profile": "b-admin", "role": "Admin", "account": B,
         "policies": [allow("kms:*", "organizations:ListAccounts", "sts:AssumeRole")]},
    ],
    "keys": [
        {"id": SHARED, "account": B, "alias": "alias/shared",
         "policy": {"Version": V, "Statement": [account_principal(B), account_principal(MGMT, [
             "kms:DescribeKey", "kms:Encrypt", "kms:Decrypt", "kms:GetKeyPolicy"])]}},
        {"id": PRIVATE, "account": B, "alias": "alias/private"},
        {"id": B_EU, "account": B, "region": EU, "alias": "alias/shared"},
        {"id": A_KEY, "alias": "alias/shared"},  # the same alias name in another account: allowed
        *({"id": k, "account": C, "alias": f"alias/many-{n}"} for n, k in enumerate(MANY)),
    ],
    "organization": {
        "management_account": MGMT,
        "accounts": {B: "root", C: "root"},
        "access_role": ACCESS_ROLE,
        "account_names": {MGMT: "management", B: "workloads"},
    },
}


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with Lab(SCENARIO) as running:
        yield running
        assert running.admin.internal_errors == []


def kms(lab: Lab, profile: str, region: str = HOME) -> Any:
    return lab.client(profile, "kms", region_name=region, config=NO_RETRY)


def err(call: Any, **kwargs: Any) -> tuple[str, str]:
    with pytest.raises(ClientError) as exc:
        call(**kwargs)
    e = exc.value.response["Error"]
    return e["Code"], e.get("Message", "")


def assume(lab: Lab, profile: str, account: str, role: str = ACCESS_ROLE) -> dict[str, Any]:
    sts = lab.client(profile, "sts", config=NO_RETRY)
    answer: dict[str, Any] = sts.assume_role(RoleArn=f"arn:aws:iam::{account}:role/{role}", RoleSessionName="audit")
    return answer


# --- the scenario ------------------------------------------------------------------------------------------------


def test_keys_carry_their_account_and_the_lab_serves_every_account() -> None:
    sc = load_scenario(SCENARIO)
    assert [k.account for k in sc.keys[:4]] == [B, B, B, MGMT]
    assert sc.accounts == (MGMT, B, C)  # the scenario's own first, then principals', keys', the organization's
    # AWS Organizations User Guide, "Accessing member accounts in your organization": an account Organizations
    # creates has OrganizationAccountAccessRole, trusting the management account, with administrator permissions.
    access = [r for r in sc.roles if r.name == ACCESS_ROLE]
    assert [r.account for r in access] == [B, C]
    assert access[0].trust is not None
    assert access[0].trust["Statement"][0]["Principal"] == {"AWS": f"arn:aws:iam::{MGMT}:root"}


@pytest.mark.parametrize(("change", "message"), [
    (lambda d: d["keys"][0].update(account="4444"), '$.keys[0].account: "4444" does not match ^[0-9]{12}$'),
    (lambda d: d["keys"][1].update(alias="alias/shared"),
     f"$.keys[1].alias: alias/shared points to another key in {B} {HOME} already"),
    (lambda d: d["organization"]["account_names"].update({"999999999999": "x"}),
     '$.organization.account_names["999999999999"]: not an account of the organization'),
])
def test_bad_account_fields_name_the_path(change: Any, message: str) -> None:
    doc = json.loads(json.dumps(SCENARIO))
    change(doc)
    with pytest.raises(UsageError) as exc:
        load_scenario(doc)
    assert str(exc.value).endswith(message)


def test_lab_helpers_find_keys_in_their_account(lab: Lab) -> None:
    assert lab.key_arn(SHARED) == arn(SHARED, B)
    assert lab.key_arn("alias/shared") == arn(A_KEY, MGMT)  # an alias name: the scenario's account by default
    assert lab.key_arn("alias/shared", account=B) == arn(SHARED, B)
    assert lab.key_arn("alias/shared", account=B, region=EU) == arn(B_EU, B, EU)
    assert lab.admin.key(SHARED).account == B


# --- requests are routed by the caller's credentials -------------------------------------------------------------


def test_each_account_sees_its_own_keys_in_each_region(lab: Lab) -> None:
    # KMS API reference, ListKeys: "Gets a list of all KMS keys in the caller's Amazon Web Services account and
    # Region"; the credentials the lab issued belong to one account, as AWS credentials do.
    assert [k["KeyId"] for k in kms(lab, "b-admin").list_keys()["Keys"]] == [SHARED, PRIVATE]
    assert [k["KeyArn"] for k in kms(lab, "b-admin", EU).list_keys()["Keys"]] == [arn(B_EU, B, EU)]
    assert [k["KeyId"] for k in kms(lab, "app-a").list_keys()["Keys"]] == [A_KEY]
    assert kms(lab, "app-a", EU).list_keys()["Keys"] == []
    # An alias name is looked up in the caller's own account.
    assert kms(lab, "b-admin").describe_key(KeyId="alias/shared")["KeyMetadata"]["KeyId"] == SHARED
    assert kms(lab, "app-a").describe_key(KeyId="alias/shared")["KeyMetadata"]["KeyId"] == A_KEY
    assert kms(lab, "b-admin").describe_key(KeyId=SHARED)["KeyMetadata"]["AWSAccountId"] == B


def test_a_key_of_account_b_used_from_account_a(lab: Lab) -> None:
    # IAM User Guide, "Cross-account policy evaluation logic": the key policy must name the other account (or its
    # principal) and the caller's own identity policy must allow the action.
    client = kms(lab, "app-a")
    assert client.describe_key(KeyId=arn(SHARED, B))["KeyMetadata"]["Arn"] == arn(SHARED, B)
    blob = client.encrypt(KeyId=arn(SHARED, B), Plaintext=b"x")["CiphertextBlob"]
    assert client.decrypt(CiphertextBlob=blob)["Plaintext"] == b"x"
    # The key policy of PRIVATE (the default one) names only B: A's caller is denied, as the key policy decides.
    code, message = err(client.describe_key, KeyId=arn(PRIVATE, B))
    assert code == "AccessDeniedException"
    assert message.endswith("because no resource-based policy allows the kms:DescribeKey action")
    # A bare key id is looked up in the caller's own account (KMS API reference: to use a key of another account
    # name it by its key ARN or alias ARN).
    assert err(client.describe_key, KeyId=SHARED)[0] == "NotFoundException"


def test_management_operations_never_work_across_accounts(lab: Lab) -> None:
    # KMS API reference, GetKeyPolicy and PutKeyPolicy: "Cross-account use: No", even when the key policy allows.
    client = kms(lab, "app-a")
    assert err(client.get_key_policy, KeyId=arn(SHARED, B), PolicyName="default")[0] == "AccessDeniedException"
    policy = lab.admin.raw_key_policy(SHARED)
    assert err(client.put_key_policy, KeyId=arn(SHARED, B), PolicyName="default", Policy=policy)[0] == \
        "AccessDeniedException"
    # B's own admin can.
    assert json.loads(kms(lab, "b-admin").get_key_policy(KeyId=SHARED)["Policy"]) == json.loads(policy)


# --- entering member accounts ------------------------------------------------------------------------------------


def test_assume_role_into_a_member_account(lab: Lab) -> None:
    # IAM User Guide, "Cross-account policy evaluation logic": the role's trust policy names the management
    # account and the caller's identity policy allows sts:AssumeRole on the role.
    answer = assume(lab, "org-admin", B)
    assert answer["AssumedRoleUser"]["Arn"] == f"arn:aws:sts::{B}:assumed-role/{ACCESS_ROLE}/audit"
    member = lab.assumed_client(answer["Credentials"], "kms", config=NO_RETRY)
    assert [k["KeyId"] for k in member.list_keys()["Keys"]] == [SHARED, PRIVATE]
    assert json.loads(member.get_key_policy(KeyId=PRIVATE)["Policy"])["Statement"][0]["Principal"] == {
        "AWS": f"arn:aws:iam::{B}:root"}
    sts = lab.assumed_client(answer["Credentials"], "sts")
    assert sts.get_caller_identity()["Account"] == B
    c_keys = lab.assumed_client(assume(lab, "org-admin", C)["Credentials"], "kms").list_keys(Limit=1000)["Keys"]
    assert [k["KeyId"] for k in c_keys] == MANY


def test_assume_role_needs_the_trust_policy_and_the_callers_permission(lab: Lab) -> None:
    sts = lab.client("no-assume", "sts", config=NO_RETRY)
    code, message = err(sts.assume_role, RoleArn=f"arn:aws:iam::{B}:role/{ACCESS_ROLE}", RoleSessionName="xy")
    assert code == "AccessDenied" and "sts:AssumeRole" in message  # no identity policy allows it
    # B's admin may call sts:AssumeRole, but C's access role trusts only the management account.
    code, _ = err(lab.client("b-admin", "sts", config=NO_RETRY).assume_role,
                  RoleArn=f"arn:aws:iam::{C}:role/{ACCESS_ROLE}", RoleSessionName="xy")
    assert code == "AccessDenied"
    # The management account has no access role of its own (Organizations creates it in member accounts).
    code, _ = err(lab.client("org-admin", "sts", config=NO_RETRY).assume_role,
                  RoleArn=f"arn:aws:iam::{MGMT}:role/{ACCESS_ROLE}", RoleSessionName="xy")
    assert code == "AccessDenied"


def test_list_accounts_from_the_management_account(lab: Lab) -> None:
    # Organizations API reference, ListAccounts: every account of the organization, MaxResults from 1 to 20 with
    # NextToken; "You can only call this operation from the management account".
    org = lab.client("org-admin", "organizations", config=NO_RETRY)
    first = org.list_accounts(MaxResults=2)
    assert [a["Id"] for a in first["Accounts"]] == [MGMT, B] and "NextToken" in first
    rest = org.list_accounts(MaxResults=2, NextToken=first["NextToken"])
    assert [a["Id"] for a in rest["Accounts"]] == [C] and "NextToken" not in rest
    pages = org.get_paginator("list_accounts").paginate(PaginationConfig={"PageSize": 1})
    accounts = [a for page in pages for a in page["Accounts"]]
    assert [(a["Id"], a["Name"], a["Status"]) for a in accounts] == [
        (MGMT, "management", "ACTIVE"), (B, "workloads", "ACTIVE"), (C, f"account-{C}", "ACTIVE")]
    assert accounts[1]["Arn"].startswith(f"arn:aws:organizations::{MGMT}:account/o-") and \
        accounts[1]["Arn"].endswith(f"/{B}")
    assert org.describe_account(AccountId=C)["Account"]["Id"] == C
    assert err(org.list_accounts, MaxResults=21)[0] == "InvalidInputException"
    assert err(org.list_accounts, NextToken="forged")[0] == "InvalidInputException"
    member = lab.client("b-admin", "organizations", config=NO_RETRY)
    assert err(member.list_accounts)[0] == "AccessDeniedException"  # a member account may not list them


# --- pagination --------------------------------------------------------------------------------------------------


def test_list_keys_pages_as_kms_does(lab: Lab) -> None:
    # KMS API reference, ListKeys: Limit "must be between 1 and 1000, inclusive. If you do not include a value, it
    # defaults to 100"; a truncated answer carries NextMarker, to be sent back as Marker.
    client = lab.assumed_client(assume(lab, "org-admin", C)["Credentials"], "kms", config=NO_RETRY)
    seen, marker, pages = [], None, 0
    while True:
        page = client.list_keys(Limit=3, **({"Marker": marker} if marker else {}))
        pages += 1
        seen += [k["KeyId"] for k in page["Keys"]]
        assert page["Truncated"] == ("NextMarker" in page)
        if not page["Truncated"]:
            break
        marker = page["NextMarker"]
    assert (seen, pages) == (MANY, 3)
    paged = client.get_paginator("list_keys").paginate(PaginationConfig={"PageSize": 2})
    assert [k["KeyId"] for p in paged for k in p["Keys"]] == MANY
    assert err(client.list_keys, Limit=1001)[0] == "ValidationException"
    assert err(client.list_keys, Marker="not-a-marker")[0] == "InvalidMarkerException"


def test_list_aliases_pages_as_kms_does(lab: Lab) -> None:
    # KMS API reference, ListAliases: Limit between 1 and 100, default 50; "the aliases in the account and Region".
    client = lab.assumed_client(assume(lab, "org-admin", C)["Credentials"], "kms", config=NO_RETRY)
    paged = client.get_paginator("list_aliases").paginate(PaginationConfig={"PageSize": 4})
    names = [a["AliasName"] for p in paged for a in p["Aliases"]]
    assert [n for n in names if n.startswith("alias/many-")] == [f"alias/many-{n}" for n in range(7)]
    first = client.list_aliases(Limit=4)
    assert len(first["Aliases"]) == 4 and first["Truncated"] is True
    assert err(client.list_aliases, Limit=101)[0] == "ValidationException"
    b_aliases = [a["AliasName"] for a in kms(lab, "b-admin").list_aliases(Limit=100)["Aliases"]]
    assert {"alias/shared", "alias/private"} <= set(b_aliases) and "alias/many-0" not in b_aliases
