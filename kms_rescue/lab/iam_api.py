"""IAM, STS and CloudTrail through the gate.

- IAM: every call is authorised by the caller's identity policies (IAM User Guide, "Policy evaluation logic"; the
  root user needs none in its own account), then forwarded to moto in the caller's account. ``DeleteRole`` and
  ``DeleteUser`` also rewrite key policies (the deleted principal's unique id replaces its ARN).
- STS: answered by the gate, which knows the lab's callers. ``GetCallerIdentity`` needs no permission (STS API
  reference). ``AssumeRole`` needs the role's trust policy to allow the caller and, unless the trust policy names
  the caller itself, the caller's identity policy too (IAM User Guide, "Policy evaluation logic"); the root user
  cannot assume roles.
- CloudTrail: ``LookupEvents`` is answered from the lab's event store (``cloudtrail:LookupEvents`` on ``*``); other
  operations are forwarded to moto after the identity-policy check.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

from werkzeug.wrappers import Response

from kms_rescue.lab.decisions import Decisions
from kms_rescue.lab.identity import Credentials, session_principal
from kms_rescue.lab.protocol import (
    AwsRequest,
    error,
    json_error,
    json_response,
    query_error,
    query_result,
    request_id_headers,
    xml_text,
)
from kms_rescue.lab.trail import LookupError_, iso
from kms_rescue.policy import Decision

_SESSION_NAME_RE = re.compile(r"^[\w+=,.@-]{2,64}$")


def _forwarded(gate: Decisions, req: AwsRequest, service: str, account: str) -> Response:
    status, headers, body = gate.rt.moto.forward(service, account=account, headers=req.headers, body=req.body,
                                                 region=req.region)
    keep = {k: v for k, v in headers if k.lower() == "content-type"}
    keep.update(request_id_headers(req.request_id))
    return Response(body, status=status, headers=keep)


# --- IAM ------------------------------------------------------------------------------------------------------


def iam_resource(gate: Decisions, account: str, params: dict[str, Any]) -> str:
    """The resource IAM authorises a call on (the role, user, group or policy it names), else ``*``."""
    moto = gate.rt.moto
    if params.get("RoleName"):
        info = moto.role(account, params["RoleName"])
        return info.arn if info else f"arn:aws:iam::{account}:role/{params['RoleName']}"
    if params.get("UserName"):
        info = moto.user(account, params["UserName"])
        return info.arn if info else f"arn:aws:iam::{account}:user/{params['UserName']}"
    if params.get("GroupName"):
        return f"arn:aws:iam::{account}:group/{params['GroupName']}"
    if params.get("PolicyArn"):
        return str(params["PolicyArn"])
    if params.get("InstanceProfileName"):
        return f"arn:aws:iam::{account}:instance-profile/{params['InstanceProfileName']}"
    return "*"


def handle_iam(gate: Decisions, req: AwsRequest, creds: Credentials) -> Response:
    p = creds.principal
    op = req.operation
    if not op:
        return query_error("iam", 400, "MissingAction", "the request names no Action", req.request_id)
    if op == "GetUser" and not req.params.get("UserName"):
        if p.kind == "root":
            return query_result(
                "iam", "GetUser",
                f"<User><UserId>{p.account}</UserId><Arn>{xml_text(p.arn)}</Arn>"
                f"<CreateDate>{iso(gate.rt.started)}</CreateDate></User>",
                req.request_id,
            )
        if p.kind == "session":
            return query_error(
                "iam", 400, "ValidationError", "Must specify userName when calling with non-User credentials",
                req.request_id,
            )
        req = req.with_params({**req.params, "UserName": p.name})
    resource = iam_resource(gate, p.account, req.params)
    message = gate.denial(p, f"iam:{op}", resource)
    if message:
        return query_error("iam", 403, "AccessDenied", message, req.request_id)
    before = None
    if op in ("DeleteRole", "DeleteUser"):
        kind = "role" if op == "DeleteRole" else "user"
        name = req.params.get("RoleName" if kind == "role" else "UserName", "")
        before = gate.rt.moto.principal(p.account, kind, name)
    response = _forwarded(gate, req, "iam", p.account)
    if op == "GetUser" and response.status_code == 200:
        response = _with_user_boundary(gate, response, p.account, str(req.params.get("UserName", "")))
    if before is not None and response.status_code == 200:
        gate.rt.principal_deleted(before)
        param = "roleName" if before.kind == "role" else "userName"
        gate.rt.record(
            name=op, source="iam.amazonaws.com", principal=p, access_key_id=creds.access_key_id,
            request_parameters={param: before.name}, region="us-east-1", account=p.account,
            user_agent=req.user_agent or "kms-rescue-lab", request_id=req.request_id, session_created=creds.issued,
        )
    return response


def _with_user_boundary(gate: Decisions, response: Response, account: str, name: str) -> Response:
    """moto's GetUser omits a user's permissions boundary; add it as IAM's GetUser response has it (IAM API
    reference, User: PermissionsBoundary)."""
    arn = gate.rt.boundary_arn(account, "user", name)
    body = response.get_data(as_text=True)
    if arn is None or "<PermissionsBoundaryArn>" in body or "</User>" not in body:
        return response
    element = (
        "<PermissionsBoundary><PermissionsBoundaryType>PermissionsBoundaryPolicy</PermissionsBoundaryType>"
        f"<PermissionsBoundaryArn>{xml_text(arn)}</PermissionsBoundaryArn></PermissionsBoundary>"
    )
    response.set_data(body.replace("</User>", element + "</User>", 1))
    return response


# --- STS ------------------------------------------------------------------------------------------------------


def handle_sts(gate: Decisions, req: AwsRequest, creds: Credentials) -> Response:
    p = creds.principal
    if req.operation == "GetCallerIdentity":
        return query_result(
            "sts", "GetCallerIdentity",
            f"<Arn>{xml_text(p.arn)}</Arn><UserId>{xml_text(p.unique_id)}</UserId><Account>{p.account}</Account>",
            req.request_id,
        )
    if req.operation == "AssumeRole":
        return _assume_role(gate, req, creds)
    return query_error(
        "sts", 400, "InvalidAction", f"the kms-rescue lab does not emulate sts:{req.operation}", req.request_id
    )


def _trust_with_resource(trust: str) -> str:
    """A trust policy has no Resource element (the role is the resource); give each statement ``"*"`` so the
    engine, which ignores statements without one, reads it as the role's resource policy."""
    doc = json.loads(trust)
    statements = doc.get("Statement", [])
    for st in [statements] if isinstance(statements, dict) else statements:
        if isinstance(st, dict) and "Resource" not in st and "NotResource" not in st:
            st["Resource"] = "*"
    return json.dumps(doc)


def _assume_role(gate: Decisions, req: AwsRequest, creds: Credentials) -> Response:
    p = creds.principal
    role_arn = req.params.get("RoleArn", "")
    session = req.params.get("RoleSessionName", "")
    if not role_arn or not session:
        missing = "roleArn" if not role_arn else "roleSessionName"
        return query_error(
            "sts", 400, "ValidationError",
            f"1 validation error detected: Value null at '{missing}' failed to satisfy constraint: "
            "Member must not be null", req.request_id,
        )
    if not _SESSION_NAME_RE.match(session):
        return query_error(
            "sts", 400, "ValidationError",
            f"1 validation error detected: Value '{session}' at 'roleSessionName' failed to satisfy constraint: "
            r"Member must satisfy regular expression pattern: [\w+=,.@-]*", req.request_id,
        )
    try:
        duration = int(req.params.get("DurationSeconds", 3600))
    except ValueError:
        duration = -1
    if not 900 <= duration <= 43200:
        return query_error(
            "sts", 400, "ValidationError",
            "The requested DurationSeconds is outside the range of 900 to 43200 seconds", req.request_id,
        )
    if p.kind == "root":
        return query_error("sts", 403, "AccessDenied", "Roles may not be assumed by root accounts.", req.request_id)
    denied = f"User: {p.arn} is not authorized to perform: sts:AssumeRole on resource: {role_arn}"
    info = gate.rt.moto.principal_by_arn(role_arn)
    if info is None or info.kind != "role" or info.trust is None:
        return query_error("sts", 403, "AccessDenied", denied, req.request_id)
    ev = gate.evaluate(
        p, "sts:AssumeRole", role_arn, policy=_trust_with_resource(info.trust),
        extra={"sts:RoleSessionName": session},
    )
    allowed = ev is None or ev.allowed or (
        # Another account's principal needs both the trust policy and its own identity policy; the engine's
        # cross-account rule is written for KMS operations, so judge that case from its two halves here.
        ev.cross_account and ev.decision is Decision.IMPLICIT_DENY and ev.key_policy_grant is not None
        and ev.identity_allowed
    )
    if not allowed:
        gate.count("denied")
        return query_error("sts", 403, "AccessDenied", denied, req.request_id)
    principal = session_principal(info.arn, info.unique_id, info.account, info.name, info.path, session, info.tags)
    new = gate.rt.issue(principal, duration=timedelta(seconds=duration))
    assert new.expiration is not None and new.session_token is not None
    inner = (
        f"<Credentials><AccessKeyId>{new.access_key_id}</AccessKeyId>"
        f"<SecretAccessKey>{xml_text(new.secret_access_key)}</SecretAccessKey>"
        f"<SessionToken>{xml_text(new.session_token)}</SessionToken>"
        f"<Expiration>{iso(new.expiration)}</Expiration></Credentials>"
        f"<AssumedRoleUser><AssumedRoleId>{xml_text(principal.unique_id)}</AssumedRoleId>"
        f"<Arn>{xml_text(principal.arn)}</Arn></AssumedRoleUser>"
    )
    return query_result("sts", "AssumeRole", inner, req.request_id)


# --- CloudTrail and the rest ----------------------------------------------------------------------------------


def handle_cloudtrail(gate: Decisions, req: AwsRequest, creds: Credentials) -> Response:
    p = creds.principal
    op = req.operation or ""
    message = gate.denial(p, f"cloudtrail:{op}", "*", region=req.region)
    if message:
        return json_error(400, "AccessDeniedException", message, req.request_id)
    if op == "LookupEvents":
        try:
            result = gate.rt.events.lookup(p.account, req.region or gate.rt.region, req.params, gate.rt.clock())
        except LookupError_ as exc:
            return json_error(400, exc.code, exc.message, req.request_id)
        return json_response(result, req.request_id)
    return _forwarded(gate, req, "cloudtrail", p.account)


def handle_other(gate: Decisions, req: AwsRequest, creds: Credentials) -> Response:
    """Services the lab does not model: identity-policy check, then moto if it knows the service."""
    service = req.service or "unknown"
    if req.protocol == "other" or not req.operation:
        return error(req, 400, "UnsupportedOperation", f"the kms-rescue lab does not emulate {service}")
    p = creds.principal
    message = gate.denial(p, f"{service}:{req.operation}", "*", region=req.region)
    if message:
        status = 403 if req.protocol == "query" else 400
        return error(req, status, "AccessDenied" if req.protocol == "query" else "AccessDeniedException", message)
    try:
        return _forwarded(gate, req, service, p.account)
    except Exception:
        return error(req, 400, "UnsupportedOperation", f"the kms-rescue lab does not emulate {service}")
