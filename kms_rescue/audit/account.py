"""The audit of one account in one Region: the AWS side of ``kms-rescue audit`` (docs/audit.md).

:func:`audit_region` lists the Region's keys (kms:ListKeys; kms:ListAliases once), reads each customer managed key
(kms:DescribeKey, kms:GetKeyPolicy) with every identity of the account, and yields one
:class:`~kms_rescue.audit.model.KeyAudit` per key as soon as it is decided, or an
:class:`~kms_rescue.audit.model.AuditError` for what could not be audited. The per-account reads (the caller, its
own IAM policies and permissions boundary, the organization's SCPs and RCPs, whether the principals that policies
name in conditions exist) are made once per account and shared by every key and Region through an
:class:`AccountCache`. The verdict is ``report``'s (:mod:`kms_rescue.audit.keys`).
"""

from __future__ import annotations

import copy
import datetime as _dt
import functools
import threading
from collections.abc import Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from kms_rescue.audit.keys import audit_key, decide, grants_would_matter
from kms_rescue.audit.model import AuditError, AuditItem
from kms_rescue.aws import guardrails as guardrail_reads
from kms_rescue.aws import iam as iam_reads
from kms_rescue.aws.conventions import choose_region
from kms_rescue.aws.credential_process import ProcessGroups
from kms_rescue.aws.investigate import key_facts
from kms_rescue.aws.key_reads import CallLog, KeyRead, list_aliases, list_grants, list_key_ids, read_key
from kms_rescue.aws.keyref import parse_key_ref
from kms_rescue.aws.locate import enabled_regions as locate_regions
from kms_rescue.aws.probe import IdentityRun, ProbeSettings
from kms_rescue.aws.redact import Redactor
from kms_rescue.aws.results import (
    HistoryLookup,
    IdentityProbe,
    IdentitySpec,
    Investigation,
    OrganizationGuardrails,
    PrincipalCheck,
    Progress,
    ProgressEvent,
    no_progress,
)
from kms_rescue.aws.runtime import AwsRuntime
from kms_rescue.aws.sessions import SessionOptions
from kms_rescue.policy.named import policy_principals
from kms_rescue.policy.partitions import DEFAULT_PARTITION, is_region_code, partition_for_region

#: The prefix of AWS managed keys' aliases, which no customer may create (KMS Developer Guide, "AWS managed keys"
#: and "Create aliases"): a key with such an alias is AWS managed, known without a DescribeKey.
AWS_ALIAS_PREFIX = "alias/aws/"


def customer_managed(key_ids: list[str], aliases: Mapping[str, list[str]]) -> list[str]:
    """The keys that no ``alias/aws/…`` alias points to (those are AWS managed keys); the rest are told apart by
    DescribeKey's KeyManager."""
    return [k for k in key_ids if not any(a.startswith(AWS_ALIAS_PREFIX) for a in aliases.get(k, ()))]


@dataclass(frozen=True)
class AuditTarget:
    """One account in one Region, and the identity to read it with (``account`` None: the identity's own).
    ``identities``: more identities of the account, used beside ``identity`` when given (as ``report`` uses every
    identity it has)."""

    account: str | None
    region: str
    identity: IdentitySpec
    identities: tuple[IdentitySpec, ...] = ()


@dataclass(frozen=True)
class AuditOptions:
    """How every target is audited. ``if_deleted``: user and role ARNs whose deletion each key's
    ``verdict_if_deleted`` assumes. ``now``: the clock of date conditions (default: the current UTC time).
    ``workers``: keys read at once in one Region. ``progress``: told the number of keys of each Region
    (``plan``) and each key done (``step``)."""

    include_aws_managed: bool = False
    if_deleted: tuple[str, ...] = ()
    timeout: float = 10.0
    max_attempts: int = 4
    now: _dt.datetime | None = None
    organization: bool = True
    workers: int = 8
    environ: Mapping[str, str] | None = None
    progress: Progress = no_progress
    redactor: Redactor = field(default_factory=Redactor, compare=False)


@dataclass
class _Identity:
    """One identity connected in one account: its session and what its probe read once (caller, IAM policies,
    permissions boundary), and the requests that took."""

    spec: IdentitySpec
    session: Any
    probe: IdentityProbe
    requests: int
    #: An assumed role's credentials (its clients use them in place of the base identity's session's own).
    credentials: Any = None


class AccountCache:
    """The per-account reads, shared by every key and Region of the account (thread-safe): the connected
    identities, the organization's guardrails, and principal existence (a principal named by 300 keys is checked
    once). ``runtime``: the AWS runtime every session and client of the audit comes from (loader, models, client
    classes, pool: docs/architecture.md, "The AWS runtime"); default: one of its own."""

    def __init__(self, runtime: AwsRuntime | None = None) -> None:
        self.runtime = runtime if runtime is not None else AwsRuntime()
        self._lock = threading.Lock()
        self.identities: dict[tuple[str | None, str], _Identity | IdentityProbe] = {}
        self.organization: dict[str, OrganizationGuardrails] = {}
        self.principals: dict[str, PrincipalCheck] = {}
        self._locks: dict[Any, threading.Lock] = {}

    def lock(self, key: Any) -> threading.Lock:
        with self._lock:
            return self._locks.setdefault(key, threading.Lock())


def _settings(options: AuditOptions, groups: ProcessGroups, runtime: AwsRuntime) -> ProbeSettings:
    return ProbeSettings(
        options=SessionOptions(timeout=options.timeout, max_attempts=options.max_attempts, process_groups=groups,
                               max_pool_connections=max(10, options.workers * 2)),
        runtime=runtime, redactor=options.redactor, environ=options.environ,
    )


def _connect(spec: IdentitySpec, settings: ProbeSettings, region: str, cache: AccountCache) -> IdentityRun:
    """A run of ``spec`` in ``region``, connected: the first time, credentials, sts:GetCallerIdentity and its own
    IAM policies and boundary; afterwards (another Region) the same session and what it read, without a call."""
    key = (spec.profile, spec.name)
    run = IdentityRun(spec, settings, region)
    with cache.lock(("identity", key)):
        known = cache.identities.get(key)
        if isinstance(known, _Identity):
            run.session = known.session
            run.credentials = known.credentials
            run.probe = copy.copy(known.probe)
            run.probe.calls = list(known.probe.calls)
            run.connected = True
            return run
        if isinstance(known, IdentityProbe):  # failed before: do not try again for each Region
            run.probe = known
            run.stopped = True
            return run
        if run.connect():
            run.read_own_policies()
        if run.probe.usable:
            cache.identities[key] = _Identity(spec, run.session, run.probe, len(run.probe.calls), run.credentials)
        else:
            cache.identities[key] = run.probe
        return run


def _organization(runs: list[IdentityRun], account: str, cache: AccountCache) -> OrganizationGuardrails:
    with cache.lock(("organization", account)):
        found = cache.organization.get(account)
        if found is None:
            askers = [(r.spec.name, r.probe.account, functools.partial(r.client, "organizations"), r.call)
                      for r in runs]
            found = guardrail_reads.read_organization(askers, account)
            cache.organization[account] = found
        return found


def _checks(document: dict[str, Any] | None, run: IdentityRun, call: CallLog, cache: AccountCache
            ) -> dict[str, PrincipalCheck]:
    """Existence of the users and roles a live policy names in conditions (a live policy's Principal ARNs need no
    check: KMS shows deleted principals as unique ids), each checked once per account."""
    if document is None:
        return {}
    out: dict[str, PrincipalCheck] = {}
    for p in policy_principals(document):
        if p.kind not in ("user", "role") or not p.in_condition:
            continue
        with cache.lock(("principal", p.value)):
            found = cache.principals.get(p.value)
            if found is None:
                exists, rec = iam_reads.check_principal(run.client("iam"), p.value, call)
                what = "iam:GetRole" if ":role/" in p.value else "iam:GetUser"
                if exists is None:
                    found = PrincipalCheck(p.value, None, "unknown: could not be checked with "
                                                          "iam:GetRole/GetUser")
                else:
                    found = PrincipalCheck(p.value, exists, f"{what} by {run.spec.name} "
                                           + ("found it" if exists else ": no such entity"),
                                           checked_by=run.spec.name)
                if rec is None or exists is not None:
                    cache.principals[p.value] = found
        out[p.value] = found
    return out


class _Seen:
    """What :func:`kms_rescue.aws.investigate.key_facts` reads of a run: its spec and its probe."""

    def __init__(self, spec: IdentitySpec, probe: IdentityProbe) -> None:
        self.spec = spec
        self.probe = probe


def _error(target: AuditTarget, account: str | None, stage: str, outcome: str, message: str | None) -> AuditError:
    return AuditError(account or target.account, target.region, stage, outcome, message or outcome)


def audit_region(target: AuditTarget, options: AuditOptions, *, runtime: AwsRuntime | None = None,
                 cache: AccountCache | None = None) -> Iterator[AuditItem]:
    """Every key of ``target``'s account in its Region, streamed one by one (see the module's doc).

    ``cache``: the per-account reads to share with other Regions of the same accounts, and the AWS runtime they
    use (default: this call's, on ``runtime`` when given, closed when the stream ends)."""
    own = cache is None
    cache = cache if cache is not None else AccountCache(runtime)
    groups = ProcessGroups()
    try:
        yield from _audit_region(target, options, cache, groups)
    finally:
        groups.kill_all()
        if own and runtime is None:
            cache.runtime.close()


def _audit_region(target: AuditTarget, options: AuditOptions, cache: AccountCache, groups: ProcessGroups
                  ) -> Iterator[AuditItem]:
    region = target.region
    settings = _settings(options, groups, cache.runtime)
    specs = [target.identity, *target.identities]
    runs = [_connect(spec, settings, region, cache) for spec in specs]
    first = runs[0]
    if not first.probe.usable:
        last = first.probe.calls[-1] if first.probe.calls else None
        stage = "assume_role" if last is not None and last.operation == "sts:AssumeRole" else "credentials"
        yield _error(target, None, stage, first.probe.status,
                     (last.message if last else None) or first.probe.hint)
        return
    account = target.account or first.probe.account
    assert account is not None
    if first.probe.account != account:
        yield _error(target, account, "credentials", "wrong_account",
                     f"{first.spec.name} is in account {first.probe.account}, not {account}")
        return
    usable = [r for r in runs if r.probe.usable and r.probe.account == account]
    organization = _organization(usable, account, cache) if options.organization else None
    listing = CallLog(options.redactor, region)
    kms = first.client("kms")
    ids, rec, _pages = list_key_ids(kms, listing)
    if ids is None:
        yield _error(target, account, "list_keys", rec.outcome, rec.message)
        return
    aliases, rec, _ = list_aliases(kms, listing)
    if aliases is None:  # the keys are still audited; their aliases are not known
        yield _error(target, account, "list_aliases", rec.outcome, rec.message)
        aliases = {}
    if not options.include_aws_managed:
        ids = customer_managed(ids, aliases)
    options.progress(ProgressEvent("plan", total=len(ids), message=f"{account} {region}"))
    partition = partition_for_region(region).id if is_region_code(region) else DEFAULT_PARTITION

    def one(key_id: str) -> KeyAuditOrNone:
        arn = f"arn:{partition}:kms:{region}:{account}:key/{key_id}"
        return _audit_key(arn, usable, aliases.get(key_id, []), organization, options, cache)

    workers = max(1, options.workers)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="kms-rescue-audit") as pool:
        window: list[Future[KeyAuditOrNone]] = []
        pending = iter(ids)
        for key_id in pending:
            window.append(pool.submit(one, key_id))
            if len(window) >= workers * 2:
                break
        try:
            while window:
                done = window.pop(0).result()
                nxt = next(pending, None)
                if nxt is not None:
                    window.append(pool.submit(one, nxt))
                options.progress(ProgressEvent("step", message=region))
                if done is not None:
                    yield done
        finally:  # stopped early (Ctrl-C, or the caller closed the stream): keys not begun are not read
            for future in window:
                future.cancel()


KeyAuditOrNone = Any  # KeyAudit, or None for an AWS managed key skipped (found by DescribeKey)


def _audit_key(arn: str, runs: list[IdentityRun], aliases: list[str], organization: OrganizationGuardrails | None,
               options: AuditOptions, cache: AccountCache) -> KeyAuditOrNone:
    region = arn.split(":")[3]
    probes: list[_Seen] = []
    requests = 0
    document = None
    checks: dict[str, PrincipalCheck] = {}
    for run in runs:
        log = CallLog(options.redactor, region)
        read: KeyRead = read_key(run.client("kms"), arn, log)
        probe = copy.copy(run.probe)
        probe.calls = [*run.probe.calls, *log.calls]
        probe.key_metadata = read.metadata
        probe.key_arn = arn
        probe.aliases = list(aliases)
        probe.key_policy = read.policy
        probe.key_policy_text = read.policy_text
        probe.grants = None
        requests += len(log.calls)
        if document is None and read.policy is not None:
            document = read.policy
            checks_log = CallLog(options.redactor, region)
            checks = _checks(document, run, checks_log, cache)
            requests += len(checks_log.calls)
        probes.append(_Seen(run.spec, probe))
        meta = read.metadata or {}
        if meta.get("KeyManager") == "AWS" and not options.include_aws_managed:
            return None
    facts = key_facts(parse_key_ref(arn), probes)  # type: ignore[arg-type]
    inv = Investigation(key=facts, identities=[p.probe for p in probes],
                        history=HistoryLookup(False, region, message="not read by the audit"),
                        principal_checks=checks, organization=organization)
    now = options.now or _dt.datetime.now(_dt.timezone.utc)
    report = decide(inv, now)
    if grants_would_matter(inv, report):
        # The one case where report's kms:ListGrants changes a decision: list them (the reader first), then decide
        # again with that call among the observations, as report would.
        order = sorted(zip(runs, probes, strict=True), key=lambda rp: rp[1].probe.key_policy is None)
        for run, seen in order:
            log = CallLog(options.redactor, region)
            grants = list_grants(run.client("kms"), arn, log)
            seen.probe.calls = [*seen.probe.calls, *log.calls]
            requests += len(log.calls)
            if grants is not None:
                seen.probe.grants = grants
                break
        report = decide(inv, now)
    return audit_key(inv, if_deleted=options.if_deleted, now=now, requests=requests, report=report)


def enabled_regions(identity: IdentitySpec, options: AuditOptions, cache: AccountCache | None = None
                    ) -> list[str] | AuditError:
    """The Regions to audit when none are named: the account's enabled Regions (ec2:DescribeRegions), else every
    Region of the partition (see :func:`kms_rescue.aws.locate.enabled_regions`). The identity connects in the
    Region the AWS CLI would use for it (default us-east-1); the connection is kept in ``cache``."""
    cache = cache or AccountCache()
    home = choose_region(None, profiles=[identity.profile] if identity.profile else [],
                         environ=options.environ).region or "us-east-1"
    groups = ProcessGroups()
    try:
        run = _connect(identity, _settings(options, groups, cache.runtime), home, cache)
        if not run.probe.usable:
            last = run.probe.calls[-1] if run.probe.calls else None
            return AuditError(None, None, "credentials", run.probe.status,
                              (last.message if last else None) or run.probe.hint or run.probe.status)
        regions, _source = locate_regions(run)
        return regions
    finally:
        groups.kill_all()
