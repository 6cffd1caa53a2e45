"""AWS's default key policy, the one copy (docs/engine.md, rules 2 and 7; "Where each rule comes from").

KMS Developer Guide, "Default key policy": a key created through the KMS API (SDKs, AWS CLI) without a key policy
gets one statement that "gives the AWS account that owns the KMS key permission to use IAM policies to allow access
to all AWS KMS operations on the KMS key": the account principal (``arn:PARTITION:iam::ACCOUNT:root``),
``kms:*``, ``"Resource": "*"``. The console's default policy begins with the same statement. The account principal
delegates to IAM (it grants nobody by itself) and covers the root user, which cannot be deleted: that is why the
guide calls the statement the one that "reduces the risk of the key becoming unmanageable".

The Sid and the policy ``Id`` carry no meaning for evaluation; they are the ones ``GetKeyPolicy`` returns for such a
key. Used by the history (a CreateKey without a policy), lint (a template's key without one), the fix plan and the
ticket (the statement they add or propose), and the lab (a key created without one). Pure: no I/O.
"""

from __future__ import annotations

from typing import Any

from kms_rescue.policy.partitions import DEFAULT_PARTITION, account_root_arn

#: The policy ``Id`` of the default key policy.
DEFAULT_POLICY_ID = "key-default-1"
#: The Sid AWS's default key policy gives its account-principal statement.
DELEGATION_SID = "Enable IAM User Permissions"


def delegation_statement(account: str, sid: str = DELEGATION_SID, partition: str = DEFAULT_PARTITION) -> dict[str, Any]:
    """The account-principal statement of AWS's default key policy, in the key's partition (``arn:aws-cn:…`` for a
    key in a China Region: AWS General Reference, "Amazon Resource Names (ARNs)")."""
    return {
        "Sid": sid,
        "Effect": "Allow",
        "Principal": {"AWS": account_root_arn(account, partition)},
        "Action": "kms:*",
        "Resource": "*",
    }


def default_key_policy(account: str, partition: str = DEFAULT_PARTITION) -> dict[str, Any]:
    """The key policy KMS attaches to a key created through the API without one (a new dict each call)."""
    return {"Version": "2012-10-17", "Id": DEFAULT_POLICY_ID, "Statement": [delegation_statement(account,
                                                                                             partition=partition)]}


__all__ = ["DEFAULT_POLICY_ID", "DELEGATION_SID", "default_key_policy", "delegation_statement"]
