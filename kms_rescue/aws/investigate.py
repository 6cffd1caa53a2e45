"""The whole investigation behind ``kms-rescue report``: probe every identity, read the key's history, check that
the principals the policy names exist. Returns plain data (:class:`~kms_rescue.aws.results.Investigation`);
:func:`kms_rescue.report.build_report` turns it into the verdict.

>>> from kms_rescue.aws.investigate import investigate, InvestigateOptions   # doctest: +SKIP
>>> from kms_rescue.report import build_report                               # doctest: +SKIP
>>> report = build_report(investigate("arn:aws:kms:us-east-1:111122223333:key/…", InvestigateOptions()))
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from typing import Any, TypeVar

from kms_rescue.aws import guardrails as guardrail_reads
from kms_rescue.aws import iam as iam_reads
from kms_rescue.aws.credential_process import ProcessGroups
from kms_rescue.aws.history import LOOKUP_RATE, TokenBucket, lookup_key_events
from kms_rescue.aws.keyref import KeyRef, parse_key_ref
from kms_rescue.aws.known_secrets import known_credentials
from kms_rescue.aws.locate import locate_elsewhere, not_found_everywhere
from kms_rescue.aws.probe import (
    DEADLINE_CODE,
    DeadlinePassed,
    IdentityRun,
    ProbeSettings,
    await_all,
    await_probes,
    connect,
    read_keys,
    read_own_policies,
    resolve_key,
    start_runs,
    utc_now,
)
from kms_rescue.aws.redact import Redactor
from kms_rescue.aws.results import (
    CallResult,
    HistoryLookup,
    IdentityProbe,
    IdentitySpec,
    Investigation,
    KeyFacts,
    OrganizationGuardrails,
    PermissionsBoundary,
    PrincipalCheck,
    Progress,
    ProgressEvent,
    no_progress,
)
from kms_rescue.aws.runtime import AwsRuntime
from kms_rescue.aws.sessions import SessionOptions, discover_identities
from kms_rescue.policy import evaluate
from kms_rescue.policy.errors import PolicyInputError
from kms_rescue.policy.named import policy_principals

#: The overall deadline of an investigation by default (seconds): ``report --deadline``.
DEFAULT_DEADLINE = 60.0

@dataclass
class InvestigateOptions:
    """Options of an investigation (the ``report`` command's flags)."""

    region: str | None = None
    profiles: Sequence[str] = ()
    role_arns: Sequence[str] = ()
    base_profile: str | None = None
    role_session_name: str | None = None
    timeout: float = 10.0
    max_attempts: int = 4
    #: Seconds for the whole investigation (None: no overall deadline); see :func:`investigate`.
    deadline: float | None = DEFAULT_DEADLINE
    history: bool = True
    organization: bool = True  # read the SCPs and RCPs of the key's account (docs/report.md)
    trail_bucket: str | None = None
    lookup_rate: float = LOOKUP_RATE
    max_workers: int = 16
    mfa_prompter: Callable[[str], str] | None = None
    write_cli_cache: bool = False
    environ: Mapping[str, str] | None = None
    # Test seams (botocore Stubber): see ProbeSettings.
    open_session: Callable[[IdentitySpec], Any] | None = None
    client_factory: Callable[[Any, str, str], Any] | None = None
    parallel_calls: bool = True  # see ProbeSettings.parallel_calls
    bucket: TokenBucket | None = None
    redactor: Redactor = field(default_factory=Redactor)


def investigate(
    key: str | KeyRef,
    options: InvestigateOptions | None = None,
    *,
    identities: Sequence[IdentitySpec] | None = None,
    progress: Progress = no_progress,
    runtime: AwsRuntime | None = None,
) -> Investigation:
    """Investigate ``key`` (an ARN, key id, alias name or alias ARN; see :mod:`kms_rescue.aws.keyref`) with every
    identity (``identities``, or those discovered from the AWS config and environment).

    Within ``options.deadline`` seconds: when it passes, the identities whose probe has not ended are classified
    ``timeout`` (with what they saw so far), calls not yet made are not made, and the investigation returns what it
    has (and ``runtime.abandoned`` is set when calls were left in flight). Every ``credential_process`` it started
    is killed, with its process group, before it returns.

    ``runtime`` holds the sessions, clients and thread pool (:class:`~kms_rescue.aws.runtime.AwsRuntime`): the
    caller's, or a fresh one closed before returning."""
    if runtime is None:
        with AwsRuntime() as fresh:
            return investigate(key, options, identities=identities, progress=progress, runtime=fresh)
    begun = time.monotonic()  # the deadline counts from here: discovery and warm-up are part of it
    opts = options or InvestigateOptions()
    ref = key if isinstance(key, KeyRef) else parse_key_ref(key, opts.region)
    specs = list(identities) if identities is not None else discover_identities(
        opts.profiles, opts.role_arns, opts.base_profile, role_session_name=opts.role_session_name,
        environ=opts.environ, runtime=runtime,
    )
    # Every credential the configuration holds is scrubbed from every message, not only those resolved here.
    opts.redactor.add(*known_credentials(opts.environ, runtime=runtime))
    started = utc_now()
    progress(ProgressEvent("plan", total=len(specs) + 2, message=f"probing {len(specs)} identities"))
    groups = ProcessGroups()
    settings = ProbeSettings(
        options=SessionOptions(timeout=opts.timeout, max_attempts=opts.max_attempts,
                               mfa_prompter=opts.mfa_prompter, write_cli_cache=opts.write_cli_cache,
                               process_groups=groups),
        runtime=runtime,
        redactor=opts.redactor,
        progress=progress,
        environ=opts.environ,
        max_workers=opts.max_workers,
        open_session=opts.open_session,
        client_factory=opts.client_factory,
        parallel_calls=opts.parallel_calls,
    )
    until = None if opts.deadline is None else begun + opts.deadline
    runs = start_runs(specs, settings, ref.region)
    partial: dict[str, Any] = {}
    try:
        return _stages(ref, opts, runtime, runs, started, partial, until)
    except DeadlinePassed:
        settings.expired.set()  # calls not yet made are not made
        runtime.abandoned = True  # calls in flight end on their own timeouts: nobody waits for them
        assert opts.deadline is not None
        return _expired(ref, opts, specs, runs, partial, started, opts.deadline)
    finally:
        groups.kill_all()


def _expired(ref: KeyRef, opts: InvestigateOptions, specs: Sequence[IdentitySpec], runs: Sequence[IdentityRun],
             partial: Mapping[str, Any], started: str, deadline: float) -> Investigation:
    """The investigation as far as it got when the overall deadline passed."""
    if runs:
        probes = [run.snapshot(deadline) for run in runs]
    else:  # not even started (discovery and warm-up took the time)
        probes = [IdentityProbe(spec=spec, status="timeout",
                                hint=f"the overall deadline ({deadline:g} s) passed before its probe began (see "
                                     "--deadline)",
                                calls=[CallResult("deadline", "timeout", DEADLINE_CODE,
                                                  f"the overall deadline of {deadline:g} s passed", 0, utc_now())])
                  for spec in specs]
    facts = partial.get("facts") or key_facts(ref, runs)
    history = partial.get("history")
    if history is None:
        history = (HistoryLookup(True, facts.region or ref.region, outcome="timeout", error_code=DEADLINE_CODE,
                                 message=f"not finished when the overall deadline of {deadline:g} s passed")
                   if opts.history else HistoryLookup(False, ref.region))
    warnings = [f"the overall deadline of {deadline:g} s passed: identities still being probed are classified "
                "timeout, and the verdict rests on what was seen until then (see --deadline)"]
    if facts.arn is None:
        warnings.append(f"no identity could resolve {ref.raw} to a key ARN in {ref.region}")
    return Investigation(
        key=facts, identities=probes, history=history, principal_checks=dict(partial.get("checks") or {}),
        started_at=started, finished_at=utc_now(), warnings=warnings, trail_bucket=opts.trail_bucket,
    )


def _stages(ref: KeyRef, opts: InvestigateOptions, runtime: AwsRuntime, runs: list[IdentityRun], started: str,
            partial: dict[str, Any], until: float | None) -> Investigation:
    """The investigation's stages, in order: connect, key reads beside own policies (with the history lookup and
    DescribeOrganization started as soon as whom to ask is known), shared reads, history, principals. Every wait is
    bounded by ``until`` (:class:`DeadlinePassed`); ``partial`` gets what is known as it is known."""
    bucket = opts.bucket or TokenBucket(opts.lookup_rate, capacity=1.0)
    # 1. connect
    connected = connect(runs, until)
    resolved = resolve_key(runs, ref, until)
    # 2 and 3. key reads beside own policies
    read_keys(runs, resolved)
    own = read_own_policies(runs)
    # With a key ARN the key's account is known before any call: the history lookup and DescribeOrganization
    # start as soon as it is known whom to ask, while the key reads and policy reads go on.
    early_history: Future[HistoryLookup] | None = None
    early_org: Future[Any] | None = None
    if ref.key_arn:
        account_runs = [r for r in connected if r.probe.account == ref.account]
        if opts.history and account_runs:
            _await_choice(lambda: len(runs) == 1 or any(may_lookup_events(r) is True for r in account_runs),
                          list(own.values()), until)
            early_history = runtime.submit(read_history, key_facts(ref, []), _history_order(account_runs), bucket)
        if opts.organization and account_runs:
            _await_choice(lambda: any(_org_rank(r) <= 1 for r in account_runs), list(own.values()), until)
            early_org = runtime.submit(guardrail_reads.ask_organization, _org_askers(account_runs), ref.account)
    await_probes(runs, until)
    probes = [r.probe for r in runs]
    facts = key_facts(resolved, runs)
    partial["facts"] = facts

    # 4. shared reads: the organization's SCPs and RCPs, the IAM reads left for identities that could not read
    # their own policies and the boundaries that matter (beside the rest of the history lookup)
    organization = runtime.submit(
        lambda: read_organization_guardrails(runs, facts.account, early_org.result() if early_org else None)
    ) if opts.organization else None
    warnings: list[str] = []
    location = None
    if not_found_everywhere(resolved, runs):
        # Not found is not denied: look for it in the account's other Regions before anything else.
        location = _result(runtime.submit(locate_elsewhere, resolved, runs), until)
    elif facts.arn is None:
        warnings.append(f"no identity could resolve {ref.raw} to a key ARN in {ref.region}")
    live_policy = next((r.probe.key_policy for r in runs if r.probe.key_policy is not None), None)
    filled = runtime.submit(_fill_policies_and_boundaries, runs, facts, live_policy, opts.max_workers)

    # 5. history
    history = _history(facts, runs, opts, bucket, _result(early_history, until), until)
    partial["history"] = history
    _result(filled, until)
    org_guardrails = _result(organization, until)
    progress = runs[0].settings.progress if runs else no_progress
    progress(ProgressEvent("step", message="history", outcome=history.outcome))

    # 6. what the history and the policies read so far call for: boundaries under a recorded policy, role paths,
    # the existence of the principals the policy names
    recorded = None if live_policy is not None else next(
        (e.policy for e in reversed(history.events) if e.succeeded and e.policy is not None
         and e.name in ("CreateKey", "PutKeyPolicy")), None)
    if recorded is not None:
        _result(runtime.submit(fill_boundaries, runs, facts, recorded, opts.max_workers), until)
    _result(runtime.submit(fill_role_arns, runs, facts, _documents(probes, history), opts.max_workers), until)
    checks = _result(runtime.submit(check_principals, facts, runs, history), until) or {}
    partial["checks"] = checks
    progress(ProgressEvent("step", message="principals"))
    return Investigation(
        key=facts, identities=probes, history=history, principal_checks=checks, started_at=started,
        finished_at=utc_now(), warnings=warnings, trail_bucket=opts.trail_bucket, location=location,
        organization=org_guardrails,
    )


T = TypeVar("T")


def _result(future: Future[T] | None, until: float | None) -> T | None:
    """``future``'s result (None for no future), awaited until ``until`` at the latest."""
    if future is None:
        return None
    await_all([future], until)
    return future.result()


def _await_choice(ready: Callable[[], bool], settling: Sequence[Future[Any]], until: float | None) -> None:
    """Wait until ``ready()`` (re-asked each time one of ``settling`` completes), every one of ``settling`` is done,
    or ``HISTORY_PATIENCE`` has passed: the moment to choose whom to ask."""
    patience = time.monotonic() + HISTORY_PATIENCE
    pending = {f for f in settling if not f.done()}
    while pending and not ready():
        stop = patience if until is None else min(patience, until)
        left = stop - time.monotonic()
        if left <= 0:
            if until is not None and until <= patience:
                raise DeadlinePassed()
            return
        _done, pending = wait(pending, timeout=left, return_when=FIRST_COMPLETED)


def _fill_policies_and_boundaries(runs: Sequence[IdentityRun], facts: KeyFacts, live_policy: dict[str, Any] | None,
                                  max_workers: int) -> None:
    fill_identity_policies(runs, facts, max_workers)
    if live_policy is not None:  # then the boundaries that matter (they depend on the policies just read)
        fill_boundaries(runs, facts, live_policy, max_workers)


def _history(facts: KeyFacts, runs: Sequence[IdentityRun], opts: InvestigateOptions, bucket: TokenBucket,
             early: HistoryLookup | None, until: float | None) -> HistoryLookup:
    """The history lookup's outcome: the early one when it succeeded, else a try by the identities of the key's
    account it did not ask (its requests counted in)."""
    history = early or HistoryLookup(False, facts.region)
    if not (opts.history and facts.arn and history.outcome != "ok"):
        return history
    tried = {history.read_by} if history.read_by else set()
    tried |= {r.spec.name for r in runs for c in r.probe.calls if c.operation == "cloudtrail:LookupEvents"}
    candidates = _history_order([r for r in _candidates(runs, facts.account) if r.spec.name not in tried])
    later = _result(runs[0].settings.runtime.submit(read_history, facts, candidates, bucket), until) if runs else \
        read_history(facts, candidates, bucket)
    assert later is not None
    if not (later.attempted or not history.attempted):
        return history
    return HistoryLookup(
        later.attempted or history.attempted, later.region, later.events, later.read_by,
        later.outcome or history.outcome, later.error_code or history.error_code,
        later.message or history.message, later.requests + history.requests, later.truncated,
    )


def read_organization_guardrails(
    runs: Sequence[IdentityRun], key_account: str | None,
    described: OrganizationGuardrails | dict[str, Any] | None = None,
) -> OrganizationGuardrails:
    """The SCPs and RCPs of the key's account, asked by the usable identities (one of the key's account for
    DescribeOrganization, unless ``described`` has its answer already; those of the management account for the
    rest)."""
    return guardrail_reads.read_organization(_org_askers(runs), key_account, described)


def _org_askers(runs: Sequence[IdentityRun]) -> list[guardrail_reads.Asker]:
    """The usable identities, those most likely allowed to call Organizations first; none known to be denied."""
    usable = [r for r in runs if r.probe.usable and r.session is not None]
    ranked = sorted(((_org_rank(r), i, r) for i, r in enumerate(usable)), key=lambda t: (t[0], t[1]))
    return [(r.spec.name, r.probe.account, functools.partial(r.client, "organizations"), r.call)
            for rank, _, r in ranked if rank < _DENIED]


_DENIED = 3


def _org_rank(run: IdentityRun) -> int:
    """Who asks Organizations first: the root user (needs no identity policy), then identities whose policies
    allow organizations:DescribeOrganization, then those whose policies are unknown; never one whose policies were
    read and do not allow it (the call would only be refused)."""
    arn = run.probe.arn or ""
    if arn.endswith(":root"):
        return 0
    pols = run.probe.identity_policies
    if pols is None or pols.status == "unknown":
        return 2
    try:
        ev = evaluate(principal=arn, action="organizations:DescribeOrganization", resource="*",
                      identity_policies=[d.document for d in pols.documents])
    except PolicyInputError:
        return 2
    return 1 if ev.allowed else _DENIED


def key_facts(ref: KeyRef, runs: Sequence[IdentityRun]) -> KeyFacts:
    """Merge what the identities learnt about the key."""
    meta: dict[str, Any] | None = None
    resolved_by = None
    for run in runs:
        if run.probe.key_metadata:
            meta = run.probe.key_metadata
            resolved_by = f"{run.spec.name} kms:DescribeKey"
            break
    arn = ref.key_arn
    if meta and meta.get("Arn"):
        arn = meta["Arn"]
    if arn is None:
        for run in runs:
            if run.probe.key_arn:
                arn = run.probe.key_arn
                resolved_by = resolved_by or f"{run.spec.name} ({run.probe.calls[-1].operation})"
                break
    account = key_id = None
    region = ref.region
    if arn:
        parts = arn.split(":")
        region, account, key_id = parts[3], parts[4], parts[5].split("/", 1)[1]
    aliases: list[str] = []
    if ref.alias:
        aliases.append(ref.alias)
    for run in runs:
        aliases.extend(run.probe.aliases)
    meta = meta or {}
    mrc = meta.get("MultiRegionConfiguration") or {}
    window = meta.get("PendingDeletionWindowInDays")
    return KeyFacts(
        input=ref.raw,
        arn=arn,
        key_id=key_id or ref.key_id,
        account=account or ref.account,
        region=region,
        state=meta.get("KeyState"),
        aliases=tuple(dict.fromkeys(aliases)),
        multi_region=meta.get("MultiRegion", (key_id or ref.key_id or "").startswith("mrk-") or None),
        key_manager=meta.get("KeyManager"),
        description=meta.get("Description") or None,
        creation_date=meta.get("CreationDate"),
        deletion_date=meta.get("DeletionDate"),
        resolved_by=resolved_by,
        multi_region_type=mrc.get("MultiRegionKeyType"),
        primary_arn=(mrc.get("PrimaryKey") or {}).get("Arn"),
        origin=meta.get("Origin"),
        custom_key_store_id=meta.get("CustomKeyStoreId"),
        pending_window_days=window if isinstance(window, int) else None,
    )


def _candidates(runs: Sequence[IdentityRun], account: str | None) -> list[IdentityRun]:
    usable = [r for r in runs if r.probe.usable and r.session is not None]
    same = [r for r in usable if r.probe.account == account]
    return same or ([] if account else usable)


#: How long the history lookup waits for the identities' own policies before it picks without them (seconds).
HISTORY_PATIENCE = 2.0


def may_lookup_events(run: IdentityRun) -> bool | None:
    """Whether the identity's own policies allow cloudtrail:LookupEvents (CloudTrail has no resource policy for
    it, so without an identity-policy allow the call is denied); None while they are unread or unreadable."""
    pols = run.probe.identity_policies
    if pols is None or pols.status == "unknown" or not run.probe.arn:
        return None
    if pols.status == "not_needed":
        return True  # the root user
    try:
        decision = evaluate(principal=run.probe.arn, action="cloudtrail:LookupEvents", resource="*",
                            key_policy=None, identity_policies=[d.document for d in pols.documents])
    except PolicyInputError:
        return None
    return decision.decision == "allow"


def _history_order(runs: Sequence[IdentityRun]) -> list[IdentityRun]:
    """Candidates for LookupEvents, best first: those whose policies allow it, then those not known, and last those
    whose policies were read and do not allow it (tried only when nothing better is left: a permission our reading
    cannot see is unlikely, but a history is worth the try)."""
    def rank(ok: bool | None) -> int:
        return 0 if ok is True else (1 if ok is None else 2)

    known = [(rank(may_lookup_events(r)), i, r) for i, r in enumerate(runs)]
    return [r for _, _, r in sorted(known, key=lambda t: (t[0], t[1]))]


def read_history(facts: KeyFacts, candidates: Sequence[IdentityRun], bucket: TokenBucket) -> HistoryLookup:
    """LookupEvents in the key's region by the first of ``candidates`` (identities of the key's account) that is
    allowed to."""
    if not candidates:
        return HistoryLookup(attempted=False, region=facts.region,
                             message="no identity of the key's account had working credentials")
    names = [n for n in (facts.arn, facts.key_id) if n]
    last = None
    requests = 0
    for run in candidates:
        events, failed, made, truncated = lookup_key_events(
            run.client("cloudtrail"), names, run.call, bucket=bucket, key_account=facts.account
        )
        requests += made
        if failed is None:
            return HistoryLookup(True, facts.region, tuple(events), read_by=run.spec.name, outcome="ok",
                                 requests=requests, truncated=truncated)
        last = failed
    assert last is not None
    return HistoryLookup(True, facts.region, (), outcome=last.outcome, error_code=last.error_code,
                         message=last.message, requests=requests)


def fill_identity_policies(runs: Sequence[IdentityRun], facts: KeyFacts, max_workers: int = 16) -> None:
    """An identity that could not read its own IAM policies may have them read by another identity of its
    account that can read IAM (one that read its own). Only identities of the key's account matter (only they
    can manage it); they are read concurrently."""
    readers = [r for r in runs if r.reads_iam()]  # an identity whose policies another read is no reader
    pending = [r for r in runs if r.probe.identity_policies is not None and r.probe.identity_policies.status ==
               "unknown" and r.probe.arn and (facts.account is None or r.probe.account == facts.account)]
    if not readers or not pending:
        return
    _each(pending, lambda run: run.read_policies_through(readers))


def _each(runs: Sequence[IdentityRun], fn: Callable[[Any], T], items: Sequence[Any] | None = None) -> list[T]:
    """``fn`` of each of ``items`` (default: ``runs``), concurrently on the runtime's pool of ``runs``' first."""
    work = list(runs if items is None else items)
    if not work:
        return []
    if not runs:
        return [fn(item) for item in work]
    return list(runs[0].settings.runtime.pool.map(fn, work))


def _documents(probes: Sequence[IdentityProbe], history: HistoryLookup) -> list[dict[str, Any]]:
    """Every policy document the investigation holds: key policies read, policies CloudTrail recorded, identity
    policies read."""
    docs: list[dict[str, Any]] = [p.key_policy for p in probes if p.key_policy]
    docs += [e.policy for e in history.events if e.policy]
    for p in probes:
        if p.identity_policies is not None:
            docs += [d.document for d in p.identity_policies.documents]
    return docs


def fill_boundaries(runs: Sequence[IdentityRun], facts: KeyFacts, key_policy: dict[str, Any],
                    max_workers: int = 16) -> None:
    """Each identity read its own permissions boundary during its probe (beside its identity policies). Where that
    failed, or was not tried, and the boundary can matter, another identity of its account known to read IAM reads
    it: the boundary matters to an identity the key policy and its identity policies (when not read: in the world
    where they allow it) would let call PutKeyPolicy (a boundary only takes permissions away, so it cannot change a
    denial), or to any role session when the policy tests aws:PrincipalArn (the same GetRole gives the role's
    path). The root user has none."""
    for run in runs:
        if run.probe.usable and run.probe.permissions_boundary is None and (run.probe.arn or "").endswith(":root"):
            run.probe.permissions_boundary = PermissionsBoundary(
                "none", read_by=run.spec.name, reason="the root user has no permissions boundary")
    tests_arn = iam_reads.mentions_principal_arn([key_policy])
    pending = [r for r in runs if r.session is not None and r.probe.usable
               and (r.probe.permissions_boundary is None or r.probe.permissions_boundary.status == "unknown")
               and (facts.account is None or r.probe.account == facts.account)
               and _boundary_matters(r, facts, key_policy, tests_arn)]
    if not pending:
        return
    readers = [r for r in runs if r.reads_iam()]

    def fill(run: IdentityRun) -> None:
        assert run.probe.arn is not None
        tried_itself = run.probe.permissions_boundary is not None
        candidates = [r for r in readers if r is not run and r.probe.account == run.probe.account]
        for reader in candidates if tried_itself else [run, *candidates]:
            got, role_arn = guardrail_reads.read_boundary(reader.client("iam"), run.probe.arn, reader.call,
                                                          read_by=reader.spec.name)
            if role_arn and run.probe.role_arn is None:
                run.probe.role_arn = role_arn
            if run.probe.permissions_boundary is None or got.status != "unknown":
                run.probe.permissions_boundary = got
            if got.status != "unknown":
                return

    _each(pending, fill)


def _boundary_matters(run: IdentityRun, facts: KeyFacts, key_policy: dict[str, Any], tests_arn: bool) -> bool:
    arn = run.probe.arn or ""
    if tests_arn and iam_reads.is_role_session(arn):
        return True
    pols = run.probe.identity_policies
    # Identity policies not read: the world where they allow it (the boundary then decides).
    docs = [d.document for d in pols.documents] if pols is not None and pols.status != "unknown" else [
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "kms:PutKeyPolicy", "Resource": "*"}]}]
    context = {"aws:PrincipalArn": run.probe.role_arn} if run.probe.role_arn else None
    try:
        return evaluate(principal=arn, action="kms:PutKeyPolicy", resource=facts.arn or "*", key_policy=key_policy,
                        identity_policies=docs, context=context).allowed
    except PolicyInputError:
        return False


def fill_role_arns(runs: Sequence[IdentityRun], facts: KeyFacts, documents: Sequence[dict[str, Any]],
                   max_workers: int = 16) -> None:
    """A role session's ARN drops its role's path, yet its aws:PrincipalArn is the role's ARN with the path. Only
    when some policy has a condition on aws:PrincipalArn is the path worth a call: iam:GetRole, by the session
    itself, else by an identity of its account known to read IAM (the root user, or one that read its own
    policies)."""
    if not iam_reads.mentions_principal_arn(documents):
        return
    pending = [r for r in runs if r.probe.arn and iam_reads.is_role_session(r.probe.arn) and r.probe.role_arn is None
               and r.session is not None and (facts.account is None or r.probe.account == facts.account)]
    if not pending:
        return

    readers = [r for r in runs if r.reads_iam()]

    def fill(run: IdentityRun) -> None:
        assert run.probe.arn is not None
        for reader in [run, *(r for r in readers if r is not run and r.probe.account == run.probe.account)]:
            got = iam_reads.read_role_arn(reader.client("iam"), run.probe.arn, reader.call)
            if got:
                run.probe.role_arn = got
                return

    _each(pending, fill)


def check_principals(facts: KeyFacts, runs: Sequence[IdentityRun], history: HistoryLookup) -> dict[str, PrincipalCheck]:
    """Existence of the users and roles the policy names where the policy alone cannot tell: a policy from
    CloudTrail, or ARNs in ``aws:PrincipalArn`` conditions. A live GetKeyPolicy's principal ARNs need no check
    (KMS shows deleted principals as unique ids)."""

    live = next((r.probe.key_policy for r in runs if r.probe.key_policy is not None), None)
    document = live
    if document is None:
        for ev in history.events:
            if ev.succeeded and ev.policy is not None and ev.name in ("CreateKey", "PutKeyPolicy"):
                document = ev.policy
    if document is None:
        return {}
    to_check = [p for p in policy_principals(document)
                if p.kind in ("user", "role") and (live is None or p.in_condition)]
    if not to_check:
        return {}
    checkers = _candidates(runs, facts.account)

    def check(value: str) -> PrincipalCheck:
        for run in checkers:
            exists, rec = iam_reads.check_principal(run.client("iam"), value, run.call)
            if rec is None:
                break
            if exists is not None:
                what = "iam:GetRole" if ":role/" in value else "iam:GetUser"
                if exists:
                    evidence = f"{what} by {run.spec.name} found it"
                    if live is None:
                        evidence += (" (if it was deleted and recreated since the policy was written, the key "
                                     "policy still points to the old one)")
                else:
                    evidence = f"{what} by {run.spec.name}: no such entity"
                return PrincipalCheck(value, exists, evidence, checked_by=run.spec.name)
        return PrincipalCheck(value, None, "unknown: no identity could check it with iam:GetRole/GetUser")

    results = _each(runs, check, [p.value for p in to_check])
    return {r.arn: r for r in results}
