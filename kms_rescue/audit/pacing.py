"""The audit's pacing of KMS requests, through botocore's public event system (the AWS side of
:mod:`kms_rescue.audit.rates`).

While :func:`paced` is active on an AWS runtime's event emitter (every session and client of that runtime starts
from :attr:`kms_rescue.aws.runtime.AwsRuntime.events`), every KMS request made through it waits for its slot in the
:class:`~kms_rescue.audit.rates.Rates` of its scope and operation before it is sent, every attempt of it (a retry
included), and a throttled answer lowers that rate. The scope is the request's own SigV4 credential scope
(``Credential=KEYID/DATE/REGION/SERVICE/aws4_request`` in its ``Authorization`` header, AWS General Reference,
"Signature Version 4"): one set of credentials is one account, and the Region is the Region the request is for,
which is how KMS counts its quotas (per account and Region). The key id is kept in memory only, to tell scopes
apart; nothing is logged.

Handlers: ``request-created.kms`` (registered last, so the request is signed when it runs) waits for the slot;
``needs-retry.kms`` sees each attempt's answer and reports a throttle. Both return None, so botocore's own retry
handling decides as before (docs/audit.md, "Speed and resuming": why not botocore's ``adaptive`` mode).
"""

from __future__ import annotations

import contextlib
import functools
import re
import threading
import weakref
from collections.abc import Iterator
from typing import Any

from kms_rescue.audit.rates import Rates

#: Error codes AWS uses for "slow down" (KMS answers ThrottlingException; botocore's standard retry mode treats
#: the others the same way).
THROTTLE_CODES = frozenset({"ThrottlingException", "Throttling", "ThrottledException", "RequestLimitExceeded",
                            "TooManyRequestsException", "RequestThrottledException"})
_SCOPE_RE = re.compile(r"Credential=([^/,\s]+)/\d{8}/([a-z0-9-]+)/kms/aws4_request")
_CONTEXT_KEY = "kms_rescue_pace"
_UNIQUE = "kms-rescue-audit-pacing"
_LOCK = threading.Lock()
#: The rates active on each emitter, innermost last (weak: an emitter's runtime that is gone takes its entry along).
_STACKS: weakref.WeakKeyDictionary[Any, list[Rates]] = weakref.WeakKeyDictionary()


def scope_of(authorization: str | bytes | None) -> tuple[str, str] | None:
    """(key id, Region) from a SigV4 ``Authorization`` header value, or None."""
    if isinstance(authorization, bytes):
        authorization = authorization.decode("ascii", "replace")
    if not authorization:
        return None
    found = _SCOPE_RE.search(authorization)
    return (found.group(1), found.group(2)) if found else None


def _operation(event_name: Any) -> str | None:
    if isinstance(event_name, str) and event_name.count(".") >= 2:
        return event_name.split(".", 2)[2]
    return None


def _on_request_created(stack: list[Rates], request: Any = None, event_name: Any = None, **_kwargs: Any) -> None:
    rates = stack[-1] if stack else None
    operation = _operation(event_name)
    headers = getattr(request, "headers", None)
    if rates is None or operation is None or headers is None:
        return
    scope = scope_of(headers.get("Authorization"))
    if scope is None:
        return
    context = getattr(request, "context", None)
    if isinstance(context, dict):
        context[_CONTEXT_KEY] = (scope, operation)
    rates.get(scope, operation).acquire()


def _on_needs_retry(stack: list[Rates], response: Any = None, request_dict: Any = None, **_kwargs: Any) -> None:
    rates = stack[-1] if stack else None
    if rates is None or not isinstance(response, tuple) or len(response) < 2 or not isinstance(request_dict, dict):
        return None
    parsed = response[1]
    code = (parsed.get("Error") or {}).get("Code") if isinstance(parsed, dict) else None
    paced = (request_dict.get("context") or {}).get(_CONTEXT_KEY)
    if code in THROTTLE_CODES and paced is not None:
        scope, operation = paced
        rates.get(scope, operation).throttled()
    return None


@contextlib.contextmanager
def paced(rates: Rates, events: Any) -> Iterator[Rates]:
    """Pace every KMS request made through ``events`` (an AWS runtime's emitter: :attr:`AwsRuntime.events
    <kms_rescue.aws.runtime.AwsRuntime.events>`) by ``rates`` while active (nested: the innermost wins)."""
    with _LOCK:
        stack = _STACKS.get(events)
        if stack is None:
            stack = _STACKS[events] = []
        if not stack:
            events.register_last("request-created.kms", functools.partial(_on_request_created, stack),
                                 unique_id=_UNIQUE + "-send")
            events.register("needs-retry.kms", functools.partial(_on_needs_retry, stack),
                            unique_id=_UNIQUE + "-retry")
        stack.append(rates)
    try:
        yield rates
    finally:
        with _LOCK:
            stack.remove(rates)
            if not stack:
                events.unregister("request-created.kms", unique_id=_UNIQUE + "-send")
                events.unregister("needs-retry.kms", unique_id=_UNIQUE + "-retry")


__all__ = ["THROTTLE_CODES", "paced", "scope_of"]
