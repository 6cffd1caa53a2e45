"""The lab's guardrails, end to end with boto3: permissions boundaries, SCPs and RCPs enforced by the gate with
AWS's wording, the Organizations read calls the lab serves, and the scenario fields' validation errors.

Pages: IAM User Guide, "Troubleshoot access denied error messages" (the wording of each denial) and "Permissions
boundaries for IAM entities"; AWS Organizations User Guide, "SCP evaluation", "RCP evaluation"; AWS Organizations
API reference (DescribeOrganization, ListRoots, ListParents, ListPoliciesForTarget, DescribePolicy: only the
management account may call the last four).
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from kms_rescue.lab import Lab, ScenarioError, load_scenario

ACCOUNT = "111122223333"
MGMT = "444455556666"
OUTSIDER = "123456789012"
REGION = "us-east-1"
KEY = "aaaaaaaa-0000-4000-8000-00000000000a"
V = "2012-10-17"
NO_RETRY = Config(retries={"total_max_attempts": 1})
ORG_ID = "o-exampleorg"


def allow(*actions: str) -> dict[str, Any]:
    return {"Version": V, "Statement": [{"Effect": "Allow", "Action": list(actions), "Resource": "*"}]}


KMS_ADMIN = allow("kms:*", "iam:Get*")
ALICE = f"arn:aws:iam::{ACCOUNT}:user/alice"

SCENARIO: dict[str, Any] = {
    "name": "guardrail-gate",
    "account": ACCOUNT,
    "region": REGION,
    "managed_policies": [
        {"name": "ReadOnlyBoundary", "document": allow("kms:Describe*", "kms:Get*", "kms:List*", "iam:Get*")},
        {"name": "NoPutBoundary", "document": {"Version": V, "Statement": [
            {"Effect": "Allow", "Action": "*", "Resource": "*"},
            {"Effect": "Deny", "Action": "kms:PutKeyPolicy", "Resource": "*"}]}},
    ],
    "identities": [
        {"profile": "admin", "role": "Admin", "policies": [KMS_ADMIN, allow("organizations:*")]},
        {"profile": "bounded", "role": "Bounded", "policies": [KMS_ADMIN], "permissions_boundary": "ReadOnlyBoundary"},
        {"profile": "alice", "user": "alice", "policies": [KMS_ADMIN], "permissions_boundary": "ReadOnlyBoundary"},
        {"profile": "no-put", "role": "NoPut", "policies": [KMS_ADMIN], "permissions_boundary": "NoPutBoundary"},
        {"profile": "tagged", "role": "Tagged", "policies": [KMS_ADMIN], "tags": {"scp-deny": "yes"}},
        {"profile": "org-reader", "user": "org-reader", "account": MGMT,
         "policies": [allow("organizations:Describe*", "organizations:List*")]},
        {"profile": "org-nobody", "user": "org-nobody", "account": MGMT},
        {"profile": "outsider", "role": "Outsider", "account": OUTSIDER,
         "policies": [allow("organizations:*", "kms:Encrypt")]},
    ],
    "organization": {
        "id": ORG_ID,
        "management_account": MGMT,
        "ous": [{"name": "Workloads"}, {"name": "Prod", "parent": "Workloads"}],
        "accounts": {ACCOUNT: "Prod"},
        "full_aws_access_detached": ["Prod"],
        "scps": [
            {"name": "DenyTaggedKeyPolicy", "targets": ["root"], "document": {"Version": V, "Statement": [
                {"Effect": "Deny", "Action": "kms:PutKeyPolicy", "Resource": "*",
                 "Condition": {"StringEquals": {"aws:PrincipalTag/scp-deny": "yes"}}}]}},
            {"name": "ProdAllowsAllButDeletion", "targets": ["Prod"], "document": {"Version": V, "Statement": [
                {"Effect": "Allow", "NotAction": "kms:ScheduleKeyDeletion", "Resource": "*"}]}},
        ],
        "rcps": [
            {"name": "NoDisabling", "targets": ["Workloads"], "document": {"Version": V, "Statement": [
                {"Effect": "Deny", "Principal": "*", "Action": "kms:DisableKey", "Resource": "*"}]}},
            {"name": "OrgPerimeter", "targets": ["root"], "document": {"Version": V, "Statement": [
                {"Effect": "Deny", "Principal": "*", "Action": "kms:*", "Resource": "*",
                 "Condition": {"StringNotEqualsIfExists": {"aws:PrincipalOrgID": ORG_ID},
                               "Bool": {"aws:PrincipalIsAWSService": "false"}}}]}},
        ],
    },
    "keys": [{"id": KEY, "policy": {"Version": V, "Statement": [
        {"Sid": "EnableIAM", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
         "Action": "kms:*", "Resource": "*"},
        {"Sid": "Alice", "Effect": "Allow", "Principal": {"AWS": ALICE}, "Action": "kms:PutKeyPolicy",
         "Resource": "*"},
        {"Sid": "OutsiderUse", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{OUTSIDER}:root"},
         "Action": "kms:Encrypt", "Resource": "*"},
    ]}}],
}


def put(lab: Lab, profile: str) -> str | None:
    """None when ``profile`` may call PutKeyPolicy (re-putting the key's policy), else AWS's message."""
    kms = lab.client(profile, "kms", config=NO_RETRY)
    try:
        kms.put_key_policy(KeyId=KEY, Policy=lab.admin.raw_key_policy(KEY))
    except ClientError as exc:
        assert exc.response["Error"]["Code"] == "AccessDeniedException"
        return str(exc.response["Error"]["Message"])
    return None


# --- the gate ---------------------------------------------------------------------------------------------------

def test_no_guardrail_in_the_way(lab: Lab) -> None:
    assert put(lab, "admin") is None


@pytest.mark.parametrize("profile, ending", [
    # IAM User Guide, Permissions boundaries: identity policies grant only what the boundary allows.
    ("bounded", "because no permissions boundary allows the kms:PutKeyPolicy action"),
    # IAM User Guide, Policy evaluation logic: an explicit Deny in a boundary wins.
    ("no-put", "with an explicit deny in a permissions boundary"),
    # An SCP's Deny applies to the principals of the accounts under it.
    ("tagged", "with an explicit deny in a service control policy"),
])
def test_guardrail_denials_read_as_aws_words_them(lab: Lab, profile: str, ending: str) -> None:
    message = put(lab, profile)
    assert message is not None and message.endswith(ending), message
    assert message.startswith(f"User: {lab.identities[profile]} is not authorized to perform: kms:PutKeyPolicy")


def test_a_boundary_does_not_limit_a_key_policy_naming_the_user(lab: Lab) -> None:
    """IAM User Guide, Permissions boundaries: a resource-based policy that names the user's ARN grants without the
    boundary (alice's boundary allows only reads, yet the key policy names her for PutKeyPolicy)."""
    assert put(lab, "alice") is None
    with pytest.raises(ClientError) as exc:  # through her identity policy (the account principal): limited
        lab.client("alice", "kms", config=NO_RETRY).enable_key_rotation(KeyId=KEY)
    assert exc.value.response["Error"]["Message"].endswith(
        "because no permissions boundary allows the kms:EnableKeyRotation action")


def test_a_boundary_leaves_what_it_allows(lab: Lab) -> None:
    assert lab.client("bounded", "kms").describe_key(KeyId=KEY)["KeyMetadata"]["KeyId"] == KEY


def test_every_scp_level_must_allow(lab: Lab) -> None:
    """Organizations User Guide, SCP evaluation: FullAWSAccess is detached from Prod, whose only SCP allows all but
    kms:ScheduleKeyDeletion; the key and identity policies allow it, the SCPs do not."""
    with pytest.raises(ClientError) as exc:
        lab.client("admin", "kms", config=NO_RETRY).schedule_key_deletion(KeyId=KEY, PendingWindowInDays=7)
    assert exc.value.response["Error"]["Message"].endswith(
        "because no service control policy allows the kms:ScheduleKeyDeletion action")


def test_an_rcp_deny_applies_to_the_key(lab: Lab) -> None:
    with pytest.raises(ClientError) as exc:
        lab.client("admin", "kms", config=NO_RETRY).disable_key(KeyId=KEY)
    assert exc.value.response["Error"]["Message"].endswith("with an explicit deny in a resource control policy")


def test_an_rcp_perimeter_keeps_callers_outside_the_organization_out(lab: Lab) -> None:
    """KMS Developer Guide, Resource control policies in AWS KMS (the perimeter example): aws:PrincipalOrgID is
    the caller's organization, so the member account's admin may encrypt and the outside account may not, though
    the key policy and its own identity policy allow it."""
    assert lab.client("admin", "kms").encrypt(KeyId=KEY, Plaintext=b"x")["KeyId"]
    with pytest.raises(ClientError) as exc:
        lab.client("outsider", "kms", config=NO_RETRY).encrypt(KeyId=f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{KEY}",
                                                               Plaintext=b"x")
    assert exc.value.response["Error"]["Message"].endswith("with an explicit deny in a resource control policy")


def test_boundaries_are_shown_by_get_role_and_get_user(lab: Lab) -> None:
    iam = lab.client("admin", "iam")
    boundary = f"arn:aws:iam::{ACCOUNT}:policy/ReadOnlyBoundary"
    role = iam.get_role(RoleName="Bounded")["Role"]
    assert role["PermissionsBoundary"]["PermissionsBoundaryArn"] == boundary
    user = iam.get_user(UserName="alice")["User"]
    assert user["PermissionsBoundary"] == {"PermissionsBoundaryType": "PermissionsBoundaryPolicy",
                                           "PermissionsBoundaryArn": boundary}
    assert "PermissionsBoundary" not in iam.get_role(RoleName="Admin")["Role"]
    version = iam.get_policy(PolicyArn=boundary)["Policy"]["DefaultVersionId"]
    doc = iam.get_policy_version(PolicyArn=boundary, VersionId=version)["PolicyVersion"]["Document"]
    assert doc["Statement"][0]["Action"][0] == "kms:Describe*"


# --- Organizations ----------------------------------------------------------------------------------------------

def org(lab: Lab, profile: str) -> Any:
    return lab.client(profile, "organizations", config=NO_RETRY)


def error_of(call: Any, **kwargs: Any) -> tuple[str, str]:
    with pytest.raises(ClientError) as exc:
        call(**kwargs)
    return exc.value.response["Error"]["Code"], exc.value.response["Error"]["Message"]


def test_a_member_account_sees_the_organization_but_not_its_policies(lab: Lab) -> None:
    described = org(lab, "admin").describe_organization()["Organization"]
    assert described["MasterAccountId"] == MGMT and described["Id"].startswith("o-")
    for call, kwargs in ((org(lab, "admin").list_roots, {}),
                         (org(lab, "admin").list_parents, {"ChildId": ACCOUNT}),
                         (org(lab, "admin").list_policies_for_target,
                          {"TargetId": ACCOUNT, "Filter": "SERVICE_CONTROL_POLICY"})):
        assert error_of(call, **kwargs) == ("AccessDeniedException",
                                            "You don't have permissions to access this resource.")


def test_the_management_account_reads_the_path_and_its_policies(lab: Lab) -> None:
    client = org(lab, "org-reader")
    root = client.list_roots()["Roots"][0]
    assert {t["Type"] for t in root["PolicyTypes"] if t["Status"] == "ENABLED"} == {
        "SERVICE_CONTROL_POLICY", "RESOURCE_CONTROL_POLICY"}
    path, child = [], ACCOUNT
    while True:
        parent = client.list_parents(ChildId=child)["Parents"][0]
        path.append(parent["Type"])
        child = parent["Id"]
        if parent["Type"] == "ROOT":
            break
    assert child == root["Id"] and path == ["ORGANIZATIONAL_UNIT", "ORGANIZATIONAL_UNIT", "ROOT"]
    prod = client.list_parents(ChildId=ACCOUNT)["Parents"][0]["Id"]
    at_prod = client.list_policies_for_target(TargetId=prod, Filter="SERVICE_CONTROL_POLICY")["Policies"]
    assert [p["Name"] for p in at_prod] == ["ProdAllowsAllButDeletion"]  # FullAWSAccess detached there
    at_root = client.list_policies_for_target(TargetId=root["Id"], Filter="SERVICE_CONTROL_POLICY")["Policies"]
    assert [(p["Name"], p["AwsManaged"]) for p in at_root] == [("FullAWSAccess", True), ("DenyTaggedKeyPolicy", False)]
    rcps = client.list_policies_for_target(TargetId=ACCOUNT, Filter="RESOURCE_CONTROL_POLICY")["Policies"]
    assert [p["Id"] for p in rcps] == ["p-RCPFullAWSAccess"]
    content = json.loads(client.describe_policy(PolicyId=at_root[1]["Id"])["Policy"]["Content"])
    assert content["Statement"][0]["Action"] == "kms:PutKeyPolicy"


def test_organizations_calls_need_an_identity_policy(lab: Lab) -> None:
    code, message = error_of(org(lab, "org-nobody").describe_organization)
    assert code == "AccessDeniedException"
    assert message.endswith("because no identity-based policy allows the organizations:DescribeOrganization action")


def test_an_account_outside_the_organization(lab: Lab) -> None:
    assert error_of(org(lab, "outsider").describe_organization) == (
        "AWSOrganizationsNotInUseException", "Your account is not a member of an organization.")


def test_unknown_targets_and_policies(lab: Lab) -> None:
    client = org(lab, "org-reader")
    assert error_of(client.list_parents, ChildId="ou-zzzz-zzzzzzzz")[0] == "ChildNotFoundException"
    assert error_of(client.describe_policy, PolicyId="p-zzzzzzzz")[0] == "PolicyNotFoundException"
    assert error_of(client.list_policies_for_target, TargetId="ou-zzzz-zzzzzzzz",
                    Filter="SERVICE_CONTROL_POLICY")[0] == "TargetNotFoundException"


# --- scenario validation ----------------------------------------------------------------------------------------

def mutated(change: Any) -> dict[str, Any]:
    doc = copy.deepcopy(SCENARIO)
    change(doc)
    return doc


BAD = [
    (lambda d: d["identities"][1].update(permissions_boundary="Nope"),
     "$.identities[1].permissions_boundary: no managed policy 'Nope' in $.managed_policies"),
    (lambda d: d["identities"].append({"profile": "root", "root": True, "permissions_boundary": "NoPutBoundary"}),
     "$.identities[8].permissions_boundary: the root user has no permissions boundary"),
    (lambda d: d["identities"][1].update(permissions_boundary=""),
     "$.identities[1].permissions_boundary: '' should be non-empty"),
    (lambda d: d["organization"].pop("management_account"),
     "$.organization.management_account: required field is missing"),
    (lambda d: d["organization"].update(delegated_admins=[]), "$.organization.delegated_admins: unknown field"),
    (lambda d: d["organization"]["ous"][1].update(parent="Nowhere"),
     "$.organization.ous[1].parent: no OU 'Nowhere' before it in $.organization.ous"),
    (lambda d: d["organization"]["ous"].append({"name": "Workloads"}),
     "$.organization.ous[2].name: 'Workloads' names another OU (or the root)"),
    (lambda d: d["organization"]["accounts"].update({ACCOUNT: "Staging"}),
     f'$.organization.accounts["{ACCOUNT}"]: no OU \'Staging\' in $.organization.ous'),
    (lambda d: d["organization"]["accounts"].update({"1234": "Prod"}),
     '$.organization.accounts: "1234" does not match ^[0-9]{12}$'),
    (lambda d: d["organization"]["scps"][0].update(targets=["Staging"]),
     "$.organization.scps[0].targets[0]: 'Staging' is not root, an OU name or an account of the organization"),
    (lambda d: d["organization"]["rcps"][0].update(targets=[]),
     "$.organization.rcps[0].targets: [] should be non-empty"),
    (lambda d: d["organization"]["scps"][1]["document"].update(Statement=[{"Effect": "Maybe"}]),
     '$.organization.scps[1].document: statement #1: Effect must be "Allow" or "Deny", not "Maybe"'),
    (lambda d: d["organization"].pop("scps"),
     "$.organization.full_aws_access_detached: SCPs are not enabled (no $.organization.scps)"),
    (lambda d: d["organization"]["ous"].append({"name": "root"}),
     "$.organization.ous[2].name: \"root\" names the organization's root; an OU needs another name"),
]


@pytest.mark.parametrize("change, message", BAD, ids=[m.split(":")[0] + f"#{i}" for i, (_, m) in enumerate(BAD)])
def test_bad_guardrail_fields_name_the_path(change: Any, message: str) -> None:
    with pytest.raises(ScenarioError) as exc:
        load_scenario(mutated(change))
    text = str(exc.value)
    assert "\n" not in text
    assert text.startswith(f"<scenario>: {message}"), text


def test_the_scenarios_organization_is_what_it_says() -> None:
    sc = load_scenario(SCENARIO)
    assert sc.organization is not None
    o = sc.organization
    path = o.path(ACCOUNT)
    assert path[0] == o.root_id and path[-1] == ACCOUNT and len(path) == 4
    assert [p.name for p in o.attached("SERVICE_CONTROL_POLICY", path[2])] == ["ProdAllowsAllButDeletion"]
    assert [p.name for p in o.attached("RESOURCE_CONTROL_POLICY", ACCOUNT)] == ["RCPFullAWSAccess"]
    assert o.id == ORG_ID
    assert load_scenario(SCENARIO).organization == o  # ids are derived, the same every time
