"""The enforcement gate: a WSGI app in front of moto that identifies the caller, injects faults, and decides with
the policy engine before anything reaches moto's backends.

Denials read as AWS's do (IAM User Guide, "Troubleshoot access denied error messages": ``User: ARN is not
authorized to perform: ACTION on resource: RESOURCE because no <type> policy allows the ACTION action`` for an
implicit deny, ``... with an explicit deny in a <type> policy`` for an explicit one; ``<type>`` is
``resource-based`` for a key policy and ``identity-based`` for IAM policies; a guardrail is named as
``service control policy``, ``resource control policy`` or ``permissions boundary``).

Guardrails: the caller's permissions boundary and the scenario organization's SCPs (for the caller's account) and
RCPs (for the resource's account) go to the engine with every decision (docs/lab.md, "Guardrails").
"""

from __future__ import annotations

import random
import threading
import time
import traceback
from collections import Counter, OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from werkzeug.wrappers import Request, Response

from kms_rescue.lab import protocol, signature
from kms_rescue.lab.identity import Credentials, Principal
from kms_rescue.lab.organization import RCP, SCP, PolicyType
from kms_rescue.lab.protocol import AwsRequest, BadRequest, error, parse_request
from kms_rescue.lab.runtime import LabRuntime
from kms_rescue.policy import Decision, Evaluation, Policy, evaluate, parse_policy
from kms_rescue.policy.actions import cross_account_allowed
from kms_rescue.policy.guardrails import (
    PERMISSIONS_BOUNDARY,
    RESOURCE_CONTROL_POLICIES,
    SERVICE_CONTROL_POLICIES,
    Guardrails,
    OrgLevel,
    OrgMembership,
)
from kms_rescue.policy.model import KEY_POLICY_MAX_BYTES

FAULT_KINDS = ("throttle", "5xx", "hang")
INVALID_TOKEN = "The security token included in the request is invalid."
_POLICY_CACHE_SIZE = 1024


@dataclass(frozen=True)
class GateOptions:
    latency_ms: float = 0.0
    fault_rate: float = 0.0
    fault: str = "throttle"
    seed: int | None = None
    hang_seconds: float = 900.0  # far beyond botocore's 60 s read timeout; ends early when the lab stops
    #: Extra delay for some operations, after the lab has done the work (a slow PutKeyPolicy that still lands).
    op_latency_ms: tuple[tuple[str, float], ...] = ()


class Faults:
    """Draws faults from a seeded random generator: the same seed gives the same sequence of faults."""

    def __init__(self, rate: float, kind: str, seed: int | None) -> None:
        if not 0.0 <= rate <= 1.0:
            raise ValueError("the fault rate is a fraction from 0 to 1")
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r} (one of {', '.join(FAULT_KINDS)})")
        self.rate = rate
        self.kind = kind
        self._rng = random.Random(seed)
        self._lock = threading.Lock()

    def draw(self) -> str | None:
        if self.rate <= 0.0:
            return None
        with self._lock:
            return self.kind if self._rng.random() < self.rate else None


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
        self.options = options
        self.stop = stop
        self.faults = Faults(options.fault_rate, options.fault, options.seed)
        self.stats: Counter[str] = Counter()
        self.internal_errors: list[str] = []
        self._stats_lock = threading.Lock()
        self._policies: OrderedDict[str, Policy] = OrderedDict()
        self._org_levels: dict[tuple[PolicyType, str], tuple[OrgLevel, ...] | None] = {}
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

    def count(self, what: str) -> None:
        with self._stats_lock:
            self.stats[what] += 1

    def handle(self, request: Request, body: bytes) -> Response:
        try:
            req = parse_request(request, body)
        except BadRequest as exc:
            return protocol.json_error(400, exc.code, exc.message, "lab")
        self.count("requests")
        latency = self.options.latency_ms + dict(self.options.op_latency_ms).get(req.operation or "", 0.0)
        if latency <= 0:
            return self._answer(req)
        # The answer leaves ``latency_ms`` after the request arrived, with the lab's own work counted in it, as a
        # service's is: requests arriving together are answered together, not one processing time apart.
        answer_at = time.monotonic() + latency / 1000.0
        response = self._answer(req)
        self.stop.wait(max(0.0, answer_at - time.monotonic()))
        return response

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
        from kms_rescue.lab import ec2_api, iam_api, kms_api, org_api, s3_api

        service = req.service
        if service == "kms":
            return kms_api.handle(self, req, creds)
        if service == "iam":
            return iam_api.handle_iam(self, req, creds)
        if service == "sts":
            return iam_api.handle_sts(self, req, creds)
        if service == "cloudtrail":
            return iam_api.handle_cloudtrail(self, req, creds)
        if service == "organizations":
            return org_api.handle(self, req, creds)
        if service == "ec2":
            return ec2_api.handle_ec2(self, req, creds)
        if service == "s3":
            return s3_api.handle_s3(self, req, creds)
        return iam_api.handle_other(self, req, creds)

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

    # --- decisions -----------------------------------------------------------------------------------------

    def parsed(self, text: str, *, key_policy: bool = False) -> Policy:
        cached = self._policies.get(text)
        if cached is not None:
            self._policies.move_to_end(text)
            return cached
        policy = parse_policy(text, max_bytes=KEY_POLICY_MAX_BYTES if key_policy else None)
        self._policies[text] = policy
        if len(self._policies) > _POLICY_CACHE_SIZE:
            self._policies.popitem(last=False)
        return policy

    def context(self, p: Principal, *, region: str | None, extra: Mapping[str, Any] | None = None
                ) -> dict[str, str | Sequence[str]]:
        """The request context of a call by ``p`` (IAM User Guide, "AWS global condition context keys")."""
        now = self.rt.clock()
        ctx: dict[str, str | Sequence[str]] = {
            "aws:PrincipalArn": p.principal_arn,
            "aws:PrincipalAccount": p.account,
            "aws:userid": p.unique_id,
            "aws:SourceIp": "127.0.0.1",
            "aws:SecureTransport": "false",
            "aws:CurrentTime": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "aws:EpochTime": str(int(now.timestamp())),
            "aws:RequestedRegion": region or self.rt.region,
            "aws:PrincipalIsAWSService": "false",
            "aws:ViaAWSService": "false",
            "kms:CallerAccount": p.account,
        }
        if p.kind == "user" and p.name:
            ctx["aws:username"] = p.name
        for k, v in self.rt.principal_tags(p).items():
            ctx[f"aws:PrincipalTag/{k}"] = v
        if extra:
            ctx.update(extra)
        return ctx

    def _levels(self, kind: PolicyType, account: str | None) -> tuple[OrgLevel, ...] | None:
        """The SCPs or RCPs at each level from the root to ``account``, None when none apply to it."""
        org = self.rt.scenario.organization
        if org is None or account is None or not org.is_member(account) or not org.policies(kind):
            return None
        cache_key = (kind, account)
        if cache_key not in self._org_levels:
            self._org_levels[cache_key] = tuple(
                OrgLevel(target=t, policies=tuple(self.parsed(pol.content) for pol in org.attached(kind, t)))
                for t in org.path(account)
            )
        return self._org_levels[cache_key]

    def guardrails(self, p: Principal, resource: str) -> Guardrails | None:
        """The caller's permissions boundary and the SCPs and RCPs that apply, None when there are none."""
        org = self.rt.scenario.organization
        boundary = self.rt.permissions_boundary(p)
        if org is None and boundary is None:
            return None
        parts = resource.split(":")
        resource_account = parts[4] if len(parts) > 5 and parts[4] else None
        return Guardrails(
            permissions_boundary=self.parsed(boundary) if boundary is not None else None,
            scps=self._levels(SCP, p.account),
            rcps=self._levels(RCP, resource_account),
            management_account=org.management_account if org is not None else None,
            principal_org=self._membership(p.account),
            resource_org=self._membership(resource_account),
        )

    def _membership(self, account: str | None) -> OrgMembership | None:
        """The account's place in the scenario's organization (aws:PrincipalOrgID, aws:PrincipalOrgPaths, ...)."""
        org = self.rt.scenario.organization
        if org is None or account is None or not (org.is_member(account) or account == org.management_account):
            return None
        return OrgMembership(org.id, org.id + "/" + "".join(f"{t}/" for t in org.path(account)[:-1]))

    def evaluate(
        self,
        p: Principal,
        action: str,
        resource: str,
        *,
        policy: str | None = None,
        extra: Mapping[str, Any] | None = None,
        region: str | None = None,
    ) -> Evaluation | None:
        """The engine's decision, or None for the root user acting on its own account without a resource policy
        (the root user needs no identity policy there)."""
        if policy is None and p.kind == "root" and (resource == "*" or f":{p.account}:" in resource):
            return None
        identity = [self.parsed(doc) for doc in self.rt.identity_policies(p)]
        return evaluate(
            principal=p.arn,
            action=action,
            resource=resource,
            key_policy=self.parsed(policy, key_policy=True) if policy is not None else None,
            identity_policies=identity,
            context=self.context(p, region=region, extra=extra),
            guardrails=self.guardrails(p, resource),
        )

    def denial(
        self,
        p: Principal,
        action: str,
        resource: str,
        *,
        policy: str | None = None,
        extra: Mapping[str, Any] | None = None,
        region: str | None = None,
    ) -> str | None:
        """None when ``p`` may perform ``action``; otherwise the AccessDenied message AWS would give."""
        ev = self.evaluate(p, action, resource, policy=policy, extra=extra, region=region)
        if ev is None or ev.decision is Decision.ALLOW:
            return None
        self.count("denied")
        return denial_message(p, action, resource, ev, resource_policy=policy is not None)


#: How AWS's AccessDenied messages name each guardrail (IAM User Guide, "Troubleshoot access denied error messages").
_GUARDRAIL_WORDS = {
    SERVICE_CONTROL_POLICIES: "service control policy",
    RESOURCE_CONTROL_POLICIES: "resource control policy",
    PERMISSIONS_BOUNDARY: "permissions boundary",
}


def denial_message(p: Principal, action: str, resource: str, ev: Evaluation, *, resource_policy: bool) -> str:
    head = f"User: {p.arn} is not authorized to perform: {action} on resource: {resource}"
    if ev.guardrail is not None:
        words = _GUARDRAIL_WORDS[ev.guardrail]
        if ev.decision is Decision.EXPLICIT_DENY:
            return f"{head} with an explicit deny in a {words}"
        return f"{head} because no {words} allows the {action} action"
    if ev.decision is Decision.EXPLICIT_DENY:
        in_resource_policy = any(r.policy == "key policy" and r.effect == "Deny" for r in ev.reasons)
        kind = "a resource-based" if in_resource_policy else "an identity-based"
        return f"{head} with an explicit deny in {kind} policy"
    blocked_by_resource = resource_policy and (
        ev.key_policy_grant is None or (ev.cross_account and not cross_account_allowed(action))
    )
    kind = "resource-based" if blocked_by_resource else "identity-based"
    return f"{head} because no {kind} policy allows the {action} action"
