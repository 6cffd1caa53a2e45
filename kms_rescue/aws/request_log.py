"""``--debug``: one line per AWS request, as the AWS CLI's ``--debug`` shows each request.

Handlers on botocore's public event system (``before-call`` and ``after-call`` for every service and operation,
``after-call-error`` for a request that raised), registered on the emitter every session of a runtime starts from,
so each client (the probes', the credential chain's STS clients, the Support client) logs through them. A line
carries the service, the operation, the Region, the HTTP status, the request id, the retries and the time taken:
never a parameter or a response body, which may hold credentials (STS AssumeRole answers with them); the line is
then scrubbed by the run's :class:`~kms_rescue.aws.redact.Redactor` as well.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from typing import Any

from kms_rescue.aws.redact import Redactor

_STARTED = "kms_rescue_started"
_UNIQUE = "kms-rescue-request-log"


def _operation(model: Any, event_name: Any) -> tuple[str, str]:
    """(service, operation) from the operation model, else from the event's name (``after-call-error.kms.X``)."""
    service = getattr(getattr(model, "service_model", None), "service_name", None)
    operation = getattr(model, "name", None)
    if (service is None or operation is None) and isinstance(event_name, str) and event_name.count(".") >= 2:
        _, service_id, operation = event_name.split(".", 2)
        service = service or service_id
    return str(service or "?"), str(operation or "?")


def request_line(service: str, operation: str, region: str | None, status: int | str | None,
                 request_id: str | None, retries: int | None, elapsed_ms: float, error: str | None = None) -> str:
    """The ``--debug`` line for one request (its format is documented in docs/report.md)."""
    parts = [f"kms-rescue: debug: {service}.{operation}", f"region={region or '-'}", f"status={status or '-'}",
             f"request_id={request_id or '-'}", f"retries={retries if retries is not None else '-'}",
             f"elapsed={elapsed_ms:.0f}ms"]
    if error:
        parts.append(f"error={error}")
    return " ".join(parts)


@contextlib.contextmanager
def log_requests(events: Any, sink: Callable[[str], None], redactor: Redactor | None = None) -> Iterator[None]:
    """While active, every AWS request made by a client created from ``events`` (an
    :class:`~kms_rescue.aws.runtime.AwsRuntime`'s emitter) after it started is reported to ``sink`` (one line)."""
    scrubber = redactor or Redactor()

    def scrub(text: str) -> str:
        return scrubber.scrub(text) or ""

    def before(model: Any = None, context: Any = None, **_kwargs: Any) -> None:
        if isinstance(context, dict):
            context[_STARTED] = time.monotonic()

    def elapsed(context: Any) -> float:
        started = context.get(_STARTED) if isinstance(context, dict) else None
        return (time.monotonic() - started) * 1000 if started is not None else 0.0

    def region_of(context: Any) -> str | None:
        region = context.get("client_region") if isinstance(context, dict) else None
        return str(region) if region else None

    def after(model: Any = None, http_response: Any = None, parsed: Any = None, context: Any = None,
              event_name: Any = None, **_kwargs: Any) -> None:
        service, operation = _operation(model, event_name)
        meta = (parsed or {}).get("ResponseMetadata", {}) if isinstance(parsed, dict) else {}
        status = getattr(http_response, "status_code", None) or meta.get("HTTPStatusCode")
        error = (parsed or {}).get("Error", {}).get("Code") if isinstance(parsed, dict) else None
        sink(scrub(request_line(service, operation, region_of(context), status, meta.get("RequestId"),
                                meta.get("RetryAttempts"), elapsed(context), error)))

    def failed(exception: Any = None, context: Any = None, event_name: Any = None, **_kwargs: Any) -> None:
        service, operation = _operation(None, event_name)
        sink(scrub(request_line(service, operation, region_of(context), None, None, None, elapsed(context),
                                type(exception).__name__ if exception is not None else "error")))

    hooks = (("before-call", before), ("after-call", after), ("after-call-error", failed))
    for name, handler in hooks:
        events.register(name, handler, unique_id=f"{_UNIQUE}-{name}")
    try:
        yield
    finally:
        for name, _handler in hooks:
            events.unregister(name, unique_id=f"{_UNIQUE}-{name}")


__all__ = ["log_requests", "request_line"]
