"""The wire side of the gate: who is calling which operation of which service, and AWS-shaped answers.

KMS and CloudTrail speak AWS's JSON protocol (the operation in ``X-Amz-Target``, errors as ``{"__type", "message"}``);
IAM and STS speak the query protocol (``Action=`` in a form body, XML answers and ``<ErrorResponse>`` errors). The
caller's access key id, the region and the service come from the SigV4 ``Authorization`` header's credential
scope (``Credential=AKID/DATE/REGION/SERVICE/aws4_request``).
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode
from xml.sax.saxutils import escape

from werkzeug.wrappers import Request, Response

Protocol = Literal["json", "query", "other"]

_CREDENTIAL_RE = re.compile(r"Credential=([^/,\s]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request")
_QUERY_NAMESPACES = {
    "iam": "https://iam.amazonaws.com/doc/2010-05-08/",
    "sts": "https://sts.amazonaws.com/doc/2011-06-15/",
}
JSON_CONTENT_TYPE = "application/x-amz-json-1.1"


class BadRequest(Exception):
    """A request the lab cannot parse; answered with a 400 of the service's protocol."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class AwsRequest:
    method: str
    path: str
    query_string: str
    headers: dict[str, str]
    body: bytes
    access_key: str | None = None
    region: str | None = None
    service: str | None = None
    protocol: Protocol = "other"
    operation: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    user_agent: str = ""
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def with_params(self, params: Mapping[str, Any]) -> AwsRequest:
        """A copy whose body carries ``params`` (query protocol: a new form body; JSON: a new document)."""
        body = (urlencode(list(params.items())) if self.protocol == "query" else json.dumps(params)).encode()
        return AwsRequest(
            method=self.method, path=self.path, query_string=self.query_string, headers=dict(self.headers),
            body=body, access_key=self.access_key, region=self.region, service=self.service,
            protocol=self.protocol, operation=self.operation, params=dict(params), user_agent=self.user_agent,
            request_id=self.request_id,
        )


def parse_request(request: Request, body: bytes) -> AwsRequest:
    """Read what the gate needs from a request whose body has already been drained into ``body``."""
    headers = {k: v for k, v in request.headers.items()}
    req = AwsRequest(
        method=request.method,
        path=request.path,
        query_string=request.query_string.decode("latin-1"),
        headers=headers,
        body=body,
        user_agent=request.headers.get("User-Agent", ""),
    )
    auth = request.headers.get("Authorization", "")
    m = _CREDENTIAL_RE.search(auth) or _CREDENTIAL_RE.search(
        "Credential=" + request.args.get("X-Amz-Credential", "")
    )
    if m:
        req.access_key, _, req.region, req.service = m.group(1), m.group(2), m.group(3), m.group(4)
    target = request.headers.get("X-Amz-Target")
    if target:
        req.protocol = "json"
        req.operation = target.rsplit(".", 1)[-1]
        if body.strip():
            try:
                params = json.loads(body)
            except ValueError:
                raise BadRequest("SerializationException", "the request body is not valid JSON") from None
            if not isinstance(params, dict):
                raise BadRequest("SerializationException", "the request body must be a JSON object")
            req.params = params
        return req
    form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)) if body else {}
    form.update({k: v for k, v in parse_qsl(req.query_string, keep_blank_values=True) if k not in form})
    if "Action" in form:
        req.protocol = "query"
        req.operation = form["Action"]
        req.params = form
    return req


def request_id_headers(request_id: str) -> dict[str, str]:
    return {"x-amzn-RequestId": request_id, "x-amz-request-id": request_id}


def json_response(payload: Any, request_id: str, status: int = 200) -> Response:
    return Response(
        json.dumps(payload), status=status, content_type=JSON_CONTENT_TYPE, headers=request_id_headers(request_id)
    )


def json_error(status: int, code: str, message: str, request_id: str) -> Response:
    return json_response({"__type": code, "message": message}, request_id, status)


def query_error(service: str, status: int, code: str, message: str, request_id: str) -> Response:
    kind = "Receiver" if status >= 500 else "Sender"
    ns = _QUERY_NAMESPACES.get(service, f"https://{service}.amazonaws.com/doc/")
    xml = (
        f'<ErrorResponse xmlns="{ns}"><Error><Type>{kind}</Type><Code>{escape(code)}</Code>'
        f"<Message>{escape(message)}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>"
    )
    return Response(xml, status=status, content_type="text/xml", headers=request_id_headers(request_id))


def query_result(service: str, action: str, inner_xml: str, request_id: str) -> Response:
    ns = _QUERY_NAMESPACES.get(service, f"https://{service}.amazonaws.com/doc/")
    xml = (
        f'<{action}Response xmlns="{ns}"><{action}Result>{inner_xml}</{action}Result>'
        f"<ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata></{action}Response>"
    )
    return Response(xml, status=200, content_type="text/xml", headers=request_id_headers(request_id))


EC2_NAMESPACE = "http://ec2.amazonaws.com/doc/2016-11-15/"


def ec2_error(status: int, code: str, message: str, request_id: str) -> Response:
    """An error in EC2's format (Amazon EC2 API Reference, "Error codes": ``<Response><Errors><Error>``)."""
    xml = (
        f"<Response><Errors><Error><Code>{escape(code)}</Code><Message>{escape(message)}</Message></Error></Errors>"
        f"<RequestID>{request_id}</RequestID></Response>"
    )
    return Response(xml, status=status, content_type="text/xml", headers=request_id_headers(request_id))


def ec2_result(action: str, inner_xml: str, request_id: str) -> Response:
    """An EC2 answer: ``<ActionResponse>`` with ``requestId`` and the result's elements (no Result wrapper)."""
    xml = (
        f'<{action}Response xmlns="{EC2_NAMESPACE}"><requestId>{request_id}</requestId>{inner_xml}'
        f"</{action}Response>"
    )
    return Response(xml, status=200, content_type="text/xml", headers=request_id_headers(request_id))


def error(req: AwsRequest, status: int, code: str, message: str) -> Response:
    """An error in the protocol of the request's service."""
    if req.service == "ec2":
        return ec2_error(status, code, message, req.request_id)
    if req.protocol == "query" or req.service in _QUERY_NAMESPACES:
        return query_error(req.service or "iam", status, code, message, req.request_id)
    return json_error(status, code, message, req.request_id)


def xml_text(value: object) -> str:
    return escape(str(value))
