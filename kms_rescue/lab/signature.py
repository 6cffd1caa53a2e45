"""SigV4 verification for the lab: a request is served only when it is signed with the secret the lab issued for
its access key id, within five minutes of its time stamp.

The lab recomputes the signature with botocore's own signer (:class:`botocore.auth.SigV4Auth`: its public
``canonical_request``, ``string_to_sign`` and ``signature`` steps) on a request rebuilt from what arrived: the
method, path and query string, exactly the headers the client listed in ``SignedHeaders``, and the body. AWS's side
of the protocol is described in the IAM User Guide, "AWS Signature Version 4 for API requests"
(https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv.html) and "Elements of an AWS API request
signature" (a request must reach AWS within five minutes of its time stamp, otherwise AWS denies it).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import hmac
import re
from collections.abc import Mapping

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import ReadOnlyCredentials

#: How far a request's time stamp may be from the lab's clock (AWS: five minutes).
MAX_SKEW = _dt.timedelta(minutes=5)

_AUTHORIZATION = re.compile(
    r"^AWS4-HMAC-SHA256\s+Credential=(?P<credential>[^,\s]+)\s*,\s*SignedHeaders=(?P<signed>[^,\s]+)\s*,"
    r"\s*Signature=(?P<signature>[0-9a-f]{64})\s*$"
)
_AMZ_DATE = re.compile(r"^\d{8}T\d{6}Z$")
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"


class SignatureProblem(Exception):
    """Why a request's signature is not accepted (the message is AWS's wording where AWS has one)."""


def _header(headers: Mapping[str, str], name: str) -> str | None:
    low = name.lower()
    for k, v in headers.items():
        if k.lower() == low:
            return v
    return None


def verify(method: str, path: str, query_string: str, headers: Mapping[str, str], body: bytes, secret_key: str,
           *, now: _dt.datetime | None = None) -> None:
    """Raise :class:`SignatureProblem` unless the request's ``Authorization`` header carries the SigV4 signature
    that ``secret_key`` gives it."""
    auth = _header(headers, "Authorization") or ""
    m = _AUTHORIZATION.match(auth)
    if m is None:
        raise SignatureProblem("Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' "
                               "(AWS4-HMAC-SHA256)")
    scope = m["credential"].split("/")
    if len(scope) != 5 or scope[4] != "aws4_request":
        raise SignatureProblem("the credential scope must be ACCESS_KEY/DATE/REGION/SERVICE/aws4_request")
    access_key, date, region, service = scope[:4]
    amz_date = _header(headers, "X-Amz-Date") or ""
    if not _AMZ_DATE.match(amz_date) or amz_date[:8] != date:
        raise SignatureProblem("X-Amz-Date is missing, malformed, or not the credential scope's date")
    moment = _dt.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=_dt.timezone.utc)
    clock = now or _dt.datetime.now(_dt.timezone.utc)
    if abs(clock - moment) > MAX_SKEW:
        raise SignatureProblem(f"Signature expired: {amz_date} is more than 5 minutes from the lab's time "
                               f"{clock.strftime('%Y%m%dT%H%M%SZ')}")
    signed_names = m["signed"].split(";")
    signed: dict[str, str] = {}
    for name in signed_names:
        value = _header(headers, name)
        if value is None:
            raise SignatureProblem(f"the signed header {name!r} is not in the request")
        signed[name] = value
    if "host" not in signed:
        raise SignatureProblem("the Host header must be signed")
    content_sha = _header(signed, "X-Amz-Content-SHA256")
    if content_sha is not None and content_sha != UNSIGNED_PAYLOAD and \
            not hmac.compare_digest(content_sha, hashlib.sha256(body).hexdigest()):
        raise SignatureProblem("X-Amz-Content-SHA256 is not the body's hash")
    url = f"http://{signed['host']}{path or '/'}" + (f"?{query_string}" if query_string else "")
    request = AWSRequest(method=method, url=url, headers=signed, data=body)
    request.context["timestamp"] = amz_date
    signer = SigV4Auth(ReadOnlyCredentials(access_key, secret_key, None), service, region)
    canonical = signer.canonical_request(request)
    expected = signer.signature(signer.string_to_sign(request, canonical), request)
    if not hmac.compare_digest(expected, m["signature"]):
        raise SignatureProblem("The request signature we calculated does not match the signature you provided. "
                               "Check your AWS Secret Access Key and signing method.")


__all__ = ["MAX_SKEW", "SignatureProblem", "verify"]
