"""Condition operators judged against a request context, one case per documented IAM rule.

Sources (IAM User Guide): "IAM JSON policy elements: Condition operators" (OPS), "Conditions with multiple context
keys or values" (MULTI), "Single-valued vs. multivalued context keys" (SETS), "Multivalued context key examples"
(SET-EX), "IAM policy elements: Variables and tags" (VARS).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kms_rescue.policy.condition_check import ConditionOutcome, evaluate_condition, evaluate_conditions
from kms_rescue.policy.condition_operators import known_operator, operator_info
from kms_rescue.policy.errors import PolicyInputError
from kms_rescue.policy.lint.condition_problems import condition_problems
from kms_rescue.policy.model import Condition, parse_policy
from kms_rescue.policy.request_context import RequestContext

ACCOUNT = "111122223333"
OTHER = "444455556666"
ADMIN = f"arn:aws:iam::{ACCOUNT}:role/Admin"
ALICE = f"arn:aws:iam::{ACCOUNT}:user/alice"
KEY = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
B64 = "QmluYXJ5VmFsdWU="  # base64 of b"BinaryValue"
B64_OTHER = "b3RoZXI="  # base64 of b"other"
EPOCH_2026_11_01 = "1793491200"  # 2026-11-01T00:00:00Z

# The facts the cases demonstrate.
ABSENT = "OPS: a key absent from the request does not match; the condition is false"
NEG_ABSENT = "OPS: a negated operator (StringNotLike, ArnNotLike, ...) is true when the key is absent"
IFEXISTS_ABSENT = "OPS: ...IfExists is true when the key is absent"
IFEXISTS_PRESENT = "OPS: ...IfExists applies the operator when the key is present"
NULL = 'OPS: Null "true" holds when the key is absent, "false" when it is present'
OR = "MULTI: one operator's values for a key are OR'd"
NOR = "MULTI: a negated operator's values are NOR'd: it holds when the request matches none of them"
KEYS_CI = "IAM Condition element: condition key names (tag keys included) are not case-sensitive"
ANY = "SETS: ForAnyValue holds when at least one request value matches a policy value"
ANY_ABSENT = "SETS: ForAnyValue is false when the key is absent (there is no value to match)"
ALL = "SETS: ForAllValues holds when every request value matches some policy value"
ALL_ABSENT = "SET-EX: ForAllValues also returns true if there are no context keys in the request"
ALL_NOT_LIKE = "SET-EX: ForAllValues:StringNotLike matches only when no request value matches the pattern"
NO_SET_OP = "SETS (our reading): without a set operator a key matches when any of its values does"
VAR = "VARS: ${key} is replaced by the key's value from the request"
VAR_DEFAULT = "VARS: ${key, 'default'} uses the default when the key has no value"
VAR_MISSING = "VARS: a variable with no value and no default has no equal or like value"
VAR_LITERAL = "VARS: a variable's value is matched literally, a * in it is not a wildcard"
VAR_MULTI = "SETS: a multivalued key cannot be used as a policy variable"
VAR_ESCAPES = "VARS: ${*}, ${?} and ${$} stand for the literal characters"
VAR_FAMILIES = "OPS: Numeric, Date, Binary and IP address operators do not support policy variables"
UNKNOWN = "three-valued analysis: a key whose value could be anything leaves any operator undecided"
INVALID = "a policy value that is not of the operator's type never matches"


@dataclass(frozen=True)
class Case:
    id: str
    operator: str
    key: str
    values: tuple[str, ...]
    context: dict[str, Any]
    expected: bool | None
    fact: str
    unknown: tuple[str, ...] = ()


def case(
    id: str,
    operator: str,
    key: str,
    values: str | tuple[str, ...],
    context: dict[str, Any],
    expected: bool | None,
    fact: str,
    unknown: tuple[str, ...] = (),
) -> Any:
    vals = (values,) if isinstance(values, str) else values
    return pytest.param(Case(id, operator, key, vals, context, expected, fact, unknown), id=id)


CASES = [
    # ---- String ---------------------------------------------------------------------------------------------------
    case("StringEquals-match", "StringEquals", "aws:PrincipalAccount", ACCOUNT,
         {"aws:PrincipalAccount": ACCOUNT}, True, "OPS: StringEquals is an exact match"),
    case("StringEquals-case-sensitive", "StringEquals", "aws:username", "Alice",
         {"aws:username": "alice"}, False, "OPS: StringEquals is case-sensitive"),
    case("StringEquals-star-is-literal", "StringEquals", "aws:PrincipalArn", f"arn:aws:iam::{ACCOUNT}:role/*",
         {"aws:PrincipalArn": ADMIN}, False, "OPS: StringEquals does not expand wildcards"),
    case("StringEquals-star-equals-star", "StringEquals", "aws:PrincipalArn", f"arn:aws:iam::{ACCOUNT}:role/*",
         {"aws:PrincipalArn": f"arn:aws:iam::{ACCOUNT}:role/*"}, True, "OPS: StringEquals compares * literally"),
    case("StringEquals-values-ORed", "StringEquals", "aws:PrincipalAccount", (OTHER, ACCOUNT),
         {"aws:PrincipalAccount": ACCOUNT}, True, OR),
    case("StringEquals-absent", "StringEquals", "kms:ViaService", "ec2.us-east-1.amazonaws.com",
         {}, False, ABSENT),
    case("StringEquals-key-case-insensitive", "StringEquals", "AWS:PRINCIPALACCOUNT", ACCOUNT,
         {"aws:PrincipalAccount": ACCOUNT}, True, KEYS_CI),
    case("StringEquals-tag-key-case-insensitive", "StringEquals", "aws:PrincipalTag/Team", "security",
         {"aws:principaltag/team": "security"}, True, KEYS_CI),
    case("StringEquals-empty-list-is-absent", "StringEquals", "aws:PrincipalTag/team", "security",
         {"aws:PrincipalTag/team": []}, False, ABSENT),
    case("StringNotEquals-no-value-matches", "StringNotEquals", "aws:PrincipalAccount", (OTHER, "123456789012"),
         {"aws:PrincipalAccount": ACCOUNT}, True, NOR),
    case("StringNotEquals-one-value-matches", "StringNotEquals", "aws:PrincipalAccount", (OTHER, ACCOUNT),
         {"aws:PrincipalAccount": ACCOUNT}, False, NOR),
    case("StringNotEquals-absent-key-is-true", "StringNotEquals", "kms:ViaService", "ec2.us-east-1.amazonaws.com",
         {}, True, NEG_ABSENT),
    case("StringEqualsIgnoreCase-match", "StringEqualsIgnoreCase", "aws:username", "ALICE",
         {"aws:username": "alice"}, True, "OPS: StringEqualsIgnoreCase ignores case"),
    case("StringNotEqualsIgnoreCase-same-but-case", "StringNotEqualsIgnoreCase", "aws:username", "ALICE",
         {"aws:username": "alice"}, False, "OPS: StringNotEqualsIgnoreCase is the negated case-insensitive match"),
    case("StringNotEqualsIgnoreCase-absent", "StringNotEqualsIgnoreCase", "aws:username", "alice",
         {}, True, NEG_ABSENT),
    case("StringLike-star", "StringLike", "aws:PrincipalArn", f"arn:aws:iam::{ACCOUNT}:role/Admin*",
         {"aws:PrincipalArn": ADMIN}, True, "OPS: StringLike * matches any run of characters, none included"),
    case("StringLike-question-mark", "StringLike", "aws:username", "al?ce",
         {"aws:username": "alice"}, True, "OPS: StringLike ? matches exactly one character"),
    case("StringLike-question-mark-needs-one", "StringLike", "aws:username", "alice?",
         {"aws:username": "alice"}, False, "OPS: StringLike ? matches exactly one character"),
    case("StringLike-case-sensitive", "StringLike", "aws:PrincipalArn", f"arn:aws:iam::{ACCOUNT}:role/admin*",
         {"aws:PrincipalArn": ADMIN}, False, "OPS: StringLike is case-sensitive"),
    case("StringLike-absent", "StringLike", "aws:PrincipalArn", "*", {}, False, ABSENT),
    case("StringNotLike-matching-value", "StringNotLike", "aws:PrincipalArn", f"arn:aws:iam::{ACCOUNT}:role/*",
         {"aws:PrincipalArn": ADMIN}, False, "OPS: StringNotLike is the negated StringLike"),
    case("StringNotLike-other-value", "StringNotLike", "aws:PrincipalArn", f"arn:aws:iam::{OTHER}:*",
         {"aws:PrincipalArn": ADMIN}, True, "OPS: StringNotLike is the negated StringLike"),
    case("StringNotLike-absent-key-is-true", "StringNotLike", "aws:PrincipalArn", "*", {}, True, NEG_ABSENT),
    case("StringEqualsIfExists-absent", "StringEqualsIfExists", "kms:CallerAccount", ACCOUNT,
         {}, True, IFEXISTS_ABSENT),
    case("StringEqualsIfExists-present-mismatch", "StringEqualsIfExists", "kms:CallerAccount", ACCOUNT,
         {"kms:CallerAccount": OTHER}, False, IFEXISTS_PRESENT),
    case("StringLikeIfExists-present-match", "StringLikeIfExists", "aws:PrincipalArn", "*:role/*",
         {"aws:PrincipalArn": ADMIN}, True, IFEXISTS_PRESENT),
    case("StringNotEqualsIfExists-absent", "StringNotEqualsIfExists", "kms:ViaService", "x",
         {}, True, IFEXISTS_ABSENT),
    case("StringNotEqualsIfExists-present-equal", "StringNotEqualsIfExists", "kms:ViaService", "x",
         {"kms:ViaService": "x"}, False, IFEXISTS_PRESENT),
    # ---- Numeric --------------------------------------------------------------------------------------------------
    case("NumericEquals-decimal-forms", "NumericEquals", "aws:MultiFactorAuthAge", "10",
         {"aws:MultiFactorAuthAge": "10.0"}, True, "OPS: Numeric operators compare numbers, not text"),
    case("NumericNotEquals-different", "NumericNotEquals", "aws:MultiFactorAuthAge", "10",
         {"aws:MultiFactorAuthAge": "11"}, True, "OPS: NumericNotEquals is the negated match"),
    case("NumericNotEquals-absent", "NumericNotEquals", "aws:MultiFactorAuthAge", "10", {}, True, NEG_ABSENT),
    case("NumericLessThan-below", "NumericLessThan", "aws:MultiFactorAuthAge", "3600",
         {"aws:MultiFactorAuthAge": "100"}, True, "OPS: NumericLessThan"),
    case("NumericLessThan-equal", "NumericLessThan", "aws:MultiFactorAuthAge", "3600",
         {"aws:MultiFactorAuthAge": "3600"}, False, "OPS: NumericLessThan is strict"),
    case("NumericLessThan-not-text-order", "NumericLessThan", "aws:MultiFactorAuthAge", "100",
         {"aws:MultiFactorAuthAge": "99"}, True, "OPS: Numeric operators compare numbers, not text"),
    case("NumericLessThanEquals-equal", "NumericLessThanEquals", "aws:MultiFactorAuthAge", "3600",
         {"aws:MultiFactorAuthAge": "3600"}, True, "OPS: NumericLessThanEquals"),
    case("NumericGreaterThan-above", "NumericGreaterThan", "kms:ScheduleKeyDeletionPendingWindowInDays", "7",
         {"kms:ScheduleKeyDeletionPendingWindowInDays": "30"}, True, "OPS: NumericGreaterThan"),
    case("NumericGreaterThanEquals-below", "NumericGreaterThanEquals", "kms:ScheduleKeyDeletionPendingWindowInDays",
         "7", {"kms:ScheduleKeyDeletionPendingWindowInDays": "6.5"}, False, "OPS: NumericGreaterThanEquals"),
    case("NumericLessThan-absent", "NumericLessThan", "aws:MultiFactorAuthAge", "3600", {}, False, ABSENT),
    case("NumericLessThanIfExists-absent", "NumericLessThanIfExists", "aws:MultiFactorAuthAge", "3600",
         {}, True, IFEXISTS_ABSENT),
    case("NumericEquals-policy-not-a-number", "NumericEquals", "aws:MultiFactorAuthAge", "ten",
         {"aws:MultiFactorAuthAge": "10"}, False, INVALID),
    case("NumericNotEquals-policy-not-a-number", "NumericNotEquals", "aws:MultiFactorAuthAge", "ten",
         {"aws:MultiFactorAuthAge": "10"}, False, INVALID),
    case("NumericEquals-request-not-a-number", "NumericEquals", "aws:MultiFactorAuthAge", "10",
         {"aws:MultiFactorAuthAge": "ten"}, False, INVALID),
    case("NumericEquals-variable-is-literal", "NumericEquals", "aws:MultiFactorAuthAge", "${aws:MultiFactorAuthAge}",
         {"aws:MultiFactorAuthAge": "10"}, False, VAR_FAMILIES),
    # ---- Date -----------------------------------------------------------------------------------------------------
    case("DateLessThan-before", "DateLessThan", "aws:CurrentTime", "2026-11-01T00:00:00Z",
         {"aws:CurrentTime": "2026-10-31T23:59:59Z"}, True, "OPS: DateLessThan compares instants"),
    case("DateLessThan-date-only-is-midnight-utc", "DateLessThan", "aws:CurrentTime", "2026-11-01",
         {"aws:CurrentTime": "2026-11-01T00:00:00Z"}, False, "OPS: dates use ISO 8601 (a date is its midnight UTC)"),
    case("DateEquals-offsets", "DateEquals", "aws:CurrentTime", "2026-11-01T09:00:00+02:00",
         {"aws:CurrentTime": "2026-11-01T07:00:00Z"}, True, "OPS: ISO 8601 times with offsets name one instant"),
    case("DateEquals-epoch-policy", "DateEquals", "aws:CurrentTime", EPOCH_2026_11_01,
         {"aws:CurrentTime": "2026-11-01T00:00:00Z"}, True, "OPS: dates may be given in epoch (UNIX) time"),
    case("DateGreaterThan-epoch-request", "DateGreaterThan", "aws:EpochTime", "2026-11-01T00:00:00Z",
         {"aws:EpochTime": "1793523600"}, True, "OPS: dates may be given in epoch (UNIX) time"),
    case("DateNotEquals-different", "DateNotEquals", "aws:CurrentTime", "2026-11-01",
         {"aws:CurrentTime": "2026-11-02"}, True, "OPS: DateNotEquals is the negated match"),
    case("DateNotEquals-absent", "DateNotEquals", "aws:CurrentTime", "2026-11-01", {}, True, NEG_ABSENT),
    case("DateLessThanEquals-equal", "DateLessThanEquals", "aws:CurrentTime", "2026-11-01T09:00:00Z",
         {"aws:CurrentTime": "2026-11-01T09:00:00.000Z"}, True, "OPS: DateLessThanEquals"),
    case("DateGreaterThanEquals-fraction", "DateGreaterThanEquals", "aws:CurrentTime", "2026-11-01T09:00:00Z",
         {"aws:CurrentTime": "2026-11-01T08:59:59.999Z"}, False, "OPS: DateGreaterThanEquals"),
    case("DateGreaterThan-absent", "DateGreaterThan", "aws:CurrentTime", "2026-11-01", {}, False, ABSENT),
    case("DateGreaterThanIfExists-absent", "DateGreaterThanIfExists", "aws:TokenIssueTime", "2026-11-01",
         {}, True, IFEXISTS_ABSENT),
    case("DateLessThan-policy-not-a-date", "DateLessThan", "aws:CurrentTime", "next tuesday",
         {"aws:CurrentTime": "2026-11-01T00:00:00Z"}, False, INVALID),
    case("DateLessThan-impossible-date", "DateLessThan", "aws:CurrentTime", "2026-02-30",
         {"aws:CurrentTime": "2026-01-01"}, False, INVALID),
    # ---- Bool -----------------------------------------------------------------------------------------------------
    case("Bool-true", "Bool", "aws:SecureTransport", "true", {"aws:SecureTransport": "true"}, True,
         "OPS: Bool compares true/false"),
    case("Bool-false", "Bool", "aws:SecureTransport", "true", {"aws:SecureTransport": "false"}, False,
         "OPS: Bool compares true/false"),
    case("Bool-json-true-in-context", "Bool", "aws:MultiFactorAuthPresent", "true",
         {"aws:MultiFactorAuthPresent": True}, True, "OPS: Bool compares true/false"),
    case("Bool-absent", "Bool", "aws:MultiFactorAuthPresent", "true", {}, False, ABSENT),
    case("BoolIfExists-absent", "BoolIfExists", "aws:MultiFactorAuthPresent", "true", {}, True, IFEXISTS_ABSENT),
    case("BoolIfExists-present-false", "BoolIfExists", "aws:MultiFactorAuthPresent", "true",
         {"aws:MultiFactorAuthPresent": "false"}, False, IFEXISTS_PRESENT),
    case("Bool-policy-not-boolean", "Bool", "aws:SecureTransport", "yes", {"aws:SecureTransport": "true"}, False,
         INVALID),
    case("Bool-with-variable", "Bool", "aws:MultiFactorAuthPresent", "${aws:SecureTransport}",
         {"aws:MultiFactorAuthPresent": "true", "aws:SecureTransport": "true"}, True,
         "OPS: Boolean operators support policy variables"),
    # ---- Binary ---------------------------------------------------------------------------------------------------
    case("BinaryEquals-match", "BinaryEquals", "key", B64, {"key": B64}, True,
         "OPS: BinaryEquals compares bytes with the base-64 encoded policy value"),
    case("BinaryEquals-mismatch", "BinaryEquals", "key", B64, {"key": B64_OTHER}, False,
         "OPS: BinaryEquals compares bytes with the base-64 encoded policy value"),
    case("BinaryEquals-absent", "BinaryEquals", "key", B64, {}, False, ABSENT),
    case("BinaryEqualsIfExists-absent", "BinaryEqualsIfExists", "key", B64, {}, True, IFEXISTS_ABSENT),
    case("BinaryEquals-policy-not-base64", "BinaryEquals", "key", "not base64!", {"key": B64}, False, INVALID),
    # ---- IP address -----------------------------------------------------------------------------------------------
    case("IpAddress-in-cidr", "IpAddress", "aws:SourceIp", "203.0.113.0/24", {"aws:SourceIp": "203.0.113.7"},
         True, "OPS: IpAddress matches an address inside the CIDR block"),
    case("IpAddress-outside-cidr", "IpAddress", "aws:SourceIp", "203.0.113.0/24", {"aws:SourceIp": "198.51.100.1"},
         False, "OPS: IpAddress matches an address inside the CIDR block"),
    case("IpAddress-bare-address", "IpAddress", "aws:SourceIp", "203.0.113.7", {"aws:SourceIp": "203.0.113.7"},
         True, "OPS: a bare address is a one-address block"),
    case("IpAddress-ipv6", "IpAddress", "aws:SourceIp", "2001:db8::/32", {"aws:SourceIp": "2001:db8::1"},
         True, "OPS: IpAddress accepts IPv6 CIDR blocks"),
    case("IpAddress-v4-not-in-v6-block", "IpAddress", "aws:SourceIp", "2001:db8::/32",
         {"aws:SourceIp": "203.0.113.7"}, False, "OPS: an IPv4 address is in no IPv6 block"),
    case("IpAddress-absent", "IpAddress", "aws:SourceIp", "203.0.113.0/24", {}, False, ABSENT),
    case("IpAddressIfExists-absent", "IpAddressIfExists", "aws:SourceIp", "203.0.113.0/24", {}, True,
         IFEXISTS_ABSENT),
    case("NotIpAddress-outside", "NotIpAddress", "aws:SourceIp", "203.0.113.0/24", {"aws:SourceIp": "198.51.100.1"},
         True, "OPS: NotIpAddress matches an address outside every block"),
    case("NotIpAddress-inside-second-block", "NotIpAddress", "aws:SourceIp", ("203.0.113.0/24", "198.51.100.0/24"),
         {"aws:SourceIp": "198.51.100.5"}, False, NOR),
    case("NotIpAddress-absent-key-is-true", "NotIpAddress", "aws:SourceIp", "203.0.113.0/24", {}, True, NEG_ABSENT),
    case("IpAddress-policy-not-cidr", "IpAddress", "aws:SourceIp", "203.0.113.0/33", {"aws:SourceIp": "203.0.113.7"},
         False, INVALID),
    case("IpAddress-request-not-ip", "IpAddress", "aws:SourceIp", "203.0.113.0/24", {"aws:SourceIp": "vpce-1a2b"},
         False, INVALID),
    # ---- ARN ------------------------------------------------------------------------------------------------------
    case("ArnLike-wildcards", "ArnLike", "aws:PrincipalArn", "arn:aws:iam::*:role/Admin*",
         {"aws:PrincipalArn": ADMIN}, True, "OPS: ArnLike matches each of the six ARN parts with wildcards"),
    case("ArnEquals-wildcards-too", "ArnEquals", "aws:PrincipalArn", "arn:aws:iam::*:role/Admin",
         {"aws:PrincipalArn": ADMIN}, True, "OPS: ArnEquals and ArnLike both take * and ? in each part"),
    case("ArnLike-case-sensitive", "ArnLike", "aws:PrincipalArn", f"arn:aws:iam::{ACCOUNT}:role/admin",
         {"aws:PrincipalArn": ADMIN}, False, "OPS: ARN operators are case-sensitive"),
    case("ArnLike-star-stays-in-its-part", "ArnLike", "aws:SourceArn", "arn:aws:iam::*:role/Admin",
         {"aws:SourceArn": "arn:aws:iam::111:222:role/Admin"}, False,
         "OPS: ARN parts are matched one by one, so * in the account part cannot span a colon"),
    case("StringLike-star-spans-colons", "StringLike", "aws:SourceArn", "arn:aws:iam::*:role/Admin",
         {"aws:SourceArn": "arn:aws:iam::111:222:role/Admin"}, True,
         "OPS: StringLike has no ARN parts; * matches any run of characters"),
    case("ArnLike-resource-part-keeps-colons", "ArnLike", "aws:SourceArn",
         f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:*",
         {"aws:SourceArn": f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:app:log-stream:x"}, True,
         "OPS: the sixth ARN part is the rest of the ARN, colons included"),
    case("ArnLike-too-few-parts", "ArnLike", "aws:PrincipalArn", "arn:aws:iam::*", {"aws:PrincipalArn": ADMIN},
         False, "OPS: an ARN has six colon-separated parts"),
    case("ArnLike-request-not-an-arn", "ArnLike", "aws:PrincipalArn", "arn:aws:iam::*:*",
         {"aws:PrincipalArn": "AROAEXAMPLEID"}, False, "OPS: an ARN has six colon-separated parts"),
    case("ArnLike-absent", "ArnLike", "aws:SourceArn", "arn:aws:*:*:*:*", {}, False, ABSENT),
    case("ArnNotLike-absent-key-is-true", "ArnNotLike", "aws:SourceArn", "arn:aws:s3:::*", {}, True, NEG_ABSENT),
    case("ArnNotLike-matching", "ArnNotLike", "aws:PrincipalArn", "arn:aws:iam::*:role/*",
         {"aws:PrincipalArn": ADMIN}, False, "OPS: ArnNotLike is the negated ArnLike"),
    case("ArnNotEquals-other", "ArnNotEquals", "aws:PrincipalArn", ALICE, {"aws:PrincipalArn": ADMIN}, True,
         "OPS: ArnNotEquals is the negated ArnEquals"),
    case("ArnLikeIfExists-absent", "ArnLikeIfExists", "aws:SourceArn", "arn:aws:s3:::*", {}, True, IFEXISTS_ABSENT),
    case("ArnLikeIfExists-present-mismatch", "ArnLikeIfExists", "aws:SourceArn", "arn:aws:s3:::*",
         {"aws:SourceArn": KEY}, False, IFEXISTS_PRESENT),
    case("ArnLike-with-variable", "ArnLike", "aws:PrincipalArn", "arn:aws:iam::${aws:PrincipalAccount}:role/*",
         {"aws:PrincipalArn": ADMIN, "aws:PrincipalAccount": ACCOUNT}, True,
         "OPS: ARN operators support policy variables"),
    # ---- Null -----------------------------------------------------------------------------------------------------
    case("Null-true-absent", "Null", "kms:ViaService", "true", {}, True, NULL),
    case("Null-true-present", "Null", "kms:ViaService", "true", {"kms:ViaService": "ec2.us-east-1.amazonaws.com"},
         False, NULL),
    case("Null-false-present", "Null", "aws:TokenIssueTime", "false", {"aws:TokenIssueTime": "2026-11-01"}, True,
         NULL),
    case("Null-false-absent", "Null", "aws:TokenIssueTime", "false", {}, False, NULL),
    case("Null-true-empty-value", "Null", "aws:TagKeys", "true", {"aws:TagKeys": []}, True,
         "SET-EX: a key with an empty value is null for the Null check"),
    case("Null-value-not-boolean", "Null", "kms:ViaService", "maybe", {}, False, INVALID),
    # ---- ForAnyValue / ForAllValues -------------------------------------------------------------------------------
    case("ForAnyValue-one-matches", "ForAnyValue:StringEquals", "aws:TagKeys", ("env", "team"),
         {"aws:TagKeys": ["env", "cost"]}, True, ANY),
    case("ForAnyValue-none-matches", "ForAnyValue:StringEquals", "aws:TagKeys", ("env", "team"),
         {"aws:TagKeys": ["cost"]}, False, ANY),
    case("ForAnyValue-absent-key-is-false", "ForAnyValue:StringEquals", "aws:TagKeys", "env", {}, False,
         ANY_ABSENT),
    case("ForAnyValue-IfExists-absent", "ForAnyValue:StringLikeIfExists", "aws:TagKeys", "env*", {}, True,
         IFEXISTS_ABSENT),
    case("ForAnyValue-StringNotEquals-one-other", "ForAnyValue:StringNotEquals", "aws:TagKeys", "env",
         {"aws:TagKeys": ["env", "cost"]}, True, "SETS: ForAnyValue with a negated operator: some value is not listed"),
    case("ForAnyValue-StringNotEquals-all-listed", "ForAnyValue:StringNotEquals", "aws:TagKeys", "env",
         {"aws:TagKeys": ["env"]}, False, "SETS: ForAnyValue with a negated operator: some value is not listed"),
    case("ForAllValues-all-listed", "ForAllValues:StringEquals", "aws:TagKeys", ("env", "team"),
         {"aws:TagKeys": ["env", "team"]}, True, ALL),
    case("ForAllValues-subset-is-enough", "ForAllValues:StringEquals", "aws:TagKeys", ("env", "team"),
         {"aws:TagKeys": ["team"]}, True, ALL),
    case("ForAllValues-one-unlisted", "ForAllValues:StringEquals", "aws:TagKeys", ("env", "team"),
         {"aws:TagKeys": ["env", "cost"]}, False, ALL),
    case("ForAllValues-absent-key-is-true", "ForAllValues:StringEquals", "aws:TagKeys", "env", {}, True,
         ALL_ABSENT),
    case("ForAllValues-empty-list-is-true", "ForAllValues:StringEquals", "aws:TagKeys", "env",
         {"aws:TagKeys": []}, True, ALL_ABSENT),
    case("ForAllValues-StringNotLike-key1-legal", "ForAllValues:StringNotLike", "aws:TagKeys", "key1*",
         {"aws:TagKeys": ["key1:legal"]}, False, ALL_NOT_LIKE),
    case("ForAllValues-StringNotLike-two-key1", "ForAllValues:StringNotLike", "aws:TagKeys", "key1*",
         {"aws:TagKeys": ["key1:hr", "key1:personnel"]}, False, ALL_NOT_LIKE),
    case("ForAllValues-StringNotLike-key2", "ForAllValues:StringNotLike", "aws:TagKeys", "key1*",
         {"aws:TagKeys": ["key2:audit"]}, True, ALL_NOT_LIKE),
    case("ForAllValues-StringNotLike-absent", "ForAllValues:StringNotLike", "aws:TagKeys", "key1*", {}, True,
         ALL_ABSENT),
    case("ForAllValues-ArnLike", "ForAllValues:ArnLike", "aws:SourceArn", f"arn:aws:kms:*:{ACCOUNT}:key/*",
         {"aws:SourceArn": [KEY, KEY.replace("1234abcd", "5678efab")]}, True, ALL),
    case("StringEquals-multivalued-any-value", "StringEquals", "aws:TagKeys", "env",
         {"aws:TagKeys": ["env", "team"]}, True, NO_SET_OP),
    case("StringNotEquals-multivalued-none-may-match", "StringNotEquals", "aws:TagKeys", "env",
         {"aws:TagKeys": ["env", "team"]}, False, NO_SET_OP),
    # ---- Policy variables -----------------------------------------------------------------------------------------
    case("variable-username", "StringEquals", "aws:PrincipalTag/owner", "${aws:username}",
         {"aws:PrincipalTag/owner": "alice", "aws:username": "alice"}, True, VAR),
    case("variable-inside-pattern", "StringLike", "s3:prefix", "home/${aws:username}/*",
         {"s3:prefix": "home/alice/docs", "aws:username": "alice"}, True, VAR),
    case("variable-name-case-insensitive", "StringEquals", "aws:PrincipalTag/owner", "${AWS:UserName}",
         {"aws:PrincipalTag/owner": "alice", "aws:username": "alice"}, True, KEYS_CI),
    case("variable-star-is-literal", "StringLike", "aws:PrincipalTag/owner", "${aws:username}",
         {"aws:PrincipalTag/owner": "alice", "aws:username": "al*"}, False, VAR_LITERAL),
    case("variable-star-equals-star", "StringLike", "aws:PrincipalTag/owner", "${aws:username}",
         {"aws:PrincipalTag/owner": "al*", "aws:username": "al*"}, True, VAR_LITERAL),
    case("variable-default", "StringEquals", "aws:ResourceTag/team", "${aws:PrincipalTag/team, 'company-wide'}",
         {"aws:ResourceTag/team": "company-wide"}, True, VAR_DEFAULT),
    case("variable-default-unused", "StringEquals", "aws:ResourceTag/team", "${aws:PrincipalTag/team, 'company-wide'}",
         {"aws:ResourceTag/team": "company-wide", "aws:PrincipalTag/team": "red"}, False, VAR_DEFAULT),
    case("variable-missing-no-match", "StringEquals", "aws:PrincipalTag/owner", "${aws:username}",
         {"aws:PrincipalTag/owner": "alice"}, False, VAR_MISSING),
    case("variable-missing-other-value-ORed", "StringEquals", "aws:PrincipalTag/owner", ("${aws:username}", "alice"),
         {"aws:PrincipalTag/owner": "alice"}, True, OR),
    case("variable-missing-negated-holds", "StringNotEquals", "aws:PrincipalTag/owner", "${aws:username}",
         {"aws:PrincipalTag/owner": "alice"}, True, VAR_MISSING),
    case("variable-multivalued-no-match", "StringEquals", "aws:PrincipalTag/owner", "${aws:TagKeys}",
         {"aws:PrincipalTag/owner": "a", "aws:TagKeys": ["a", "b"]}, False, VAR_MULTI),
    case("variable-escapes", "StringEquals", "aws:PrincipalTag/motto", "${*}${?}${$}",
         {"aws:PrincipalTag/motto": "*?$"}, True, VAR_ESCAPES),
    case("variable-escaped-star-not-wildcard", "StringLike", "aws:PrincipalTag/motto", "a${*}",
         {"aws:PrincipalTag/motto": "abc"}, False, VAR_ESCAPES),
    case("variable-not-in-ip-operator", "IpAddress", "aws:SourceIp", "${aws:SourceIp}",
         {"aws:SourceIp": "203.0.113.7"}, False, VAR_FAMILIES),
    case("variable-not-in-date-operator", "DateEquals", "aws:CurrentTime", "${aws:CurrentTime}",
         {"aws:CurrentTime": "2026-11-01"}, False, VAR_FAMILIES),
    # ---- Unknown values (three-valued static analysis) ------------------------------------------------------------
    case("unknown-StringEquals", "StringEquals", "kms:ViaService", "x", {}, None, UNKNOWN, ("kms:ViaService",)),
    case("unknown-Null", "Null", "kms:ViaService", "true", {}, None, UNKNOWN, ("kms:ViaService",)),
    case("unknown-IfExists", "StringEqualsIfExists", "kms:ViaService", "x", {}, None, UNKNOWN, ("kms:ViaService",)),
    case("unknown-ForAllValues", "ForAllValues:StringEquals", "aws:TagKeys", "x", {}, None, UNKNOWN,
         ("aws:TagKeys",)),
    case("unknown-by-prefix", "StringEquals", "aws:PrincipalTag/Team", "red", {}, None, UNKNOWN,
         ("aws:principaltag/*",)),
    case("unknown-but-invalid-policy-value", "NumericLessThan", "aws:MultiFactorAuthAge", "an hour", {}, False,
         INVALID, ("aws:MultiFactorAuthAge",)),
    case("known-value-beats-unknown", "StringEquals", "aws:PrincipalTag/team", "red",
         {"aws:PrincipalTag/team": "red"}, True, "a key given a value is not unknown", ("aws:PrincipalTag/*",)),
    case("unknown-variable", "StringEquals", "aws:PrincipalTag/owner", "${aws:username}",
         {"aws:PrincipalTag/owner": "alice"}, None, UNKNOWN, ("aws:username",)),
    case("unknown-variable-other-value-matches", "StringEquals", "aws:PrincipalTag/owner",
         ("${aws:username}", "alice"), {"aws:PrincipalTag/owner": "alice"}, True,
         "three-valued OR: a value that matches decides, whatever the unknown one is", ("aws:username",)),
    case("unknown-variable-negated", "StringNotLike", "aws:PrincipalTag/owner", "${aws:username}*",
         {"aws:PrincipalTag/owner": "alice"}, None, UNKNOWN, ("aws:username",)),
]


@pytest.mark.parametrize("c", CASES)
def test_condition(c: Case) -> None:
    ctx = RequestContext(c.context, unknown=c.unknown)
    check = evaluate_condition(Condition(c.operator, c.key, c.values), ctx)
    assert check.result is c.expected, f"{c.fact}: {check.detail}"
    word = {True: "true", False: "false", None: "unknown"}[c.expected]
    assert check.detail.startswith(f"{c.operator} {c.key} [")
    assert check.detail.endswith(f"-> {word}")


def test_detail_names_the_request_value() -> None:
    """The detail line shows the operator, key, policy values, the request's value and the result."""
    ctx = RequestContext({"aws:PrincipalArn": ADMIN})
    condition = Condition("StringLike", "aws:PrincipalArn", (f"arn:aws:iam::{ACCOUNT}:role/Admin*",))
    check = evaluate_condition(condition, ctx)
    assert check.detail == (
        f'StringLike aws:PrincipalArn ["arn:aws:iam::{ACCOUNT}:role/Admin*"]: request has "{ADMIN}" -> true'
    )
    absent = evaluate_condition(Condition("StringEquals", "kms:ViaService", ("x",)), ctx)
    assert "key absent from the request" in absent.detail


# ---- AND across keys and operators, three-valued ------------------------------------------------------------------

T = Condition("StringEquals", "aws:PrincipalAccount", (ACCOUNT,))
F = Condition("StringEquals", "aws:PrincipalAccount", (OTHER,))
U = Condition("StringEquals", "kms:ViaService", ("ec2.us-east-1.amazonaws.com",))


@pytest.mark.parametrize(
    ("conditions", "expected"),
    [
        pytest.param((), True, id="no-conditions-match"),
        pytest.param((T,), True, id="true"),
        pytest.param((T, F), False, id="true-and-false"),
        pytest.param((T, U), None, id="true-and-unknown"),
        pytest.param((U, F), False, id="false-beats-unknown"),
        pytest.param((U, U), None, id="unknown-and-unknown"),
    ],
)
def test_conditions_are_anded(conditions: tuple[Condition, ...], expected: bool | None) -> None:
    """MULTI: several operators or keys are AND'd; three-valued, False beats unknown beats True."""
    ctx = RequestContext({"aws:PrincipalAccount": ACCOUNT}, unknown=["kms:ViaService"])
    outcome = evaluate_conditions(conditions, ctx)
    assert isinstance(outcome, ConditionOutcome)
    assert outcome.result is expected
    assert outcome.matched is (expected is True)
    assert len(outcome.checks) == len(conditions)  # every condition is judged, for the explanation


def test_conditions_from_a_parsed_statement() -> None:
    """A key policy statement's Condition block (JSON booleans and numbers become strings) is judged as a whole."""
    doc = {
        "Statement": {
            "Effect": "Allow",
            "Principal": "*",
            "Action": "kms:PutKeyPolicy",
            "Resource": "*",
            "Condition": {
                "StringEquals": {"kms:CallerAccount": ACCOUNT},
                "ArnLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/Admin*"},
                "Bool": {"aws:MultiFactorAuthPresent": True},
                "NumericLessThan": {"aws:MultiFactorAuthAge": 3600},
            },
        }
    }
    conditions = parse_policy(doc).statements[0].conditions
    base = {"kms:CallerAccount": ACCOUNT, "aws:PrincipalArn": ADMIN, "aws:MultiFactorAuthPresent": "true"}
    assert evaluate_conditions(conditions, RequestContext({**base, "aws:MultiFactorAuthAge": "60"})).matched
    late = evaluate_conditions(conditions, RequestContext({**base, "aws:MultiFactorAuthAge": "7200"}))
    assert late.result is False
    assert [c.result for c in late.checks] == [True, True, True, False]


# ---- Operators and errors -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("operator", "known"),
    [
        ("StringEquals", True),
        ("ForAnyValue:StringLike", True),
        ("ForAllValues:ArnNotLikeIfExists", True),
        ("NumericGreaterThanEqualsIfExists", True),
        ("Null", True),
        ("NullIfExists", False),  # OPS: IfExists can end any operator except Null
        ("StringEqualz", False),
        ("ForSomeValues:StringEquals", False),
        ("", False),
    ],
)
def test_known_operator(operator: str, known: bool) -> None:
    assert known_operator(operator) is known


def test_operator_info() -> None:
    info = operator_info("ForAllValues:StringNotLikeIfExists")
    assert info is not None
    assert (info.base, info.family, info.negated, info.set_op, info.if_exists) == (
        "StringNotLike", "String", True, "all", True,
    )
    assert info.accepts_variables


def test_unknown_operator_is_one_line_input_error() -> None:
    with pytest.raises(PolicyInputError) as err:
        evaluate_conditions([Condition("StringEqualz", "aws:username", ("alice",))], RequestContext())
    assert str(err.value) == 'unknown condition operator "StringEqualz"'
    assert "\n" not in str(err.value)


# ---- Lint problems ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("operator", "key", "values", "expected"),
    [
        pytest.param("StringEquals", "aws:username", ("alice",), None, id="fine"),
        pytest.param("StringEqualz", "aws:username", ("alice",), 'unknown condition operator "StringEqualz"',
                     id="unknown-operator"),
        pytest.param("NullIfExists", "aws:username", ("true",), "IfExists cannot be added to Null", id="null-ifexists"),
        pytest.param("stringequals", "aws:username", ("alice",), 'spelled "StringEquals"', id="spelling"),
        pytest.param("NumericLessThan", "aws:MultiFactorAuthAge", ("1h",), "is not a number", id="numeric"),
        pytest.param("DateLessThan", "aws:CurrentTime", ("01/11/2026",), "is not an ISO 8601", id="date"),
        pytest.param("IpAddress", "aws:SourceIp", ("203.0.113.0/33",), "is not an IP address or CIDR", id="cidr"),
        pytest.param("Bool", "aws:SecureTransport", ("yes",), 'is not "true" or "false"', id="bool"),
        pytest.param("Null", "kms:ViaService", ("absent",), 'is not "true" (key absent)', id="null-value"),
        pytest.param("BinaryEquals", "key", ("%%%",), "is not base64-encoded", id="binary"),
        pytest.param("StringEquals", "aws:PrincipalArn", ("arn:aws:iam::*:role/Admin",), "use StringLike",
                     id="wildcard-in-StringEquals"),
        pytest.param("ArnLike", "aws:PrincipalArn", ("*",), "is not an ARN pattern", id="arn-parts"),
        pytest.param("NumericEquals", "aws:MultiFactorAuthAge", ("${aws:x}",), "does not support policy variables",
                     id="variable-in-numeric"),
        pytest.param("ForAllValues:StringEquals", "aws:PrincipalArn", (ADMIN,),
                     "ForAllValues is also true when the key", id="set-operator-on-single-valued-key"),
        pytest.param("ForAnyValue:StringEquals", "aws:PrincipalTag/team", ("red",), "is single-valued",
                     id="set-operator-on-tag-key"),
        pytest.param("StringEquals", "aws:TagKeys", ("env",), "is multivalued: use ForAnyValue", id="multivalued-key"),
        pytest.param("StringEquals", "aws:PrincipalTag/x", ("${aws:TagKeys}",), "cannot be used as a policy variable",
                     id="multivalued-variable"),
        pytest.param("StringEquals", "aws:username", (), "has no values", id="no-values"),
        pytest.param("ForAnyValue:Null", "aws:TagKeys", ("true",), "no meaning with Null", id="set-operator-null"),
    ],
)
def test_condition_problems(operator: str, key: str, values: tuple[str, ...], expected: str | None) -> None:
    problems = condition_problems(Condition(operator, key, values))
    if expected is None:
        assert problems == []
    else:
        assert any(expected in p for p in problems), problems
        assert all("\n" not in p for p in problems)


# ---- The request context ------------------------------------------------------------------------------------------


def test_request_context_api() -> None:
    ctx = RequestContext({"aws:PrincipalTag/Team": "red", "aws:TagKeys": ["a", "b"]}, unknown=["kms:ViaService"])
    assert ctx.get("AWS:PRINCIPALTAG/TEAM") == ["red"]
    assert ctx.get("aws:username") is None
    assert ctx.is_unknown("KMS:VIASERVICE") and not ctx.is_unknown("aws:TagKeys")
    assert ctx.items() == [("aws:PrincipalTag/Team", ["red"]), ("aws:TagKeys", ["a", "b"])]
    more = ctx.with_values({"aws:principaltag/team": "blue", "kms:ViaService": "ec2.us-east-1.amazonaws.com"})
    assert more.get("aws:PrincipalTag/Team") == ["blue"]
    assert not more.is_unknown("kms:ViaService")  # a value overrides "unknown"
    assert ctx.get("aws:PrincipalTag/Team") == ["red"]  # the original is unchanged
    less = ctx.without("aws:tagkeys", "kms:ViaService")
    assert less.get("aws:TagKeys") is None and not less.is_unknown("kms:ViaService")


def test_context_subclass_survives_with_values() -> None:
    """The engine's static analysis subclasses RequestContext; derived contexts keep the subclass's behaviour."""

    class EverythingUnknown(RequestContext):
        def is_unknown(self, key: str) -> bool:
            return self.get(key) is None

    ctx = EverythingUnknown({"aws:username": "alice"}).with_values({"aws:PrincipalAccount": ACCOUNT})
    assert isinstance(ctx, EverythingUnknown)
    assert evaluate_condition(Condition("StringEquals", "kms:ViaService", ("x",)), ctx).result is None
    assert evaluate_condition(Condition("StringEquals", "aws:PrincipalAccount", (ACCOUNT,)), ctx).result is True


def test_bad_context_value_is_input_error() -> None:
    with pytest.raises(PolicyInputError, match="aws:username"):
        RequestContext({"aws:username": {"nested": "object"}})  # type: ignore[dict-item]


# ---- Properties ---------------------------------------------------------------------------------------------------

OPERATOR_NAMES = [
    "StringEquals", "StringNotEquals", "StringEqualsIgnoreCase", "StringNotEqualsIgnoreCase", "StringLike",
    "StringNotLike", "NumericEquals", "NumericNotEquals", "NumericLessThan", "NumericLessThanEquals",
    "NumericGreaterThan", "NumericGreaterThanEquals", "DateEquals", "DateNotEquals", "DateLessThan",
    "DateLessThanEquals", "DateGreaterThan", "DateGreaterThanEquals", "Bool", "BinaryEquals", "IpAddress",
    "NotIpAddress", "ArnEquals", "ArnLike", "ArnNotEquals", "ArnNotLike", "Null",
]
operators = st.builds(
    lambda prefix, name, suffix: prefix + name + ("" if name == "Null" else suffix),
    st.sampled_from(["", "ForAnyValue:", "ForAllValues:"]),
    st.sampled_from(OPERATOR_NAMES),
    st.sampled_from(["", "IfExists"]),
)
any_operator = st.one_of(operators, st.text(max_size=30))
value_text = st.one_of(
    st.text(max_size=20),
    st.sampled_from(["true", "false", "10", "2026-11-01", EPOCH_2026_11_01, "203.0.113.0/24", B64, ADMIN,
                     "${aws:username}", "${aws:x, 'd'}", "${", "arn:aws:iam::*:role/*", "*", "?"]),
)
KEY_NAMES = st.sampled_from(["aws:username", "aws:PrincipalArn", "aws:TagKeys", "k"])


@settings(max_examples=300, deadline=None)
@given(
    operator=any_operator,
    key=KEY_NAMES,
    values=st.lists(value_text, max_size=3),
    request_values=st.one_of(st.none(), st.lists(value_text, max_size=3)),
    username=st.one_of(st.none(), value_text),
    unknown=st.lists(KEY_NAMES, max_size=2),
)
def test_evaluate_condition_only_raises_input_errors_and_is_deterministic(
    operator: str,
    key: str,
    values: list[str],
    request_values: list[str] | None,
    username: str | None,
    unknown: list[str],
) -> None:
    context: dict[str, Any] = {}
    if request_values is not None:
        context[key] = request_values
    if username is not None:
        context.setdefault("aws:username", username)
    condition = Condition(operator, key, tuple(values))
    try:
        first = evaluate_condition(condition, RequestContext(context, unknown=unknown))
    except PolicyInputError:
        assert not known_operator(operator)
        return
    again = evaluate_condition(condition, RequestContext(dict(context), unknown=list(unknown)))
    assert (first.result, first.detail) == (again.result, again.detail)
    assert first.result in (True, False, None)
    assert isinstance(condition_problems(condition), list)


NEGATIONS = [
    ("StringEquals", "StringNotEquals"),
    ("StringEqualsIgnoreCase", "StringNotEqualsIgnoreCase"),
    ("StringLike", "StringNotLike"),
    ("ArnLike", "ArnNotLike"),
    ("ArnEquals", "ArnNotEquals"),
]


@settings(max_examples=200, deadline=None)
@given(
    pair=st.sampled_from(NEGATIONS),
    values=st.lists(st.text(alphabet="ab*?:", max_size=8), min_size=1, max_size=3),
    request_value=st.text(alphabet="ab*?:", max_size=8),
)
def test_negated_operator_is_the_complement_when_the_key_is_present(
    pair: tuple[str, str], values: list[str], request_value: str
) -> None:
    """MULTI: a negated operator's values are NOR'd, i.e. it is exactly the negation of its positive form."""
    ctx = RequestContext({"k": request_value})
    positive = evaluate_condition(Condition(pair[0], "k", tuple(values)), ctx).result
    negative = evaluate_condition(Condition(pair[1], "k", tuple(values)), ctx).result
    assert negative is (not positive)


@settings(max_examples=200, deadline=None)
@given(
    name=st.sampled_from([n for n in OPERATOR_NAMES if n != "Null"]),
    values=st.lists(value_text, min_size=1, max_size=3),
    request_value=value_text,
)
def test_set_operators_agree_on_a_single_value(name: str, values: list[str], request_value: str) -> None:
    """SETS: with exactly one request value, ForAnyValue:, ForAllValues: and the plain operator agree."""
    ctx = RequestContext({"k": request_value})
    results = {
        evaluate_condition(Condition(prefix + name, "k", tuple(values)), ctx).result
        for prefix in ("", "ForAnyValue:", "ForAllValues:")
    }
    assert len(results) == 1
