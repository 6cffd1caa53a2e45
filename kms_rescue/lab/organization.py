"""A scenario's AWS Organizations organization: its root, OUs, member accounts, SCPs and RCPs.

Modelled on the AWS Organizations User Guide: an organization has one root; OUs nest under the root or other OUs;
each account sits under the root or one OU. When a policy type is enabled, AWS attaches its full-access policy to
every level ("SCP evaluation": ``FullAWSAccess``, which may be detached; "RCP evaluation": ``RCPFullAWSAccess``,
which cannot). SCPs and RCPs apply through every level from the root to the account, and not to the management
account ("Service control policies (SCPs)", "Resource control policies (RCPs)").

Ids are derived from the scenario (the same scenario always has the same ids), in the formats the Organizations API
reference gives: ``o-`` + 10 characters, ``r-`` + 4, ``ou-<root>-<8>``, ``p-`` + 8.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

PolicyType = Literal["SERVICE_CONTROL_POLICY", "RESOURCE_CONTROL_POLICY"]
SCP: PolicyType = "SERVICE_CONTROL_POLICY"
RCP: PolicyType = "RESOURCE_CONTROL_POLICY"
FULL_AWS_ACCESS_ID = "p-FullAWSAccess"
RCP_FULL_AWS_ACCESS_ID = "p-RCPFullAWSAccess"
FULL_ACCESS_DOCUMENT: Mapping[str, Any] = {
    "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
}
RCP_FULL_ACCESS_DOCUMENT: Mapping[str, Any] = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"}],
}


class OrgProblem(ValueError):
    """A problem in the scenario's ``organization``; the message starts with its JSON path."""


def _digest(*parts: str, length: int) -> str:
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:length]


@dataclass(frozen=True)
class OrgPolicy:
    id: str
    name: str
    type: PolicyType
    document: Mapping[str, Any]
    targets: tuple[str, ...]  # target ids: the root's, OUs', account ids
    description: str = ""
    aws_managed: bool = False

    @property
    def content(self) -> str:
        return json.dumps(self.document)


@dataclass(frozen=True)
class OrgUnit:
    id: str
    name: str
    parent: str  # the parent's id (the root's or an OU's)


@dataclass(frozen=True)
class Organization:
    id: str
    management_account: str
    root_id: str
    units: tuple[OrgUnit, ...] = ()
    #: member account id -> its parent's id (the management account sits under the root)
    parents: Mapping[str, str] = field(default_factory=dict)
    scps: tuple[OrgPolicy, ...] | None = None  # None: the policy type is not enabled
    rcps: tuple[OrgPolicy, ...] | None = None
    #: The role created in every member account, trusting the management account (None: none is created).
    access_role: str | None = None
    #: Account id -> the name ListAccounts shows.
    account_names: Mapping[str, str] = field(default_factory=dict)

    @property
    def accounts(self) -> tuple[str, ...]:
        """Every account of the organization: the management account first, then the members in scenario order."""
        return tuple(self.parents)

    @property
    def members(self) -> tuple[str, ...]:
        return tuple(a for a in self.parents if a != self.management_account)

    def account_name(self, account: str) -> str:
        return self.account_names.get(account, f"account-{account}")

    @property
    def arn(self) -> str:
        return f"arn:aws:organizations::{self.management_account}:organization/{self.id}"

    def is_member(self, account: str) -> bool:
        return account in self.parents

    def parent_of(self, target: str) -> str | None:
        """The parent id of an account or OU, None for the root (or an unknown target)."""
        if target in self.parents:
            return self.parents[target]
        for unit in self.units:
            if unit.id == target:
                return unit.parent
        return None

    def path(self, account: str) -> list[str]:
        """Target ids from the root down to the account itself."""
        out = [account]
        parent = self.parent_of(account)
        while parent is not None:
            out.append(parent)
            parent = self.parent_of(parent)
        return list(reversed(out))

    def policies(self, kind: PolicyType) -> tuple[OrgPolicy, ...]:
        found = self.scps if kind == SCP else self.rcps
        return found or ()

    def attached(self, kind: PolicyType, target: str) -> list[OrgPolicy]:
        return [p for p in self.policies(kind) if target in p.targets]

    def policy(self, policy_id: str) -> OrgPolicy | None:
        for p in (*self.policies(SCP), *self.policies(RCP)):
            if p.id == policy_id:
                return p
        return None

    def target_exists(self, target: str) -> bool:
        return target == self.root_id or target in self.parents or any(u.id == target for u in self.units)


def build_organization(raw: Mapping[str, Any] | None, account: str) -> Organization | None:
    """The organization of a validated scenario document's ``organization`` section (JSON Schema checked)."""
    if raw is None:
        return None
    where = "$.organization"
    mgmt: str = raw["management_account"]
    org_id = raw.get("id") or f"o-{_digest(mgmt, 'org', length=10)}"
    root_hex = _digest(org_id, "root", length=4)
    root_id = f"r-{root_hex}"
    by_name: dict[str, str] = {"root": root_id}
    units: list[OrgUnit] = []
    for i, d in enumerate(raw.get("ous", ())):
        name = d["name"]
        if name in by_name:
            raise OrgProblem(f"{where}.ous[{i}].name: {name!r} names another OU (or the root)")
        parent = d.get("parent", "root")
        if parent not in by_name:
            raise OrgProblem(f"{where}.ous[{i}].parent: no OU {parent!r} before it in $.organization.ous")
        unit = OrgUnit(id=f"ou-{root_hex}-{_digest(org_id, name, length=8)}", name=name, parent=by_name[parent])
        by_name[name] = unit.id
        units.append(unit)

    parents: dict[str, str] = {mgmt: root_id}
    members = dict(raw.get("accounts", {}))
    if account != mgmt:
        members.setdefault(account, "root")  # the scenario's account is a member (under the root unless placed)
    for acct, parent in members.items():
        if acct == mgmt:
            raise OrgProblem(f"{where}.accounts[{json.dumps(acct)}]: the management account is not listed here")
        if parent not in by_name:
            raise OrgProblem(f"{where}.accounts[{json.dumps(acct)}]: no OU {parent!r} in $.organization.ous")
        parents[acct] = by_name[parent]

    def target_id(ref: str, at: str) -> str:
        if ref in by_name:
            return by_name[ref]
        if ref in parents:
            return ref
        raise OrgProblem(f"{at}: {ref!r} is not root, an OU name or an account of the organization")

    def policies(kind: PolicyType, key: str) -> tuple[OrgPolicy, ...] | None:
        if key not in raw:
            return None
        all_targets = [root_id, *(u.id for u in units), *parents]
        detached: set[str] = set()
        for j, ref in enumerate(raw.get("full_aws_access_detached", ()) if kind == SCP else ()):
            detached.add(target_id(ref, f"{where}.full_aws_access_detached[{j}]"))
        full = OrgPolicy(
            id=FULL_AWS_ACCESS_ID if kind == SCP else RCP_FULL_AWS_ACCESS_ID,
            name="FullAWSAccess" if kind == SCP else "RCPFullAWSAccess",
            type=kind, document=FULL_ACCESS_DOCUMENT if kind == SCP else RCP_FULL_ACCESS_DOCUMENT,
            targets=tuple(t for t in all_targets if t not in detached),
            description="Allows access to every operation", aws_managed=True,
        )
        out = [full]
        for j, d in enumerate(raw[key]):
            at = f"{where}.{key}[{j}]"
            targets = tuple(target_id(ref, f"{at}.targets[{n}]") for n, ref in enumerate(d["targets"]))
            out.append(OrgPolicy(
                id=f"p-{_digest(org_id, kind, d['name'], length=8)}", name=d["name"], type=kind,
                document=d["document"], targets=targets, description=d.get("description", ""),
            ))
        names = [p.name for p in out]
        for j, name in enumerate(names[1:]):
            if names.count(name) > 1:
                raise OrgProblem(f"{where}.{key}[{j}].name: {name!r} names another policy")
        return tuple(out)

    names = dict(raw.get("account_names", {}))
    for acct in names:
        if acct not in parents:
            raise OrgProblem(f"{where}.account_names[{json.dumps(acct)}]: not an account of the organization")
    if "full_aws_access_detached" in raw and "scps" not in raw:
        raise OrgProblem(f"{where}.full_aws_access_detached: SCPs are not enabled (no $.organization.scps)")
    return Organization(
        id=org_id, management_account=mgmt, root_id=root_id, units=tuple(units), parents=parents,
        scps=policies(SCP, "scps"), rcps=policies(RCP, "rcps"), access_role=raw.get("access_role"),
        account_names=names,
    )


def policy_documents(org: Organization) -> Sequence[tuple[str, Mapping[str, Any]]]:
    """(JSON path, document) of every policy the scenario wrote, for the grammar check."""
    out: list[tuple[str, Mapping[str, Any]]] = []
    for key, kind in (("scps", SCP), ("rcps", RCP)):
        custom = [p for p in org.policies(kind) if not p.aws_managed]
        out.extend((f"$.organization.{key}[{j}].document", p.document) for j, p in enumerate(custom))
    return out
