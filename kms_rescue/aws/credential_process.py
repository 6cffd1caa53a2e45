"""``credential_process`` under a time limit, in a process group of its own, never outliving the command.

botocore's :class:`~botocore.credentials.ProcessProvider` runs a profile's ``credential_process`` through the
``popen`` callable its constructor takes. Ours starts the command in a new session (so it and every process it
starts form one process group), with stdin closed, and bounds ``communicate()``: after ``timeout`` seconds the whole
group is killed (SIGKILL) and :class:`~kms_rescue.aws.classify.CredentialTimeout` is raised. Every group started is
tracked by a :class:`ProcessGroups`, and :meth:`ProcessGroups.kill_all` ends those still running when the command
is done (the report may finish before a slow command's own timeout: nothing it started may outlive it). The
provider is put in place of botocore's through the session's public ``credential_provider`` component
(``CredentialResolver.insert_before`` / ``remove``).

A role profile's ``source_profile`` is resolved by botocore's assume-role provider through the chain its
``ProfileProviderBuilder`` makes: :class:`SourceProfileProviders` is that builder with the chain's process provider
swapped for ours, handed to an assume-role provider built with its public constructor (see
:func:`kms_rescue.aws.sessions.open_session`), so a source profile's command is run, bounded, tracked and killed
the same way.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
from collections.abc import Callable
from typing import Any

from botocore.credentials import CredentialProvider, CredentialResolver, ProcessProvider, ProfileProviderBuilder

from kms_rescue.aws.classify import CredentialTimeout

#: At most this much of a credential process's output is kept (its JSON is a few hundred bytes; stderr is only
#: shown, redacted and cut, in a message).
MAX_OUTPUT = 64 * 1024


class ProcessGroups:
    """The process groups of the credential processes started, until each has been reaped."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._live: dict[int, subprocess.Popen[bytes]] = {}

    def add(self, proc: subprocess.Popen[bytes]) -> None:
        with self._lock:
            self._live[proc.pid] = proc

    def discard(self, proc: subprocess.Popen[bytes]) -> None:
        with self._lock:
            self._live.pop(proc.pid, None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._live)

    def kill_all(self) -> None:
        """Kill every tracked group (the command and whatever it started) and reap the commands."""
        with self._lock:
            live = list(self._live.values())
            self._live.clear()
        for proc in live:
            kill_group(proc)


def kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError, OSError):
        os.killpg(proc.pid, signal.SIGKILL)  # the group's id is the leader's pid (start_new_session)
    with contextlib.suppress(Exception):
        proc.wait(timeout=2)


class _GroupPopen(subprocess.Popen):
    """A ``Popen`` in its own session whose ``communicate()`` kills the group after ``timeout`` seconds."""

    def __init__(self, args: Any, *, timeout: float, groups: ProcessGroups, **kwargs: Any) -> None:
        kwargs["start_new_session"] = True
        kwargs.setdefault("stdin", subprocess.DEVNULL)
        self._timeout = timeout
        self._groups = groups
        super().__init__(args, **kwargs)
        groups.add(self)

    def communicate(self, input: Any = None, timeout: float | None = None) -> tuple[Any, Any]:
        try:
            out, err = super().communicate(input, timeout=self._timeout if timeout is None else timeout)
        except subprocess.TimeoutExpired:
            kill_group(self)
            raise CredentialTimeout(
                f"credential_process did not finish within {self._timeout:g} s (killed with its process group)"
            ) from None
        finally:
            if self.returncode is not None:
                # The command is done; a child it left behind in its group is not wanted either.
                with contextlib.suppress(ProcessLookupError, PermissionError, OSError):
                    os.killpg(self.pid, signal.SIGKILL)
                self._groups.discard(self)
        return (out[:MAX_OUTPUT] if out else out), (err[:MAX_OUTPUT] if err else err)


def group_popen(timeout: float, groups: ProcessGroups) -> Callable[..., subprocess.Popen[bytes]]:
    def popen(args: Any, **kwargs: Any) -> subprocess.Popen[bytes]:
        return _GroupPopen(args, timeout=timeout, groups=groups, **kwargs)

    return popen


class SourceProfileProviders(ProfileProviderBuilder):
    """botocore's providers for a profile's own credentials (what the assume-role provider asks for a
    ``source_profile``), with the ``credential_process`` run by ``popen`` (:func:`group_popen`)."""

    def __init__(self, session: Any, *, popen: Callable[..., subprocess.Popen[bytes]], **kwargs: Any) -> None:
        super().__init__(session, **kwargs)
        self.process_popen = popen
        self.process_config: Callable[[], Any] = lambda: session.full_config

    def providers(self, profile_name: str, disable_env_vars: bool = False) -> list[CredentialProvider]:
        return [ProcessProvider(profile_name=profile_name, load_config=self.process_config, popen=self.process_popen)
                if getattr(provider, "METHOD", None) == ProcessProvider.METHOD else provider
                for provider in super().providers(profile_name, disable_env_vars)]


def replace(resolver: CredentialResolver, method: str, provider: CredentialProvider) -> bool:
    """Put ``provider`` in the place of the chain's ``method`` provider (False if the chain has none)."""
    names = [getattr(p, "METHOD", None) for p in resolver.providers]
    if method not in names:
        return False
    after = [name for name in names[names.index(method) + 1:] if name]
    resolver.remove(method)
    if after:
        resolver.insert_before(after[0], provider)
    else:
        resolver.providers.append(provider)
    return True


def install(resolver: CredentialResolver, profile: str, load_config: Callable[[], Any],
            popen: Callable[..., subprocess.Popen[bytes]]) -> None:
    """Replace the chain's ``custom-process`` provider with one that runs the command through ``popen``."""
    replace(resolver, ProcessProvider.METHOD, ProcessProvider(profile_name=profile, load_config=load_config,
                                                              popen=popen))


__all__ = ["ProcessGroups", "SourceProfileProviders", "group_popen", "install", "kill_group", "replace"]
