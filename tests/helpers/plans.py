"""Key policies the repair plan starts from, shared by the plan's and the apply step's tests."""

from __future__ import annotations

ACCOUNT = "111122223333"
KEY = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
APP_ROLE = f"arn:aws:iam::{ACCOUNT}:role/PaymentsApp"
BREAK_GLASS = f"arn:aws:iam::{ACCOUNT}:role/BreakGlass"

#: The sole administrator was deleted: the policy shows its unique id (AROA…), which matches nobody.
SOLE_ADMIN_DELETED = {
    "Version": "2012-10-17",
    "Statement": [
        {"Sid": "KeyAdministrators", "Effect": "Allow", "Principal": {"AWS": "AROAEXAMPLEID0000000001"},
         "Action": "kms:*", "Resource": "*"},
        {"Sid": "AppUse", "Effect": "Allow", "Principal": {"AWS": APP_ROLE},
         "Action": ["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey*"], "Resource": "*"},
    ],
}
#: One role manages the key, and no statement delegates to IAM.
ROLE_ONLY = {
    "Version": "2012-10-17",
    "Statement": [{"Sid": "Admin", "Effect": "Allow", "Principal": {"AWS": BREAK_GLASS}, "Action": "kms:*",
                   "Resource": "*"}],
}
