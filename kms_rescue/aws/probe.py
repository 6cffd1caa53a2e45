"""Probe every identity, concurrently: credentials, sts:GetCallerIdentity, kms:DescribeKey, kms:GetKeyPolicy,
kms:ListGrants and the identity's own IAM policies. Every call is classified and kept; one identity's failure
never stops another's.

A key ARN is probed in one pass. A key id or alias name is resolved by each caller in its own account, so it is
probed in two: first each identity resolves it (DescribeKey, or ListAliases when DescribeKey is denied), then, once
the key's ARN is known, the remaining calls use the ARN.
"""

from __future__ import annotations

import contextlib
import copy
import datetime as _dt
import functools
import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from typing import Any

from botocore.credentials import ReadOnlyCredentials

from kms_rescue.aws import guardrails as guardrail_reads
from kms_rescue.aws import iam as iam_reads
from kms_rescue.aws.classify import classify_exception, hint_for
from kms_rescue.aws.fanout import fan_out
from kms_rescue.aws.keyref import KeyRef, key_arn_in_text
from kms_rescue.aws.redact import Redactor
from kms_rescue.aws.results import (
    CREDENTIAL_FAILURES,
    CallResult,
    IdentityPolicies,
    IdentityProbe,
    IdentitySpec,
    Progress,
    ProgressEvent,
    no_progress,
)
from kms_rescue.aws.runtime import AwsRuntime
from kms_rescue.aws.sessions import SESSION_NAME, SessionOptions, create_client, open_session
from kms_rescue.errors import UsageError
from kms_rescue.policy.partitions import DEFAULT_PARTITION, is_region_code, partition_for_region

#: The error code of calls cut short by the overall deadline.
DEADLINE_CODE = "DeadlineExceeded"

#: Upper bound on identities probed at once (each uses a few connections; the CLI is I/O bound).
MAX_WORKERS = 16

SessionOpener = Callable[[IdentitySpec], Any]
ClientFactory = Callable[[Any, str, str], Any]  # (session, service, region) -> client


def utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def json_safe(value: Any) -> Any:
    """botocore responses hold datetimes; reports hold JSON."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items() if k != "ResponseMetadata"}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, _dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=_dt.timezone.utc)
        return value.astimezone(_dt.timezone.utc).isoformat().replace("+00:00", "Z")
    if isinstance(value, bytes):
        return None
    return value


@dataclass
class ProbeSettings:
    """What every identity's probe shares. ``open_session`` and ``client_factory`` are seams for tests (a
    botocore Stubber behind ``client_factory``)."""

    options: SessionOptions = field(default_factory=SessionOptions)
    #: Sessions, clients and the thread pool (the investigation's: see :class:`~kms_rescue.aws.runtime.AwsRuntime`).
    runtime: AwsRuntime = field(default_factory=AwsRuntime)
    redactor: Redactor = field(default_factory=Redactor)
    progress: Progress = no_progress
    environ: Mapping[str, str] | None = None
    max_workers: int = MAX_WORKERS
    read_identity_policies: bool = True
    #: Overlap an identity's independent calls (its KMS reads; its IAM reads). Off for botocore's Stubber, which
    #: answers in the order responses were queued.
    parallel_calls: bool = True
    open_session: SessionOpener | None = None
    client_factory: ClientFactory | None = None
    #: Group and managed policy reads, shared by the identities of this probe (and the fills after it).
    shared_reads: iam_reads.SharedReads = field(default_factory=iam_reads.SharedReads)
    #: Set when the overall deadline has passed: calls not yet made are recorded as ``timeout`` without being made.
    expired: threading.Event = field(default_factory=threading.Event)


class ReaderBoard:
    """Identities that can read IAM can read the policies of identities of their account that could not read their
    own. The board lets a run that failed wait (inside the probe, so the read overlaps the other probes) for such a
    reader. An identity is offered as a reader as soon as one of its own IAM reads succeeds (it need not finish
    first); a reader that turns out unable to read another's policies is simply passed over for the next one."""

    def __init__(self, runs: int) -> None:
        self._cv = threading.Condition()
        self._pending = runs
        self._done: set[int] = set()
        self.readers: list[IdentityRun] = []

    def _add(self, run: IdentityRun) -> None:  # with the lock held
        if run.session is not None and all(r is not run for r in self.readers):
            self.readers.append(run)

    def offer(self, run: IdentityRun) -> None:
        with self._cv:
            self._add(run)
            self._cv.notify_all()

    def done(self, run: IdentityRun) -> None:
        with self._cv:
            if id(run) in self._done:
                return
            self._done.add(id(run))
            self._pending -= 1
            if run.reads_iam():
                self._add(run)
            self._cv.notify_all()

    def wait_for_reader(self, run: IdentityRun, timeout: float, tried: set[int] | None = None) -> list[IdentityRun]:
        """Readers of ``run``'s account not in ``tried``, once there is one (or every run has finished, or
        ``timeout`` passed: then possibly none)."""
        skip = tried or set()

        def fresh() -> list[IdentityRun]:
            return [r for r in self.readers
                    if r is not run and id(r) not in skip and r.probe.account == run.probe.account]

        with self._cv:
            self._cv.wait_for(lambda: bool(fresh()) or self._pending <= 0, timeout)
            return fresh()


class IdentityRun:
    """One identity's probe: its session, its clients and its :class:`IdentityProbe`."""

    def __init__(self, spec: IdentitySpec, settings: ProbeSettings, region: str) -> None:
        self.spec = spec
        self.settings = settings
        self.region = region
        #: The Region's partition (botocore's partition data), for the ARNs this run builds.
        self.partition = partition_for_region(region).id if is_region_code(region) else DEFAULT_PARTITION
        self.probe = IdentityProbe(spec=spec)
        self.session: Any = None
        #: An assumed role's credentials, used in place of the (base identity's) session's own.
        self.credentials: ReadOnlyCredentials | None = None
        self._stub_clients: dict[tuple[str, str], Any] = {}  # the clients of ``settings.client_factory``
        self._lock = threading.Lock()
        self.connected = False
        self.stopped = False  # credentials unusable: make no further calls
        #: The futures of this identity's stages (connect, key reads, own policies), in the order submitted: its
        #: probe has ended when all are done (the overall deadline classifies unfinished ones ``timeout``).
        self.tasks: list[Future[Any]] = []
        #: Where an identity that cannot read its own policies finds one that can (see :func:`read_own_policies`).
        self.board: ReaderBoard | None = None

    @property
    def finished(self) -> bool:
        return bool(self.tasks) and all(t.done() for t in self.tasks)

    # -- plumbing ---------------------------------------------------------------------------------------------

    def client(self, service: str, region: str | None = None) -> Any:
        """This identity's client for ``service`` in ``region`` (default: the probe's), built once (the runtime
        keeps it; clients are thread-safe)."""
        where = region or self.region
        if self.settings.client_factory is None:
            return create_client(self.session, service, where, self.settings.options, runtime=self.settings.runtime,
                                 credentials=self.credentials)
        with self._lock:
            found = self._stub_clients.get((service, where))
            if found is None:
                found = self._stub_clients[(service, where)] = self.settings.client_factory(self.session, service,
                                                                                            where)
            return found

    def prepare_clients(self, services: Sequence[str]) -> Future[None]:
        """Create these clients (and load their paginator models) on the runtime's pool while a request is in
        flight: CPU work that would otherwise wait for that request's answer. A failure here is left for the real
        use to meet and record."""
        def work() -> None:
            for service in services:
                with contextlib.suppress(Exception):
                    self.client(service).can_paginate("list")  # and the service's paginator models

        return self.settings.runtime.submit(work)

    def reads_iam(self) -> bool:
        """Known to read IAM: it read its own policies (not through another identity), or it is the root user."""
        pols = self.probe.identity_policies
        return (self.session is not None and pols is not None
                and (pols.status == "not_needed" or (pols.status == "read" and pols.read_by == self.spec.name)))

    def read_policies_through(self, readers: Sequence[IdentityRun], tried: set[int] | None = None) -> bool:
        """This identity's policies as read by the first of ``readers`` of its account (itself and any in ``tried``
        excepted) that can read them. Returns whether one did."""
        assert self.probe.arn is not None
        for reader in readers:
            if reader is self or reader.probe.account != self.probe.account or id(reader) in (tried or ()):
                continue
            if tried is not None:
                tried.add(id(reader))
            got = iam_reads.read_identity_policies(reader.client("iam"), self.probe.arn, reader.call,
                                                   read_by=reader.spec.name, parallel=self.settings.parallel_calls,
                                                   shared=self.settings.shared_reads)
            if got.status == "read":
                self.probe.identity_policies = got
                return True
        return False

    def record(self, call: CallResult) -> None:
        with self._lock:
            self.probe.calls.append(call)
        self.settings.progress(ProgressEvent("call", identity=self.spec.name, operation=call.operation,
                                             outcome=call.outcome))

    def call(self, operation: str, target: str | None, thunk: Callable[[], Any]) -> tuple[Any, CallResult]:
        """Run one AWS call; return (result or None, its record)."""
        at = utc_now()
        start = time.monotonic()
        if self.settings.expired.is_set():
            rec = CallResult(operation, "timeout", DEADLINE_CODE, "not made: the overall deadline had passed", 0, at,
                             target)
            self.record(rec)
            return None, rec
        try:
            result = thunk()
        except Exception as exc:  # every failure is data, never an exception out of aws/
            c = classify_exception(exc, redactor=self.settings.redactor, request_region=self.region)
            rec = CallResult(operation, c.outcome, c.error_code, c.message,
                             int((time.monotonic() - start) * 1000), at, target)
            self.record(rec)
            return None, rec
        rec = CallResult(operation, "ok", None, None, int((time.monotonic() - start) * 1000), at, target)
        self.record(rec)
        return result, rec

    def _stop(self, rec: CallResult) -> None:
        self.probe.status = rec.outcome
        self.probe.hint = hint_for(rec.outcome, self.spec.profile if self.spec.source != "env" else None)
        self.stopped = True

    def _open(self, spec: IdentitySpec) -> Any:
        if self.settings.open_session is not None:
            return self.settings.open_session(spec)
        return open_session(spec, self.settings.options, environ=self.settings.environ,
                            redactor=self.settings.redactor, region=self.region, runtime=self.settings.runtime)

    # -- steps ------------------------------------------------------------------------------------------------

    def connect(self) -> bool:
        """Credentials (assuming the role for --role-arn identities), then sts:GetCallerIdentity."""
        if self.connected or self.stopped:
            return self.connected
        spec = self.spec
        base_spec = spec
        if spec.source == "assume_role":
            base_spec = IdentitySpec(name=spec.base or "base", source="env" if spec.profile is None else "profile",
                                     profile=spec.profile)
        session, rec = self.call("credentials", spec.profile or spec.name, lambda: self._open(base_spec))
        if session is None:
            self._stop(rec)
            return False
        self.session = session
        if spec.source == "assume_role" and spec.role_arn:
            role_arn = spec.role_arn
            got, rec = self.call("sts:AssumeRole", role_arn, lambda: self.client("sts").assume_role(
                RoleArn=role_arn, RoleSessionName=spec.session_name or SESSION_NAME))
            if got is None:
                self._stop(rec)
                return False
            c = got["Credentials"]
            self.settings.redactor.add(c["AccessKeyId"], c["SecretAccessKey"], c.get("SessionToken"))
            # The role's clients come from the same session (its profile's endpoint and settings), with the role's
            # credentials given explicitly.
            self.credentials = ReadOnlyCredentials(c["AccessKeyId"], c["SecretAccessKey"], c.get("SessionToken"))
            with self._lock:
                self._stub_clients.clear()
        def who_am_i() -> Any:
            sts = self.client("sts")
            self.prepare_clients(("kms", "iam"))  # the next calls' clients, while this one is answered
            return sts.get_caller_identity()

        got, rec = self.call("sts:GetCallerIdentity", None, who_am_i)
        if got is None:
            self.probe.status = rec.outcome
            self.probe.hint = hint_for(rec.outcome, spec.profile if spec.source != "env" else None)
            if rec.outcome in CREDENTIAL_FAILURES or rec.outcome == "timeout":
                self.stopped = True
                return False
            self.connected = True  # throttled or a transient error: the KMS calls may still work
            return True
        self.probe.status = "ok"
        self.probe.arn = got.get("Arn")
        self.probe.account = got.get("Account")
        self.connected = True
        return True

    def describe(self, ref: KeyRef) -> None:
        """kms:DescribeKey with the reference as given; for an alias that DescribeKey cannot resolve, ListAliases
        (an IAM-only permission) in the caller's account."""
        if not self.connect():
            return
        key_id = ref.request_id
        got, rec = self.call("kms:DescribeKey", key_id, lambda: self.client("kms").describe_key(KeyId=key_id))
        if got is not None:
            meta = json_safe(got.get("KeyMetadata", {}))
            self.probe.key_metadata = meta
            self.probe.key_arn = meta.get("Arn") or self.probe.key_arn
            return
        from_message = key_arn_in_text(rec.message)
        if from_message:
            self.probe.key_arn = from_message
        if ref.alias and ref.key_arn is None and rec.outcome == "access_denied" and not self.probe.key_arn:
            self._list_aliases(ref)

    def _list_aliases(self, ref: KeyRef) -> None:
        account = self.probe.account
        if ref.account and account and ref.account != account:
            return  # ListAliases lists the caller's own account only
        alias = ref.alias

        def find() -> list[dict[str, Any]]:
            out: list[dict[str, Any]] = []
            for page in self.client("kms").get_paginator("list_aliases").paginate():
                out.extend(page.get("Aliases", []))
            return out

        aliases, _rec = self.call("kms:ListAliases", alias, find)
        if not aliases:
            return
        target = next((a.get("TargetKeyId") for a in aliases if a.get("AliasName") == alias), None)
        if target and account:
            self.probe.key_arn = f"arn:{self.partition}:kms:{self.region}:{account}:key/{target}"
            self.probe.aliases = sorted(
                a["AliasName"] for a in aliases if a.get("TargetKeyId") == target and a.get("AliasName")
            )

    def inspect(self, ref: KeyRef) -> None:
        """The key reads after resolution: the policy and the grants (and DescribeKey when still needed). They do
        not depend on each other and overlap."""
        if not self.connect():
            return
        key_arn = ref.key_arn
        prior = self.probe.last("kms:DescribeKey")
        steps: list[Callable[[], None]] = []
        if prior is None or (prior.outcome != "ok" and key_arn and prior.target != key_arn
                             and self.probe.account != ref.account):
            steps.append(lambda: self.describe(ref))
        key_id = key_arn or ref.key_id
        if key_id:
            steps += [lambda: self._get_key_policy(key_id, key_arn), lambda: self._list_grants(key_id)]
        fan_out(steps, self.settings.parallel_calls)

    def _get_key_policy(self, key_id: str, key_arn: str | None) -> None:
        got, _ = self.call("kms:GetKeyPolicy", key_id, lambda: self.client("kms").get_key_policy(
            KeyId=key_id, PolicyName="default"))
        if got is None:
            return
        text = got.get("Policy") or ""
        self.probe.key_policy_text = text
        try:
            doc = json.loads(text)
            self.probe.key_policy = doc if isinstance(doc, dict) else None
        except ValueError:
            self.probe.key_policy = None
        if key_arn is None and self.probe.account:
            with self._lock:
                if not self.probe.key_arn:
                    self.probe.key_arn = f"arn:{self.partition}:kms:{self.region}:{self.probe.account}:key/{key_id}"

    def _list_grants(self, key_id: str) -> None:
        def grants() -> list[dict[str, Any]]:
            out: list[dict[str, Any]] = []
            for page in self.client("kms").get_paginator("list_grants").paginate(KeyId=key_id):
                out.extend(page.get("Grants", []))
            return out

        listed, _ = self.call("kms:ListGrants", key_id, grants)
        if listed is not None:
            self.probe.grants = json_safe(listed)

    def read_own_policies(self) -> None:
        """The identity's own IAM policies and permissions boundary; when it cannot read them, through another
        identity of its account that can, as soon as the board knows one."""
        if not self.settings.read_identity_policies or not self.probe.arn:
            return
        board = self.board

        def own_call(operation: str, target: str | None, thunk: Callable[[], Any]) -> tuple[Any, CallResult]:
            got, rec = self.call(operation, target, thunk)
            if rec.outcome == "ok" and board is not None:
                board.offer(self)  # it can read IAM: others may use it while it reads on
            return got, rec

        arn = self.probe.arn
        iam = self.client("iam")

        def policies_read() -> IdentityPolicies:
            return iam_reads.read_identity_policies(iam, arn, own_call, read_by=self.spec.name,
                                                    parallel=self.settings.parallel_calls,
                                                    shared=self.settings.shared_reads)

        def boundary_read() -> None:
            # The permissions boundary is on the same GetRole/GetUser answer that gives a session's role path.
            boundary, role_arn = guardrail_reads.read_boundary(iam, arn, self.call, read_by=self.spec.name)
            self.probe.permissions_boundary = boundary
            if role_arn and self.probe.role_arn is None:
                self.probe.role_arn = role_arn

        reads: list[Callable[[], Any]] = [policies_read, boundary_read]
        policies: IdentityPolicies = fan_out(reads, self.settings.parallel_calls)[0]
        self.probe.identity_policies = policies
        if board is None:
            return
        board.done(self)
        if policies.status != "unknown":
            return
        tried: set[int] = set()
        deadline = time.monotonic() + self.settings.options.timeout
        while True:
            readers = board.wait_for_reader(self, max(0.0, deadline - time.monotonic()), tried)
            if not readers or self.read_policies_through(readers, tried):
                return

    def snapshot(self, deadline: float) -> IdentityProbe:
        """A copy of what this identity saw so far; one whose probe has not ended is classified ``timeout``."""
        with self._lock:
            probe = copy.copy(self.probe)
            probe.calls = list(self.probe.calls)
        if not self.finished:
            probe.status = "timeout"
            probe.hint = (f"its probe had not finished when the overall deadline ({deadline:g} s) passed "
                          "(see --deadline)")
            probe.calls.append(CallResult("deadline", "timeout", DEADLINE_CODE,
                                          f"the overall deadline of {deadline:g} s passed", 0, utc_now()))
        return probe

    def fail(self, exc: BaseException) -> None:
        """An unexpected error inside this identity's probe: record it, keep the others going."""
        c = classify_exception(exc, redactor=self.settings.redactor)
        self.record(CallResult("internal", "error", c.error_code, c.message, 0, utc_now()))
        if self.probe.status == "ok" and not self.connected:
            self.probe.status = "error"


# --- the stages ---------------------------------------------------------------------------------------------------
#
# Each stage submits one task per identity to the runtime's pool and returns the futures; the caller awaits them
# (``await_all``, bounded by the overall deadline). A task's unexpected error stays with its identity
# (``IdentityRun.fail``): it never stops another identity.


class DeadlinePassed(Exception):
    """The overall deadline passed while a stage's futures were awaited."""


def await_all(futures: Sequence[Future[Any]], until: float | None) -> None:
    """Wait for ``futures``, until the monotonic time ``until`` at the latest (None: no limit); raises
    :class:`DeadlinePassed` when some are still running then."""
    if not futures:
        return
    timeout = None if until is None else max(0.0, until - time.monotonic())
    _done, pending = wait(futures, timeout=timeout)
    if pending:
        raise DeadlinePassed()


def await_probes(runs: Sequence[IdentityRun], until: float | None) -> None:
    """Wait for every task of ``runs``, until ``until`` at the latest (else :class:`DeadlinePassed`), reporting each
    identity's end (a ``step`` progress event) as it happens."""
    reported: set[int] = set()

    def report_finished() -> None:
        for run in runs:
            if id(run) not in reported and run.finished:
                reported.add(id(run))
                run.settings.progress(ProgressEvent("step", identity=run.spec.name, outcome=run.probe.status))

    pending = {task for run in runs for task in run.tasks if not task.done()}
    report_finished()
    while pending:
        timeout = None if until is None else max(0.0, until - time.monotonic())
        done, pending = wait(pending, timeout=timeout, return_when=FIRST_COMPLETED)
        if not done:
            raise DeadlinePassed()
        report_finished()


def _guarded(run: IdentityRun, step: Callable[[], object]) -> Callable[[], None]:
    def task() -> None:
        try:
            step()
        except Exception as exc:
            run.fail(exc)

    return task


def _submit(run: IdentityRun, step: Callable[[], object]) -> Future[None]:
    future = run.settings.runtime.submit(_guarded(run, step))
    run.tasks.append(future)
    return future


def start_runs(specs: Sequence[IdentitySpec], settings: ProbeSettings, region: str) -> list[IdentityRun]:
    """One run per identity (nothing is called yet; the runs exist so that the deadline can snapshot them)."""
    runs = [IdentityRun(spec, settings, region) for spec in specs]
    if settings.client_factory is None and len(runs) > 1:
        settings.runtime.warm_up(region, settings.options.client_config(), background=True)
    return runs


def connect(runs: Sequence[IdentityRun], until: float | None = None) -> list[IdentityRun]:
    """Stage 1, per identity: credentials (and the role for --role-arn identities), then sts:GetCallerIdentity.
    Returns the runs that connected."""
    await_all([_submit(run, run.connect) for run in runs], until)
    return [run for run in runs if run.connected]


def resolve_key(runs: Sequence[IdentityRun], ref: KeyRef, until: float | None = None) -> KeyRef:
    """For a key id or alias: each connected identity resolves it in its own account (DescribeKey, or ListAliases
    when that is denied). Returns ``ref`` with the key's ARN when any could; an ARN is returned as it is. Raises
    :class:`UsageError` when identities resolve it to different keys."""
    if ref.key_arn:
        return ref
    await_all([_submit(run, functools.partial(run.describe, ref)) for run in runs if run.connected], until)
    found = {r.probe.key_arn for r in runs if r.probe.key_arn}
    if len(found) > 1:
        raise UsageError(
            f"{ref.raw} names different keys for different identities ({', '.join(sorted(found))}): "
            "pass the key ARN, or narrow with --profile"
        )
    return ref.with_arn(found.pop()) if found else ref


def read_keys(runs: Sequence[IdentityRun], ref: KeyRef) -> dict[IdentityRun, Future[None]]:
    """Stage 2, submitted: each connected identity's key reads (DescribeKey when still needed, GetKeyPolicy,
    ListGrants)."""
    return {run: _submit(run, functools.partial(run.inspect, ref)) for run in runs if run.connected}


def read_own_policies(runs: Sequence[IdentityRun]) -> dict[IdentityRun, Future[None]]:
    """Stage 3, submitted beside stage 2: each connected identity's own IAM policies and boundary. An identity
    that cannot read its own has them read, within the same task, by another of its account as soon as one has
    shown it can read IAM (the :class:`ReaderBoard`): only when every task has a worker of its own, since a
    waiting task must never keep a queued one from starting."""
    live = [run for run in runs if run.connected]
    pool_room = live[0].settings.runtime.max_workers if live else 0
    board = ReaderBoard(len(live)) if live and 2 * len(live) + 4 <= pool_room and len(live) <= \
        live[0].settings.max_workers else None
    for run in live:
        run.board = board

    def own(run: IdentityRun) -> None:
        try:
            run.read_own_policies()
        finally:
            if board is not None:
                board.done(run)

    return {run: _submit(run, functools.partial(own, run)) for run in live}


def probe_identities(
    specs: Sequence[IdentitySpec], ref: KeyRef, settings: ProbeSettings, until: float | None = None
) -> tuple[list[IdentityProbe], KeyRef, list[IdentityRun]]:
    """Probe every identity: stages 1 to 3 (connect, key reads beside own policies). Returns the probes (in
    ``specs`` order), the key reference resolved to an ARN when any identity could resolve it, and the runs (whose
    sessions later steps reuse)."""
    runs = start_runs(specs, settings, ref.region)
    connect(runs, until)
    resolved = resolve_key(runs, ref, until)
    read_keys(runs, resolved)
    read_own_policies(runs)
    await_probes(runs, until)
    return [r.probe for r in runs], resolved, runs
