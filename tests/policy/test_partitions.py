"""Partitions from botocore's partition data: the partition of a Region, strict Region codes, and every ARN the
tool builds in the key's own partition (aws, aws-cn, aws-us-gov, aws-iso*, aws-eusc).

AWS facts, each a table case below:
- AWS General Reference, "Amazon Resource Names (ARNs)": an ARN's second field is its partition, "a group of AWS
  Regions"; each AWS account is scoped to one partition (aws, aws-cn for China, aws-us-gov for GovCloud (US)).
- AWS General Reference, "AWS Support endpoints and quotas" / AWS Support User Guide, "About the AWS Support API":
  the Support API is a global service with one endpoint (us-east-1 in the commercial partition).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from kms_rescue.aws.history import athena_query, parse_event
from kms_rescue.aws.keyref import parse_key_ref
from kms_rescue.aws.results import IdentitySpec
from kms_rescue.aws.support import support_client_for, support_region
from kms_rescue.cli.app import main
from kms_rescue.errors import UsageError
from kms_rescue.plan import delegation_statement, propose_fix, validate_admin_role
from kms_rescue.policy import evaluate, parse_policy
from kms_rescue.policy.errors import PolicyInputError
from kms_rescue.policy.lint import lint_files, lint_policy
from kms_rescue.policy.partitions import (
    account_root_arn,
    check_region,
    global_endpoint_region,
    is_region_code,
    partition_for_region,
    partition_ids,
    partition_of_arn,
    partitions,
)
from tests.helpers.paths import DOCS

ACCOUNT = "111122223333"
EXAMPLE = DOCS / "examples" / "default-key-policy.json"
KEY_ID = "1234abcd-12ab-34cd-56ef-1234567890ab"

# (Region, partition, DNS suffix): "ARNs": the partition is the group of Regions the resource is in.
REGIONS = [
    ("us-east-1", "aws", "amazonaws.com"),
    ("eu-west-3", "aws", "amazonaws.com"),
    ("cn-north-1", "aws-cn", "amazonaws.com.cn"),
    ("cn-northwest-1", "aws-cn", "amazonaws.com.cn"),
    ("us-gov-west-1", "aws-us-gov", "amazonaws.com"),
    ("us-gov-east-1", "aws-us-gov", "amazonaws.com"),
    ("us-iso-east-1", "aws-iso", "c2s.ic.gov"),
    ("us-isob-east-1", "aws-iso-b", "sc2s.sgov.gov"),
    ("eu-isoe-west-1", "aws-iso-e", "cloud.adc-e.uk"),
    ("us-isof-south-1", "aws-iso-f", "csp.hci.ic.gov"),
    ("eusc-de-east-1", "aws-eusc", "amazonaws.eu"),
]


@pytest.mark.parametrize(("region", "partition", "suffix"), REGIONS)
def test_partition_of_each_region_comes_from_botocores_data(region: str, partition: str, suffix: str) -> None:
    found = partition_for_region(region)
    assert (found.id, found.dns_suffix) == (partition, suffix)
    assert check_region(region).known


def test_every_partition_botocore_lists_is_covered() -> None:
    # The table above names every partition of the installed botocore; a new one fails here to be added.
    assert set(partition_ids()) == {p for _, p, _ in REGIONS}
    for p in partitions():
        assert all(partition_for_region(r).id == p.id for r in p.region_codes)


@pytest.mark.parametrize("bad", ["us-east-1\n", "us-east-1 ", " us-east-1", "US-EAST-1", "us-east-１", "useast1",
                                 "aws-global", "", "us-east-1\x00", "mars-north-1"])
def test_region_codes_are_matched_whole_and_ascii_only(bad: str) -> None:
    assert not is_region_code(bad)
    with pytest.raises(PolicyInputError):
        partition_for_region(bad)


@pytest.mark.parametrize(("region", "partition", "close"), [
    ("us-esat-1", "aws", "us-east-1"),          # a typo that has the shape of a Region
    ("cn-nort-1", "aws-cn", "cn-north-1"),
    ("us-gov-west-9", "aws-us-gov", "us-gov-west-1"),
])
def test_an_unlisted_region_is_accepted_with_a_hint(region: str, partition: str, close: str) -> None:
    checked = check_region(region)
    assert checked.partition.id == partition and not checked.known
    assert checked.hint and close in checked.hint and region in checked.hint


def test_a_region_newer_than_botocore_is_accepted() -> None:
    checked = check_region("ap-northwest-9")  # matches the commercial pattern, close to nothing listed
    assert checked.partition.id == "aws" and not checked.known and checked.hint


@pytest.mark.parametrize(("region", "partition", "_suffix"), REGIONS)
def test_a_key_id_in_a_region_gets_that_partitions_arn(region: str, partition: str, _suffix: str) -> None:
    ref = parse_key_ref(KEY_ID, region)
    assert ref.partition == partition
    arn = f"arn:{partition}:kms:{region}:{ACCOUNT}:key/{KEY_ID}"
    arn_ref = parse_key_ref(arn)
    assert arn_ref.partition == partition and arn_ref.key_arn == arn


@pytest.mark.parametrize("arn", [
    f"arn:aws:kms:cn-north-1:{ACCOUNT}:key/{KEY_ID}",       # a China Region is in aws-cn
    f"arn:aws-us-gov:kms:us-east-1:{ACCOUNT}:key/{KEY_ID}",  # us-east-1 is not GovCloud
    f"arn:aws-nope:kms:us-east-1:{ACCOUNT}:key/{KEY_ID}",
    f"arn:aws:kms:US-EAST-1:{ACCOUNT}:key/{KEY_ID}",
])
def test_a_key_arn_whose_partition_is_not_its_regions_is_refused(arn: str) -> None:
    with pytest.raises(UsageError):
        parse_key_ref(arn)


@pytest.mark.parametrize(("region", "partition", "_suffix"), REGIONS)
def test_the_fix_names_the_account_principal_in_the_keys_partition(region: str, partition: str, _suffix: str) -> None:
    key_arn = f"arn:{partition}:kms:{region}:{ACCOUNT}:key/{KEY_ID}"
    admin = f"arn:{partition}:iam::{ACCOUNT}:role/KeyAdmin"
    current = {"Version": "2012-10-17", "Statement": [
        {"Sid": "Admin", "Effect": "Allow", "Principal": {"AWS": "AROAEXAMPLEID0000000001"}, "Action": "kms:*",
         "Resource": "*"}]}
    plan = propose_fix(current, key_arn=key_arn, admin_role_arn=admin)
    text = json.dumps(plan.proposed)
    assert f"arn:{partition}:iam::{ACCOUNT}:root" in text
    if partition != "aws":
        assert "arn:aws:iam::" not in text
    statement = delegation_statement(ACCOUNT, partition=partition)
    assert statement["Principal"] == {"AWS": account_root_arn(ACCOUNT, partition)}
    assert any(f"arn:{partition}:iam::{ACCOUNT}:root" in line.text for line in plan.diff)


def test_an_existing_delegation_in_the_keys_partition_is_recognised() -> None:
    key_arn = f"arn:aws-us-gov:kms:us-gov-west-1:{ACCOUNT}:key/{KEY_ID}"
    current = {"Version": "2012-10-17", "Statement": [delegation_statement(ACCOUNT, partition="aws-us-gov")]}
    assert not propose_fix(current, key_arn=key_arn).changed


def test_an_admin_role_of_another_partition_is_refused() -> None:
    with pytest.raises(UsageError, match="partition"):
        validate_admin_role(f"arn:aws:iam::{ACCOUNT}:role/KeyAdmin", ACCOUNT, "aws-us-gov")
    assert validate_admin_role(f"arn:aws-cn:iam::{ACCOUNT}:role/KeyAdmin", ACCOUNT, "aws-cn")


LOCKED = {"Version": "2012-10-17", "Statement": [
    {"Sid": "AppOnly", "Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "kms:Decrypt", "Resource": "*"}]}


@pytest.mark.parametrize(("partition", "region"), [("aws-cn", "cn-north-1"), ("aws-us-gov", "us-gov-west-1"),
                                                   ("aws-iso", "us-iso-east-1"), ("aws-eusc", "eusc-de-east-1")])
def test_lint_fix_suggestions_use_the_keys_partition(partition: str, region: str, tmp_path) -> None:
    findings = lint_policy(parse_policy(LOCKED), key_account=ACCOUNT, partition=partition)
    fix = next(f.fix for f in findings if f.rule_id == "KR001")
    assert fix and f"arn:{partition}:iam::{ACCOUNT}:root" in fix and "arn:aws:iam" not in fix
    # Through lint_files, the partition follows --region.
    path = tmp_path / "policy.json"
    path.write_text(json.dumps(LOCKED))
    report = lint_files([str(path)], account=ACCOUNT, region=region)
    fixes = [f.fix for r in report.results for f in r.findings if f.rule_id == "KR001"]
    assert fixes and all(f"arn:{partition}:iam::" in (fx or "") for fx in fixes)


def test_lint_takes_the_partition_from_the_policys_own_arns() -> None:
    policy = {"Version": "2012-10-17", "Statement": [
        {"Sid": "App", "Effect": "Allow", "Principal": {"AWS": f"arn:aws-cn:iam::{ACCOUNT}:role/App"},
         "Action": "kms:Decrypt", "Resource": "*"}]}
    fix = next(f.fix for f in lint_policy(parse_policy(policy), key_account=ACCOUNT) if f.rule_id == "KR001")
    assert fix and f"arn:aws-cn:iam::{ACCOUNT}:root" in fix


@pytest.mark.parametrize(("partition", "region"), [("aws", "us-east-1"), ("aws-cn", "cn-north-1"),
                                                   ("aws-us-gov", "us-gov-west-1"), ("aws-iso", "us-iso-east-1"),
                                                   ("aws-iso-b", "us-isob-east-1")])
def test_support_endpoint_region_per_partition(partition: str, region: str) -> None:
    # "AWS Support endpoints and quotas": one global endpoint; us-east-1 signs for the commercial partition.
    assert support_region(partition) == region
    assert global_endpoint_region("support", partition) == region


@pytest.mark.parametrize("partition", ["aws-eusc", "aws-iso-e", "aws-iso-f"])
def test_support_has_no_endpoint_where_botocore_lists_none(partition: str) -> None:
    assert support_region(partition) is None
    client, why = support_client_for(IdentitySpec(name="x", source="profile", profile="x"), partition=partition)
    assert client is None and why and partition in why


@pytest.mark.parametrize(("region", "partition"), [("cn-north-1", "aws-cn"), ("us-gov-west-1", "aws-us-gov"),
                                                   ("eusc-de-east-1", "aws-eusc")])
def test_history_builds_arns_in_the_keys_partition(region: str, partition: str) -> None:
    query = athena_query(key_arn=None, key_id=KEY_ID, account=ACCOUNT, region=region)
    assert f"arn:{partition}:kms:{region}:{ACCOUNT}:key/{KEY_ID}" in query
    event = parse_event({"EventId": "e1", "CloudTrailEvent": json.dumps({
        "eventName": "CreateKey", "awsRegion": region, "recipientAccountId": ACCOUNT, "requestParameters": {},
        "eventTime": "2026-01-01T00:00:00Z"})})
    assert event is not None and event.policy is not None
    assert event.policy["Statement"][0]["Principal"] == {"AWS": f"arn:{partition}:iam::{ACCOUNT}:root"}


def test_partition_of_arn() -> None:
    assert partition_of_arn(f"arn:aws-cn:iam::{ACCOUNT}:root") == "aws-cn"
    assert partition_of_arn("arn:aws-nope:iam::1:root") is None
    assert partition_of_arn("not an arn") is None
    with pytest.raises(PolicyInputError):
        account_root_arn(ACCOUNT, "aws-nope")


def test_the_module_reads_botocores_data_without_importing_botocore() -> None:
    code = ("import sys; from kms_rescue.policy.partitions import partition_for_region; "
            "assert partition_for_region('cn-north-1').id == 'aws-cn'; "
            "assert 'botocore' not in sys.modules, 'botocore was imported'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


@pytest.mark.parametrize("partition", ["aws", "aws-cn", "aws-us-gov", "aws-eusc"])
def test_a_bare_account_id_in_not_principal_is_the_account_of_the_callers_partition(partition: str) -> None:
    # IAM User Guide, "NotPrincipal": a Deny with NotPrincipal exempts a caller only when its account (here given
    # as a bare id) and its own ARN are listed; the account layer is the root ARN in the caller's partition.
    user = f"arn:{partition}:iam::{ACCOUNT}:user/alice"
    policy = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": user}, "Action": "kms:*", "Resource": "*"},
        {"Effect": "Deny", "NotPrincipal": {"AWS": [ACCOUNT, user]}, "Action": "kms:*", "Resource": "*"}]}
    decision = evaluate(principal=user, action="kms:PutKeyPolicy", resource="*", key_policy=policy)
    assert decision.decision == "allow", decision.reasons


@pytest.mark.parametrize("region", ["us-east-1\n", "US-EAST-1", "us-east-1 ", "eu-west-１"])
def test_lint_refuses_a_region_that_is_no_region_code(region: str, capsys) -> None:
    example = str(EXAMPLE)
    assert main(["lint", example, "--account", ACCOUNT, "--region", region]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--region must be an AWS Region code" in err[0]


def test_explain_assumes_a_key_in_the_principals_partition(capsys) -> None:
    code = main(["explain", "--policy", str(EXAMPLE), "--principal",
                 f"arn:aws-cn:iam::{ACCOUNT}:user/alice", "--action", "kms:DescribeKey", "--format", "json"])
    out = capsys.readouterr().out
    assert code in (0, 1) and f"arn:aws-cn:kms:cn-northwest-1:{ACCOUNT}:key/" in out
