"""The key's history from CloudTrail: who created it, who changed its policy and when, and the last policy.

CloudTrail event history (LookupEvents) keeps 90 days of management events per Region and allows two lookup
requests per second per account and Region (CloudTrail API reference, LookupEvents); a token bucket keeps us under
that. PutKeyPolicy and CreateKey events carry the policy in ``requestParameters`` (KMS Developer Guide, "Logging
AWS KMS API calls with AWS CloudTrail"; docs/report.md, History). Older history needs a trail and Athena:
:func:`athena_query` prints the query.
"""

from __future__ import annotations

import datetime as _dt
import functools
import json
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from kms_rescue.athena import KEY_EVENTS
from kms_rescue.athena import athena_query as athena_query  # re-exported: the query text lives in athena.py
from kms_rescue.aws.results import CallResult, HistoryEvent
from kms_rescue.default_policy import default_key_policy
from kms_rescue.policy.partitions import DEFAULT_PARTITION, is_region_code, partition_for_region

#: The management events that shape who can manage a key.
#: CloudTrail's LookupEvents limit: two requests per second per account per Region.
LOOKUP_RATE = 2.0
MAX_PAGES = 40  # 40 pages x 50 events: far more than one key's management history


class TokenBucket:
    """At most ``rate`` acquisitions per second on average, bursts up to ``capacity``. Thread-safe; the clock and
    sleep are injectable so tests need not wait."""

    def __init__(
        self,
        rate: float,
        capacity: float = 1.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.capacity = capacity
        self._tokens = capacity
        self._clock = clock
        self._sleep = sleep
        self._last = clock()
        self._lock = threading.Lock()

    def _refill(self) -> float:
        """The tokens available now (call with the lock held)."""
        now = self._clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.rate)
        self._last = now
        return self._tokens

    def acquire(self) -> float:
        """Take one token, sleeping until one is available. Returns the time slept."""
        slept = 0.0
        while True:
            with self._lock:
                if self._refill() >= 1:
                    self._tokens -= 1
                    return slept
                wait = (1 - self._tokens) / self.rate
            self._sleep(wait)
            slept += wait

    def wait(self) -> None:
        """Sleep until a token is available, without taking it (so a caller can choose what to spend it on with
        what it knows by then)."""
        while True:
            with self._lock:
                if self._refill() >= 1:
                    return
                wait = (1 - self._tokens) / self.rate
            self._sleep(wait)


def _partition_of(region: Any) -> str:
    """The partition of a Region (botocore's partition data); the commercial one when the Region is unknown."""
    if isinstance(region, str) and is_region_code(region):
        return partition_for_region(region).id
    return DEFAULT_PARTITION


def _iso(value: Any) -> str:
    if isinstance(value, _dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=_dt.timezone.utc)
        return value.astimezone(_dt.timezone.utc).isoformat().replace("+00:00", "Z")
    return str(value or "")


def _policy_from(params: dict[str, Any]) -> dict[str, Any] | None:
    raw = params.get("policy")
    if raw is None:
        raw = params.get("Policy")
    if isinstance(raw, dict):
        return raw
    if isinstance(raw, str):
        try:
            doc = json.loads(raw)
        except ValueError:
            return None
        return doc if isinstance(doc, dict) else None
    return None


def parse_event(raw: dict[str, Any], *, key_account: str | None = None) -> HistoryEvent | None:
    """A LookupEvents ``Events`` item as a :class:`HistoryEvent`; None for other events."""
    name = raw.get("EventName")
    body: dict[str, Any] = {}
    text = raw.get("CloudTrailEvent")
    if isinstance(text, str):
        try:
            parsed = json.loads(text)
            body = parsed if isinstance(parsed, dict) else {}
        except ValueError:
            body = {}
    name = name or body.get("eventName")
    if name not in KEY_EVENTS:
        return None
    params = body.get("requestParameters") or {}
    if not isinstance(params, dict):
        params = {}
    identity = body.get("userIdentity") or {}
    actor = identity.get("arn") if isinstance(identity, dict) else None
    policy = _policy_from(params) if name in ("CreateKey", "PutKeyPolicy") else None
    note = None
    error = body.get("errorCode")
    if name == "CreateKey" and policy is None and not error and "policy" not in params:
        account = key_account or body.get("recipientAccountId")
        if account:
            policy = default_key_policy(str(account), _partition_of(body.get("awsRegion")))
            note = "the default key policy: CreateKey had no Policy parameter"
    return HistoryEvent(
        event_id=str(raw.get("EventId") or body.get("eventID") or ""),
        name=str(name),
        time=_iso(raw.get("EventTime") or body.get("eventTime")),
        actor=actor,
        error_code=error,
        policy=policy,
        policy_note=note,
    )


def lookup_key_events(
    cloudtrail: Any,
    resource_names: Iterable[str],
    call: Callable[[str, str | None, Callable[[], Any]], tuple[Any, CallResult]],
    *,
    bucket: TokenBucket,
    key_account: str | None = None,
    max_pages: int = MAX_PAGES,
) -> tuple[list[HistoryEvent], CallResult | None, int, bool]:
    """Page through LookupEvents for each resource name (the key ARN, then the key id if the ARN found nothing).

    Returns (events oldest first, the failing call's record or None, requests made, truncated)."""
    events: dict[str, HistoryEvent] = {}
    requests = 0
    truncated = False
    for resource in resource_names:
        token: str | None = None
        pages = 0
        while True:
            if pages >= max_pages:
                truncated = True
                break
            kwargs: dict[str, Any] = {
                "LookupAttributes": [{"AttributeKey": "ResourceName", "AttributeValue": resource}],
                "MaxResults": 50,
            }
            if token:
                kwargs["NextToken"] = token
            bucket.acquire()
            requests += 1
            pages += 1
            got, rec = call("cloudtrail:LookupEvents", resource, functools.partial(cloudtrail.lookup_events, **kwargs))
            if got is None:
                return _ordered(events), rec, requests, truncated
            for raw in got.get("Events", []):
                ev = parse_event(raw, key_account=key_account)
                if ev is not None:
                    events.setdefault(ev.event_id or f"{ev.name}@{ev.time}", ev)
            token = got.get("NextToken")
            if not token:
                break
        if events:
            break
    return _ordered(events), None, requests, truncated


def _ordered(events: dict[str, HistoryEvent]) -> list[HistoryEvent]:
    return sorted(events.values(), key=lambda e: (e.time, e.event_id))


