"""Property tests: whatever the file holds, loading and linting it raises nothing but the engine's input error."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kms_rescue.errors import UsageError
from kms_rescue.policy.lint import lint_located
from kms_rescue.policy.sources import load_policies_from_text

ACCOUNT = "111122223333"

json_scalars = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=12)
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)

PRINCIPALS = [
    "*", ACCOUNT, f"arn:aws:iam::{ACCOUNT}:root", f"arn:aws:iam::{ACCOUNT}:role/Admin",
    f"arn:aws:iam::{ACCOUNT}:user/alice", f"arn:aws:sts::{ACCOUNT}:assumed-role/Admin/s", "AIDAJQABLZS4A3QDU576Q",
    f"arn:aws:iam::{ACCOUNT}:role/*", "arn:aws:iam::444455556666:root", f"arn:aws:iam::{ACCOUNT}:group/G", "bogus",
    f"arn:aws:iam::{ACCOUNT}:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_Admin_0123456789abcdef",
    "{{unresolved:!Ref X}}",
]
ACTIONS = ["kms:*", "*", "kms:PutKeyPolicy", "kms:Put*", "kms:Decrypt", "kms:PutKeyPolicies", "s3:*", "kms:?et*"]
CONDITION_KEYS = ["kms:ViaService", "aws:PrincipalArn", "kms:CallerAccount", "kms:EncryptionContext:a",
                  "kms:RecipientAttestation:ImageSha384", "aws:SourceArn", "aws:MultiFactorAuthPresent"]
OPERATORS = ["StringEquals", "StringLike", "StringNotEquals", "ArnLike", "Bool", "Null", "StringEqualsIfExists",
             "ForAnyValue:StringLike", "ForAllValues:StringEquals", "NumericLessThan", "DateGreaterThan",
             "IpAddress", "NoSuchOperator", "BinaryEquals"]


def one_or_many(items: list[str]) -> st.SearchStrategy[Any]:
    return st.sampled_from(items) | st.lists(st.sampled_from(items), min_size=1, max_size=3)


principal_values = st.sampled_from(["*"]) | st.fixed_dictionaries({"AWS": one_or_many(PRINCIPALS)}) | \
    st.fixed_dictionaries({"Service": st.just("logs.amazonaws.com")})
conditions = st.dictionaries(
    st.sampled_from(OPERATORS),
    st.dictionaries(st.sampled_from(CONDITION_KEYS), one_or_many(
        [ACCOUNT, "true", "false", "*", f"arn:aws:sts::{ACCOUNT}:assumed-role/A/s", "10", "192.0.2.0/24", "x"]),
        min_size=1, max_size=2),
    min_size=1, max_size=2,
)
statements = st.fixed_dictionaries(
    {"Effect": st.sampled_from(["Allow", "Deny"])},
    optional={
        "Sid": st.text(max_size=6),
        "Principal": principal_values,
        "NotPrincipal": principal_values,
        "Action": one_or_many(ACTIONS),
        "NotAction": one_or_many(ACTIONS),
        "Resource": st.sampled_from(["*", ["*"]]),
        "Condition": conditions,
    },
)
policies = st.fixed_dictionaries({"Version": st.just("2012-10-17"),
                                  "Statement": st.lists(statements, max_size=5) | statements})


def lint_text(text: str) -> list[Any]:
    out = []
    for located in load_policies_from_text(text, source="prop.json", account=ACCOUNT):
        out.append([f.to_dict() for f in lint_located(located, key_account=ACCOUNT)])
    return out


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(json_values)
def test_arbitrary_json_raises_only_usage_errors(value: Any) -> None:
    try:
        lint_text(json.dumps(value))
    except UsageError as exc:
        assert "\n" not in str(exc)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(policies)
def test_policy_shaped_documents_raise_only_usage_errors_and_lint_deterministically(policy: dict[str, Any]) -> None:
    text = json.dumps(policy, indent=1)
    try:
        first = lint_text(text)
    except UsageError as exc:
        assert "\n" not in str(exc)
        return
    assert lint_text(text) == first
    for findings in first:
        for finding in findings:
            assert finding["line"] is None or finding["line"] >= 1


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(policies, st.sampled_from(["plan", "cfn"]))
def test_wrapped_in_a_plan_or_template(policy: dict[str, Any], kind: str) -> None:
    if kind == "plan":
        doc: dict[str, Any] = {"planned_values": {"root_module": {"resources": [
            {"address": "aws_kms_key.k", "mode": "managed", "type": "aws_kms_key",
             "values": {"policy": json.dumps(policy)}}]}}}
    else:
        doc = {"Resources": {"K": {"Type": "AWS::KMS::Key", "Properties": {"KeyPolicy": policy}}}}
    try:
        lint_text(json.dumps(doc))
    except UsageError as exc:
        assert "\n" not in str(exc)


intrinsics = st.recursive(
    st.text(max_size=10) | st.sampled_from(["${AWS::AccountId}", "${Missing}", "${A.B}", "${!x}"]),
    lambda inner: st.one_of(
        st.builds(lambda v: {"Ref": v}, inner),
        st.builds(lambda v: {"Fn::Sub": v}, inner | st.lists(inner, max_size=3)),
        st.builds(lambda v: {"Fn::Join": v}, st.lists(inner | st.lists(inner, max_size=3), max_size=3)),
        st.builds(lambda v: {"Fn::GetAtt": v}, inner | st.lists(inner, max_size=3)),
        st.builds(lambda v: {"Fn::Select": v}, st.lists(inner | st.integers(-1, 3), max_size=3)),
        st.builds(lambda v: {"Fn::Split": v}, st.lists(inner, max_size=3)),
        st.builds(lambda v: {"Fn::FindInMap": v}, st.lists(inner, max_size=4)),
        st.builds(lambda v: {"Fn::If": v}, st.lists(inner, max_size=3)),
        st.lists(inner, max_size=3),
    ),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(intrinsics, intrinsics, intrinsics)
def test_cloudformation_intrinsics_never_crash(principal: Any, action: Any, whole: Any) -> None:
    statement = {"Effect": "Allow", "Principal": {"AWS": principal}, "Action": action, "Resource": "*"}
    for key_policy in ({"Version": "2012-10-17", "Statement": [statement]}, whole):
        doc = {"Mappings": {"M": {"a": {"b": "c"}}},
               "Resources": {"R": {"Type": "AWS::IAM::Role"},
                             "K": {"Type": "AWS::KMS::Key", "Properties": {"KeyPolicy": key_policy}}}}
        try:
            lint_text(json.dumps(doc))
        except UsageError as exc:
            assert "\n" not in str(exc)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=200))
def test_arbitrary_text_raises_only_usage_errors(text: str) -> None:
    try:
        lint_text(text)
    except UsageError as exc:
        assert "\n" not in str(exc)
