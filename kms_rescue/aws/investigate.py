"""The whole investigation behind ``kms-rescue report``: probe every identity, read the key's history, check that
the principals the policy names exist. Returns plain data (:class:`~kms_rescue.aws.results.Investigation`);
:func:`kms_rescue.report.build_report` turns it into the verdict.

>>> from kms_rescue.aws.investigate import investigate, InvestigateOptions   # doctest: +SKIP
>>> from kms_rescue.report import build_report                               # doctest: +SKIP
>>> report = build_report(investigate("arn:aws:kms:us-east-1:111122223333:key/…", InvestigateOptions()))
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from kms_rescue.aws import guardrails as guardrail_reads
from kms_rescue.aws import iam as iam_reads
from kms_rescue.aws.credential_process import ProcessGroups
from kms_rescue.aws.history import LOOKUP_RATE, TokenBucket, lookup_key_events
from kms_rescue.aws.keyref import KeyRef, parse_key_ref
from kms_rescue.aws.known_secrets import known_credentials
from kms_rescue.aws.locate import locate_elsewhere, not_found_everywhere
from kms_rescue.aws.probe import DEADLINE_CODE, IdentityRun, ProbeSettings, probe_identities, utc_now
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
    opts.redactor.add(*known_credentials(opts.environ))
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
    runs: list[IdentityRun] = []
    settings.on_runs = runs.extend
    partial: dict[str, Any] = {}
    box: dict[str, Any] = {}

    def work() -> None:
        try:
            box["result"] = _investigate(ref, opts, specs, settings, progress, started, partial)
        except BaseException as exc:  # handed to the caller below
            box["exc"] = exc

    try:
        if opts.deadline is None:
            work()
        else:
            worker = threading.Thread(target=work, name="kms-rescue-investigation", daemon=True)
            worker.start()
            worker.join(max(0.0, opts.deadline - (time.monotonic() - begun)))
            if worker.is_alive():
                settings.expired.set()
                runtime.abandoned = True
                return _expired(ref, opts, specs, runs, partial, started, opts.deadline)
        if "exc" in box:
            raise box["exc"]
        result: Investigation = box["result"]
        return result
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


def _investigate(ref: KeyRef, opts: InvestigateOptions, specs: Sequence[IdentitySpec], settings: ProbeSettings,
                 progress: Progress, started: str, partial: dict[str, Any]) -> Investigation:
    bucket = opts.bucket or TokenBucket(opts.lookup_rate, capacity=1.0)
    # With a key ARN the key's account is known before any call: the history lookup starts as soon as the first
    # identity of that account has working credentials, alongside the other probes.
    early: list[IdentityRun] = []  # tried, in the order they connected
    connected: list[IdentityRun] = []
    settled: set[int] = set()
    changed = threading.Condition()
    probes_done = threading.Event()
    if (opts.history or opts.organization) and ref.key_arn:
        def on_connected(run: IdentityRun) -> None:
            if run.probe.account == ref.account:
                with changed:
                    connected.append(run)
                    changed.notify_all()

        def on_settled(run: IdentityRun) -> None:
            with changed:
                settled.add(id(run))
                changed.notify_all()

        settings.on_connected = on_connected
        settings.on_settled = on_settled

    def early_history() -> HistoryLookup | None:
        """Try identities of the key's account as they connect, until one may read CloudTrail.

        A denied attempt costs more than its round trip (the next one waits for CloudTrail's rate), so when there
        is a choice the pick is an informed one: an identity whose own policies allow LookupEvents, as soon as one
        is known; otherwise, once every identity has settled (its own policies read or not readable, or its probe
        over) or ``HISTORY_PATIENCE`` has passed, the best of the rest (see :func:`_history_order`). With a single
        identity there is nothing to choose and it goes as soon as it connects."""
        result: HistoryLookup | None = None
        requests = 0
        while True:
            if early:
                bucket.wait()
            with changed:
                def untried() -> list[IdentityRun]:
                    tried = {id(r) for r in early}
                    return [r for r in connected if id(r) not in tried]

                def ready() -> bool:
                    if probes_done.is_set():
                        return True
                    waiting = untried()
                    if not waiting:
                        return False
                    return (len(specs) == 1 or len(settled) >= len(specs)
                            or any(may_lookup_events(r) is True for r in waiting))

                changed.wait_for(lambda: bool(untried()) or probes_done.is_set())
                changed.wait_for(ready, timeout=HISTORY_PATIENCE)
                pick = _history_order(untried())
                if not pick:
                    break
                run = pick[0]
                early.append(run)
            result = read_history(key_facts(ref, []), [run], bucket)
            requests += result.requests
            if result.outcome == "ok":
                break
        if result is not None and result.requests != requests:
            result = HistoryLookup(result.attempted, result.region, result.events, result.read_by, result.outcome,
                                   result.error_code, result.message, requests, result.truncated)
        return result

    def early_organization() -> OrganizationGuardrails | dict[str, Any] | None:
        """DescribeOrganization as soon as the identity to ask is known (see :func:`_org_rank`): the root user or
        one whose policies allow it, as soon as one of the key's account has connected; otherwise the best of those
        connected once every identity has settled (a single one too: a call its policies refuse is not spent),
        ``HISTORY_PATIENCE`` has passed, or the probes are over."""
        with changed:
            def ready() -> bool:
                if probes_done.is_set():
                    return True
                return bool(connected) and (len(settled) >= len(specs) or any(_org_rank(r) <= 1 for r in connected))

            changed.wait_for(lambda: bool(connected) or probes_done.is_set())
            changed.wait_for(ready, timeout=HISTORY_PATIENCE)
            candidates = list(connected)
        if not candidates:
            return None  # nobody of the key's account connected: asked again (and settled) after the probes
        return guardrail_reads.ask_organization(_org_askers(candidates), ref.account)

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="kms-rescue-history") as pool, \
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="kms-rescue-org") as pool_org:
        early_result = pool.submit(early_history) if settings.on_connected and opts.history else None
        early_org = pool_org.submit(early_organization) if settings.on_connected and opts.organization else None
        try:
            probes, resolved, runs = probe_identities(specs, ref, settings)
        finally:
            with changed:
                probes_done.set()
                changed.notify_all()
        facts = key_facts(resolved, runs)
        partial["facts"] = facts
        # The organization's SCPs and RCPs, beside the IAM fill and the history (one call when there is none, made
        # during the probes when the key's account was known from its ARN).
        organization = pool_org.submit(
            lambda: read_organization_guardrails(runs, facts.account, early_org.result() if early_org else None)
        ) if opts.organization else None
        warnings: list[str] = []
        location = None
        if not_found_everywhere(resolved, runs):
            # Not found is not denied: look for it in the account's other Regions before anything else.
            location = locate_elsewhere(resolved, runs)
        elif facts.arn is None:
            warnings.append(f"no identity could resolve {ref.raw} to a key ARN in {ref.region}")

        # The IAM reads left for identities that could not read their own policies, side by side with the rest of
        # the history lookup (paced at CloudTrail's rate).
        live_policy = next((r.probe.key_policy for r in runs if r.probe.key_policy is not None), None)

        def fill() -> None:
            fill_identity_policies(runs, facts, opts.max_workers)
            if live_policy is not None:  # then the boundaries that matter, still beside the history lookup
                fill_boundaries(runs, facts, live_policy, opts.max_workers)

        filled = pool.submit(fill)
        history = (early_result.result() if early_result else None) or HistoryLookup(False, ref.region)
        if opts.history and facts.arn and history.outcome != "ok":
            tried = {id(r) for r in early}
            later = read_history(
                facts, _history_order([r for r in _candidates(runs, facts.account) if id(r) not in tried]), bucket
            )
            if later.attempted or not history.attempted:
                history = HistoryLookup(
                    later.attempted or history.attempted, later.region, later.events, later.read_by,
                    later.outcome or history.outcome, later.error_code or history.error_code,
                    later.message or history.message, later.requests + history.requests, later.truncated,
                )
        filled.result()
        org_guardrails = organization.result() if organization is not None else None
    partial["history"] = history
    progress(ProgressEvent("step", message="history", outcome=history.outcome))
    if live_policy is None:
        recorded = next((e.policy for e in reversed(history.events) if e.succeeded and e.policy is not None
                         and e.name in ("CreateKey", "PutKeyPolicy")), None)
        if recorded is not None:
            fill_boundaries(runs, facts, recorded, opts.max_workers)
    fill_role_arns(runs, facts, _documents(probes, history), opts.max_workers)

    checks = check_principals(facts, runs, history)
    progress(ProgressEvent("step", message="principals"))
    return Investigation(
        key=facts, identities=probes, history=history, principal_checks=checks, started_at=started,
        finished_at=utc_now(), warnings=warnings, trail_bucket=opts.trail_bucket, location=location,
        organization=org_guardrails,
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
    with ThreadPoolExecutor(max_workers=max(1, min(max_workers, len(pending))),
                            thread_name_prefix="kms-rescue-iam") as pool:
        list(pool.map(lambda run: run.read_policies_through(readers), pending))


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

    with ThreadPoolExecutor(max_workers=max(1, min(max_workers, len(pending))),
                            thread_name_prefix="kms-rescue-iam") as pool:
        list(pool.map(fill, pending))


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

    with ThreadPoolExecutor(max_workers=max(1, min(max_workers, len(pending))),
                            thread_name_prefix="kms-rescue-iam") as pool:
        list(pool.map(fill, pending))


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

    with ThreadPoolExecutor(max_workers=min(8, len(to_check)), thread_name_prefix="kms-rescue-iam") as pool:
        results = list(pool.map(check, [p.value for p in to_check]))
    return {r.arn: r for r in results}
