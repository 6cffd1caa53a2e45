"""The lab serves several Regions, end to end with boto3: each case names the AWS page and the fact it reproduces."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from kms_rescue.errors import UsageError
from kms_rescue.lab import Lab, load_scenario, regions

ACCOUNT = "123456789012"
HOME, EU, AP = "us-east-1", "eu-west-1", "ap-east-1"  # AP: an opt-in Region (launched after March 20, 2019)
UNSERVED = "us-west-2"
K_US = "bbbbbbbb-0000-4000-8000-000000000001"
K_EU = "bbbbbbbb-0000-4000-8000-000000000002"
K_AP = "bbbbbbbb-0000-4000-8000-000000000003"
V = "2012-10-17"
NO_RETRY = Config(retries={"total_max_attempts": 1})


def allow(*actions: str, resource: str = "*") -> dict[str, Any]:
    return {"Version": V, "Statement": [{"Effect": "Allow", "Action": list(actions), "Resource": resource}]}


def arn(key_id: str, region: str) -> str:
    return f"arn:aws:kms:{region}:{ACCOUNT}:key/{key_id}"


ROOT_AND_GHOST = {"Version": V, "Statement": [
    {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "kms:*", "Resource": "*"},
    {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:role/Ghost"}, "Action": "kms:*",
     "Resource": "*"}]}

SCENARIO: dict[str, Any] = {
    "name": "regions-tests",
    "account": ACCOUNT,
    "region": HOME,
    "enabled_regions": [EU, HOME, AP],
    "identities": [
        {"profile": "admin", "role": "Admin",
         "policies": [allow("kms:*", "ec2:DescribeRegions", "cloudtrail:LookupEvents")]},
        {"profile": "home-only", "role": "HomeOnly",
         "policies": [allow("kms:*", resource=f"arn:aws:kms:{HOME}:{ACCOUNT}:key/*")]},
        {"profile": "nobody", "role": "Nobody"},
        {"profile": "asked-at-home", "role": "AskedAtHome", "policies": [{"Version": V, "Statement": [
            {"Effect": "Allow", "Action": "kms:DescribeKey", "Resource": "*",
             "Condition": {"StringEquals": {"aws:RequestedRegion": HOME}}}]}]},
        {"profile": "root", "root": True},
    ],
    "deleted": ["role/Ghost"],
    "keys": [
        {"id": K_US, "alias": ["alias/shared", "alias/home-only"]},
        {"id": K_EU, "region": EU, "alias": "alias/shared", "policy": ROOT_AND_GHOST},
        {"id": K_AP, "region": AP},
    ],
    "history": [
        {"event": "CreateKey", "key": K_EU, "principal": f"arn:aws:sts::{ACCOUNT}:assumed-role/Admin/admin",
         "time": "-5d"},
    ],
}


def kms(lab: Lab, region: str, profile: str = "admin") -> Any:
    return lab.client(profile, "kms", region_name=region, config=NO_RETRY)


def err(call: Any, **kwargs: Any) -> tuple[str, str]:
    with pytest.raises(ClientError) as exc:
        call(**kwargs)
    e = exc.value.response["Error"]
    return e["Code"], e.get("Message", "")


# --- keys live in their own Region ------------------------------------------------------------------------------


def test_the_scenario_names_its_regions_home_first() -> None:
    sc = load_scenario(SCENARIO)
    assert sc.regions == (HOME, EU, AP)
    assert [k.region for k in sc.keys] == [HOME, EU, AP]
    # Default: the scenario's Region plus every key's, in order of appearance.
    doc = {k: v for k, v in SCENARIO.items() if k != "enabled_regions"}
    assert load_scenario(doc).regions == (HOME, EU, AP)


def test_each_key_is_in_its_own_region_and_its_arn_says_so(lab: Lab) -> None:
    # KMS Developer Guide, "AWS KMS keys": a KMS key is a Regional resource; its ARN names its Region.
    for key_id, region in ((K_US, HOME), (K_EU, EU), (K_AP, AP)):
        client = kms(lab, region)
        assert client.describe_key(KeyId=key_id)["KeyMetadata"]["Arn"] == arn(key_id, region)
        assert [k["KeyId"] for k in client.list_keys()["Keys"]] == [key_id]
        assert lab.key_arn(key_id) == arn(key_id, region)


NOT_FOUND = [
    # (request's Region, KeyId, KMS's message) — KMS API reference, DescribeKey and GetKeyPolicy, NotFoundException:
    # "the specified entity or resource could not be found"; a key the request's Region does not hold is not there
    (HOME, K_EU, f"Key '{arn(K_EU, HOME)}' does not exist"),  # a bare key id: the ARN in the request's Region
    (HOME, arn(K_EU, EU), f"Key '{arn(K_EU, EU)}' does not exist"),  # a key ARN of another Region, as given
    (EU, K_US, f"Key '{arn(K_US, EU)}' does not exist"),
    (EU, "alias/home-only", f"Alias arn:aws:kms:{EU}:{ACCOUNT}:alias/home-only is not found."),
    (UNSERVED, K_US, f"Key '{arn(K_US, UNSERVED)}' does not exist"),  # a Region the scenario does not name
    (UNSERVED, "alias/shared", f"Alias arn:aws:kms:{UNSERVED}:{ACCOUNT}:alias/shared is not found."),
]


@pytest.mark.parametrize(("region", "ref", "message"), NOT_FOUND)
def test_a_key_of_another_region_is_not_found(lab: Lab, region: str, ref: str, message: str) -> None:
    for profile in ("admin", "nobody", "root"):  # NotFound, never AccessDenied: the key is not there to deny
        assert err(kms(lab, region, profile).describe_key, KeyId=ref) == ("NotFoundException", message)
    if not ref.startswith("alias/"):
        assert err(kms(lab, region).get_key_policy, KeyId=ref, PolicyName="default") == ("NotFoundException",
                                                                                          message)


def test_a_region_the_scenario_does_not_name_has_no_keys(lab: Lab) -> None:
    client = kms(lab, UNSERVED)
    assert client.list_keys()["Keys"] == []
    assert client.list_aliases()["Aliases"] == []
    code, message = err(client.create_key)
    assert code == "UnsupportedOperationException" and UNSERVED in message
    code, _ = err(kms(lab, UNSERVED, "nobody").list_keys)  # still decided by IAM policies first
    assert code == "AccessDeniedException"
    # Not even a Region name (the lab trusts the signature's credential scope): still no keys, and no crash.
    nowhere = kms(lab, "mars-north-1")
    assert nowhere.list_keys()["Keys"] == [] and nowhere.list_aliases()["Aliases"] == []
    assert err(nowhere.describe_key, KeyId=K_US)[0] == "NotFoundException"
    assert err(nowhere.create_alias, AliasName="alias/x", TargetKeyId=K_US)[0] == "NotFoundException"
    assert err(nowhere.delete_alias, AliasName="alias/shared")[0] == "NotFoundException"
    assert lab.client("admin", "cloudtrail", region_name="mars-north-1").lookup_events()["Events"] == []


def test_identity_policies_see_the_keys_region(lab: Lab) -> None:
    # IAM User Guide, "IAM JSON policy elements: Resource": the key ARN carries its Region, so a policy scoped to
    # us-east-1 keys allows the us-east-1 key and not the eu-west-1 one.
    assert kms(lab, HOME, "home-only").describe_key(KeyId=K_US)
    code, message = err(kms(lab, EU, "home-only").describe_key, KeyId=K_EU)
    assert code == "AccessDeniedException"
    assert message == (f"User: {lab.identities['home-only']} is not authorized to perform: kms:DescribeKey on "
                       f"resource: {arn(K_EU, EU)} because no identity-based policy allows the kms:DescribeKey action")


def test_requested_region_is_the_requests_region(lab: Lab) -> None:
    # IAM User Guide, "AWS global condition context keys", aws:RequestedRegion: the Region the request was made to.
    assert kms(lab, HOME, "asked-at-home").describe_key(KeyId=K_US)
    code, message = err(kms(lab, EU, "asked-at-home").describe_key, KeyId=K_EU)
    assert code == "AccessDeniedException" and message.endswith(
        "because no identity-based policy allows the kms:DescribeKey action")


def test_a_ciphertext_is_decrypted_in_its_keys_region_only(lab: Lab) -> None:
    blob = kms(lab, EU).encrypt(KeyId=K_EU, Plaintext=b"x")["CiphertextBlob"]
    assert kms(lab, EU).decrypt(CiphertextBlob=blob)["Plaintext"] == b"x"
    code, _ = err(kms(lab, HOME).decrypt, CiphertextBlob=blob)
    assert code == "AccessDeniedException"  # the ciphertext's key does not exist in this Region


def test_a_deleted_principal_shows_as_its_unique_id_in_every_region(lab: Lab) -> None:
    policy = json.loads(kms(lab, EU).get_key_policy(KeyId=K_EU)["Policy"])
    assert policy["Statement"][1]["Principal"]["AWS"] == lab.admin.unique_id("role/Ghost")


# --- aliases are per Region -------------------------------------------------------------------------------------


def test_an_alias_name_can_point_to_a_different_key_in_each_region(lab: Lab) -> None:
    # KMS API reference, CreateAlias: "The alias must be unique in the account and Region, but you can have aliases
    # with the same name in different Regions."
    assert kms(lab, HOME).describe_key(KeyId="alias/shared")["KeyMetadata"]["KeyId"] == K_US
    assert kms(lab, EU).describe_key(KeyId="alias/shared")["KeyMetadata"]["KeyId"] == K_EU
    alias_arn = f"arn:aws:kms:{EU}:{ACCOUNT}:alias/shared"
    assert kms(lab, EU).describe_key(KeyId=alias_arn)["KeyMetadata"]["KeyId"] == K_EU
    home = {a["AliasName"]: a.get("TargetKeyId") for a in kms(lab, HOME).list_aliases()["Aliases"]}
    eu = {a["AliasName"]: a.get("TargetKeyId") for a in kms(lab, EU).list_aliases()["Aliases"]}
    assert home["alias/shared"] == K_US and eu["alias/shared"] == K_EU
    assert "alias/home-only" in home and "alias/home-only" not in eu
    assert lab.key_arn("alias/shared") == arn(K_US, HOME)  # the scenario's Region first
    assert lab.key_arn("alias/shared", region=EU) == arn(K_EU, EU)


def test_aliases_are_created_in_the_requests_region_for_a_key_of_that_region(lab: Lab) -> None:
    kms(lab, EU).create_alias(AliasName="alias/made-here", TargetKeyId=K_EU)
    kms(lab, HOME).create_alias(AliasName="alias/made-here", TargetKeyId=K_US)  # same name, other Region
    assert kms(lab, EU).describe_key(KeyId="alias/made-here")["KeyMetadata"]["KeyId"] == K_EU
    assert kms(lab, HOME).describe_key(KeyId="alias/made-here")["KeyMetadata"]["KeyId"] == K_US
    # KMS API reference, CreateAlias: the alias and its key must be in the same Region.
    code, message = err(kms(lab, HOME).create_alias, AliasName="alias/across", TargetKeyId=K_EU)
    assert (code, message) == ("NotFoundException", f"Key '{arn(K_EU, HOME)}' does not exist")
    kms(lab, EU).delete_alias(AliasName="alias/made-here")
    assert kms(lab, HOME).describe_key(KeyId="alias/made-here")["KeyMetadata"]["KeyId"] == K_US


def test_lab_api_refuses_an_ambiguous_alias() -> None:
    doc = json.loads(json.dumps(SCENARIO))
    doc["keys"][0]["alias"] = ["alias/home-only"]  # alias/shared now only in eu-west-1 ...
    doc["keys"][2]["alias"] = "alias/shared"  # ... and ap-east-1
    with Lab(doc) as lab:
        with pytest.raises(UsageError, match="exists in eu-west-1, ap-east-1: name the region"):
            lab.key_arn("alias/shared")
        assert lab.key_arn("alias/shared", region=AP) == arn(K_AP, AP)
        assert lab.key_arn("alias/home-only") == arn(K_US, HOME)


# --- CreateKey and CloudTrail per Region --------------------------------------------------------------------------


def created_keys(lab: Lab, region: str) -> set[str]:
    """The Region and key ARN of each CreateKey event in that Region's CloudTrail event history."""
    events = lab.client("admin", "cloudtrail", region_name=region).lookup_events(
        LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "CreateKey"}])["Events"]
    return {json.loads(e["CloudTrailEvent"])["awsRegion"] + ":" + e["Resources"][0]["ResourceName"] for e in events}


def test_create_key_in_a_served_region_and_its_event_in_that_regions_trail() -> None:
    with Lab(SCENARIO) as lab:  # a lab of its own: this test adds a key
        made = kms(lab, AP).create_key(Description="made in Hong Kong")["KeyMetadata"]
        assert made["Arn"].startswith(f"arn:aws:kms:{AP}:{ACCOUNT}:key/")
        assert err(kms(lab, HOME).describe_key, KeyId=made["KeyId"])[0] == "NotFoundException"
        # CloudTrail User Guide, "Working with CloudTrail event history": events are kept, and looked up, per Region.
        assert created_keys(lab, AP) == {f"{AP}:{made['Arn']}"}
        assert created_keys(lab, EU) == {f"{EU}:{arn(K_EU, EU)}"}  # the seeded history of the eu-west-1 key
        assert created_keys(lab, HOME) == set()
        assert lab.admin.internal_errors == []


# --- EC2 DescribeRegions -------------------------------------------------------------------------------------------

ENABLED = [
    # EC2 API reference, "Region": regionName, regionEndpoint, optInStatus. Account Management Reference Guide:
    # Regions launched before March 20, 2019 are enabled by default (opt-in-not-required); later ones are opt-in.
    {"RegionName": HOME, "Endpoint": f"ec2.{HOME}.amazonaws.com", "OptInStatus": "opt-in-not-required"},
    {"RegionName": EU, "Endpoint": f"ec2.{EU}.amazonaws.com", "OptInStatus": "opt-in-not-required"},
    {"RegionName": AP, "Endpoint": f"ec2.{AP}.amazonaws.com", "OptInStatus": "opted-in"},
]


@pytest.mark.parametrize("profile", ["admin", "root"])
def test_describe_regions_lists_the_enabled_regions(lab: Lab, profile: str) -> None:
    # The config's one endpoint_url serves EC2 too; the root user needs no identity policy in its own account.
    ec2 = lab.client(profile, "ec2", config=NO_RETRY)
    assert ec2.describe_regions()["Regions"] == ENABLED
    # Asked from another Region, the answer is the same.
    assert lab.client(profile, "ec2", region_name=EU).describe_regions()["Regions"] == ENABLED


def test_describe_regions_is_authorised_by_identity_policies(lab: Lab) -> None:
    # EC2 API reference, "Troubleshooting API request errors": a caller without the permission gets
    # UnauthorizedOperation; IAM User Guide, "Troubleshoot access denied error messages" for the detail.
    ec2 = lab.client("nobody", "ec2", config=NO_RETRY)
    with pytest.raises(ClientError) as exc:
        ec2.describe_regions()
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert exc.value.response["Error"] == {
        "Code": "UnauthorizedOperation",
        "Message": f"You are not authorized to perform this operation. User: {lab.identities['nobody']} is not "
                   "authorized to perform: ec2:DescribeRegions on resource: * because no identity-based policy "
                   "allows the ec2:DescribeRegions action",
    }
    assert err(lab.client("home-only", "ec2", config=NO_RETRY).describe_regions)[0] == "UnauthorizedOperation"


DESCRIBE = [
    # (parameters, the Regions and opt-in statuses EC2 answers) — EC2 API reference, DescribeRegions
    ({"RegionNames": [EU]}, {EU: "opt-in-not-required"}),
    ({"RegionNames": ["ap-east-2"]}, {"ap-east-2": "not-opted-in"}),  # any Region may be named, enabled or not
    ({"Filters": [{"Name": "opt-in-status", "Values": ["opted-in"]}]}, {AP: "opted-in"}),
    ({"Filters": [{"Name": "region-name", "Values": ["eu-*", "us-?ast-1"]}]},
     {EU: "opt-in-not-required", HOME: "opt-in-not-required"}),
    ({"Filters": [{"Name": "endpoint", "Values": [f"ec2.{AP}.amazonaws.com"]}]}, {AP: "opted-in"}),
    ({"AllRegions": True, "Filters": [{"Name": "region-name", "Values": ["ap-east-*"]}]},
     {AP: "opted-in", "ap-east-2": "not-opted-in"}),  # AllRegions adds the disabled ones
]


@pytest.mark.parametrize(("params", "expected"), DESCRIBE)
def test_describe_regions_parameters(lab: Lab, params: dict[str, Any], expected: dict[str, str]) -> None:
    got = lab.client("admin", "ec2", config=NO_RETRY).describe_regions(**params)["Regions"]
    assert {r["RegionName"]: r["OptInStatus"] for r in got} == expected


def test_default_regions_are_regions_botocore_knows() -> None:
    assert len(regions.DEFAULT_REGIONS) == 17 and regions.known_regions() >= regions.DEFAULT_REGIONS
    assert regions.describe("eu-north-1", enabled=False).opt_in_status == "opt-in-not-required"  # launched 2018
    assert regions.describe("eu-south-1", enabled=True).opt_in_status == "opted-in"  # launched 2020
    assert regions.region_problem("us-east-1") is None


def test_describe_regions_throttled_in_ec2s_words() -> None:
    # EC2 API reference, "Error codes": RequestLimitExceeded is EC2's throttling error.
    with Lab(SCENARIO, fault_rate=1.0, fault="throttle", seed=1) as lab:
        with pytest.raises(ClientError) as exc:
            lab.client("admin", "ec2", config=NO_RETRY).describe_regions()
        assert exc.value.response["Error"]["Code"] == "RequestLimitExceeded"


def test_describe_regions_dry_run_and_bad_input(lab: Lab) -> None:
    ec2 = lab.client("admin", "ec2", config=NO_RETRY)
    assert err(ec2.describe_regions, DryRun=True) == (
        "DryRunOperation", "Request would have succeeded, but DryRun flag is set.")
    assert err(lab.client("nobody", "ec2", config=NO_RETRY).describe_regions, DryRun=True)[0] == (
        "UnauthorizedOperation")
    assert err(ec2.describe_regions, RegionNames=["mars-north-1"])[0] == "InvalidParameterValue"
    assert err(ec2.describe_regions, Filters=[{"Name": "colour", "Values": ["x"]}])[0] == "InvalidParameterValue"
