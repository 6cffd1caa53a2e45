"""The lab's state: moto's backends built from a scenario, the credentials the lab issued, and the event history.

Deleted principals follow the KMS Developer Guide ("Key policies": a principal named in a key policy is stored by
its unique id; once it is deleted the policy shows the id, ``AIDA…`` or ``AROA…``, where the ARN was) and the
re:Post article "Policy contains a statement with one or more invalid principals": a new principal with the same
name does not match the old id. The lab rewrites every key policy of its accounts when a principal is deleted, at
setup (scenario ``deleted``) and through the IAM API (``DeleteRole``/``DeleteUser``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from kms_rescue.errors import UsageError
from kms_rescue.lab import _moto
from kms_rescue.lab._moto import KeyInfo, MotoState, PrincipalInfo
from kms_rescue.lab.identity import (
    Credentials,
    Principal,
    new_access_key_id,
    new_secret,
    new_session_token,
    root_principal,
    session_principal,
    stable_id,
    user_principal,
)
from kms_rescue.lab.scenario import HistorySpec, PrincipalSpec, Scenario
from kms_rescue.lab.trail import EventStore, make_record
from kms_rescue.policy.principals import parse_caller

#: KMS events the lab records when they pass through (successful or not).
RECORDED_KMS_EVENTS = frozenset(
    {"CreateKey", "PutKeyPolicy", "ScheduleKeyDeletion", "CancelKeyDeletion", "DisableKey", "EnableKey"}
)
SESSION_HOURS = 12


def default_trust(account: str) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{account}:root"}, "Action": "sts:AssumeRole"}
        ],
    }


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class LabRuntime:
    """Everything the gate reads and changes. Callers hold :attr:`lock` around anything that touches moto."""

    def __init__(self, scenario: Scenario, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.scenario = scenario
        self.account = scenario.account
        self.region = scenario.region
        #: The Regions the lab serves KMS in (EC2's enabled Regions), the scenario's own first.
        self.regions = scenario.regions
        self.clock = clock
        self.moto = MotoState(scenario.regions, scenario.accounts)
        #: Hold it around anything that touches moto (reentrant; one lab at a time in the process).
        self.lock = self.moto
        self.events = EventStore()
        self.credentials: dict[str, Credentials] = {}
        self.profiles: dict[str, Credentials] = {}
        #: ARN of every principal deleted so far -> the unique id key policies now show in its place.
        self.deleted_ids: dict[str, str] = {}
        #: (account, user name) -> the ARN of the user's permissions boundary (moto keeps only roles').
        self.user_boundaries: dict[tuple[str, str], str] = {}
        self.started = clock()

    # --- setup ---------------------------------------------------------------------------------------------

    def build(self) -> None:
        override = _moto.account_override()
        if override is not None:
            raise UsageError(
                f"MOTO_ACCOUNT_ID={override} is set: moto would answer every request as that account; unset it "
                "to run the lab"
            )
        with self.lock:
            self.moto.reset()
            unsupported = self.moto.unsupported_regions()
            if unsupported:
                raise UsageError(
                    f"scenario {self.scenario.name}: moto {_moto.moto_version()} cannot serve KMS in "
                    f"{', '.join(unsupported)}; use another Region"
                )
            try:
                self._build()
            except Exception:
                self.moto.reset()
                raise

    def _build(self) -> None:
        sc = self.scenario
        managed: dict[tuple[str, str], str] = {}
        for mp in sc.managed_policies:
            managed[(mp.account, mp.name)] = self.moto.create_managed_policy(
                mp.account, mp.name, json.dumps(mp.document), path=mp.path, description=mp.description
            )
            managed[(mp.account, mp.arn)] = mp.arn

        def attach(account: str, kind: str, name: str, refs: tuple[str, ...]) -> None:
            for ref in refs:
                self.moto.attach_policy(account, kind, name, managed[(account, ref)])

        for g in sc.groups:
            self.moto.create_group(g.account, g.name, path=g.path)
            for n, doc in enumerate(g.policies, 1):
                self.moto.put_inline_policy(g.account, "group", g.name, f"inline-{n}", json.dumps(doc))
            attach(g.account, "group", g.name, g.attach)

        identity_policies: dict[tuple[str, str, str | None], list[PrincipalSpec]] = {}
        for ident in sc.identities:
            p = ident.principal
            identity_policies.setdefault((p.account, p.kind, p.name), []).append(p)
        for p in sc.all_principals():
            assert p.name is not None
            if p.kind == "role":
                trust = p.trust if p.trust is not None else default_trust(p.account)
                self.moto.create_role(p.account, p.name, path=p.path, trust=json.dumps(trust), tags=p.tags)
            else:
                self.moto.create_user(p.account, p.name, path=p.path, tags=p.tags)
            specs = identity_policies.get((p.account, p.kind, p.name), [])
            docs = [*p.policies] + [d for s in specs if s is not p for d in s.policies]
            for n, doc in enumerate(docs, 1):
                self.moto.put_inline_policy(p.account, p.kind, p.name, f"inline-{n}", json.dumps(doc))
            attach(p.account, p.kind, p.name, p.attach)
            if p.permissions_boundary is not None:
                boundary = managed[(p.account, p.permissions_boundary)]
                if p.kind == "role":
                    self.moto.set_role_boundary(p.account, p.name, boundary)
                else:
                    self.user_boundaries[(p.account, p.name)] = boundary
            for group in p.groups:
                self.moto.add_user_to_group(p.account, group, p.name)

        for k in sc.keys:
            policy = json.dumps(k.policy, indent=2) if k.policy is not None else _moto.default_key_policy(k.account)
            self.moto.create_key(
                k.account, region=k.region, key_id=k.id, policy=policy, description=k.description, key_spec=k.key_spec,
                key_usage=k.key_usage, multi_region=k.multi_region, tags=k.tags,
            )
            for alias in k.aliases:
                self.moto.add_alias(k.account, k.id, alias, region=k.region)
            if k.state == "Disabled":
                self.moto.set_key_state(k.account, k.id, "Disabled", region=k.region)
            elif k.state == "PendingDeletion":
                self.moto.set_key_state(k.account, k.id, "PendingDeletion", region=k.region, pending_days=30)

        gone = []
        for d in sc.deleted:
            assert d.name is not None
            info = self.moto.delete_principal(d.account, d.kind, d.name)
            if info is not None:
                gone.append(info)
        self.principals_deleted(gone)  # one pass over the key policies, however many were deleted

        for ident in sc.identities:
            self.profiles[ident.profile] = self.issue_for_identity(ident.profile)

        for h in sc.history:
            self.seed_event(h)

    def issue_for_identity(self, profile: str) -> Credentials:
        ident = self.scenario.identity(profile)
        p = ident.principal
        if p.kind == "root":
            principal = root_principal(p.account)
        else:
            assert p.name is not None
            info = self.moto.principal(p.account, p.kind, p.name)
            assert info is not None, f"{p.kind} {p.name} was not created"
            if p.kind == "user":
                principal = user_principal(info.arn, info.account, info.name, info.path, info.unique_id, info.tags)
            else:
                principal = session_principal(
                    info.arn, info.unique_id, info.account, info.name, info.path, ident.session_name or profile,
                    info.tags,
                )
        return self.issue(principal, profile=profile)

    def issue(self, principal: Principal, *, profile: str | None = None,
              duration: timedelta | None = None) -> Credentials:
        session = principal.kind == "session"
        now = self.clock()
        creds = Credentials(
            access_key_id=new_access_key_id(session),
            secret_access_key=new_secret(),
            principal=principal,
            session_token=new_session_token() if session else None,
            profile=profile,
            expiration=now + (duration or timedelta(hours=SESSION_HOURS)) if session else None,
            issued=now,
        )
        self.credentials[creds.access_key_id] = creds
        return creds

    # --- principals ----------------------------------------------------------------------------------------

    def live_info(self, principal: Principal) -> PrincipalInfo | None:
        """The caller's user or role as it is now, None when it was deleted (or replaced by a namesake)."""
        if principal.kind == "root":
            return None
        assert principal.name is not None
        if principal.kind == "user":
            info = self.moto.user(principal.account, principal.name)
            return info if info is not None and info.unique_id == principal.unique_id else None
        info = self.moto.role(principal.account, principal.name)
        return info if info is not None and info.unique_id == principal.role_id else None

    def is_valid(self, creds: Credentials) -> bool:
        return creds.principal.kind == "root" or self.live_info(creds.principal) is not None

    def identity_policies(self, principal: Principal) -> list[str]:
        if principal.kind == "root":
            return []
        assert principal.name is not None
        kind = "user" if principal.kind == "user" else "role"
        return self.moto.identity_policies(principal.account, kind, principal.name)

    def boundary_arn(self, account: str, kind: str, name: str) -> str | None:
        """The ARN of a user's or role's permissions boundary, None without one."""
        if kind == "role":
            return self.moto.role_boundary(account, name)
        return self.user_boundaries.get((account, name))

    def permissions_boundary(self, principal: Principal) -> str | None:
        """The caller's permissions boundary document (IAM User Guide, "Permissions boundaries for IAM
        entities"), None for the root user or a principal without one."""
        if principal.kind == "root":
            return None
        assert principal.name is not None
        arn = self.boundary_arn(principal.account, "user" if principal.kind == "user" else "role", principal.name)
        return self.moto.managed_policy_document(principal.account, arn) if arn else None

    def principal_tags(self, principal: Principal) -> Mapping[str, str]:
        info = self.live_info(principal)
        return info.tags if info is not None else {}

    def principal_deleted(self, info: PrincipalInfo) -> None:
        """Show the deleted principal's unique id in place of its ARN in every key policy of the lab."""
        self.principals_deleted([info])

    def principals_deleted(self, infos: Sequence[PrincipalInfo]) -> None:
        """:meth:`principal_deleted` for several principals, in one pass over the lab's key policies."""
        if not infos:
            return
        swaps = {json.dumps(i.arn): json.dumps(i.unique_id) for i in infos}
        for info in infos:
            self.deleted_ids[info.arn] = info.unique_id
        for account in self.moto.accounts:
            for region in self.regions:
                for key_id, policy in self.moto.key_policies(account, region=region):
                    changed = policy
                    for quoted, replacement in swaps.items():
                        if quoted in changed:
                            changed = changed.replace(quoted, replacement)
                    if changed is not policy:
                        self.moto.set_key_policy(account, key_id, changed, region=region)

    def key(self, key_id: str, account: str | None = None, *, region: str | None = None) -> KeyInfo | None:
        """The key ``key_id`` in ``region`` (default: the scenario's Region) of ``account`` (default: the
        scenario's)."""
        return self.moto.key(account or self.account, key_id, region=region or self.region)

    def find_key(self, key_id: str, account: str | None = None, *, region: str | None = None) -> KeyInfo | None:
        """The key ``key_id`` in whichever of the lab's Regions (or ``region``) and accounts (or ``account``)
        holds it (the lab's key ids are unique across its Regions and accounts)."""
        spec = self.scenario.key(key_id)
        if spec is not None and (account in (None, spec.account)) and (region in (None, spec.region)):
            key = self.moto.key(spec.account, key_id, region=spec.region)
            if key is not None:
                return key
        for acct in [account] if account else self.moto.accounts:
            for reg in [region] if region else self.regions:
                key = self.moto.key(acct, key_id, region=reg)
                if key is not None:
                    return key
        return None

    # --- history -------------------------------------------------------------------------------------------

    def record(
        self,
        *,
        name: str,
        source: str,
        principal: Principal,
        access_key_id: str | None,
        request_parameters: Mapping[str, Any] | None,
        response_elements: Mapping[str, Any] | None = None,
        resources: tuple[tuple[str, str], ...] = (),
        error_code: str | None = None,
        error_message: str | None = None,
        time: datetime | None = None,
        account: str | None = None,
        region: str | None = None,
        source_ip: str = "127.0.0.1",
        user_agent: str = "kms-rescue-lab",
        request_id: str | None = None,
        session_created: datetime | None = None,
    ) -> None:
        when = time or self.clock()
        account = account or principal.account
        region = region or self.region
        record = make_record(
            name=name, source=source, time=when, account=account, region=region,
            user_identity=principal.user_identity(access_key_id, session_created=session_created or when),
            request_parameters=request_parameters, response_elements=response_elements, resources=resources,
            error_code=error_code, error_message=error_message, source_ip=source_ip, user_agent=user_agent,
            request_id=request_id,
        )
        self.events.add(record, time=when, account=account, region=region, username=principal.username,
                        access_key_id=access_key_id, resources=resources)

    def principal_from_arn(self, arn: str) -> Principal:
        """A :class:`Principal` for an ARN seen in history: ids from the lab when it knows the principal (alive or
        deleted), stable made-up ids otherwise."""
        caller = parse_caller(arn)
        account = caller.account or self.account
        if caller.kind == "root":
            return root_principal(account)
        if caller.kind == "user":
            info = self.moto.principal_by_arn(arn) if account in self.moto.accounts else None
            uid = info.unique_id if info else self.deleted_ids.get(arn) or stable_id("AIDA", arn)
            return user_principal(arn, account, caller.name or "", caller.path, uid)
        if caller.kind == "assumed_role":
            name = caller.name or ""
            info = self.moto.role(account, name) if account in self.moto.accounts else None
            if info is not None:
                role_arn, role_id = info.arn, info.unique_id
            else:
                deleted = [(a, i) for a, i in self.deleted_ids.items()
                           if a.startswith(f"arn:aws:iam::{account}:role/") and a.rsplit("/", 1)[1] == name]
                role_arn, role_id = deleted[0] if deleted else (
                    f"arn:aws:iam::{account}:role/{name}", stable_id("AROA", f"{account}:{name}"))
            path = role_arn.split(":role", 1)[1].rpartition("/")[0] + "/"
            return session_principal(role_arn, role_id, account, name, path, caller.session_name or "session")
        raise UsageError(f"history: unsupported principal {arn}")

    def seed_event(self, h: HistorySpec) -> None:
        principal = self.principal_from_arn(h.principal)
        when = h.resolve_time(self.started)
        key_prefix = "ASIA" if principal.kind == "session" else "AKIA"
        access_key = stable_id(key_prefix, f"{h.principal}|{h.time}", 20)
        failed = h.error_code is not None
        if h.event in ("DeleteRole", "DeleteUser"):
            assert h.target is not None
            kind, _, rest = h.target.partition("/")
            name = rest.rpartition("/")[2]
            self.record(
                name=h.event, source="iam.amazonaws.com", principal=principal, access_key_id=access_key,
                request_parameters={"roleName" if kind == "role" else "userName": name}, time=when,
                region="us-east-1", error_code=h.error_code,
                error_message=h.error_message, source_ip=h.source_ip or "192.0.2.10", user_agent="aws-cli/2",
            )
            return
        assert h.key is not None
        spec = self.scenario.key(h.key)
        region = spec.region if spec is not None else self.region  # a key's events are in its own Region's trail
        account = spec.account if spec is not None else self.account  # ... and its own account's
        key_arn = f"arn:aws:kms:{region}:{account}:key/{h.key}"
        policy_text = json.dumps(h.policy, indent=2) if h.policy is not None else None
        response: dict[str, Any] | None = None
        params: dict[str, Any] = {}
        if h.event == "CreateKey":
            params = {
                "policy": policy_text or _moto.default_key_policy(account),
                "description": "",
                "keyUsage": "ENCRYPT_DECRYPT",
                "keySpec": "SYMMETRIC_DEFAULT",
                "bypassPolicyLockoutSafetyCheck": h.bypass_lockout_check,
                "origin": "AWS_KMS",
                "multiRegion": False,
            }
            response = {"keyMetadata": {
                "aWSAccountId": account, "keyId": h.key, "arn": key_arn, "creationDate": when.isoformat(),
                "enabled": True, "description": "", "keyUsage": "ENCRYPT_DECRYPT", "keyState": "Enabled",
                "origin": "AWS_KMS", "keyManager": "CUSTOMER", "keySpec": "SYMMETRIC_DEFAULT", "multiRegion": False,
            }}
        elif h.event == "PutKeyPolicy":
            params = {"keyId": h.key, "policyName": "default", "policy": policy_text,
                      "bypassPolicyLockoutSafetyCheck": h.bypass_lockout_check}
        elif h.event == "ScheduleKeyDeletion":
            days = h.pending_window_days or 30
            params = {"keyId": h.key, "pendingWindowInDays": days}
            response = {"keyId": key_arn, "deletionDate": (when + timedelta(days=days)).isoformat(),
                        "keyState": "PendingDeletion", "pendingWindowInDays": days}
        else:
            params = {"keyId": h.key}
            if h.event == "CancelKeyDeletion":
                response = {"keyId": key_arn}
        self.record(
            name=h.event, source="kms.amazonaws.com", principal=principal, access_key_id=access_key,
            request_parameters=params, response_elements=None if failed else response,
            resources=(("AWS::KMS::Key", key_arn),), error_code=h.error_code, error_message=h.error_message,
            time=when, account=account, region=region, source_ip=h.source_ip or "192.0.2.10",
            user_agent="aws-cli/2",
        )
