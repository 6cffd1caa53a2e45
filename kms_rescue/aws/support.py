"""Open an AWS Support case for a locked-out key, or say why not and fall back to the drafted ticket.

The AWS Support API is a global service with one endpoint per partition (AWS General Reference, "AWS Support
endpoints and quotas": us-east-1 in the commercial partition); the Region that signs for it comes from botocore's
endpoint data for the key's partition (:func:`kms_rescue.policy.partitions.global_endpoint_region`), not a constant.
The service and category codes come from
DescribeServices (and the severity from DescribeSeverityLevels), never from a guess. Calling the API needs a
Business, Enterprise On-Ramp or Enterprise Support plan; without one AWS answers ``SubscriptionRequiredException``
and we fall back to the draft plus the console link (AWS Support API reference, CreateCase).

Nothing here raises an AWS exception: the result says whether a case was opened and, if not, why.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from kms_rescue.aws.classify import classify_exception
from kms_rescue.aws.probe import IdentityRun, ProbeSettings
from kms_rescue.aws.runtime import AwsRuntime
from kms_rescue.aws.sessions import SessionOptions
from kms_rescue.policy.partitions import DEFAULT_PARTITION, global_endpoint_region

#: The Support API endpoint's Region in the commercial partition (see :func:`support_region` for the others).
SUPPORT_REGION = "us-east-1"
#: Where a case is opened by hand (the fallback).
CONSOLE_CASE_URL = "https://support.console.aws.amazon.com/support/home#/case/create"
#: CreateCase's communicationBody limit.
MAX_BODY = 8000
SEVERITY_PREFERENCE = ("high", "normal", "low")


@dataclass(frozen=True)
class CaseResult:
    """``opened`` with ``case_id``, or the ``fallback_reason`` (and the console link to open it by hand)."""

    opened: bool
    case_id: str | None = None
    service_code: str | None = None
    category_code: str | None = None
    severity_code: str | None = None
    fallback_reason: str | None = None
    error_code: str | None = None
    console_url: str = CONSOLE_CASE_URL
    truncated: bool = False


def _code_and_message(exc: BaseException) -> tuple[str, str]:
    c = classify_exception(exc)
    return c.error_code or type(exc).__name__, (c.message or "").split("\n")[0]


def choose_service(services: Sequence[dict[str, Any]]) -> tuple[str, str] | None:
    """(serviceCode, categoryCode) for KMS key access from DescribeServices' answer: the service whose name or code
    names the Key Management Service, and its category about access, permissions or key policies when there is
    one, else its general guidance category, else its first."""
    def is_kms(s: dict[str, Any]) -> bool:
        name = str(s.get("name", "")).lower()
        code = str(s.get("code", "")).lower()
        return "key management service" in name or "key-management-service" in code or code in ("kms", "aws-kms")

    service = next((s for s in services if is_kms(s)), None)
    if service is None:
        return None
    categories = [c for c in service.get("categories", []) if c.get("code")]
    if not categories:
        return None
    for words in (("key policy", "access", "permission"), ("general guidance",)):
        for c in categories:
            if any(w in str(c.get("name", "")).lower() for w in words):
                return str(service["code"]), str(c["code"])
    return str(service["code"]), str(categories[0]["code"])


def choose_severity(levels: Sequence[dict[str, Any]]) -> str | None:
    codes = [str(lv.get("code")) for lv in levels if lv.get("code")]
    for wanted in SEVERITY_PREFERENCE:
        if wanted in codes:
            return wanted
    return codes[0] if codes else None


def open_case(
    support: Any,
    *,
    subject: str,
    body: str,
    cc: Sequence[str] = (),
    on_step: Callable[[str], None] | None = None,
) -> CaseResult:
    """Open the case with a Support client (see :func:`support_client_for`)."""
    say = on_step or (lambda _msg: None)
    truncated = False
    if len(body) > MAX_BODY:
        note = "\n\n[truncated: the full ticket is attached to the internal escalation]"
        body = body[: MAX_BODY - len(note)] + note
        truncated = True
    try:
        say("support:DescribeServices")
        services = support.describe_services(language="en").get("services", [])
    except Exception as exc:
        return _fallback(exc, truncated)
    chosen = choose_service(services)
    if chosen is None:
        return CaseResult(False, fallback_reason="DescribeServices listed no Key Management Service category",
                          truncated=truncated)
    service_code, category_code = chosen
    try:
        say("support:DescribeSeverityLevels")
        severity = choose_severity(support.describe_severity_levels(language="en").get("severityLevels", []))
    except Exception as exc:
        return _fallback(exc, truncated, service_code, category_code)
    kwargs: dict[str, Any] = {
        "subject": subject[:250],
        "serviceCode": service_code,
        "categoryCode": category_code,
        "communicationBody": body,
        "language": "en",
        "issueType": "technical",
    }
    if severity:
        kwargs["severityCode"] = severity
    if cc:
        kwargs["ccEmailAddresses"] = list(cc)[:10]
    try:
        say("support:CreateCase")
        got = support.create_case(**kwargs)
    except Exception as exc:
        return _fallback(exc, truncated, service_code, category_code, severity)
    return CaseResult(True, case_id=got.get("caseId"), service_code=service_code, category_code=category_code,
                      severity_code=severity, truncated=truncated)


def _fallback(exc: BaseException, truncated: bool, service: str | None = None, category: str | None = None,
              severity: str | None = None) -> CaseResult:
    code, message = _code_and_message(exc)
    if code == "SubscriptionRequiredException":
        reason = ("the account has no Business, Enterprise On-Ramp or Enterprise Support plan, which the AWS "
                  "Support API needs (SubscriptionRequiredException)")
    elif code in ("AccessDenied", "AccessDeniedException"):
        reason = f"this identity may not use the AWS Support API ({code})"
    else:
        reason = f"the AWS Support API answered {code}" + (f": {message}" if message else "")
    return CaseResult(False, service_code=service, category_code=category, severity_code=severity,
                      fallback_reason=reason, error_code=code, truncated=truncated)


def support_region(partition: str = DEFAULT_PARTITION) -> str | None:
    """The Region of the AWS Support API's endpoint in ``partition`` (botocore's endpoint data), or None when
    botocore lists no Support endpoint there."""
    return global_endpoint_region("support", partition)


def support_client_for(spec: Any, *, timeout: float = 10.0, environ: Any = None,
                       partition: str = DEFAULT_PARTITION,
                       runtime: AwsRuntime | None = None) -> tuple[Any | None, str | None]:
    """A Support client on ``partition``'s Support endpoint for an identity (an
    :class:`~kms_rescue.aws.results.IdentitySpec`), or (None, why not)."""
    region = support_region(partition)
    if region is None:
        return None, f"botocore lists no AWS Support API endpoint in the {partition} partition"
    settings = ProbeSettings(options=SessionOptions(timeout=timeout, max_attempts=2), environ=environ,
                             read_identity_policies=False, runtime=runtime or AwsRuntime())
    run = IdentityRun(spec, settings, region)
    if not run.connect() or run.session is None:
        last = run.probe.calls[-1] if run.probe.calls else None
        return None, (f"the identity {spec.name} could not be used"
                      + (f" ({last.error_code})" if last and last.error_code else ""))
    return run.client("support"), None


__all__ = ["CONSOLE_CASE_URL", "SUPPORT_REGION", "CaseResult", "choose_service", "choose_severity", "open_case",
           "support_client_for", "support_region"]
