"""S3 in the lab: just enough for the audit's results (docs/lab.md, "S3"): buckets and objects, authorised by the
caller's identity policies, then served by moto.

S3 speaks REST: the operation is the method and the path (``PUT /bucket`` CreateBucket, ``PUT /bucket/key``
PutObject, ``GET /bucket/key`` GetObject, ``GET /bucket?list-type=2`` ListObjectsV2, which IAM authorises as
``s3:ListBucket``; Amazon S3 API Reference and the Service Authorization Reference, "Actions defined by Amazon
S3"). Requests are path-style (the lab's one endpoint is an IP address). Errors are S3's XML ``<Error>``.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, unquote

from werkzeug.wrappers import Response

from kms_rescue.lab.decisions import Decisions
from kms_rescue.lab.identity import Credentials
from kms_rescue.lab.protocol import AwsRequest, request_id_headers, xml_text


def _error(status: int, code: str, message: str, request_id: str) -> Response:
    xml = (f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{xml_text(code)}</Code>'
           f"<Message>{xml_text(message)}</Message><RequestId>{request_id}</RequestId></Error>")
    return Response(xml, status=status, content_type="application/xml", headers=request_id_headers(request_id))


def operation(method: str, path: str, query: str) -> tuple[str, str] | None:
    """(IAM action, resource ARN) of a path-style S3 request, or None for one the lab does not serve."""
    bucket, _, key = unquote(path).lstrip("/").partition("/")
    if not bucket:
        return ("s3:ListAllMyBuckets", "*") if method == "GET" else None
    params = dict(parse_qsl(query, keep_blank_values=True))
    if not key:
        if method == "PUT" and not params:
            return "s3:CreateBucket", f"arn:aws:s3:::{bucket}"
        if method in ("GET", "HEAD") and ("list-type" in params or not params):
            return "s3:ListBucket", f"arn:aws:s3:::{bucket}"
        if method == "DELETE" and not params:
            return "s3:DeleteBucket", f"arn:aws:s3:::{bucket}"
        return None
    if params and method != "GET":
        return None  # multipart uploads, tagging, ACLs: not served
    action = {"PUT": "s3:PutObject", "GET": "s3:GetObject", "HEAD": "s3:GetObject",
              "DELETE": "s3:DeleteObject"}.get(method)
    return (action, f"arn:aws:s3:::{bucket}/{key}") if action else None


def handle_s3(gate: Decisions, req: AwsRequest, creds: Credentials) -> Response:
    found = operation(req.method, req.path, req.query_string)
    if found is None:
        return _error(501, "NotImplemented", "the kms-rescue lab serves only S3's bucket and object basics",
                      req.request_id)
    action, resource = found
    p = creds.principal
    message = gate.denial(p, action, resource, region=req.region)
    if message:
        return _error(403, "AccessDenied", message, req.request_id)
    status, headers, body = gate.rt.moto.forward(
        "s3", account=p.account, headers=req.headers, body=req.body, region=req.region, method=req.method,
        path=req.path, query_string=req.query_string)
    keep = {k: v for k, v in headers if k.lower() in ("content-type", "etag", "content-length", "last-modified")}
    keep.update(request_id_headers(req.request_id))
    return Response(body, status=status, headers=keep)
