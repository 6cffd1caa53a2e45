"""IAM reads: a principal's own identity policies (so that delegation is evaluated, not assumed), and whether a
principal named by a key policy still exists.

Every call goes through a ``call`` recorder supplied by the probe, so each one is classified and listed in the
identity's calls; nothing here raises an AWS exception.
"""

from __future__ import annotations

import functools
import json
import threading
import urllib.parse
from collections.abc import Callable
from typing import Any, Protocol

from kms_rescue.aws.fanout import fan_out
from kms_rescue.aws.results import CallResult, IdentityPolicies, PolicyDoc
from kms_rescue.policy.errors import PolicyInputError
from kms_rescue.policy.principals import parse_caller
from kms_rescue.principal_checks import is_role_session as is_role_session  # re-export: investigate.py's iam_reads.
from kms_rescue.principal_checks import mentions_principal_arn as mentions_principal_arn  # (same)


class Recorder(Protocol):
    """``call(operation, target, thunk)`` runs ``thunk``, records the call, and returns its result (None when
    it failed) with the record."""

    def __call__(self, operation: str, target: str | None, thunk: Callable[[], Any]) -> tuple[Any, CallResult]:
        ...


def policy_document(value: Any) -> dict[str, Any] | None:
    """An IAM policy document as boto3 returns it (already decoded) or as the raw API does (URL-encoded JSON)."""
    if isinstance(value, dict):
        return value
    if isinstance(value, str):
        for text in (value, urllib.parse.unquote(value)):
            try:
                doc = json.loads(text)
            except ValueError:
                continue
            if isinstance(doc, dict):
                return doc
    return None


def _paginate(iam: Any, operation: str, result_key: str, **kwargs: Any) -> list[Any]:
    out: list[Any] = []
    for page in iam.get_paginator(operation).paginate(**kwargs):
        out.extend(page.get(result_key, []))
    return out


#: What one read produces: the documents it got and the failures it met, in order.
_Found = tuple[list[PolicyDoc], list[str]]


class SharedReads:
    """Reads whose result is the same whoever makes them, shared by the identities of one investigation: a group's
    policies (users of a group) and a managed policy's document (roles and users that attach it). The first identity
    to need one reads it; the others wait for that read and reuse its documents when it succeeded, or read for
    themselves when it failed, since their permissions may differ."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._reads: dict[tuple[str, ...], tuple[threading.Event, list[_Found]]] = {}

    def read(self, key: tuple[str, ...], read: Callable[[], _Found]) -> _Found:
        with self._lock:
            entry = self._reads.get(key)
            if entry is None:
                entry = self._reads[key] = (threading.Event(), [])
                owner = True
            else:
                owner = False
        done, result = entry
        if not owner:
            done.wait()
            return (list(result[0][0]), []) if result else read()
        found: _Found = ([], ["not read"])
        try:
            found = read()
            return found
        finally:
            with self._lock:
                if found[1]:  # a failure is not shared: the next identity tries with its own permissions
                    self._reads.pop(key, None)
                else:
                    result.append(found)
            done.set()


def read_identity_policies(
    iam: Any, caller_arn: str, call: Recorder, *, read_by: str, parallel: bool = False,
    shared: SharedReads | None = None,
) -> IdentityPolicies:
    """Read the inline and attached policies of the caller's role or user (and the user's groups).

    The root user needs none (the account principal covers it). Any read that fails leaves the status
    ``unknown``, keeping the documents that were read. With ``parallel``, independent reads overlap (the lists,
    each policy's fetch, each group); the documents and failures keep the same order either way. With ``shared``,
    a group's policies and a managed policy's document already read for another identity are not read again."""
    try:
        caller = parse_caller(caller_arn)
    except PolicyInputError:
        return IdentityPolicies("unknown", read_by=read_by, reason=f"unrecognised caller ARN {caller_arn}")
    if caller.kind == "root":
        return IdentityPolicies("not_needed", read_by=read_by,
                                reason="the root user needs no identity policy")
    if caller.kind in ("role", "assumed_role") and caller.name:
        return _read_principal(iam, "role", caller.name, call, read_by, parallel, shared, caller.account)
    if caller.kind == "user" and caller.name:
        return _read_principal(iam, "user", caller.name, call, read_by, parallel, shared, caller.account)
    return IdentityPolicies("unknown", read_by=read_by,
                            reason=f"identity policies of a {caller.kind.replace('_', ' ')} are not readable")


#: The version id IAM gives a managed policy when it is created.
FIRST_VERSION = "v1"


def _customer_managed(policy_arn: str) -> bool:
    """A policy of an account (``arn:aws:iam::111122223333:policy/…``), not an AWS managed one (``…::aws:policy/…``,
    which AWS revises often)."""
    parts = policy_arn.split(":", 5)
    return len(parts) == 6 and parts[4].isdigit()


def _merge(parts: list[_Found]) -> _Found:
    docs: list[PolicyDoc] = []
    failures: list[str] = []
    for d, f in parts:
        docs.extend(d)
        failures.extend(f)
    return docs, failures


def _read_principal(iam: Any, kind: str, name: str, call: Recorder, read_by: str, parallel: bool = False,
                    shared: SharedReads | None = None, account: str | None = None) -> IdentityPolicies:
    Kind = kind.capitalize()

    def each(thunks: list[Callable[[], _Found]]) -> _Found:
        return _merge(fan_out(thunks, parallel))

    def once(key: tuple[str, ...], read: Callable[[], _Found]) -> _Found:
        return shared.read(key, read) if shared is not None else read()

    def inline(entity: str, entity_name: str) -> _Found:
        EntityCap = entity.capitalize()
        arg = {f"{EntityCap}Name": entity_name}
        names, rec = call(f"iam:List{EntityCap}Policies", f"{entity}/{entity_name}",
                          lambda: _paginate(iam, f"list_{entity}_policies", "PolicyNames", **arg))
        if names is None:
            return [], [f"{rec.operation}: {rec.outcome}"]

        def one(pname: str) -> _Found:
            got, rec = call(f"iam:Get{EntityCap}Policy", f"{entity}/{entity_name}:{pname}",
                            functools.partial(getattr(iam, f"get_{entity}_policy"), **arg, PolicyName=pname))
            doc = policy_document(got.get("PolicyDocument")) if got else None
            if doc is None:
                return [], [f"{rec.operation} {pname}: {rec.outcome}"]
            return [PolicyDoc(f"inline {entity}/{entity_name}:{pname}", doc)], []

        return each([functools.partial(one, pname) for pname in names])

    def attached(entity: str, entity_name: str) -> _Found:
        EntityCap = entity.capitalize()
        arg = {f"{EntityCap}Name": entity_name}
        items, rec = call(f"iam:ListAttached{EntityCap}Policies", f"{entity}/{entity_name}",
                          lambda: _paginate(iam, f"list_attached_{entity}_policies", "AttachedPolicies", **arg))
        if items is None:
            return [], [f"{rec.operation}: {rec.outcome}"]

        def one(arn: str) -> _Found:
            def meta_call() -> tuple[Any, CallResult]:
                return call("iam:GetPolicy", arn, functools.partial(iam.get_policy, PolicyArn=arn))

            # GetPolicy names the default version that GetPolicyVersion needs: two round trips in a row. When calls
            # overlap, a customer managed policy's first version is fetched alongside (most are never edited);
            # it is used only when GetPolicy confirms it is the default, otherwise the default is fetched.
            ahead: tuple[Any, CallResult] | None = None
            if parallel and _customer_managed(arn):
                meta_rec, ahead = fan_out([meta_call, lambda: call(
                    "iam:GetPolicyVersion", f"{arn} ({FIRST_VERSION}, fetched ahead)",
                    functools.partial(iam.get_policy_version, PolicyArn=arn, VersionId=FIRST_VERSION))])
                meta, rec = meta_rec
            else:
                meta, rec = meta_call()
            version = (meta or {}).get("Policy", {}).get("DefaultVersionId")
            if not version:
                return [], [f"iam:GetPolicy {arn}: {rec.outcome}"]
            if ahead is not None and version == FIRST_VERSION and ahead[0] is not None:
                got, rec = ahead
            else:
                got, rec = call("iam:GetPolicyVersion", arn,
                                functools.partial(iam.get_policy_version, PolicyArn=arn, VersionId=version))
            doc = policy_document((got or {}).get("PolicyVersion", {}).get("Document"))
            if doc is None:
                return [], [f"iam:GetPolicyVersion {arn}: {rec.outcome}"]
            return [PolicyDoc(f"managed {arn}", doc)], []

        return each([functools.partial(once, ("managed policy", arn), functools.partial(one, arn))
                     for arn in (item.get("PolicyArn") for item in items)])

    def groups() -> _Found:
        found, rec = call("iam:ListGroupsForUser", f"user/{name}",
                          lambda: _paginate(iam, "list_groups_for_user", "Groups", UserName=name))
        if found is None:
            return [], [f"{rec.operation}: {rec.outcome}"]
        thunks: list[Callable[[], _Found]] = []
        for g in found:
            group = g["GroupName"]
            thunks += [functools.partial(once, ("group inline", account or "", group),
                                         functools.partial(inline, "group", group)),
                       functools.partial(once, ("group attached", account or "", group),
                                         functools.partial(attached, "group", group))]
        return each(thunks)

    reads: list[Callable[[], _Found]] = [functools.partial(inline, kind, name), functools.partial(attached, kind, name)]
    if kind == "user":
        reads.append(groups)
    docs, failures = each(reads)
    if failures:
        return IdentityPolicies("unknown", docs, read_by=read_by,
                                reason=f"could not read every policy of {Kind.lower()} {name}: "
                                       + "; ".join(failures[:3]))
    return IdentityPolicies("read", docs, read_by=read_by)


def read_role_arn(iam: Any, caller_arn: str, call: Recorder) -> str | None:
    """For a role session, its role's ARN with the role's path (iam:GetRole); None for other callers, or when the
    call fails. Role names are unique in an account, so the session's role name finds it."""
    try:
        caller = parse_caller(caller_arn)
    except PolicyInputError:
        return None
    if caller.kind != "assumed_role" or not caller.name:
        return None
    name = caller.name
    got, _rec = call("iam:GetRole", f"role/{name}", lambda: iam.get_role(RoleName=name))
    arn = ((got or {}).get("Role") or {}).get("Arn")
    if not isinstance(arn, str):
        return None
    try:
        role = parse_caller(arn)
    except PolicyInputError:
        return None
    return arn if role.kind == "role" and role.name == name and role.account == caller.account else None


def check_principal(iam: Any, arn: str, call: Recorder) -> tuple[bool | None, CallResult | None]:
    """Whether the user or role ``arn`` exists: iam:GetRole / iam:GetUser. None when the call could not tell
    (denied, throttled) or the ARN is not a user or role."""
    try:
        caller = parse_caller(arn)
    except PolicyInputError:
        return None, None
    if caller.kind == "role" and caller.name:
        got, rec = call("iam:GetRole", arn, lambda: iam.get_role(RoleName=caller.name))
    elif caller.kind == "user" and caller.name:
        got, rec = call("iam:GetUser", arn, lambda: iam.get_user(UserName=caller.name))
    else:
        return None, None
    if got is not None:
        entity = got.get("Role") or got.get("User") or {}
        found = entity.get("Arn")
        # A role or user of the same name under another path is a different principal.
        if found and found != arn:
            return False, rec
        return True, rec
    if rec.outcome == "not_found":
        return False, rec
    return None, rec
