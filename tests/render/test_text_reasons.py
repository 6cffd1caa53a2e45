"""The text report's reason line for an identity whose calls failed names them in a fixed order (credentials, the
key's own reads, then IAM and the rest), not in the order the concurrent calls happened to end."""

from __future__ import annotations

import itertools

from kms_rescue.observations import CallResult
from kms_rescue.render.text import failure_reason
from kms_rescue.report import IdentityReport

DENIED = [
    CallResult("iam:GetRole", "access_denied", "AccessDenied"),
    CallResult("organizations:DescribeOrganization", "error", "AWSOrganizationsNotInUseException"),
    CallResult("iam:ListAttachedRolePolicies", "access_denied", "AccessDenied"),
    CallResult("kms:ListGrants", "access_denied", "AccessDeniedException"),
    CallResult("kms:GetKeyPolicy", "access_denied", "AccessDeniedException"),
    CallResult("kms:DescribeKey", "access_denied", "AccessDeniedException"),
]


def _identity(calls: tuple[CallResult, ...]) -> IdentityReport:
    return IdentityReport(name="intern", source="profile", profile="intern", role_arn=None, base=None,
                          session_name=None, kind="static", arn="arn:aws:iam::111122223333:user/intern",
                          account="111122223333", status="ok", hint=None,
                          calls=(CallResult("sts:GetCallerIdentity", "ok"), *calls))


def test_the_key_reads_come_first_whatever_order_the_calls_ended_in() -> None:
    key_reads = ("kms:DescribeKey access_denied (AccessDeniedException); kms:GetKeyPolicy access_denied "
                 "(AccessDeniedException); kms:ListGrants access_denied (AccessDeniedException); iam:")
    for order in itertools.islice(itertools.permutations(DENIED), 0, None, 37):  # 20 of the 720 orders
        line = failure_reason(_identity(order))
        assert line is not None and line.startswith(key_reads) and line.endswith("; and 2 more"), line


def test_iam_failures_keep_the_order_they_were_made_in() -> None:
    line = failure_reason(_identity(tuple(DENIED[:3])))
    assert line == ("iam:GetRole access_denied (AccessDenied); iam:ListAttachedRolePolicies access_denied "
                    "(AccessDenied); organizations:DescribeOrganization error (AWSOrganizationsNotInUseException)")


def test_no_failure_no_reason() -> None:
    assert failure_reason(_identity(())) is None
