"""A generated lab scenario for benchmarks: many keys over several Regions and accounts, with a seeded share of
every risk an audit looks for (docs/lab.md, "A generated scenario").

The same arguments (and seed) give the same scenario, key ids included, and :attr:`Generated.counts` says how many
keys carry each risk, so tests and benchmarks know what an audit must find. Each key carries its risk in its
``risk`` tag and its ``description``. Pure: builds a scenario document (a dict), nothing else.
"""

from __future__ import annotations

import random
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

#: The accounts and Regions of the default generated scenario: a management account and two members.
DEFAULT_ACCOUNTS = ("111122223333", "444455556666", "123456789012")
DEFAULT_REGIONS = ("us-east-1", "us-west-2", "eu-west-1", "ap-southeast-2")
ACCESS_ROLE = "OrganizationAccountAccessRole"
SSO_PATH = "/aws-reserved/sso.amazonaws.com/"
SSO_ROLE = "AWSReservedSSO_AdministratorAccess_0123456789abcdef"
DEPARTED = ("Departed1", "Departed2", "Departed3", "Departed4")  # deleted roles, in every account
MAX_KEYS = 20_000
V = "2012-10-17"

#: Each risk and its share of the keys. ``healthy`` takes what the rounding leaves.
RISKS: Mapping[str, float] = {
    "healthy": 0.40,
    "one_manager": 0.08,  # only the KeyAdmin role can manage it: one deletion from a lockout
    "orphaned_principal": 0.08,  # names a deleted role (shown as its AROA... unique id) beside the account
    "sso_reserved_role": 0.07,  # names an Identity Center reserved role by ARN beside the account
    "no_account_principal": 0.07,  # two named admins, no account principal (IAM and root cannot help)
    "window_closes": 0.06,  # the only admin statement holds until a date in the future
    "pending_deletion": 0.06,
    "policy_unreadable": 0.06,  # denies kms:GetKeyPolicy to everyone
    "locked_out": 0.12,  # the only admin was deleted
}


#: The verdict ``kms-rescue report KEY --profile auditor`` reaches for a key of each risk in the auditor's own
#: account (docs/report.md, "The verdict"; tests/test_lab_generate.py runs the report for one key of each).
EXPECTED_VERDICTS: Mapping[str, str] = {
    "healthy": "manageable",  # the auditor's kms:* through the account principal
    "one_manager": "recoverable",  # KeyAdmin exists and can
    "orphaned_principal": "manageable",
    "sso_reserved_role": "manageable",
    "no_account_principal": "recoverable",  # KeyAdmin or BreakGlass can
    "window_closes": "recoverable",  # KeyAdmin can, until the window closes
    "pending_deletion": "manageable",  # key states do not block policy management
    "policy_unreadable": "undetermined",  # nobody reads the policy, and no history recovers it
    "locked_out": "locked_out",
}


@dataclass(frozen=True)
class Generated:
    """A generated scenario document and what it holds."""

    scenario: dict[str, Any]
    #: risk -> number of keys with it (every risk of :data:`RISKS`, zeros included)
    counts: Mapping[str, int]
    #: key id -> its risk
    risks: Mapping[str, str] = field(repr=False)
    #: (account, region) -> number of keys there
    placement: Mapping[tuple[str, str], int] = field(repr=False)


def risk_counts(keys: int) -> dict[str, int]:
    """How many of ``keys`` keys carry each risk: each share rounded down, the rest healthy."""
    counts = {risk: int(keys * share) for risk, share in RISKS.items() if risk != "healthy"}
    return {"healthy": keys - sum(counts.values()), **counts}


def _allow(principal: str | list[str], actions: str | list[str], sid: str, condition: Mapping[str, Any] | None = None
           ) -> dict[str, Any]:
    st: dict[str, Any] = {"Sid": sid, "Effect": "Allow", "Principal": {"AWS": principal}, "Action": actions,
                          "Resource": "*"}
    if condition:
        st["Condition"] = dict(condition)
    return st


READ = ["kms:DescribeKey", "kms:GetKeyPolicy", "kms:ListResourceTags", "kms:GetKeyRotationStatus"]


def _policy(risk: str, account: str, rng: random.Random, now: datetime) -> dict[str, Any] | None:
    """The key policy for ``risk`` in ``account`` (None: the default key policy)."""
    root = f"arn:aws:iam::{account}:root"
    role = f"arn:aws:iam::{account}:role/"
    auditors = _allow(role + "Auditor", READ, "Auditors read")
    if risk in ("pending_deletion",):
        return None
    if risk == "healthy":
        statements = [_allow(root, "kms:*", "Enable IAM User Permissions"),
                      _allow(role + "KeyAdmin", "kms:*", "Key administrators")]
    elif risk == "one_manager":
        statements = [_allow(role + "KeyAdmin", "kms:*", "Key administrators"), auditors]
    elif risk == "orphaned_principal":
        statements = [_allow(root, "kms:*", "Enable IAM User Permissions"),
                      _allow(role + rng.choice(DEPARTED), "kms:*", "Former administrator")]
    elif risk == "sso_reserved_role":
        statements = [_allow(root, "kms:*", "Enable IAM User Permissions"),
                      _allow(f"arn:aws:iam::{account}:role{SSO_PATH}{SSO_ROLE}", "kms:*", "Identity Center admins")]
    elif risk == "no_account_principal":
        statements = [_allow([role + "KeyAdmin", role + "BreakGlass"], "kms:*", "Key administrators"), auditors]
    elif risk == "window_closes":
        until = (now + timedelta(days=rng.randint(30, 365))).strftime("%Y-%m-%dT00:00:00Z")
        statements = [_allow(role + "KeyAdmin", "kms:*", "Administrators until the contract ends",
                             {"DateLessThan": {"aws:CurrentTime": until}}), auditors]
    elif risk == "policy_unreadable":
        statements = [_allow(root, "kms:*", "Enable IAM User Permissions"),
                      {"Sid": "Nobody reads this policy", "Effect": "Deny", "Principal": {"AWS": "*"},
                       "Action": "kms:GetKeyPolicy", "Resource": "*"}]
    elif risk == "locked_out":
        statements = [_allow(role + rng.choice(DEPARTED), "kms:*", "The only administrator"), auditors]
    else:  # pragma: no cover - RISKS lists every risk handled above
        raise ValueError(f"unknown risk {risk}")
    return {"Version": V, "Id": f"generated-{risk}", "Statement": statements}


def _identities(accounts: Sequence[str]) -> list[dict[str, Any]]:
    mgmt = accounts[0]
    audit_policy = {"Version": V, "Statement": [
        {"Effect": "Allow", "Action": ["kms:*", "iam:Get*", "iam:List*", "ec2:DescribeRegions",
                                       "cloudtrail:LookupEvents", "organizations:Describe*", "organizations:List*"],
         "Resource": "*"},
        {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": f"arn:aws:iam::*:role/{ACCESS_ROLE}"},
    ]}
    out: list[dict[str, Any]] = [{"profile": "auditor", "role": "Auditor", "policies": [audit_policy],
            "description": f"the management account's auditor: may assume {ACCESS_ROLE} in every member"}]
    out += [{"profile": f"auditor-{acct}", "role": "Auditor", "account": acct, "policies": [audit_policy]}
            for acct in accounts[1:]]
    out.append({"profile": "root", "root": True, "description": f"the root user of {mgmt}"})
    return out


def _roles(accounts: Sequence[str]) -> list[dict[str, Any]]:
    admin = {"Version": V, "Statement": [{"Effect": "Allow", "Action": "kms:*", "Resource": "*"}]}
    roles: list[dict[str, Any]] = []
    for acct in accounts:
        extra = {} if acct == accounts[0] else {"account": acct}
        roles += [
            {"name": "KeyAdmin", "policies": [admin], **extra},
            {"name": "BreakGlass", "policies": [admin], **extra},
            {"name": SSO_ROLE, "path": SSO_PATH, "policies": [admin], **extra},
        ]
    return roles


def generate_scenario(keys: int = 2000, *, accounts: Sequence[str] = DEFAULT_ACCOUNTS,
                      regions: Sequence[str] = DEFAULT_REGIONS, seed: int = 0, now: datetime | None = None,
                      alias_every: int = 4) -> Generated:
    """A scenario of ``keys`` keys spread evenly over ``accounts`` x ``regions`` (the first account is the
    organization's management account and the scenario's own, the first Region the profiles'), each key with one
    risk of :data:`RISKS` in its share (:func:`risk_counts`), shuffled by ``seed``. Every ``alias_every``-th key
    has an alias. ``now`` (default: the current UTC time) dates the closing windows."""
    if not 1 <= keys <= MAX_KEYS:
        raise ValueError(f"the generated scenario has from 1 to {MAX_KEYS} keys, not {keys}")
    if not accounts or not regions or len(set(accounts)) != len(accounts) or len(set(regions)) != len(regions):
        raise ValueError("name at least one account and one Region, each once")
    rng = random.Random(seed)
    now = now or datetime.now(timezone.utc)
    counts = risk_counts(keys)
    order = [risk for risk, n in counts.items() for _ in range(n)]
    rng.shuffle(order)
    places = [(a, r) for a in accounts for r in regions]
    key_docs: list[dict[str, Any]] = []
    risks: dict[str, str] = {}
    placement: Counter[tuple[str, str]] = Counter()
    for n, risk in enumerate(order):
        account, region = places[n % len(places)]
        key_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        doc: dict[str, Any] = {"id": key_id, "description": f"generated key {n}: {risk}", "tags": {"risk": risk}}
        if region != regions[0]:
            doc["region"] = region
        if account != accounts[0]:
            doc["account"] = account
        policy = _policy(risk, account, rng, now)
        if policy is not None:
            doc["policy"] = policy
        if risk == "pending_deletion":
            doc["state"] = "PendingDeletion"
        if alias_every and n % alias_every == 0:
            doc["alias"] = f"alias/generated-{n}"
        key_docs.append(doc)
        risks[key_id] = risk
        placement[(account, region)] += 1
    scenario: dict[str, Any] = {
        "name": f"generated-{keys}-keys",
        "description": (f"Generated: {keys} keys over {len(regions)} Regions and {len(accounts)} accounts (seed "
                        f"{seed}), with a seeded share of every audit risk; each key's risk is its `risk` tag."),
        "account": accounts[0],
        "region": regions[0],
        "enabled_regions": list(regions),
        "identities": _identities(accounts),
        "roles": _roles(accounts),
        # The departed roles of every account: the scenario's own by role/NAME, the others' by ARN.
        "deleted": [f"role/{name}" if acct == accounts[0] else f"arn:aws:iam::{acct}:role/{name}"
                    for acct in accounts for name in DEPARTED],
        "keys": key_docs,
    }
    if len(accounts) > 1:
        scenario["organization"] = {
            "management_account": accounts[0], "accounts": {a: "root" for a in accounts[1:]},
            "access_role": ACCESS_ROLE,
        }
    return Generated(scenario=scenario, counts=counts, risks=risks, placement=dict(placement))
