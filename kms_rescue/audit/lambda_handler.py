"""The per-account function of the audit past one machine: ``handler(event, context)``, one Lambda invocation per
member account of a Step Functions Distributed Map (``deploy/audit-org.yaml``; docs/audit.md, "Past one
machine").

``{"action": "audit_account", "account": "ID", "run_id": "RUN"}`` audits every enabled Region of that account
(``audit_region``, entering it through the member role) and writes each key and each error as one JSON line
(``to_json``) to ``s3://BUCKET/PREFIX/RUN/ACCOUNT.jsonl``. ``{"action": "list_accounts", "run_id": "RUN"}`` writes
the organization's active accounts as the map's items file (``s3://BUCKET/PREFIX/RUN/accounts.json``, a JSON array
of ``{"account": "ID"}``) and returns where it is.

Configuration, from the function's environment (the template sets it), each overridable by the event field in
brackets: ``KMS_RESCUE_RESULTS_BUCKET`` (``bucket``), ``KMS_RESCUE_RESULTS_PREFIX`` (``prefix``),
``KMS_RESCUE_MEMBER_ROLE_NAME`` (``member_role_name``; empty: the function's own credentials, for its own
account), ``KMS_RESCUE_MEMBER_ROLE_PATH`` (``member_role_path``), ``KMS_RESCUE_REGIONS`` (``regions``,
comma-separated; empty: every enabled Region). The endpoints are the SDK's own settings (``AWS_ENDPOINT_URL``):
the tests point them at the lab, nothing else does.

An account that cannot be entered or read is a row in its file (an ``AuditError``), not a failed invocation;
only a bad event or an S3 write that fails raises (the map retries or counts it against its tolerated failures).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator, Mapping
from typing import Any

from kms_rescue.audit.account import AccountCache, AuditOptions, AuditTarget, audit_region, enabled_regions
from kms_rescue.audit.model import AuditError, AuditItem, to_json
from kms_rescue.aws import s3_jsonl
from kms_rescue.aws.probe import IdentityRun, ProbeSettings
from kms_rescue.aws.redact import Redactor
from kms_rescue.aws.sessions import SessionOptions
from kms_rescue.observations import IdentitySpec
from kms_rescue.policy.partitions import DEFAULT_PARTITION, is_region_code, partition_for_region
from kms_rescue.policy.principals import ACCOUNT_RE, NAME_RE, PATH_RE

__all__ = ["FUNCTION_IDENTITY", "EventError", "audit_account", "handler", "list_accounts", "result_key"]

#: The function's own credentials (Lambda puts them in the environment).
FUNCTION_IDENTITY = IdentitySpec(name="function", source="env", kind="env")
SESSION_NAME = "kms-rescue-audit"
_RUN_ID_RE = re.compile(r"\A[A-Za-z0-9_.:-]{1,128}\Z")  # a Step Functions execution name's characters, and more
_PREFIX_RE = re.compile(r"\A[A-Za-z0-9!_.*'()/-]{0,512}\Z")
_BUCKET_RE = re.compile(r"\A[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]\Z")  # S3 User Guide, "General purpose bucket naming"


class EventError(ValueError):
    """The event or the configuration is not usable: one line, raised so that the invocation fails."""


def _setting(event: Mapping[str, Any], field: str, env: str, environ: Mapping[str, str], default: str = "") -> str:
    value = event.get(field, environ.get(env, default))
    if not isinstance(value, str):
        raise EventError(f"{field}: expected a string")
    return value


def _config(event: Mapping[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    bucket = _setting(event, "bucket", "KMS_RESCUE_RESULTS_BUCKET", environ)
    prefix = _setting(event, "prefix", "KMS_RESCUE_RESULTS_PREFIX", environ).strip("/")
    run_id = event.get("run_id")
    if not _BUCKET_RE.match(bucket):
        raise EventError(f"the results bucket {bucket[:70]!r} is not an S3 bucket name (KMS_RESCUE_RESULTS_BUCKET)")
    if not _PREFIX_RE.match(prefix):
        raise EventError("the results prefix holds characters outside S3's safe set (KMS_RESCUE_RESULTS_PREFIX)")
    if not isinstance(run_id, str) or not _RUN_ID_RE.match(run_id):
        raise EventError("run_id: expected the run's id (letters, digits, _.:-, at most 128)")
    return {"bucket": bucket, "prefix": prefix, "run_id": run_id}


def result_key(prefix: str, run_id: str, name: str) -> str:
    """``PREFIX/RUN/NAME`` (no empty segment when the prefix is empty)."""
    return "/".join(part for part in (prefix, run_id, name) if part)


def _member(event: Mapping[str, Any], environ: Mapping[str, str], account: str, partition: str) -> IdentitySpec:
    role = _setting(event, "member_role_name", "KMS_RESCUE_MEMBER_ROLE_NAME", environ)
    path = _setting(event, "member_role_path", "KMS_RESCUE_MEMBER_ROLE_PATH", environ, "/") or "/"
    if not role:
        return FUNCTION_IDENTITY
    if not NAME_RE.match(role) or not PATH_RE.match(path):
        raise EventError("the member role's name or path is not an IAM name or path (KMS_RESCUE_MEMBER_ROLE_*)")
    return IdentitySpec(name=f"{role}@{account}", source="assume_role", role_arn=f"arn:{partition}:iam::{account}"
                        f":role{path}{role}", base=FUNCTION_IDENTITY.name, kind="assume_role",
                        session_name=SESSION_NAME)


def _regions(event: Mapping[str, Any], environ: Mapping[str, str]) -> list[str]:
    raw = event.get("regions", environ.get("KMS_RESCUE_REGIONS", ""))
    names = raw if isinstance(raw, list) else str(raw).split(",")
    regions = [str(r).strip() for r in names if str(r).strip()]
    bad = [r for r in regions if not is_region_code(r)]
    if bad:
        raise EventError(f"regions: {bad[0][:40]!r} is not a Region code")
    return regions


def _home_region(environ: Mapping[str, str]) -> str:
    region = environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    return region if is_region_code(region) else "us-east-1"


def _items(account: str, spec: IdentitySpec, regions: list[str], options: AuditOptions, home: str
           ) -> Iterator[AuditItem]:
    cache = AccountCache()  # one connection (one sts:AssumeRole) for the Region list and every Region's audit
    if not regions:  # every enabled Region: ask the account itself (ec2:DescribeRegions)
        found = enabled_regions(spec, options, cache)
        # When the connection failed, audit_region reports it from the cache (no new call), with its stage
        # (assume_role or credentials) and the account: one error row.
        regions = [home] if isinstance(found, AuditError) else found
    for region in regions:
        yield from audit_region(AuditTarget(account, region, spec), options, cache=cache)


def audit_account(event: Mapping[str, Any], *, environ: Mapping[str, str] | None = None,
                  options: AuditOptions | None = None) -> dict[str, Any]:
    """Audit one account (see the module's doc) and return where its lines went and how many there are."""
    env = os.environ if environ is None else environ
    config = _config(event, env)
    account = event.get("account")
    if not isinstance(account, str) or not ACCOUNT_RE.match(account):
        raise EventError("account: expected a 12-digit account id")
    home = _home_region(env)
    partition = partition_for_region(home).id if is_region_code(home) else DEFAULT_PARTITION
    spec = _member(event, env, account, partition)
    opts = options or AuditOptions(environ=env)
    key = result_key(config["prefix"], config["run_id"], f"{account}.jsonl")
    counts = {"keys": 0, "errors": 0}

    def lines() -> Iterator[str]:
        for item in _items(account, spec, _regions(event, env), opts, home):
            counts["errors" if isinstance(item, AuditError) else "keys"] += 1
            yield json.dumps(to_json(item), separators=(",", ":"), sort_keys=True)

    try:
        s3_jsonl.put_lines(s3_jsonl.s3_client(region=home), config["bucket"], key, lines(),
                           redactor=opts.redactor)
    except s3_jsonl.S3Error as exc:
        raise EventError(str(exc)) from None
    return {"account": account, "bucket": config["bucket"], "key": key, **counts}


def list_accounts(event: Mapping[str, Any], *, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Write the organization's active accounts as the Distributed Map's items file; return its bucket and key."""
    env = os.environ if environ is None else environ
    config = _config(event, env)
    home = _home_region(env)
    redactor = Redactor()
    run = IdentityRun(FUNCTION_IDENTITY, ProbeSettings(options=SessionOptions(), redactor=redactor, environ=env),
                      home)
    if not run.connect():
        raise EventError(f"the function's credentials: {run.probe.status or 'error'}")
    accounts: list[str] = []
    token: str | None = None
    client = run.client("organizations")
    while True:
        kwargs: dict[str, Any] = {"NextToken": token} if token else {}
        got, rec = run.call("organizations:ListAccounts", None,
                            lambda kw=kwargs: client.list_accounts(**kw))  # type: ignore[misc]
        if got is None:
            raise EventError(f"organizations:ListAccounts: {rec.error_code or rec.outcome}: {rec.message or ''}")
        # ``State`` replaces the deprecated ``Status`` (AWS Organizations API reference, Account).
        accounts += [str(a["Id"]) for a in got.get("Accounts") or []
                     if isinstance(a, dict) and a.get("Id") and (a.get("State") or a.get("Status")) == "ACTIVE"]
        token = got.get("NextToken")
        if not token:
            break
    key = result_key(config["prefix"], config["run_id"], "accounts.json")
    items = json.dumps([{"account": a} for a in dict.fromkeys(accounts)])
    try:
        s3_jsonl.put_lines(s3_jsonl.s3_client(region=home), config["bucket"], key, [items], redactor=redactor)
    except s3_jsonl.S3Error as exc:
        raise EventError(str(exc)) from None
    return {"bucket": config["bucket"], "key": key, "accounts": len(accounts)}


def handler(event: Any, context: Any) -> dict[str, Any]:
    """The Lambda entry point (``kms_rescue.audit.lambda_handler.handler``); ``context`` is not used."""
    del context
    if not isinstance(event, dict):
        raise EventError("the event must be a JSON object")
    action = event.get("action", "audit_account")
    if action == "audit_account":
        return audit_account(event)
    if action == "list_accounts":
        return list_accounts(event)
    raise EventError(f"action: {str(action)[:40]!r} is not audit_account or list_accounts")
