"""The audit's KMS reads (docs/audit.md, "Requests"): ListKeys and ListAliases once per Region, DescribeKey and
GetKeyPolicy per key. Every call goes through a :class:`CallLog`, which classifies and redacts each failure like
an identity's probe does (:mod:`kms_rescue.aws.classify`) and keeps the records of one key only, so an audit's
memory does not grow with the number of keys. Nothing here raises an AWS exception.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kms_rescue.aws.classify import classify_exception
from kms_rescue.aws.probe import json_safe, utc_now
from kms_rescue.aws.redact import Redactor
from kms_rescue.aws.results import CallResult


@dataclass
class CallLog:
    """A recorder (``call(operation, target, thunk)``, as :class:`kms_rescue.aws.iam.Recorder`) that keeps its
    records in ``calls``."""

    redactor: Redactor
    region: str
    calls: list[CallResult] = field(default_factory=list)

    def __call__(self, operation: str, target: str | None, thunk: Callable[[], Any]) -> tuple[Any, CallResult]:
        at = utc_now()
        start = time.monotonic()
        try:
            result = thunk()
        except Exception as exc:  # every failure is data, never an exception out of aws/
            c = classify_exception(exc, redactor=self.redactor, request_region=self.region)
            rec = CallResult(operation, c.outcome, c.error_code, c.message, int((time.monotonic() - start) * 1000),
                             at, target)
            self.calls.append(rec)
            return None, rec
        rec = CallResult(operation, "ok", None, None, int((time.monotonic() - start) * 1000), at, target)
        self.calls.append(rec)
        return result, rec


def _pages(kms: Any, operation: str, key: str, **kwargs: Any) -> tuple[list[Any], int]:
    out: list[Any] = []
    pages = 0
    for page in kms.get_paginator(operation).paginate(**kwargs):
        pages += 1
        out.extend(page.get(key, []))
    return out, pages


def list_key_ids(kms: Any, call: CallLog) -> tuple[list[str] | None, CallResult, int]:
    """Every key id of the Region (kms:ListKeys, all pages): (ids or None when it failed, the record, pages)."""
    got, rec = call("kms:ListKeys", None, lambda: _pages(kms, "list_keys", "Keys"))
    if got is None:
        return None, rec, 1
    keys, pages = got
    return [k["KeyId"] for k in keys if k.get("KeyId")], rec, pages


def list_aliases(kms: Any, call: CallLog) -> tuple[dict[str, list[str]] | None, CallResult, int]:
    """The Region's aliases by target key id (kms:ListAliases, all pages, once per Region rather than per key)."""
    got, rec = call("kms:ListAliases", None, lambda: _pages(kms, "list_aliases", "Aliases"))
    if got is None:
        return None, rec, 1
    aliases, pages = got
    out: dict[str, list[str]] = {}
    for a in aliases:
        if a.get("TargetKeyId") and a.get("AliasName"):
            out.setdefault(a["TargetKeyId"], []).append(a["AliasName"])
    return out, rec, pages


@dataclass
class KeyRead:
    """What one identity read of one key."""

    metadata: dict[str, Any] | None = None
    policy: dict[str, Any] | None = None
    policy_text: str | None = None


def read_key(kms: Any, key_arn: str, call: CallLog) -> KeyRead:
    """kms:DescribeKey and kms:GetKeyPolicy (the policy named ``default``, the only one a key has)."""
    out = KeyRead()
    got, _ = call("kms:DescribeKey", key_arn, lambda: kms.describe_key(KeyId=key_arn))
    if got is not None:
        out.metadata = json_safe(got.get("KeyMetadata", {}))
    got, _ = call("kms:GetKeyPolicy", key_arn, lambda: kms.get_key_policy(KeyId=key_arn, PolicyName="default"))
    if got is not None:
        out.policy_text = got.get("Policy") or ""
        try:
            doc = json.loads(out.policy_text)
        except ValueError:
            doc = None
        out.policy = doc if isinstance(doc, dict) else None
    return out


def list_grants(kms: Any, key_arn: str, call: CallLog) -> list[dict[str, Any]] | None:
    """The key's grants (kms:ListGrants, all pages), or None when the call failed."""
    got, _ = call("kms:ListGrants", key_arn, lambda: _pages(kms, "list_grants", "Grants", KeyId=key_arn))
    if got is None:
        return None
    grants, _pages_read = got
    out: list[dict[str, Any]] = json_safe(grants)
    return out
