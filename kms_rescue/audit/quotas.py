"""KMS's documented request quotas for the operations an audit makes, and the share of them an audit may use.

From the KMS Developer Guide, "Request quotas" (https://docs.aws.amazon.com/kms/latest/developerguide/
requests-per-second.html), table "Request quotas for each AWS KMS API operation", default values in requests per
second: ``DescribeKey`` 2,000, ``GetKeyPolicy`` 1,000, ``ListKeys`` 500, ``ListAliases`` 500, ``ListGrants`` 100.
The same page ("Applying request quotas"): each quota is calculated independently per operation, for each account
and Region, and throttling counts the requests of *all* principals of the account, AWS services acting on its
behalf included. So an audit never takes a whole quota: it paces itself to :data:`AUDIT_SHARE` of each one, per
account and Region, leaving the rest to the workloads that use the keys (docs/audit.md, "Speed and
resuming"). All quotas are adjustable: for an account with raised quotas, give
:func:`kms_rescue.audit.scheduler.run_audit` a larger ``rate_share``.

Pure: no boto3 here.
"""

from __future__ import annotations

#: Default request quotas (requests per second, per account and Region) of the operations an audit calls.
KMS_REQUEST_QUOTAS: dict[str, float] = {
    "DescribeKey": 2000.0,
    "GetKeyPolicy": 1000.0,
    "ListKeys": 500.0,
    "ListAliases": 500.0,
    "ListGrants": 100.0,
    # Also on the page, read by an audit now and then: ListResourceTags 2,000, GetKeyRotationStatus 1,000,
    # ListKeyPolicies 100, ListRetirableGrants 100.
    "ListResourceTags": 2000.0,
    "GetKeyRotationStatus": 1000.0,
    "ListKeyPolicies": 100.0,
    "ListRetirableGrants": 100.0,
}

#: The share of each quota one audit takes (the account's own workloads keep the rest).
AUDIT_SHARE = 0.5

#: Operations the page does not list for KMS (none an audit makes): paced at the lowest listed rate.
FALLBACK_RATE = min(KMS_REQUEST_QUOTAS.values())


def audit_rate(operation: str, share: float = AUDIT_SHARE) -> float:
    """Requests per second an audit allows itself for ``operation`` in one account and Region."""
    if not 0.0 < share <= 1.0:
        raise ValueError(f"the share of a quota is a fraction above 0 and at most 1, not {share}")
    return KMS_REQUEST_QUOTAS.get(operation, FALLBACK_RATE) * share


__all__ = ["AUDIT_SHARE", "FALLBACK_RATE", "KMS_REQUEST_QUOTAS", "audit_rate"]
