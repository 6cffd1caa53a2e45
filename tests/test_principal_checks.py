"""The pure principal helpers (kms_rescue.principal_checks) that kms_rescue.aws asks before its IAM reads."""

from __future__ import annotations

from typing import Any

import pytest

from kms_rescue.principal_checks import is_role_session, mentions_principal_arn

ACCOUNT = "111122223333"


@pytest.mark.parametrize(
    ("arn", "session"),
    [
        (f"arn:aws:sts::{ACCOUNT}:assumed-role/Admin/alice", True),
        (f"arn:aws-cn:sts::{ACCOUNT}:assumed-role/Admin/alice", True),
        (f"arn:aws:iam::{ACCOUNT}:role/Admin", False),
        (f"arn:aws:iam::{ACCOUNT}:user/alice", False),
        (f"arn:aws:iam::{ACCOUNT}:root", False),
        ("not an arn", False),
        ("", False),
    ],
)
def test_is_role_session(arn: str, session: bool) -> None:
    assert is_role_session(arn) is session


def _policy(condition: dict[str, Any] | None) -> dict[str, Any]:
    statement: dict[str, Any] = {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                                 "Action": "kms:*", "Resource": "*"}
    if condition is not None:
        statement["Condition"] = condition
    return {"Version": "2012-10-17", "Statement": [statement]}


@pytest.mark.parametrize(
    ("documents", "mentions", "why"),
    [
        ([_policy(None)], False, "no condition"),
        ([_policy({"ArnLike": {"aws:PrincipalArn": f"arn:aws:iam::{ACCOUNT}:role/Admin"}})], True, "ArnLike"),
        ([_policy({"StringEquals": {"AWS:PRINCIPALARN": "x"}})], True, "condition keys are case-insensitive"),
        ([_policy({"StringEquals": {"aws:PrincipalAccount": ACCOUNT}})], False, "another key"),
        ([{"Statement": "broken"}, _policy({"ArnEquals": {"aws:PrincipalArn": "x"}})], True,
         "a document that does not parse is passed over, not fatal"),
        ([], False, "no documents"),
    ],
)
def test_mentions_principal_arn(documents: list[Any], mentions: bool, why: str) -> None:
    assert mentions_principal_arn(documents) is mentions, why
