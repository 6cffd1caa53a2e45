"""The AWS runtime of one investigation (or of one command): everything botocore builds once and every identity
reuses, held by one object instead of module-level caches.

An :class:`AwsRuntime` owns

- botocore's data loader (``botocore.loaders.create_loader``), handed to every session it opens through the public
  ``Session.register_component("data_loader", …)``: each service's JSON models, endpoint rules and paginators are
  read and parsed once per runtime, not once per identity;
- one event emitter with botocore's built-in handlers, registered once and passed to every session through the
  public ``Session(event_hooks=…, include_builtin_handlers=False)``: registering them per session costs more CPU than
  an identity's calls (handlers added to it, such as the ``--debug`` request log, reach every client created after);
- the clients: one per session (identity), credentials, service and Region, built once (concurrent askers wait for
  the first build instead of building a second);
- the AWS config and credentials files as parsed for discovery (:meth:`AwsRuntime.profiles`);
- the thread pool the investigation's stages submit their calls to, and the warm-up that loads the models on it
  while the first requests are in flight;
- the process groups of the ``credential_process`` commands its sessions start (killed when it closes) and whether
  an investigation left calls in flight at its deadline (:attr:`AwsRuntime.abandoned`).

Only public botocore API is used here (docs/architecture.md, "The AWS runtime"). The runtime is a context
manager; leaving it shuts the pool down (without waiting for calls abandoned at a deadline) and kills the credential
processes still running.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Hashable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType
from typing import Any, TypeVar

import botocore.config
import botocore.loaders
import botocore.session
from botocore.credentials import ReadOnlyCredentials
from botocore.hooks import HierarchicalEmitter

from kms_rescue import __version__
from kms_rescue.aws.credential_process import ProcessGroups

T = TypeVar("T")

#: Upper bound on the threads of a runtime's pool (the probes are bound by round trips, not CPU; the pool starts a
#: thread only when no idle one is there). An investigation submits up to two tasks per identity at once.
MAX_WORKERS = 64
#: The services every investigation calls, in the order it first calls them.
PROBE_SERVICES = ("sts", "kms", "iam", "cloudtrail")

_WARM_UP_KEY = "warm-up"


class AwsRuntime:
    """The loader, event emitter, clients, parsed configuration and thread pool of one investigation."""

    def __init__(self, *, max_workers: int = MAX_WORKERS) -> None:
        self.loader = botocore.loaders.create_loader()
        self._events: HierarchicalEmitter | None = None
        self.process_groups = ProcessGroups()
        #: Set when an investigation returned at its overall deadline leaving calls in flight on the pool.
        self.abandoned = False
        self._max_workers = max(1, max_workers)
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._clients: dict[tuple[Any, ...], Any] = {}
        self._client_locks: dict[tuple[Any, ...], threading.Lock] = {}
        self._warming: dict[str, Future[Any]] = {}
        self._profiles_lock = threading.Lock()
        self._profiles: dict[str, dict[str, Any]] | None = None
        self._closed = False

    # -- context manager ----------------------------------------------------------------------------------------

    def __enter__(self) -> AwsRuntime:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Shut the pool down (waiting for its calls unless some were abandoned at a deadline) and kill every
        credential process still running. Idempotent."""
        with self._lock:
            pool, self._pool, self._closed = self._pool, None, True
        try:
            if pool is not None:
                pool.shutdown(wait=not self.abandoned, cancel_futures=True)
        finally:
            self.process_groups.kill_all()

    # -- the pool -----------------------------------------------------------------------------------------------

    @property
    def max_workers(self) -> int:
        return self._max_workers

    @property
    def pool(self) -> ThreadPoolExecutor:
        """The thread pool (started on first use)."""
        with self._lock:
            if self._pool is None:
                if self._closed:
                    raise RuntimeError("this AwsRuntime is closed")
                self._pool = ThreadPoolExecutor(max_workers=self._max_workers, thread_name_prefix="kms-rescue")
            return self._pool

    def submit(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> Future[T]:
        return self.pool.submit(fn, *args, **kwargs)

    # -- sessions and clients -----------------------------------------------------------------------------------

    @property
    def events(self) -> HierarchicalEmitter:
        """The emitter every session of this runtime starts from, with botocore's built-in handlers (registered
        on first use: a runtime that only reads the config files never pays for them)."""
        with self._lock:
            if self._events is None:
                events = HierarchicalEmitter()
                botocore.session.Session(event_hooks=events)  # registers botocore's built-in handlers into it
                self._events = events
            return self._events

    def session(self, profile: str | None = None) -> botocore.session.Session:
        """A new botocore session for ``profile`` on this runtime's loader and emitter."""
        session = botocore.session.Session(profile=profile, event_hooks=self.events, include_builtin_handlers=False)
        session.register_component("data_loader", self.loader)
        session.user_agent_extra = f"kms-rescue/{__version__}"
        return session

    def client(self, session: botocore.session.Session, service: str, region: str, config: botocore.config.Config,
               credentials: ReadOnlyCredentials | None = None, *, variant: Hashable = None) -> Any:
        """The client of ``service`` in ``region`` for ``session`` (with ``credentials`` in place of the session's
        own when given: an assumed role's), built once per runtime. ``variant`` tells apart clients built with
        different ``config`` (the options ``config`` was made from)."""
        self._await_warm_up(service, getattr(config, "connect_timeout", None))
        key = (session, service, region, credentials, variant)
        with self._lock:
            lock = self._client_locks.setdefault(key, threading.Lock())
        with lock:  # one lock per client: building one does not hold up another
            found = self._clients.get(key)
            if found is None:
                found = self._clients[key] = build_client(session, service, region, config, credentials)
            return found

    # -- warm-up ------------------------------------------------------------------------------------------------

    def warm_up(self, region: str, config: botocore.config.Config, services: Iterable[str] = PROBE_SERVICES, *,
                background: bool = False) -> None:
        """Load the models, endpoint rules and paginators of ``services`` once, before many threads need them at the
        same moment (each would otherwise parse the same JSON alongside the others, under one interpreter lock).
        Makes no request. With ``background``, the first service loads here and the rest on the pool, while the
        first requests are in flight: a client of a service still loading waits for it."""
        wanted = list(services)
        if not wanted:
            return
        session = self.session()
        session.set_credentials("warm-up", "warm-up")

        def load(service: str) -> None:
            with contextlib.suppress(Exception):  # a failure is left for the real use to meet and record
                client = build_client(session, service, region, config, None)
                client.can_paginate("list_grants")  # loads the service's paginator models too

        first, rest = wanted[0], wanted[1:]
        if not background:
            for service in wanted:
                load(service)
            return
        load(first)
        pool = self.pool
        with self._lock:
            rest = [s for s in rest if s not in self._warming]
            if rest:  # one task loads them one after the other: in parallel they would only share the CPU
                task = pool.submit(lambda: list(map(load, rest)))
                self._warming.update(dict.fromkeys(rest, task))

    def _await_warm_up(self, service: str, timeout: Any) -> None:
        with self._lock:
            warming = self._warming.get(service)
        if warming is not None:
            with contextlib.suppress(Exception):  # a warm-up that failed or took too long is simply not waited for
                warming.result(timeout=timeout if isinstance(timeout, float | int) else None)

    # -- configuration --------------------------------------------------------------------------------------------

    def profiles(self) -> dict[str, dict[str, Any]]:
        """Every profile of the AWS config and credentials files (as botocore merges them), parsed once per
        runtime; callers get their own copies. Raises botocore's ``ConfigParseError`` for a malformed file."""
        with self._profiles_lock:
            if self._profiles is None:
                reader = botocore.session.Session(include_builtin_handlers=False)  # reads files, makes no client
                parsed = reader.full_config.get("profiles", {})  # an error: raised, nothing kept
                self._profiles = {str(name): dict(cfg) for name, cfg in parsed.items()}
            return {name: dict(cfg) for name, cfg in self._profiles.items()}


def build_client(session: botocore.session.Session, service: str, region: str, config: botocore.config.Config,
                 credentials: ReadOnlyCredentials | None = None) -> Any:
    """A new client (``credentials``, when given, in place of the session's own)."""
    if credentials is None:
        return session.create_client(service, region_name=region, config=config)
    return session.create_client(service, region_name=region, config=config,
                                 aws_access_key_id=credentials.access_key,
                                 aws_secret_access_key=credentials.secret_key,
                                 aws_session_token=credentials.token)


__all__ = ["MAX_WORKERS", "PROBE_SERVICES", "AwsRuntime", "build_client"]
