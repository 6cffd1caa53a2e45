"""Principals, keys and policy builders of the engine's table tests (the KMS Developer Guide's and IAM User
Guide's examples use these shapes)."""

from __future__ import annotations

from typing import Any

ACCOUNT = "111122223333"
OTHER = "444455556666"
KEY = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
OTHER_KEY = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/0987dcba-09fe-87dc-65ba-ab0987654321"
ROOT = f"arn:aws:iam::{ACCOUNT}:root"
ALICE = f"arn:aws:iam::{ACCOUNT}:user/alice"
BOB = f"arn:aws:iam::{ACCOUNT}:user/bob"
ADMIN_ROLE = f"arn:aws:iam::{ACCOUNT}:role/KeyAdmin"
ADMIN_SESSION = f"arn:aws:sts::{ACCOUNT}:assumed-role/KeyAdmin/terraform"
ADMIN_OTHER_SESSION = f"arn:aws:sts::{ACCOUNT}:assumed-role/KeyAdmin/console"
BREAK_GLASS = f"arn:aws:iam::{ACCOUNT}:role/BreakGlass"
BREAK_GLASS_SESSION = f"arn:aws:sts::{ACCOUNT}:assumed-role/BreakGlass/oncall"
EXT_USER = f"arn:aws:iam::{OTHER}:user/carol"
EXT_ROOT = f"arn:aws:iam::{OTHER}:root"


def policy(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(principal: Any, action: Any = "kms:*", **extra: Any) -> dict[str, Any]:
    st = {"Effect": "Allow", "Principal": principal, "Action": action, "Resource": "*"}
    st.update(extra)
    return st


def deny(principal: Any = "*", action: Any = "kms:PutKeyPolicy", **extra: Any) -> dict[str, Any]:
    st: dict[str, Any] = {"Effect": "Deny", "Action": action, "Resource": "*"}
    if principal is not None:
        st["Principal"] = principal
    st.update(extra)
    return st


def identity(action: Any = "kms:*", resource: Any = "*", effect: str = "Allow", **extra: Any) -> dict[str, Any]:
    st = {"Effect": effect, "Action": action, "Resource": resource}
    st.update(extra)
    return policy(st)


# KMS Developer Guide, "Default key policy": the statement that enables IAM policies.
DEFAULT = policy({"Sid": "Enable IAM User Permissions", **allow({"AWS": ROOT})})
ROLE_ONLY = policy({"Sid": "KeyAdmin", **allow({"AWS": ADMIN_ROLE})})
