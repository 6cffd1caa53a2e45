"""KMS through the gate: resolve the key, decide with the key policy and the caller's identity policies, apply the
key-state rules, then answer (key policy operations, key state changes, CreateKey, DescribeKey) or forward to moto.

Grounding, from the KMS API reference and Developer Guide:
- every key operation needs the key policy (plus IAM policies where it delegates); ``CreateKey``, ``ListKeys``,
  ``ListAliases`` and ``GenerateRandom`` are authorised by IAM policies alone ("Permissions reference");
- ``PutKeyPolicy``/``CreateKey`` run the policy lockout safety check unless ``BypassPolicyLockoutSafetyCheck`` is
  true ("The key policy must allow the calling principal to make a subsequent PutKeyPolicy request"), failing with
  ``MalformedPolicyDocumentException``; the principals a key policy names must exist; ``PolicyName`` defaults to
  ``default``; without ``Policy``, ``CreateKey`` attaches the default key policy;
- key states ("Key states of AWS KMS keys"): a disabled key refuses cryptographic operations with
  ``DisabledException: ARN is disabled.``; a key pending deletion refuses them and most management with
  ``KMSInvalidStateException: ARN is pending deletion.``; DescribeKey, GetKeyPolicy, PutKeyPolicy work in every
  state;
- aliases: ``CreateAlias``/``UpdateAlias``/``DeleteAlias`` need the permission on the alias (IAM policy) and on the
  key (key policy); ``DescribeKey`` by alias needs permission on the target key;
- Regions: a KMS key lives in one Region, and a request is answered by the Region it is signed for. An alias is
  unique in its account and Region, and an alias of the same name may exist in other Regions (KMS API reference,
  CreateAlias). A key id, key ARN or alias that the request's Region does not hold is ``NotFoundException``:
  ``Key 'arn:aws:kms:REGION:ACCOUNT:key/ID' does not exist`` (the ARN as given, or built from the request's Region
  and the caller's account), ``Alias arn:aws:kms:REGION:ACCOUNT:alias/NAME is not found.``
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from werkzeug.wrappers import Response

from kms_rescue.lab import _moto
from kms_rescue.lab._moto import KeyInfo
from kms_rescue.lab.decisions import Decisions
from kms_rescue.lab.identity import Credentials
from kms_rescue.lab.protocol import AwsRequest, json_error, json_response, request_id_headers
from kms_rescue.lab.runtime import RECORDED_KMS_EVENTS
from kms_rescue.lab.scenario import principal_values
from kms_rescue.policy import PolicyInputError, parse_policy
from kms_rescue.policy.principals import classify_aws_value

CRYPTO_OPS = frozenset({
    "Encrypt", "Decrypt", "ReEncrypt", "GenerateDataKey", "GenerateDataKeyWithoutPlaintext", "GenerateDataKeyPair",
    "GenerateDataKeyPairWithoutPlaintext", "Sign", "Verify", "GenerateMac", "VerifyMac", "GetPublicKey",
    "DeriveSharedSecret",
})
#: Operations that fail on a key pending deletion (besides the cryptographic ones).
PENDING_DELETION_FORBIDDEN = frozenset({
    "CreateAlias", "CreateGrant", "DisableKey", "EnableKey", "EnableKeyRotation", "DisableKeyRotation",
    "ScheduleKeyDeletion", "TagResource", "UntagResource", "UpdateKeyDescription", "RotateKeyOnDemand",
    "ReplicateKey",
})
DISABLED_FORBIDDEN = CRYPTO_OPS | {"CreateGrant", "EnableKeyRotation", "DisableKeyRotation", "RotateKeyOnDemand"}
IAM_ONLY_OPS = frozenset({
    "CreateKey", "ListKeys", "ListAliases", "GenerateRandom", "ListRetirableGrants", "DescribeCustomKeyStores",
    "CreateCustomKeyStore", "ConnectCustomKeyStore", "DisconnectCustomKeyStore", "DeleteCustomKeyStore",
    "UpdateCustomKeyStore",
})
ALIAS_OK_OPS = frozenset({
    "DescribeKey", "Encrypt", "GenerateDataKey", "GenerateDataKeyWithoutPlaintext", "GenerateDataKeyPair",
    "GenerateDataKeyPairWithoutPlaintext", "GenerateMac", "VerifyMac", "Sign", "Verify", "GetPublicKey",
    "DeriveSharedSecret",
})
_KEY_ID_RE = re.compile(r"^(mrk-[0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$")

LOCKOUT_MESSAGE = "The new key policy will not allow you to update the key policy in the future."
INVALID_PRINCIPALS_MESSAGE = "Policy contains a statement with one or more invalid principals."
UNKNOWN_CIPHERTEXT_KEY = (
    "The ciphertext refers to a customer master key that does not exist, does not exist in this region, or you "
    "are not allowed to access."
)


class KmsError(Exception):
    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


@dataclass
class _Call:
    gate: Decisions
    req: AwsRequest
    creds: Credentials
    key_arn: str | None = None
    response_elements: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def p(self) -> Any:
        return self.creds.principal

    @property
    def region(self) -> str:
        return self.req.region or self.gate.rt.region

    @property
    def params(self) -> dict[str, Any]:
        return self.req.params


def handle(gate: Decisions, req: AwsRequest, creds: Credentials) -> Response:
    call = _Call(gate, req, creds)
    op = req.operation or ""
    try:
        response = _route(call, op)
    except KmsError as exc:
        if op in RECORDED_KMS_EVENTS:
            _record(call, op, error=exc)
        return json_error(exc.status, exc.code, exc.message, req.request_id)
    except PolicyInputError as exc:  # a stored policy the engine cannot read: should not happen
        return json_error(500, "KMSInternalException", f"the lab could not evaluate a policy: {exc}", req.request_id)
    if op in RECORDED_KMS_EVENTS:
        _record(call, op, error=None)
    return response


def _route(call: _Call, op: str) -> Response:
    if op == "CreateKey":
        return _create_key(call)
    if op in IAM_ONLY_OPS and call.region not in call.gate.rt.regions:
        return _unserved_region(call, op)
    if op in IAM_ONLY_OPS:
        return _iam_only(call, op)
    if op in ("CreateAlias", "UpdateAlias", "DeleteAlias"):
        return _alias_op(call, op)
    if op == "Decrypt":
        return _decrypt(call)
    if op == "ReEncrypt":
        return _re_encrypt(call)
    if op == "RetireGrant" and not call.params.get("KeyId"):
        if call.region not in call.gate.rt.regions:
            raise KmsError("UnsupportedOperationException", _served_message(call))
        return _forward(call, call.p.account)  # retiring by grant token: grants are not enforced by the lab
    key, alias = _resolve(call, call.params.get("KeyId"), alias_ok=op in ALIAS_OK_OPS)
    call.key_arn = key.arn
    extra = _key_context(key, alias)
    extra.update(_op_context(op, call.params))
    if op == "PutKeyPolicy":
        extra["kms:BypassPolicyLockoutSafetyCheck"] = _flag(call.params.get("BypassPolicyLockoutSafetyCheck"))
    _authorize(call, f"kms:{op}", key, extra)
    _check_state(op, key)
    if op == "DescribeKey":
        return json_response(call.gate.rt.moto.describe_key(key.account, key.id, region=key.region),
                             call.req.request_id)
    if op == "GetKeyPolicy":
        _policy_name(call)
        return json_response({"Policy": key.policy, "PolicyName": "default"}, call.req.request_id)
    if op == "ListKeyPolicies":
        return json_response({"PolicyNames": ["default"], "Truncated": False}, call.req.request_id)
    if op == "PutKeyPolicy":
        return _put_key_policy(call, key, extra)
    if op in ("EnableKey", "DisableKey", "ScheduleKeyDeletion", "CancelKeyDeletion"):
        return _state_change(call, op, key)
    return _forward(call, key.account)


# --- keys -----------------------------------------------------------------------------------------------------


def _resolve(call: _Call, ref: Any, *, alias_ok: bool, param: str = "KeyId") -> tuple[KeyInfo, str | None]:
    """The key ``ref`` names (key id, key ARN, alias name, alias ARN), and the alias when one was used."""
    rt = call.gate.rt
    if not isinstance(ref, str) or not ref:
        name = param[0].lower() + param[1:]
        raise KmsError(
            "ValidationException",
            f"1 validation error detected: Value null at '{name}' failed to satisfy constraint: "
            "Member must not be null",
        )
    region, account = call.region, call.p.account
    alias: str | None = None
    key_id = ""
    if ref.startswith("arn:"):
        parts = ref.split(":", 5)
        if len(parts) != 6 or parts[2] != "kms" or not (parts[5].startswith("key/") or parts[5].startswith("alias/")):
            raise KmsError("NotFoundException", f"Invalid keyId {ref}")
        region, account, resource = parts[3], parts[4], parts[5]
        if resource.startswith("alias/"):
            if not alias_ok:
                raise KmsError("NotFoundException", f"Invalid keyId {ref}")
            alias = resource
        else:
            key_id = resource[len("key/"):]
        if region != call.region or account not in rt.moto.accounts:
            # The request's Region (or the lab) holds no key of that Region or account.
            what = f"Alias {ref} is not found." if alias else f"Key '{ref}' does not exist"
            raise KmsError("NotFoundException", what)
    elif ref.startswith("alias/"):
        if not alias_ok:
            raise KmsError("NotFoundException", f"Invalid keyId {ref}")
        alias = ref
    else:
        if not _KEY_ID_RE.match(ref):
            raise KmsError("NotFoundException", f"Invalid keyId {ref}")
        key_id = ref
    if alias is not None:
        found = rt.moto.key_for_alias(account, alias, region=region)
        if found is None:
            raise KmsError("NotFoundException", f"Alias arn:aws:kms:{region}:{account}:{alias} is not found.")
        key = rt.moto.key(account, found, region=region)
    else:
        key = rt.moto.key(account, key_id, region=region)
    if key is None:
        shown = ref if ref.startswith("arn:") else f"arn:aws:kms:{region}:{account}:key/{ref}"
        raise KmsError("NotFoundException", f"Key '{shown}' does not exist")
    return key, alias


def _key_context(key: KeyInfo, alias: str | None) -> dict[str, Any]:
    """KMS condition keys about the key (KMS Developer Guide, "AWS KMS condition keys")."""
    ctx: dict[str, Any] = {
        "kms:KeySpec": key.key_spec,
        "kms:KeyUsage": key.key_usage,
        "kms:KeyOrigin": key.origin,
        "kms:MultiRegion": "true" if key.multi_region else "false",
    }
    if key.multi_region:
        ctx["kms:MultiRegionKeyType"] = "PRIMARY"
    if key.aliases:
        ctx["kms:ResourceAliases"] = list(key.aliases)
    if alias:
        ctx["kms:RequestAlias"] = alias
    for k, v in key.tags.items():
        ctx[f"aws:ResourceTag/{k}"] = v
    return ctx


def _op_context(op: str, params: Mapping[str, Any]) -> dict[str, Any]:
    ctx: dict[str, Any] = {}
    enc = params.get("EncryptionContext")
    if isinstance(enc, dict) and enc:
        for k, v in enc.items():
            ctx[f"kms:EncryptionContext:{k}"] = str(v)
        ctx["kms:EncryptionContextKeys"] = [str(k) for k in enc]
    for param, key in (
        ("EncryptionAlgorithm", "kms:EncryptionAlgorithm"),
        ("SigningAlgorithm", "kms:SigningAlgorithm"),
        ("MacAlgorithm", "kms:MacAlgorithm"),
        ("MessageType", "kms:MessageType"),
        ("KeyPairSpec", "kms:DataKeyPairSpec"),
    ):
        if isinstance(params.get(param), str):
            ctx[key] = params[param]
    if op == "ScheduleKeyDeletion":
        ctx["kms:ScheduleKeyDeletionPendingWindowInDays"] = str(params.get("PendingWindowInDays", 30))
    return ctx


def _flag(value: Any) -> str:
    return "true" if value is True or str(value).lower() == "true" else "false"


def _authorize(call: _Call, action: str, key: KeyInfo, extra: Mapping[str, Any]) -> None:
    message = call.gate.denial(call.p, action, key.arn, policy=key.policy, extra=extra, region=call.region)
    if message:
        raise KmsError("AccessDeniedException", message)


def _check_state(op: str, key: KeyInfo) -> None:
    if key.state == "PendingDeletion" and (op in CRYPTO_OPS or op in PENDING_DELETION_FORBIDDEN):
        raise KmsError("KMSInvalidStateException", f"{key.arn} is pending deletion.")
    if key.state == "Disabled" and op in DISABLED_FORBIDDEN:
        raise KmsError("DisabledException", f"{key.arn} is disabled.")
    if op == "CancelKeyDeletion" and key.state != "PendingDeletion":
        raise KmsError("KMSInvalidStateException", f"{key.arn} is not pending deletion.")


def _policy_name(call: _Call) -> None:
    name = call.params.get("PolicyName", "default")
    if name != "default":
        raise KmsError("NotFoundException", "No such policy exists")


def _unserved_region(call: _Call, op: str) -> Response:
    """A Region the scenario does not serve holds no keys: list operations answer empty, others are refused."""
    message = call.gate.denial(call.p, f"kms:{op}", "*", region=call.region)
    if message:
        raise KmsError("AccessDeniedException", message)
    empty: dict[str, dict[str, Any]] = {
        "ListKeys": {"Keys": []}, "ListAliases": {"Aliases": []}, "ListRetirableGrants": {"Grants": []},
    }
    if op not in empty:
        raise KmsError("UnsupportedOperationException", _served_message(call))
    return json_response({**empty[op], "Truncated": False}, call.req.request_id)


def _served_message(call: _Call) -> str:
    return f"the lab serves KMS in {', '.join(call.gate.rt.regions)} only, not in {call.region}"


def _iam_only(call: _Call, op: str) -> Response:
    message = call.gate.denial(call.p, f"kms:{op}", "*", region=call.region)
    if message:
        raise KmsError("AccessDeniedException", message)
    if op == "ListKeys":
        rt, account = call.gate.rt, call.p.account
        keys = [{"KeyId": k, "KeyArn": f"arn:aws:kms:{call.region}:{account}:key/{k}"}
                for k in rt.moto.key_ids(account, region=call.region)]
        return json_response(_page(call, "Keys", keys), call.req.request_id)
    if op == "ListAliases":
        response = _forward(call, call.p.account)
        if response.status_code != 200:
            return response
        aliases = json.loads(response.get_data()).get("Aliases", [])
        return json_response(_page(call, "Aliases", aliases), call.req.request_id)
    return _forward(call, call.p.account)


#: Page sizes (KMS API reference, ListKeys and ListAliases: ``Limit`` "must be between 1 and 1000, inclusive. If
#: you do not include a value, it defaults to 100", and between 1 and 100, default 50, for ListAliases).
PAGE_LIMITS = {"Keys": (100, 1000), "Aliases": (50, 100)}
INVALID_MARKER = (
    "The request was rejected because the marker that specifies where pagination should next begin is not valid."
)


def _page(call: _Call, field_name: str, items: list[Any]) -> dict[str, Any]:
    """One page of ``items`` as KMS pages them: ``Limit`` items from ``Marker`` on, ``Truncated`` and
    ``NextMarker`` while more remain. The marker is opaque to clients (the lab's is the next item's position)."""
    default, most = PAGE_LIMITS[field_name]
    limit = call.params.get("Limit", default)
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= most:
        raise KmsError(
            "ValidationException",
            f"1 validation error detected: Value '{limit}' at 'limit' failed to satisfy constraint: Member must "
            f"have value between 1 and {most}",
        )
    start = 0
    marker = call.params.get("Marker")
    if marker is not None:
        try:
            start = int(base64.urlsafe_b64decode(str(marker).encode()).decode().removeprefix("lab-page:"))
        except (ValueError, binascii.Error, UnicodeDecodeError):
            raise KmsError("InvalidMarkerException", INVALID_MARKER) from None
        if not 0 <= start <= len(items):
            raise KmsError("InvalidMarkerException", INVALID_MARKER)
    end = start + limit
    page: dict[str, Any] = {field_name: items[start:end], "Truncated": end < len(items)}
    if end < len(items):
        page["NextMarker"] = base64.urlsafe_b64encode(f"lab-page:{end}".encode()).decode()
    return page


def _forward(call: _Call, account: str) -> Response:
    status, headers, body = call.gate.rt.moto.forward(
        "kms", account=account, headers=call.req.headers, body=call.req.body, region=call.region
    )
    keep = {k: v for k, v in headers if k.lower() in ("content-type",)}
    keep.update(request_id_headers(call.req.request_id))
    return Response(body, status=status, headers=keep)


# --- key policies ---------------------------------------------------------------------------------------------


def validate_new_policy(call: _Call, text: Any, *, key_arn: str, extra: Mapping[str, Any], bypass: bool) -> str:
    """Check a policy for PutKeyPolicy/CreateKey as KMS does; returns the text to store."""
    if not isinstance(text, str) or not text:
        raise KmsError(
            "ValidationException",
            "1 validation error detected: Value null at 'policy' failed to satisfy constraint: Member must not be null",
        )
    size = len(text.encode("utf-8"))
    if size > 32 * 1024:
        raise KmsError("LimitExceededException", f"The key policy is {size} bytes; the limit is 32768 bytes.")
    try:
        doc = json.loads(text)
        parse_policy(doc)
    except (ValueError, PolicyInputError) as exc:
        raise KmsError("MalformedPolicyDocumentException", f"The policy is malformed: {exc}") from None
    rt = call.gate.rt
    for value in principal_values(doc):
        pv = classify_aws_value(value)
        if pv.kind == "invalid":
            raise KmsError("MalformedPolicyDocumentException", INVALID_PRINCIPALS_MESSAGE)
        if pv.kind in ("user", "role") and pv.account in rt.moto.accounts and rt.moto.principal_by_arn(value) is None:
            raise KmsError("MalformedPolicyDocumentException", INVALID_PRINCIPALS_MESSAGE)
        if pv.kind == "unique_id" and not any(
            rt.moto.principal_by_unique_id(a, value) for a in rt.moto.accounts
        ):
            raise KmsError("MalformedPolicyDocumentException", INVALID_PRINCIPALS_MESSAGE)
    if not bypass:
        check = dict(extra)
        check["kms:BypassPolicyLockoutSafetyCheck"] = "false"
        ev = call.gate.evaluate(call.p, "kms:PutKeyPolicy", key_arn, policy=text, extra=check, region=call.region)
        if ev is not None and not ev.allowed:
            raise KmsError("MalformedPolicyDocumentException", LOCKOUT_MESSAGE)
    return text


def _put_key_policy(call: _Call, key: KeyInfo, extra: Mapping[str, Any]) -> Response:
    _policy_name(call)
    bypass = _flag(call.params.get("BypassPolicyLockoutSafetyCheck")) == "true"
    text = validate_new_policy(call, call.params.get("Policy"), key_arn=key.arn, extra=extra, bypass=bypass)
    call.gate.rt.moto.set_key_policy(key.account, key.id, text, region=key.region)
    return json_response({}, call.req.request_id)


def _create_key(call: _Call) -> Response:
    rt, params = call.gate.rt, call.params
    if call.region not in rt.regions:
        raise KmsError("UnsupportedOperationException", _served_message(call))
    if call.p.account not in rt.moto.accounts:
        raise KmsError("UnsupportedOperationException", f"the lab has no account {call.p.account}")
    spec = params.get("KeySpec") or params.get("CustomerMasterKeySpec") or "SYMMETRIC_DEFAULT"
    usage = params.get("KeyUsage") or ("GENERATE_VERIFY_MAC" if str(spec).startswith("HMAC") else "ENCRYPT_DECRYPT")
    multi = bool(params.get("MultiRegion", False))
    bypass = _flag(params.get("BypassPolicyLockoutSafetyCheck")) == "true"
    extra = {
        "kms:KeySpec": spec, "kms:KeyUsage": usage, "kms:KeyOrigin": params.get("Origin") or "AWS_KMS",
        "kms:MultiRegion": "true" if multi else "false", "kms:BypassPolicyLockoutSafetyCheck": _flag(bypass),
    }
    tags = params.get("Tags") or []
    for tag in tags if isinstance(tags, list) else []:
        if isinstance(tag, dict) and "TagKey" in tag:
            extra[f"aws:RequestTag/{tag['TagKey']}"] = str(tag.get("TagValue", ""))
    message = call.gate.denial(call.p, "kms:CreateKey", "*", extra=extra, region=call.region)
    if message:
        raise KmsError("AccessDeniedException", message)
    key_id = f"mrk-{uuid.uuid4().hex}" if multi else str(uuid.uuid4())
    key_arn = f"arn:aws:kms:{call.region}:{call.p.account}:key/{key_id}"
    policy = params.get("Policy")
    if policy is not None:
        policy = validate_new_policy(call, policy, key_arn=key_arn, extra=extra, bypass=bypass)
    else:
        policy = _moto.default_key_policy(call.p.account)
    key = rt.moto.create_key(
        call.p.account, region=call.region, key_id=key_id, policy=policy,
        description=str(params.get("Description") or ""),
        key_spec=spec, key_usage=usage, multi_region=multi, origin=params.get("Origin") or "AWS_KMS",
        tags={t["TagKey"]: str(t.get("TagValue", "")) for t in tags if isinstance(t, dict) and "TagKey" in t},
    )
    call.key_arn = key.arn
    described = rt.moto.describe_key(key.account, key.id, region=key.region)
    call.response_elements = {"keyMetadata": _lower_keys(described["KeyMetadata"])}
    return json_response(described, call.req.request_id)


def _state_change(call: _Call, op: str, key: KeyInfo) -> Response:
    moto = call.gate.rt.moto
    if op == "EnableKey":
        moto.set_key_state(key.account, key.id, "Enabled", region=key.region)
        return json_response({}, call.req.request_id)
    if op == "DisableKey":
        moto.set_key_state(key.account, key.id, "Disabled", region=key.region)
        return json_response({}, call.req.request_id)
    if op == "CancelKeyDeletion":
        moto.set_key_state(key.account, key.id, "CancelDeletion", region=key.region)
        call.response_elements = {"keyId": key.arn}
        return json_response({"KeyId": key.arn}, call.req.request_id)
    days = call.params.get("PendingWindowInDays", 30)
    if not isinstance(days, int) or not 7 <= days <= 30:
        raise KmsError(
            "ValidationException",
            f"1 validation error detected: Value '{days}' at 'pendingWindowInDays' failed to satisfy constraint: "
            "Member must have value between 7 and 30",
        )
    info = moto.set_key_state(key.account, key.id, "PendingDeletion", region=key.region, pending_days=days)
    deletion = info.deletion_date.timestamp() if info.deletion_date else None
    body = {"KeyId": key.arn, "DeletionDate": deletion, "KeyState": "PendingDeletion", "PendingWindowInDays": days}
    call.response_elements = {
        "keyId": key.arn, "deletionDate": info.deletion_date.isoformat() if info.deletion_date else None,
        "keyState": "PendingDeletion", "pendingWindowInDays": days,
    }
    return json_response(body, call.req.request_id)


# --- ciphertexts and aliases ----------------------------------------------------------------------------------


def _ciphertext_key(call: _Call, param: str, given: Any) -> KeyInfo:
    blob_b64 = call.params.get(param)
    try:
        blob = base64.b64decode(blob_b64 or "", validate=True)
    except (binascii.Error, ValueError):
        raise KmsError("InvalidCiphertextException", "") from None
    key_id = call.gate.rt.moto.ciphertext_key_id(blob)
    if key_id is None:
        raise KmsError("InvalidCiphertextException", "")
    key = call.gate.rt.find_key(key_id, region=call.region)  # a ciphertext is decrypted in its key's Region only
    if key is None:
        raise KmsError("AccessDeniedException", UNKNOWN_CIPHERTEXT_KEY)
    if given:
        named, _ = _resolve(call, given, alias_ok=True)
        if named.id != key.id:
            raise KmsError(
                "IncorrectKeyException",
                "The key ID in the request does not identify a KMS key that can perform this operation.",
            )
    return key


def _decrypt(call: _Call) -> Response:
    key = _ciphertext_key(call, "CiphertextBlob", call.params.get("KeyId"))
    call.key_arn = key.arn
    extra = _key_context(key, None)
    extra.update(_op_context("Decrypt", call.params))
    _authorize(call, "kms:Decrypt", key, extra)
    _check_state("Decrypt", key)
    return _forward(call, key.account)


def _re_encrypt(call: _Call) -> Response:
    source = _ciphertext_key(call, "CiphertextBlob", call.params.get("SourceKeyId"))
    dest, alias = _resolve(call, call.params.get("DestinationKeyId"), alias_ok=True, param="DestinationKeyId")
    from_ctx = _key_context(source, None)
    from_ctx.update(_op_context("ReEncrypt", {"EncryptionContext": call.params.get("SourceEncryptionContext")}))
    _authorize(call, "kms:ReEncryptFrom", source, from_ctx)
    to_ctx = _key_context(dest, alias)
    to_ctx.update(_op_context("ReEncrypt", {"EncryptionContext": call.params.get("DestinationEncryptionContext")}))
    _authorize(call, "kms:ReEncryptTo", dest, to_ctx)
    _check_state("ReEncrypt", source)
    _check_state("ReEncrypt", dest)
    return _forward(call, dest.account)


def _alias_op(call: _Call, op: str) -> Response:
    rt, p = call.gate.rt, call.p
    alias = call.params.get("AliasName")
    if not isinstance(alias, str) or not alias.startswith("alias/"):
        if call.region not in rt.regions:
            raise KmsError("UnsupportedOperationException", _served_message(call))
        return _forward(call, p.account)  # moto answers the validation error
    alias_arn = f"arn:aws:kms:{call.region}:{p.account}:{alias}"
    message = call.gate.denial(p, f"kms:{op}", alias_arn, region=call.region)
    if message:
        raise KmsError("AccessDeniedException", message)
    keys: list[KeyInfo] = []
    if op in ("UpdateAlias", "DeleteAlias"):
        current = rt.moto.key_for_alias(p.account, alias, region=call.region)
        key = rt.moto.key(p.account, current, region=call.region) if current else None
        if key is None:
            raise KmsError("NotFoundException", f"Alias {alias_arn} is not found.")
        keys.append(key)
    if op in ("CreateAlias", "UpdateAlias"):
        target, _ = _resolve(call, call.params.get("TargetKeyId"), alias_ok=False, param="TargetKeyId")
        keys.append(target)
    for key in keys:
        _authorize(call, f"kms:{op}", key, _key_context(key, None))
    if op == "CreateAlias":
        _check_state(op, keys[-1])
    return _forward(call, p.account)


# --- CloudTrail -----------------------------------------------------------------------------------------------


def _lower_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {(k[0].lower() + k[1:] if k else k): _lower_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_lower_keys(v) for v in value]
    return value


def _record(call: _Call, op: str, *, error: KmsError | None) -> None:
    params = _lower_keys(dict(call.params))
    if op == "PutKeyPolicy":
        params.setdefault("policyName", "default")
        params.setdefault("bypassPolicyLockoutSafetyCheck", False)
    if op == "CreateKey":
        params.setdefault("bypassPolicyLockoutSafetyCheck", False)
        params.setdefault("origin", "AWS_KMS")
        params.setdefault("multiRegion", False)
    if op == "ScheduleKeyDeletion":
        params.setdefault("pendingWindowInDays", 30)
    code = None
    if error is not None:
        code = "AccessDenied" if error.code == "AccessDeniedException" else error.code
    resources = (("AWS::KMS::Key", call.key_arn),) if call.key_arn else ()
    call.gate.rt.record(
        name=op, source="kms.amazonaws.com", principal=call.p, access_key_id=call.creds.access_key_id,
        request_parameters=params, response_elements=None if error else call.response_elements,
        resources=resources, error_code=code, error_message=error.message if error else None,
        account=call.key_arn.split(":")[4] if call.key_arn else call.p.account, region=call.region,
        user_agent=call.req.user_agent or "kms-rescue-lab", request_id=call.req.request_id,
        session_created=call.creds.issued,
    )
