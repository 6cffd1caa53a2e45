"""The lab is a test double, but it is a server on this machine: it serves only requests signed (SigV4) with the
secrets it issued, only when addressed to its own host and port, and never reads a body over its cap. boto3 with
the lab's credentials keeps working (the AWS CLI: tests/docs/test_lab_docs.py). Each case names the AWS page it follows
(docs/lab.md, "What the lab checks")."""

from __future__ import annotations

import datetime as dt
import http.client
import json
from urllib.parse import urlsplit

import boto3
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import ReadOnlyCredentials
from botocore.exceptions import ClientError

from kms_rescue.aws.classify import classify_exception
from kms_rescue.lab import Lab
from kms_rescue.lab.gate import MAX_BODY_BYTES
from kms_rescue.lab.signature import SignatureProblem, verify

SIGV4 = "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv.html"
SIGNING = "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_aws-signing.html"
PUT_KEY_POLICY = "https://docs.aws.amazon.com/kms/latest/APIReference/API_PutKeyPolicy.html"


#: The scenario of the lab the module's tests share (the ``lab`` fixture of tests/conftest.py).
SCENARIO = "sole-admin-deleted"


def creds_of(lab: Lab):  # the lab's credentials of its first profile
    return lab._runtime_or_fail().profiles[lab.scenario.identities[0].profile]


def session(lab: Lab, secret: str | None = None) -> boto3.Session:
    c = creds_of(lab)
    return boto3.Session(aws_access_key_id=c.access_key_id, aws_secret_access_key=secret or c.secret_access_key,
                         aws_session_token=c.session_token, region_name=lab.region)


def signed(lab: Lab, body: bytes, *, secret: str | None = None, host: str | None = None) -> AWSRequest:
    """A KMS ListKeys request signed by botocore, as a client signs it."""
    c = creds_of(lab)
    request = AWSRequest(method="POST", url=lab.endpoint + "/", data=body, headers={
        "X-Amz-Target": "TrentService.ListKeys", "Content-Type": "application/x-amz-json-1.1",
        **({"Host": host} if host else {})})
    SigV4Auth(ReadOnlyCredentials(c.access_key_id, secret or c.secret_access_key, c.session_token), "kms",
              lab.region).add_auth(request)
    return request


def send(lab: Lab, method: str, headers: dict[str, str], body: bytes = b"") -> tuple[int, dict]:
    parts = urlsplit(lab.endpoint)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        conn.request(method, "/", body=body, headers=headers)
        response = conn.getresponse()
        data = response.read()
    finally:
        conn.close()
    try:
        return response.status, json.loads(data or b"{}")
    except ValueError:
        return response.status, {"raw": data.decode("latin-1")}


def test_the_right_credentials_work(lab: Lab) -> None:
    assert session(lab).client("kms", endpoint_url=lab.endpoint).list_keys()["Keys"]
    local = lab.endpoint.replace("127.0.0.1", "localhost")
    assert session(lab).client("sts", endpoint_url=local).get_caller_identity()["Account"]


@pytest.mark.parametrize(("service", "code"), [("kms", "InvalidSignatureException"), ("sts", "SignatureDoesNotMatch")])
def test_an_access_key_id_alone_is_not_enough(lab: Lab, service: str, code: str) -> None:
    """AWS replicates the signing process and denies a request whose signature does not match (SIGV4): an access
    key id with the wrong secret used to give full access."""
    client = session(lab, secret="wrong-secret-" + "0" * 27).client(service, endpoint_url=lab.endpoint)
    with pytest.raises(ClientError) as info:
        client.list_keys() if service == "kms" else client.get_caller_identity()
    assert info.value.response["Error"]["Code"] == code
    assert classify_exception(info.value).outcome == "invalid_credentials"


def test_a_body_changed_after_signing_is_refused(lab: Lab) -> None:
    request = signed(lab, b"{}")
    headers = dict(request.headers.items())
    status, doc = send(lab, "POST", headers, b'{"Limit": 1}')
    assert status == 400 and doc["__type"] == "InvalidSignatureException"
    status, doc = send(lab, "POST", headers, b"{}")
    assert status == 200 and "Keys" in doc


def test_a_request_more_than_five_minutes_old_is_refused(lab: Lab) -> None:
    """A request must reach AWS within five minutes of its time stamp (SIGNING)."""
    request = signed(lab, b"{}")
    headers = dict(request.headers.items())
    headers["Host"] = urlsplit(lab.endpoint).netloc
    verify("POST", "/", "", headers, b"{}", creds_of(lab).secret_access_key)  # now: fine
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=6)
    with pytest.raises(SignatureProblem, match="expired"):
        verify("POST", "/", "", headers, b"{}", creds_of(lab).secret_access_key, now=later)


def test_another_host_is_refused_and_the_lab_keeps_serving(lab: Lab) -> None:
    """DNS rebinding: a page's script reaching 127.0.0.1 through another name carries that name in Host."""
    request = signed(lab, b"{}", host="attacker.example:80")
    status, doc = send(lab, "POST", dict(request.headers.items()), b"{}")
    assert status == 400 and doc["__type"] == "InvalidHostHeader"
    assert session(lab).client("kms", endpoint_url=lab.endpoint).list_keys()["Keys"]


def test_a_body_over_the_cap_is_not_read(lab: Lab) -> None:
    """A key policy is at most 32 KiB (PUT_KEY_POLICY): the lab's cap is far above any real request, and a
    64 MiB body used to be read in full."""
    status, doc = send(lab, "POST", {"X-Amz-Target": "TrentService.ListKeys", "Content-Length": str(64 << 20)})
    assert status == 413 and doc["__type"] == "RequestEntityTooLarge"
    parts = urlsplit(lab.endpoint)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:  # chunked, no Content-Length: stopped at the cap as well
        conn.putrequest("POST", "/")
        conn.putheader("X-Amz-Target", "TrentService.ListKeys")
        conn.putheader("Transfer-Encoding", "chunked")
        conn.endheaders()
        chunk = b"x" * 65536
        try:
            for _ in range((MAX_BODY_BYTES // len(chunk)) + 4):
                conn.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            conn.send(b"0\r\n\r\n")
        except OSError:
            pass  # the lab may close the connection as soon as it has answered
        status = conn.getresponse().status
    finally:
        conn.close()
    assert status == 413
    assert session(lab).client("kms", endpoint_url=lab.endpoint).list_keys()["Keys"]


def test_a_policy_of_the_largest_size_kms_accepts_still_fits(lab: Lab) -> None:
    """32 KiB of policy, JSON-escaped in the request, is under the cap."""
    body = json.dumps({"KeyId": "x", "PolicyName": "default", "Policy": "\u0001" * (32 * 1024)}).encode()
    assert len(body) <= MAX_BODY_BYTES
