"""The enforcement gate: a WSGI app in front of moto that identifies the caller, injects faults, and hands each
request to its service's handler, which decides it with the policy engine (:mod:`kms_rescue.lab.decisions`)
before anything reaches moto's backends.

Imports go one way: the gate imports the handlers (``kms_api``, ``iam_api``, ``org_api``, ``ec2_api``) and the
decisions; the handlers import the decisions, never the gate (docs/architecture.md).
"""

from __future__ import annotations

import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from werkzeug.wrappers import Request, Response

from kms_rescue.lab import ec2_api, iam_api, kms_api, org_api, protocol, s3_api, signature
from kms_rescue.lab.decisions import Decisions
from kms_rescue.lab.faults import Faults
from kms_rescue.lab.identity import Credentials
from kms_rescue.lab.protocol import AwsRequest, BadRequest, error, parse_request
from kms_rescue.lab.runtime import LabRuntime

#: A service's handler: the gate's decisions, the request, the caller's credentials -> the answer.
Handler = Callable[[Decisions, AwsRequest, Credentials], Response]
HANDLERS: Mapping[str, Handler] = {
    "kms": kms_api.handle,
    "iam": iam_api.handle_iam,
    "sts": iam_api.handle_sts,
    "cloudtrail": iam_api.handle_cloudtrail,
    "organizations": org_api.handle,
    "ec2": ec2_api.handle_ec2,
    "s3": s3_api.handle_s3,
}

INVALID_TOKEN = "The security token included in the request is invalid."


@dataclass(frozen=True)
class GateOptions:
    latency_ms: float = 0.0
    fault_rate: float = 0.0
    fault: str = "throttle"
    seed: int | None = None
    hang_seconds: float = 900.0  # far beyond botocore's 60 s read timeout; ends early when the lab stops
    #: Extra delay for some operations, after the lab has done the work (a slow PutKeyPolicy that still lands).
    op_latency_ms: tuple[tuple[str, float], ...] = ()


#: The largest request body the lab reads. KMS's own requests are small: a key policy is at most 32 KiB
#: (PutKeyPolicy, https://docs.aws.amazon.com/kms/latest/APIReference/API_PutKeyPolicy.html), and even escaped
#: inside a JSON request (at most 6 bytes per character) it fits in 256 KiB; IAM's policies are smaller still.
MAX_BODY_BYTES = 256 * 1024


def _read_body(environ: Mapping[str, Any], request: Request) -> bytes | None:
    """The body, or None when it is over :data:`MAX_BODY_BYTES` (a chunked body, which announces no length, is
    read no further than one byte past the cap)."""
    if environ.get("CONTENT_LENGTH"):
        return request.get_data(cache=False)  # its announced length was checked against the cap
    stream = environ.get("wsgi.input")
    if not environ.get("wsgi.input_terminated") or stream is None:
        return b""
    data = stream.read(MAX_BODY_BYTES + 1)
    return None if len(data) > MAX_BODY_BYTES else bytes(data)


def _too_large() -> Response:
    return protocol.json_error(413, "RequestEntityTooLarge",
                               f"the request body is over the lab's cap of {MAX_BODY_BYTES} bytes", "lab")


class Gate:
    """The WSGI application the lab serves."""

    def __init__(self, runtime: LabRuntime, options: GateOptions, stop: threading.Event) -> None:
        self.rt = runtime
        self.decisions = Decisions(runtime)
        self.options = options
        self.stop = stop
        self.faults = Faults(options.fault_rate, options.fault, options.seed)
        self.internal_errors: list[str] = []
        #: The Host header values the lab answers (its own address, set once its port is known); None: any.
        self.hosts: frozenset[str] | None = None

    # --- WSGI ----------------------------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        refused = self._refuse(environ)
        if refused is not None:
            self.count("refused")
            return refused(environ, start_response)
        request = Request(environ)
        body = _read_body(environ, request)  # always drain the body, whatever happens next
        if body is None:
            self.count("refused")
            return _too_large()(environ, start_response)
        try:
            response = self.handle(request, body)
        except Exception as exc:  # a bug in the lab: answer 500 and keep serving
            self.internal_errors.append(traceback.format_exc())
            response = protocol.json_error(
                500, "InternalFailure", f"kms-rescue lab internal error: {type(exc).__name__}: {exc}", "lab"
            )
        return response(environ, start_response)

    def _refuse(self, environ: Mapping[str, Any]) -> Response | None:
        """A request addressed to another host (DNS rebinding: a web page's script reaching the lab through a name
        that resolves to 127.0.0.1), or announcing a body over the cap, is answered without being read."""
        host = str(environ.get("HTTP_HOST") or "").lower()
        if self.hosts is not None and host not in self.hosts:
            return protocol.json_error(
                400, "InvalidHostHeader",
                f"the kms-rescue lab answers only requests addressed to {' or '.join(sorted(self.hosts))}", "lab")
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return protocol.json_error(400, "BadRequest", "Content-Length is not a number", "lab")
        if length > MAX_BODY_BYTES:
            return _too_large()
        return None

    @property
    def stats(self) -> Counter[str]:
        """Requests served, faults injected (``fault:KIND``), denials, unrecognised credentials."""
        return self.decisions.stats

    def count(self, what: str) -> None:
        self.decisions.count(what)

    def handle(self, request: Request, body: bytes) -> Response:
        try:
            req = parse_request(request, body)
        except BadRequest as exc:
            return protocol.json_error(400, exc.code, exc.message, "lab")
        self.count("requests")
        self.decisions.enter()
        try:
            latency = self.options.latency_ms + dict(self.options.op_latency_ms).get(req.operation or "", 0.0)
            if latency <= 0:
                return self._answer(req)
            # The answer leaves ``latency_ms`` after the request arrived, with the lab's own work counted in it, as
            # a service's is: requests arriving together are answered together, not one processing time apart (each
            # request has its own server thread, and waits outside the lock that guards moto).
            answer_at = time.monotonic() + latency / 1000.0
            response = self._answer(req)
            self.stop.wait(max(0.0, answer_at - time.monotonic()))
            return response
        finally:
            self.decisions.leave()

    def _answer(self, req: AwsRequest) -> Response:
        fault = self.faults.draw()
        if fault is not None:
            self.count(f"fault:{fault}")
            return self._fault(req, fault)
        if req.access_key is None:
            code = "MissingAuthenticationToken" if req.protocol == "query" else "MissingAuthenticationTokenException"
            return error(req, 403, code, "Missing Authentication Token")
        with self.rt.lock:
            creds = self.rt.credentials.get(req.access_key)
            if creds is None or not self._token_ok(creds, req) or not self.rt.is_valid(creds):
                self.count("unrecognized")
                if req.protocol == "query":
                    return error(req, 403, "InvalidClientTokenId", INVALID_TOKEN)
                return error(req, 400, "UnrecognizedClientException", INVALID_TOKEN)
            try:
                signature.verify(req.method, req.path, req.query_string, req.headers, req.body,
                                 creds.secret_access_key)
            except signature.SignatureProblem as exc:
                self.count("bad_signature")
                if req.protocol == "query" or req.service in ("iam", "sts"):
                    return error(req, 403, "SignatureDoesNotMatch", str(exc))
                return error(req, 400, "InvalidSignatureException", str(exc))
            return self._dispatch(req, creds)

    @staticmethod
    def _token_ok(creds: Credentials, req: AwsRequest) -> bool:
        if creds.session_token is None:
            return True
        sent = {k.lower(): v for k, v in req.headers.items()}.get("x-amz-security-token")
        return sent == creds.session_token

    def _dispatch(self, req: AwsRequest, creds: Credentials) -> Response:
        handler = HANDLERS.get(req.service or "", iam_api.handle_other)
        return handler(self.decisions, req, creds)

    def _fault(self, req: AwsRequest, fault: str) -> Response:
        if fault == "hang":
            self.stop.wait(self.options.hang_seconds)
            return error(req, 503, "ServiceUnavailable", "the lab hung on purpose (--fault hang)")
        if fault == "throttle":
            code = "Throttling" if req.protocol == "query" else "ThrottlingException"
            if req.service == "ec2":
                code = "RequestLimitExceeded"  # EC2's throttling code (EC2 API Reference, "Error codes")
            return error(req, 400, code, "Rate exceeded")
        if req.service == "kms":
            return error(req, 500, "KMSInternalException", "An internal error occurred (injected by the lab).")
        code = "ServiceFailure" if req.service == "iam" else "InternalFailure"
        return error(req, 500, code, "An internal error occurred (injected by the lab).")
