"""Running an audit over many targets (accounts × Regions): bounded, paced, streamed, resumable, on a deadline
(docs/audit.md, "Speed and resuming").

:func:`run_audit` runs ``job(target, options)`` (by default :func:`kms_rescue.audit.account.audit_region`, one
account in one Region, a generator of results) for every target and yields each result as it arrives:

- **bounded**: at most ``concurrency`` targets at once per process, each target (one account in one Region) on
  one thread, so every request of a target comes from one place; results pass through a bounded queue, so a slow
  consumer holds the producers back and memory stays flat however many keys there are;
- **paced**: every KMS request waits for its slot in the rate of its account, Region and operation, set below
  KMS's documented request quotas and lowered on throttling (:mod:`kms_rescue.audit.pacing`,
  :mod:`kms_rescue.audit.quotas`);
- **on a deadline**: ``deadline`` seconds after the start, every target still running or waiting is reported as an
  :class:`~kms_rescue.audit.model.AuditError` with stage ``deadline`` (what it yielded before stays reported);
- **resumable**: with a :class:`~kms_rescue.audit.checkpoint.Checkpoint`, each result and each finished target is
  written as it arrives; a resumed checkpoint's finished targets are replayed from it instead of audited again;
- **over processes**: with ``processes`` > 1 the targets are spread over a
  :class:`concurrent.futures.ProcessPoolExecutor` (each process runs the same threads over its share, with its own
  pacing: a target is never split across processes, so a scope's rate stays in one place), and results stream
  back through a queue in small batches as they arrive.

A job's unexpected exception becomes an error row with stage ``audit`` (its target is not marked done, so a resume
audits it again); it never ends the audit.
"""

from __future__ import annotations

import dataclasses
import functools
import multiprocessing
import queue
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any, Protocol

from kms_rescue.audit.account import AccountCache, audit_region
from kms_rescue.audit.checkpoint import Checkpoint, TargetKey, replay, target_key
from kms_rescue.audit.model import AuditError, AuditItem
from kms_rescue.audit.pacing import paced
from kms_rescue.audit.quotas import AUDIT_SHARE
from kms_rescue.audit.rates import Rates
from kms_rescue.aws.redact import redact
from kms_rescue.aws.runtime import AwsRuntime
from kms_rescue.observations import no_progress

#: Targets (account × Region) audited at once in one process.
DEFAULT_CONCURRENCY = 16
#: Processes by default (docs/audit.md, "Processes": measured on a 2-core machine).
DEFAULT_PROCESSES = 1
#: Results waiting for the consumer, per process, before the producers wait.
QUEUE_ITEMS = 512
#: A process sends its results back in batches of at most this many, or after this many seconds.
BATCH_ITEMS = 64
BATCH_SECONDS = 0.05
#: After the deadline, how long the parent waits for the processes' own deadline rows.
PROCESS_GRACE = 3.0

Job = Callable[..., Iterable[AuditItem]]
#: ``progress(targets_finished, targets_total)``.
Progress = Callable[[int, int], None]
_Event = tuple[str, TargetKey, AuditItem | None]


class _Target(Protocol):
    @property
    def account(self) -> str | None: ...

    @property
    def region(self) -> str: ...


class _Stopped(Exception):
    pass


class _Stop(Protocol):
    def is_set(self) -> bool: ...

    def set(self) -> None: ...


def default_job(runtime: AwsRuntime | None = None) -> Job:
    """:func:`~kms_rescue.audit.account.audit_region` with one cache of per-account reads for the whole run (each
    account's caller, IAM policies and guardrails are read once, whatever its number of Regions), on ``runtime``."""
    return functools.partial(audit_region, cache=AccountCache(runtime))


class _Either:
    """Set when this run's own event or the parent's is: a process's run stops its own threads without
    stopping the other processes (which share the parent's event)."""

    def __init__(self, parent: _Stop) -> None:
        self._own = threading.Event()
        self._parent = parent

    def is_set(self) -> bool:
        return self._own.is_set() or self._parent.is_set()

    def set(self) -> None:
        self._own.set()


def _key(target: _Target) -> TargetKey:
    return target_key(target.account, target.region)


def _deadline_error(target: _Target, deadline: float | None) -> AuditError:
    limit = f"the --deadline of {deadline:g} s" if deadline is not None else "the deadline"
    return AuditError(target.account, target.region, "deadline", "DeadlineExceeded",
                      f"not finished within {limit}: run again with --resume to finish it")


def _failure(target: _Target, exc: BaseException) -> AuditError:
    text = " ".join(str(exc).split())[:300] or type(exc).__name__
    return AuditError(target.account, target.region, "audit", type(exc).__name__, redact(text))


def _thread_stream(pending: Sequence[_Target], options: Any, job: Job, concurrency: int, ends_at: float | None,
                   stop: _Stop, deadline: float | None) -> Iterator[_Event]:
    """Events ``("item", key, item)``, ``("done", key, None)``, ``("failed", key, None)`` as they happen; at the
    deadline, a deadline error per unfinished target."""
    out: queue.Queue[_Event] = queue.Queue(maxsize=QUEUE_ITEMS)
    todo: queue.SimpleQueue[_Target] = queue.SimpleQueue()
    for t in pending:
        todo.put(t)

    def put(event: _Event) -> None:
        while True:
            try:
                out.put(event, timeout=0.2)
                return
            except queue.Full:
                if stop.is_set():
                    raise _Stopped() from None

    def worker() -> None:
        try:
            while not stop.is_set():
                try:
                    target = todo.get_nowait()
                except queue.Empty:
                    return
                key = _key(target)
                try:
                    results = iter(job(target, options))
                    try:
                        for item in results:
                            if stop.is_set():
                                return
                            put(("item", key, item))
                    finally:
                        close = getattr(results, "close", None)
                        if close is not None:
                            close()
                except _Stopped:
                    return
                except Exception as exc:  # a job's bug: a row, never the end of the audit
                    put(("item", key, _failure(target, exc)))
                    put(("failed", key, None))
                    continue
                put(("done", key, None))
        except _Stopped:
            return

    threads = [threading.Thread(target=worker, name=f"kms-rescue-audit-{i}", daemon=True)
               for i in range(max(1, min(concurrency, len(pending))))]
    for thread in threads:
        thread.start()
    ended: set[TargetKey] = set()
    try:
        while len(ended) < len(pending):
            timeout = None if ends_at is None else ends_at - time.monotonic()
            if timeout is not None and timeout <= 0:
                break
            try:
                event = out.get(timeout=timeout)
            except queue.Empty:
                break
            if event[0] != "item":
                ended.add(event[1])
            yield event
        else:
            return
        stop.set()
        for target in pending:
            key = _key(target)
            if key not in ended:
                ended.add(key)
                yield ("item", key, _deadline_error(target, deadline))
    finally:
        stop.set()


# --- processes -------------------------------------------------------------------------------------------------

_CHILD_QUEUE: Any = None
_CHILD_STOP: Any = None


def _child_init(results: Any, stop: Any) -> None:
    """A pool process: Ctrl-C is the parent's to handle (it stops the children through ``stop``)."""
    global _CHILD_QUEUE, _CHILD_STOP
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _CHILD_QUEUE, _CHILD_STOP = results, stop


#: Fields of the options that stay in the parent: the progress callback (the child reports progress through the
#: queue) and the redactor (it holds a lock; the child redacts with its own, which learns the credentials it uses).
_PARENT_ONLY = ("progress", "redactor")


def _for_child(options: Any) -> tuple[Any, bool]:
    """``options`` as a pool process can receive them (pickled): a dataclass's type and its fields but those in
    :data:`_PARENT_ONLY` (the child rebuilds it with their defaults), and whether to forward progress."""
    if not dataclasses.is_dataclass(options) or isinstance(options, type):
        return ("as-is", options), False
    fields = {f.name: getattr(options, f.name) for f in dataclasses.fields(options)
              if f.init and f.name not in _PARENT_ONLY}
    if fields.get("environ") is not None:
        fields["environ"] = dict(fields["environ"])
    forward = getattr(options, "progress", no_progress) is not no_progress
    return ("fields", (type(options), fields)), forward


def _from_parent(packed: tuple[str, Any], progress: Callable[[Any], None] | None) -> Any:
    kind, value = packed
    if kind == "as-is":
        return value
    cls, fields = value
    if progress is not None:
        fields = {**fields, "progress": progress}
    return cls(**fields)


def _child_run(group: Sequence[_Target], packed: tuple[str, Any], job: Job | None, concurrency: int,
               wall_deadline: float | None, deadline: float | None, share: float, forward: bool) -> int:
    """One process's share of the targets, its events sent back in batches; returns the events sent."""
    results, stop = _CHILD_QUEUE, _CHILD_STOP
    options = _from_parent(packed, (lambda event: results.put(("progress", event))) if forward else None)
    runtime = AwsRuntime()  # this process's: its sessions, clients and pool
    job = job or default_job(runtime)
    ends_at = None if wall_deadline is None else time.monotonic() + (wall_deadline - time.time())
    sent = 0
    batch: list[_Event] = []
    flushed = time.monotonic()

    def flush() -> None:
        nonlocal batch, flushed, sent
        if batch:
            results.put(("batch", batch))
            sent += len(batch)
            batch = []
        flushed = time.monotonic()

    try:
        with paced(Rates(share), runtime.events):
            for event in _thread_stream(group, options, job, concurrency, ends_at, _Either(stop), deadline):
                batch.append(event)
                if len(batch) >= BATCH_ITEMS or time.monotonic() - flushed >= BATCH_SECONDS:
                    flush()
        flush()
    finally:
        results.put(("end", None))
        runtime.close()
    return sent


def _spread(pending: Sequence[_Target], processes: int) -> list[list[_Target]]:
    """Round-robin by target, in order (an account's Regions land on different processes)."""
    groups: list[list[_Target]] = [[] for _ in range(min(processes, len(pending)))]
    for i, target in enumerate(pending):
        groups[i % len(groups)].append(target)
    return groups


def _process_stream(pending: Sequence[_Target], options: Any, job: Job | None, concurrency: int,
                    ends_at: float | None, processes: int, share: float, deadline: float | None) -> Iterator[_Event]:
    ctx = multiprocessing.get_context("spawn")  # never fork a process whose threads may hold locks
    results = ctx.Queue(maxsize=QUEUE_ITEMS)
    stop = ctx.Event()
    groups = _spread(pending, processes)
    wall_deadline = None if ends_at is None else time.time() + (ends_at - time.monotonic())
    ended: set[TargetKey] = set()
    child_options, forward = _for_child(options)
    progress = getattr(options, "progress", no_progress)
    pool = ProcessPoolExecutor(max_workers=len(groups), mp_context=ctx, initializer=_child_init,
                               initargs=(results, stop))
    try:
        futures: list[Future[int]] = [
            pool.submit(_child_run, g, child_options, job, concurrency, wall_deadline, deadline, share, forward)
            for g in groups]
        running = len(groups)
        while running:
            if ends_at is not None and time.monotonic() > ends_at + PROCESS_GRACE:
                break
            try:
                message = results.get(timeout=0.5)
            except queue.Empty:
                broken = [f for f in futures if f.done() and f.exception() is not None]
                if broken and all(f.done() for f in futures):
                    break  # a process died without saying so: its unfinished targets are reported below
                continue
            if message[0] == "end":
                running -= 1
                continue
            if message[0] == "progress":
                progress(message[1])
                continue
            for event in message[1]:
                if event[0] != "item" or (isinstance(event[2], AuditError) and event[2].stage == "deadline"):
                    ended.add(event[1])
                yield event
        for target in pending:
            key = _key(target)
            if key not in ended:
                ended.add(key)
                yield ("item", key, _deadline_error(target, deadline) if ends_at is not None else
                       AuditError(target.account, target.region, "audit", "ProcessFailed",
                                  "the process auditing it ended without finishing"))
    finally:
        stop.set()
        pool.shutdown(wait=False, cancel_futures=True)


# --- the audit -------------------------------------------------------------------------------------------------

def run_audit(
    targets: Iterable[_Target],
    options: Any,
    *,
    job: Job | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    deadline: float | None = None,
    checkpoint: Checkpoint | None = None,
    progress: Progress | None = None,
    processes: int = DEFAULT_PROCESSES,
    rate_share: float = AUDIT_SHARE,
    runtime: AwsRuntime | None = None,
) -> Iterator[AuditItem]:
    """Every result of every target, as it arrives (see the module's documentation). ``job``: default
    :func:`default_job` (with processes, it must be a module-level function, and each process makes its own
    default); ``deadline``: seconds from now; ``checkpoint``: where to record results (a resumed one's finished
    targets are replayed first); ``runtime``: the AWS runtime of the default job and of the pacing, in this
    process (default: one of the audit's own, closed at its end; each process of a pool makes its own)."""
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    if processes < 1:
        raise ValueError("processes must be at least 1")
    if deadline is not None and not deadline > 0:
        raise ValueError("the deadline must be a positive number of seconds")
    ends_at = None if deadline is None else time.monotonic() + deadline
    unique: dict[TargetKey, _Target] = {}
    for t in targets:
        unique.setdefault(_key(t), t)
    done = checkpoint.done & unique.keys() if checkpoint is not None else frozenset()
    total = len(unique)
    finished = 0
    if checkpoint is not None and done:
        for _replayed, item in replay(checkpoint.path, frozenset(done)):
            yield item
        finished = len(done)
    if progress is not None:
        progress(finished, total)
    pending = [t for k, t in unique.items() if k not in done]
    if not pending:
        return
    own = runtime is None
    runtime = runtime if runtime is not None else AwsRuntime()
    if processes > 1 and len(pending) > 1:
        events = _process_stream(pending, options, job, concurrency, ends_at, processes, rate_share, deadline)
    else:
        events = _paced_threads(pending, options, job or default_job(runtime), concurrency, ends_at, rate_share,
                                deadline, runtime)
    try:
        yield from _recorded(events, checkpoint, progress, finished, total)
    finally:
        if own:
            runtime.close()


def _recorded(events: Iterator[_Event], checkpoint: Checkpoint | None, progress: Progress | None, finished: int,
              total: int) -> Iterator[AuditItem]:
    """The results of ``events``, recorded in the checkpoint, with the progress of targets finished."""
    for kind, key, result in events:
        if kind == "item" and result is not None:
            if checkpoint is not None:
                checkpoint.record(key, result)
            yield result
        else:
            if kind == "done" and checkpoint is not None:
                checkpoint.finish(key)
            finished += 1
            if progress is not None:
                progress(finished, total)


def _paced_threads(pending: Sequence[_Target], options: Any, job: Job, concurrency: int, ends_at: float | None,
                   share: float, deadline: float | None, runtime: AwsRuntime) -> Iterator[_Event]:
    with paced(Rates(share), runtime.events):
        yield from _thread_stream(pending, options, job, concurrency, ends_at, threading.Event(), deadline)


__all__ = ["DEFAULT_CONCURRENCY", "DEFAULT_PROCESSES", "Job", "Progress", "default_job", "run_audit"]
