"""CloudTrail event history for the lab: an event store and ``LookupEvents``.

The records follow the KMS Developer Guide's CloudTrail examples ("Logging AWS KMS API calls with AWS CloudTrail",
e.g. the PutKeyPolicy entry: ``requestParameters`` carry ``keyId``, ``policyName``, ``policy`` as a JSON *string*
and ``bypassPolicyLockoutSafetyCheck``). ``LookupEvents`` follows the CloudTrail API reference: one lookup
attribute at most (EventId, EventName, ReadOnly, Username, ResourceType, ResourceName, EventSource, AccessKeyId),
``StartTime``/``EndTime``, at most 50 events a page with ``NextToken``, newest first, and only the last 90 days.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

LOOKUP_WINDOW = timedelta(days=90)
MAX_PAGE = 50
LOOKUP_ATTRIBUTES = (
    "EventId", "EventName", "ReadOnly", "Username", "ResourceType", "ResourceName", "EventSource", "AccessKeyId",
)


class LookupError_(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class TrailEvent:
    seq: int
    time: datetime
    account: str
    region: str
    name: str
    source: str
    username: str
    access_key_id: str | None
    read_only: bool
    resources: tuple[tuple[str, str], ...]  # (type, name)
    record: Mapping[str, Any] = field(compare=False)

    @property
    def event_id(self) -> str:
        return str(self.record["eventID"])

    def to_lookup(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "EventId": self.event_id,
            "EventName": self.name,
            "ReadOnly": "true" if self.read_only else "false",
            "EventTime": self.time.timestamp(),
            "EventSource": self.source,
            "Username": self.username,
            "Resources": [{"ResourceType": t, "ResourceName": n} for t, n in self.resources],
            "CloudTrailEvent": json.dumps(self.record),
        }
        if self.access_key_id:
            out["AccessKeyId"] = self.access_key_id
        return out

    def matches(self, key: str, value: str) -> bool:
        if key == "EventId":
            return self.event_id == value
        if key == "EventName":
            return self.name == value
        if key == "ReadOnly":
            return ("true" if self.read_only else "false") == value.lower()
        if key == "Username":
            return self.username == value
        if key == "EventSource":
            return self.source == value
        if key == "AccessKeyId":
            return self.access_key_id == value
        if key == "ResourceType":
            return any(t == value for t, _ in self.resources)
        # ResourceName: the ARN as recorded, or (lenient, for keys) the key id at its end.
        return any(n == value or n.endswith(f":key/{value}") for _, n in self.resources)


def iso(t: datetime) -> str:
    return t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def make_record(
    *,
    name: str,
    source: str,
    time: datetime,
    account: str,
    region: str,
    user_identity: Mapping[str, Any],
    request_parameters: Mapping[str, Any] | None,
    response_elements: Mapping[str, Any] | None = None,
    resources: tuple[tuple[str, str], ...] = (),
    error_code: str | None = None,
    error_message: str | None = None,
    source_ip: str = "127.0.0.1",
    user_agent: str = "kms-rescue-lab",
    read_only: bool = False,
    request_id: str | None = None,
) -> dict[str, Any]:
    record: dict[str, Any] = {
        "eventVersion": "1.08",
        "userIdentity": dict(user_identity),
        "eventTime": iso(time),
        "eventSource": source,
        "eventName": name,
        "awsRegion": region,
        "sourceIPAddress": source_ip,
        "userAgent": user_agent,
    }
    if error_code:
        record["errorCode"] = error_code
        record["errorMessage"] = error_message or ""
    record.update(
        {
            "requestParameters": dict(request_parameters) if request_parameters is not None else None,
            "responseElements": dict(response_elements) if response_elements is not None else None,
            "requestID": request_id or str(uuid.uuid4()),
            "eventID": str(uuid.uuid4()),
            "readOnly": read_only,
            "resources": [
                {"accountId": account, "type": t, "ARN": n} for t, n in resources
            ],
            "eventType": "AwsApiCall",
            "managementEvent": True,
            "recipientAccountId": account,
            "eventCategory": "Management",
        }
    )
    return record


class EventStore:
    """Thread-safe, append-only; events are kept per account and region like CloudTrail's event history."""

    def __init__(self) -> None:
        self._events: list[TrailEvent] = []
        self._lock = threading.Lock()
        self._seq = 0

    def add(self, record: Mapping[str, Any], *, time: datetime, account: str, region: str, username: str,
            access_key_id: str | None, resources: tuple[tuple[str, str], ...]) -> TrailEvent:
        with self._lock:
            self._seq += 1
            event = TrailEvent(
                seq=self._seq, time=time, account=account, region=region, name=str(record["eventName"]),
                source=str(record["eventSource"]), username=username, access_key_id=access_key_id,
                read_only=bool(record.get("readOnly")), resources=resources, record=record,
            )
            self._events.append(event)
            return event

    def all(self) -> list[TrailEvent]:
        with self._lock:
            return sorted(self._events, key=lambda e: (e.time, e.seq), reverse=True)

    def lookup(self, account: str, region: str, params: Mapping[str, Any], now: datetime) -> dict[str, Any]:
        """``LookupEvents``' response for ``params``, or :class:`LookupError_` (CloudTrail's error codes)."""
        attrs = params.get("LookupAttributes") or []
        if not isinstance(attrs, list) or len(attrs) > 1:
            raise LookupError_("InvalidLookupAttributesException", "You can specify only one lookup attribute.")
        attribute: tuple[str, str] | None = None
        if attrs:
            key, value = attrs[0].get("AttributeKey"), attrs[0].get("AttributeValue")
            if key not in LOOKUP_ATTRIBUTES or not isinstance(value, str):
                raise LookupError_(
                    "InvalidLookupAttributesException",
                    f"Invalid lookup attribute key {key!r}: use one of {', '.join(LOOKUP_ATTRIBUTES)}.",
                )
            attribute = (key, value)
        oldest = now - LOOKUP_WINDOW
        start = _time(params.get("StartTime")) or oldest
        end = _time(params.get("EndTime")) or now
        if start > end:
            raise LookupError_("InvalidTimeRangeException", "The start time must be earlier than the end time.")
        max_results = params.get("MaxResults", MAX_PAGE)
        if not isinstance(max_results, int) or not 1 <= max_results <= MAX_PAGE:
            raise LookupError_("InvalidMaxResultsException", f"MaxResults must be from 1 to {MAX_PAGE}.")
        category = params.get("EventCategory")
        if category not in (None, "insight"):
            raise LookupError_("InvalidEventCategoryException", f"Invalid event category {category!r}.")
        query = hashlib.sha256(json.dumps([account, region, attribute, str(params.get("StartTime")),
                                           str(params.get("EndTime")), category]).encode()).hexdigest()[:16]
        after: tuple[float, int] | None = None
        token = params.get("NextToken")
        if token:
            try:
                decoded = json.loads(base64.urlsafe_b64decode(token.encode()))
                if decoded["q"] != query:
                    raise ValueError("the token belongs to another query")
                after = (float(decoded["t"]), int(decoded["s"]))
            except (ValueError, KeyError, TypeError):
                raise LookupError_("InvalidNextTokenException", "Invalid NextToken.") from None
        if category == "insight":
            return {"Events": []}
        candidates = [
            e for e in self.all()
            if e.account == account and e.region == region and max(start, oldest) <= e.time <= end
            and (attribute is None or e.matches(*attribute))
        ]
        if after is not None:
            candidates = [e for e in candidates if (e.time.timestamp(), e.seq) < after]
        page = candidates[:max_results]
        out: dict[str, Any] = {"Events": [e.to_lookup() for e in page]}
        if len(candidates) > max_results:
            last = page[-1]
            out["NextToken"] = base64.urlsafe_b64encode(
                json.dumps({"q": query, "t": last.time.timestamp(), "s": last.seq}).encode()
            ).decode()
        return out


def _time(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(float(value), tz=timezone.utc)
    if isinstance(value, str):
        try:
            return datetime.fromtimestamp(float(value), tz=timezone.utc)
        except ValueError:
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
    raise LookupError_("InvalidTimeRangeException", f"Invalid time {value!r}.")
