"""AWS's default key policy, one copy (kms_rescue.default_policy), and what it means to the engine.

KMS Developer Guide, "Default key policy"
(https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-default.html): a key created through the KMS API
without a policy gets one statement giving the owning account's principal (arn:PARTITION:iam::ACCOUNT:root)
kms:* on the key; the account principal lets IAM policies grant access, and covers the root user."""

from __future__ import annotations

import json
from typing import Any

import pytest

from kms_rescue.aws.history import default_key_policy as history_default
from kms_rescue.default_policy import DELEGATION_SID, default_key_policy, delegation_statement
from kms_rescue.lab._moto import default_key_policy as lab_default
from kms_rescue.plan import delegation_statement as plan_delegation
from kms_rescue.policy import evaluate
from kms_rescue.policy.sources import default_key_policy as lint_default

ACCOUNT = "111122223333"
KEY = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
ALLOW_PUT = {"Version": "2012-10-17",
             "Statement": [{"Effect": "Allow", "Action": "kms:PutKeyPolicy", "Resource": KEY}]}


def test_one_statement_for_the_account_principal() -> None:
    policy = default_key_policy(ACCOUNT)
    assert policy["Version"] == "2012-10-17" and len(policy["Statement"]) == 1
    assert policy["Statement"][0] == {"Sid": DELEGATION_SID, "Effect": "Allow",
                                      "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "kms:*",
                                      "Resource": "*"}


@pytest.mark.parametrize(("partition", "root"), [("aws", f"arn:aws:iam::{ACCOUNT}:root"),
                                                  ("aws-cn", f"arn:aws-cn:iam::{ACCOUNT}:root"),
                                                  ("aws-us-gov", f"arn:aws-us-gov:iam::{ACCOUNT}:root")])
def test_the_account_principal_is_in_the_keys_partition(partition: str, root: str) -> None:
    assert default_key_policy(ACCOUNT, partition)["Statement"][0]["Principal"] == {"AWS": root}


def test_every_user_of_the_default_policy_has_the_same_one() -> None:
    """History (CreateKey without a policy), lint (a template's key without one), the plan and the lab used to
    carry copies that differed (no Id in lint's, no partition in the lab's)."""
    assert history_default(ACCOUNT) == lint_default(ACCOUNT) == default_key_policy(ACCOUNT)
    assert json.loads(lab_default(ACCOUNT)) == default_key_policy(ACCOUNT)
    assert plan_delegation(ACCOUNT) == delegation_statement(ACCOUNT) == default_key_policy(ACCOUNT)["Statement"][0]
    assert lint_default(ACCOUNT, "aws-cn") == default_key_policy(ACCOUNT, "aws-cn")


def test_each_call_returns_a_new_document() -> None:
    first = default_key_policy(ACCOUNT)
    first["Statement"].clear()
    assert len(default_key_policy(ACCOUNT)["Statement"]) == 1


@pytest.mark.parametrize(
    ("principal", "identity", "allowed", "fact"),
    [
        (f"arn:aws:iam::{ACCOUNT}:root", [], True,
         "the account principal covers the root user, who needs no identity policy"),
        (f"arn:aws:iam::{ACCOUNT}:role/Admin", [], False,
         "the account principal grants nobody by itself: it delegates to IAM"),
        (f"arn:aws:iam::{ACCOUNT}:role/Admin", [ALLOW_PUT], True,
         "with the default policy, an identity policy of the account grants access"),
        ("arn:aws:iam::444455556666:role/Admin", [ALLOW_PUT], False,
         "another account's principal is not the key's account principal"),
    ],
)
def test_what_the_default_policy_allows(principal: str, identity: list[Any], allowed: bool, fact: str) -> None:
    result = evaluate(principal=principal, action="kms:PutKeyPolicy", resource=KEY,
                      key_policy=default_key_policy(ACCOUNT), identity_policies=identity)
    assert result.allowed is allowed, fact
