"""Unit tests for the pure parts of kms_rescue.aws: key references, error classification, redaction, history
parsing, the token bucket and the Athena query."""

from __future__ import annotations

import json

import pytest
from botocore import exceptions as bexc

from kms_rescue.aws.classify import (
    CredentialTimeout,
    NeedsMFA,
    classify_client_error,
    classify_exception,
    hint_for,
)
from kms_rescue.aws.history import TokenBucket, athena_query, default_key_policy, parse_event
from kms_rescue.aws.keyref import key_arn_in_text, parse_key_ref
from kms_rescue.aws.redact import REDACTED, Redactor, redact
from kms_rescue.errors import UsageError

ACCOUNT = "111122223333"
KEY_ID = "1234abcd-12ab-34cd-56ef-1234567890ab"
MRK_ID = "mrk-1234abcd12ab34cd56ef1234567890ab"
KEY_ARN = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/{KEY_ID}"


# --- key references ------------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("value", "region", "kind", "want_region", "account", "key_id", "alias"),
    [
        # DescribeKey accepts a key ARN, key id, alias name or alias ARN (KMS API reference, KeyId).
        (KEY_ARN, None, "key_arn", "us-east-1", ACCOUNT, KEY_ID, None),
        (KEY_ARN, "us-east-1", "key_arn", "us-east-1", ACCOUNT, KEY_ID, None),
        (f"arn:aws:kms:eu-west-1:{ACCOUNT}:key/{MRK_ID}", None, "key_arn", "eu-west-1", ACCOUNT, MRK_ID, None),
        (f"arn:aws-us-gov:kms:us-gov-west-1:{ACCOUNT}:key/{KEY_ID}", None, "key_arn", "us-gov-west-1", ACCOUNT,
         KEY_ID, None),
        (KEY_ID.upper(), "us-west-2", "key_id", "us-west-2", None, KEY_ID, None),
        (MRK_ID, "ap-southeast-2", "key_id", "ap-southeast-2", None, MRK_ID, None),
        ("alias/payments", "us-east-1", "alias_name", "us-east-1", None, None, "alias/payments"),
        ("alias/team/app_key-1", "us-east-1", "alias_name", "us-east-1", None, None, "alias/team/app_key-1"),
        (f"arn:aws:kms:us-east-2:{ACCOUNT}:alias/payments", None, "alias_arn", "us-east-2", ACCOUNT, None,
         "alias/payments"),
    ],
)
def test_key_references_parse(value, region, kind, want_region, account, key_id, alias):
    ref = parse_key_ref(value, region)
    assert (ref.kind, ref.region, ref.account, ref.key_id, ref.alias) == (kind, want_region, account, key_id,
                                                                          alias)


def test_multi_region_key_is_flagged_and_arn_rebuilt():
    ref = parse_key_ref(f"arn:aws:kms:eu-west-1:{ACCOUNT}:key/{MRK_ID}")
    assert ref.multi_region
    assert ref.key_arn == f"arn:aws:kms:eu-west-1:{ACCOUNT}:key/{MRK_ID}"


def test_alias_resolved_to_arn_keeps_the_alias():
    ref = parse_key_ref("alias/payments", "us-east-1").with_arn(KEY_ARN)
    assert (ref.key_arn, ref.alias, ref.raw) == (KEY_ARN, "alias/payments", "alias/payments")


@pytest.mark.parametrize(
    ("value", "region", "message"),
    [
        ("", None, "no key given"),
        ("not-a-key", None, "expected a key ARN"),
        (KEY_ID, None, "needs --region"),
        ("alias/payments", None, "needs --region"),
        ("alias/bad name", "us-east-1", "not an alias name"),
        (KEY_ARN, "eu-west-1", "the ARN is in us-east-1 but --region says eu-west-1"),
        (f"arn:aws:kms:us-east-1:{ACCOUNT}:key/not-an-id", None, "is not a key id"),
        (f"arn:aws:kms:us-east-1:12345:key/{KEY_ID}", None, "12-digit account"),
        (f"arn:aws:kms::{ACCOUNT}:key/{KEY_ID}", None, "no valid region"),
        (f"arn:aws:s3:::bucket/{KEY_ID}", None, "is not a KMS ARN"),
        (f"arn:aws:kms:us-east-1:{ACCOUNT}:grant/x", None, "neither a key nor an alias"),
        (KEY_ID, "useast1", "is not an AWS Region code"),
    ],
)
def test_bad_key_references_are_one_line_usage_errors(value, region, message):
    with pytest.raises(UsageError) as info:
        parse_key_ref(value, region)
    assert message in str(info.value)
    assert "\n" not in str(info.value)
    assert info.value.exit_code == 2


def test_key_arn_is_found_in_an_access_denied_message():
    message = (f"User: arn:aws:sts::{ACCOUNT}:assumed-role/App/s is not authorized to perform: kms:DescribeKey on "
               f"resource: {KEY_ARN} because no resource-based policy allows the kms:DescribeKey action")
    assert key_arn_in_text(message) == KEY_ARN
    assert key_arn_in_text("nothing here") is None


# --- classification ------------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("code", "message", "outcome"),
    [
        ("AccessDeniedException", "User: x is not authorized to perform: kms:GetKeyPolicy", "access_denied"),
        ("AccessDenied", "User: x is not authorized to perform: iam:GetRole", "access_denied"),
        ("NotFoundException", f"Key '{KEY_ARN}' does not exist", "not_found"),
        ("NoSuchEntity", "The role with name Admin cannot be found.", "not_found"),
        # KMS rejects calls on a disabled key / a key pending deletion with KMSInvalidStateException.
        ("KMSInvalidStateException", f"{KEY_ARN} is pending deletion.", "pending_deletion"),
        ("KMSInvalidStateException", f"{KEY_ARN} is disabled.", "key_disabled"),
        ("DisabledException", "The key is disabled", "key_disabled"),
        ("ThrottlingException", "Rate exceeded", "throttled"),
        ("Throttling", "Rate exceeded", "throttled"),
        ("ExpiredTokenException", "The security token included in the request is expired", "invalid_credentials"),
        ("ExpiredToken", "The security token included in the request is expired", "invalid_credentials"),
        ("UnrecognizedClientException", "The security token included in the request is invalid.",
         "invalid_credentials"),
        ("InvalidClientTokenId", "The security token included in the request is invalid.", "invalid_credentials"),
        # A request signed for one region and sent to another: SigV4 scope mismatch.
        ("InvalidSignatureException", "Credential should be scoped to a valid region.", "wrong_region"),
        ("SignatureDoesNotMatch", "Credential should be scoped to correct region 'us-west-2'", "wrong_region"),
        # A key ARN of another region sent to this region's endpoint.
        ("NotFoundException", "Invalid arn us-west-2", "not_found"),
        ("KMSInternalException", "internal error", "error"),
    ],
)
def test_client_errors_are_classified(code, message, outcome):
    assert classify_client_error(code, message, request_region="us-east-1") == outcome


def test_a_key_arn_of_another_region_is_wrong_region():
    other = KEY_ARN.replace("us-east-1", "eu-west-1")
    assert classify_client_error("NotFoundException", f"Key '{other}' does not exist",
                                 request_region="us-east-1") == "wrong_region"


def _client_error(code: str, message: str) -> bexc.ClientError:
    return bexc.ClientError({"Error": {"Code": code, "Message": message}}, "DescribeKey")


@pytest.mark.parametrize(
    ("exc", "outcome", "code"),
    [
        (bexc.SSOTokenLoadError(error_msg="Token for https://example.awsapps.com/start does not exist"),
         "sso_expired", "SSOTokenLoadError"),
        (bexc.UnauthorizedSSOTokenError(), "sso_expired", "UnauthorizedSSOTokenError"),
        (bexc.TokenRetrievalError(provider="sso", error_msg="expired"), "sso_expired", "TokenRetrievalError"),
        (NeedsMFA("needs a code"), "needs_mfa", "MFARequired"),
        (CredentialTimeout("did not resolve within 1 s"), "timeout", "CredentialTimeout"),
        (bexc.ReadTimeoutError(endpoint_url="http://127.0.0.1:1"), "timeout", "ReadTimeoutError"),
        (bexc.ConnectTimeoutError(endpoint_url="http://127.0.0.1:1"), "timeout", "ConnectTimeoutError"),
        (bexc.NoCredentialsError(), "no_credentials", "NoCredentialsError"),
        (bexc.CredentialRetrievalError(provider="custom-process", error_msg="exit 1"), "no_credentials",
         "CredentialRetrievalError"),
        (bexc.ProfileNotFound(profile="x"), "no_credentials", "ProfileNotFound"),
        (bexc.EndpointConnectionError(endpoint_url="http://127.0.0.1:1"), "error", "EndpointConnectionError"),
        (_client_error("ExpiredToken", "expired"), "invalid_credentials", "ExpiredToken"),
        (RuntimeError("boom"), "error", "RuntimeError"),
    ],
)
def test_exceptions_are_classified(exc, outcome, code):
    c = classify_exception(exc)
    assert (c.outcome, c.error_code) == (outcome, code)


def test_classified_messages_are_redacted():
    msg = ("The security token AKIAIOSFODNN7EXAMPLE with secret wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY "
           "is invalid")
    c = classify_exception(_client_error("UnrecognizedClientException", msg))
    assert "AKIAIOSFODNN7EXAMPLE" not in (c.message or "")
    assert "wJalrXUtnFEMI" not in (c.message or "")


def test_hints_name_the_fix():
    assert hint_for("sso_expired", "dev") == "aws sso login --profile dev"
    assert "MFA" in (hint_for("needs_mfa", "admin") or "")
    assert hint_for("ok", "x") is None


# --- redaction -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("key AKIAIOSFODNN7EXAMPLE leaked", "AKIAIOSFODNN7EXAMPLE"),
        ("temporary ASIAIOSFODNN7EXAMPLE key", "ASIAIOSFODNN7EXAMPLE"),
        ("aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "wJalrXUtnFEMI"),
        ('"SessionToken": "FwoGZXIvYXdzEBYaDNExampleTokenValue"', "FwoGZXIvYXdzEBYaDNExampleTokenValue"),
        ("X-Amz-Security-Token=IQoJb3JpZ2luX2VjEExample&X-Amz-Date=1", "IQoJb3JpZ2luX2VjEExample"),
        ("Signature=" + "0a" * 32, "0a" * 32),
        ("bare secret wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY here", "wJalrXUtnFEMI"),
        ("token " + "A" * 120, "A" * 120),
    ],
)
def test_credential_shapes_are_redacted(text, secret):
    out = redact(text)
    assert secret not in out
    assert REDACTED in out


def test_unique_ids_and_arns_are_kept():
    """A key policy shows deleted principals as unique ids (AIDA…, AROA…): they are not credentials."""
    text = f"Principal AROAEXAMPLEID1234567 and arn:aws:iam::{ACCOUNT}:role/Admin on {KEY_ARN}"
    assert redact(text) == text


def test_redactor_scrubs_exact_values_of_any_shape():
    r = Redactor()
    r.add("lab-key-0001", "lab-secret-value", None)
    assert r.scrub("saw lab-key-0001 and lab-secret-value") == f"saw {REDACTED} and {REDACTED}"
    assert r.scrub_known("x lab-secret-value y") == f"x {REDACTED} y"
    assert "lab-secret-value" not in repr(r)


# --- history ---------------------------------------------------------------------------------------------------

def _paced_bucket() -> tuple[TokenBucket, list[float], list[float]]:
    """A 2-per-second bucket on a fake clock: (bucket, [now], the sleeps it asked for)."""
    now = [0.0]
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        now[0] += s

    return TokenBucket(2.0, capacity=1.0, clock=lambda: now[0], sleep=sleep), now, slept


def test_token_bucket_paces_requests_at_the_rate():
    """LookupEvents allows 2 requests per second per account and Region (CloudTrail API reference)."""
    bucket, now, slept = _paced_bucket()
    for _ in range(5):
        bucket.acquire()
    # One token up front, then one every 0.5 s: 5 requests take 2 s.
    assert now[0] == pytest.approx(2.0)
    assert all(s == pytest.approx(0.5) for s in slept)


def test_bucket_wait_does_not_take_the_token():
    bucket, _now, slept = _paced_bucket()
    bucket.wait()
    assert slept == [], "a full bucket lets the caller through at once"
    assert bucket.acquire() == 0.0, "waiting took nothing"
    bucket.wait()
    assert sum(slept) == pytest.approx(0.5), "an empty bucket waits for the next token (2 per second)"
    assert bucket.acquire() == 0.0


def test_token_bucket_rejects_a_non_positive_rate():
    with pytest.raises(ValueError):
        TokenBucket(0)


def _ct_event(name: str, params: dict, *, error: str | None = None, actor: str = "arn:aws:iam::111122223333:user/a",
              event_id: str = "e1", time: str = "2026-01-02T03:04:05Z") -> dict:
    body = {"eventName": name, "eventTime": time, "userIdentity": {"arn": actor}, "requestParameters": params,
            "recipientAccountId": ACCOUNT, "eventID": event_id}
    if error:
        body["errorCode"] = error
    return {"EventId": event_id, "EventName": name, "CloudTrailEvent": json.dumps(body)}


def test_put_key_policy_event_carries_the_policy():
    policy = {"Version": "2012-10-17", "Statement": []}
    ev = parse_event(_ct_event("PutKeyPolicy", {"keyId": KEY_ID, "policyName": "default",
                                                "policy": json.dumps(policy)}))
    assert ev is not None
    assert (ev.name, ev.policy, ev.succeeded, ev.actor) == ("PutKeyPolicy", policy, True,
                                                            "arn:aws:iam::111122223333:user/a")


def test_create_key_without_policy_means_the_default_key_policy():
    """CreateKey without a Policy parameter gives the key the default key policy (KMS Developer Guide, "Default
    key policy"): the account principal, i.e. delegation to IAM."""
    ev = parse_event(_ct_event("CreateKey", {"keyUsage": "ENCRYPT_DECRYPT"}), key_account=ACCOUNT)
    assert ev is not None
    assert ev.policy == default_key_policy(ACCOUNT)
    assert ev.policy_note and "default" in ev.policy_note


def test_failed_events_and_other_events():
    ev = parse_event(_ct_event("PutKeyPolicy", {"policy": "{}"}, error="AccessDenied"))
    assert ev is not None and not ev.succeeded and ev.error_code == "AccessDenied"
    assert parse_event(_ct_event("Decrypt", {})) is None


def test_athena_query_names_the_bucket_and_the_key():
    q = athena_query(key_arn=KEY_ARN, key_id=KEY_ID, account=ACCOUNT, region="us-east-1",
                     trail_bucket="my-trail-bucket")
    assert f"s3://my-trail-bucket/AWSLogs/{ACCOUNT}/CloudTrail/us-east-1/" in q
    assert KEY_ID in q and "PutKeyPolicy" in q
    assert "TRAIL_BUCKET" in athena_query(key_arn=KEY_ARN, key_id=KEY_ID, account=ACCOUNT, region="us-east-1")
