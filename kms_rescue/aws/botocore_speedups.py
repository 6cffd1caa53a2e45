"""The one module of kms-rescue that touches botocore internals, kept because it was measured worth it, pinned to
the botocore releases it was tested with, and falling back to plain botocore outside them.

botocore builds a new client class (one method per operation: IAM has about 170) and a new service model for every
client it creates. Both depend only on the service's JSON model (read through the loader) and on the emitter's
``creating-client-class`` handlers, which are the same for every session of one
:class:`~kms_rescue.aws.runtime.AwsRuntime`; nothing changes them after they are built. For the sessions of a
runtime that enabled it, :func:`share_client_classes` makes botocore build each once per runtime.

Measured gain (the busy-account report against the lab at 100 ms per request, CPU time of the whole ``kms-rescue
report`` process, median of five, 2-vCPU machine shared with other work): 16 identities 1.94 s without it, 1.61 s
with it; one identity 0.92 s and 0.76 s (``GAIN_NOTE``). Outside ``TESTED_RANGE`` (``pyproject.toml`` pins the
same upper bound), or when botocore no longer has the two methods, nothing is patched and every client is built
the plain way.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from typing import Any

import botocore
import botocore.client

#: The botocore releases this module was tested with: [low, high) (pyproject.toml: botocore <1.45).
TESTED_RANGE = ((1, 34), (1, 45))
GAIN_NOTE = "report CPU time, 16 identities: 1.94 s -> 1.61 s; 1 identity: 0.92 s -> 0.76 s"

_LOCK = threading.Lock()
#: The loaders of the runtimes that share their client classes, each with its caches (freed with the runtime).
_CACHES: weakref.WeakKeyDictionary[Any, dict[tuple[str, str, str], Any]] = weakref.WeakKeyDictionary()
_INSTALLED: list[bool] = []


def _version() -> tuple[int, int]:
    major, minor = botocore.__version__.split(".")[:2]
    return int(major), int(minor)


def supported() -> bool:
    """Whether the installed botocore is one this module was tested with, and has the methods it wraps."""
    low, high = TESTED_RANGE
    creator = botocore.client.ClientCreator
    return (low <= _version() < high and callable(getattr(creator, "_create_client_class", None))
            and callable(getattr(creator, "_load_service_model", None)))


def share_client_classes(loader: Any) -> bool:
    """Build each client class and service model once for the sessions on ``loader`` (a runtime's). Returns whether
    it is in effect (False: plain botocore)."""
    if not supported():
        return False
    with _LOCK:
        _CACHES.setdefault(loader, {})
        if not _INSTALLED:
            _install()
            _INSTALLED.append(True)
    return True


def _cached(creator: Any, key: tuple[str, str, str], make: Callable[[], Any]) -> Any:
    cache = _CACHES.get(getattr(creator, "_loader", None))
    if cache is None:
        return make()
    with _LOCK:
        found = cache.get(key)
    if found is None:  # built outside the lock; the first one stored wins
        made = make()
        with _LOCK:
            found = cache.setdefault(key, made)
    return found


def _install() -> None:
    creator: Any = botocore.client.ClientCreator
    original_class = creator._create_client_class
    original_model = creator._load_service_model

    def create_client_class(self: Any, service_name: str, service_model: Any) -> type:
        key = ("class", service_name, str(getattr(service_model, "api_version", "")))
        made: type = _cached(self, key, lambda: original_class(self, service_name, service_model))
        return made

    def load_service_model(self: Any, service_name: str, api_version: str | None = None) -> Any:
        return _cached(self, ("model", service_name, str(api_version)),
                       lambda: original_model(self, service_name, api_version))

    setattr(creator, "_create_client_class", create_client_class)  # noqa: B010
    setattr(creator, "_load_service_model", load_service_model)  # noqa: B010


__all__ = ["GAIN_NOTE", "TESTED_RANGE", "share_client_classes", "supported"]
