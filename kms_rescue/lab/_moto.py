"""Every moto internal the lab touches, in one module.

Tested against moto 5.1 and 5.2 (pyproject.toml pins ``moto[server]>=5.1,<5.3`` in the ``lab`` extra). What the lab
relies on, so that a moto upgrade has one place to look:

- ``moto.iam.models.iam_backends[account]["aws"]`` (``IAMBackend``): ``create_role``, ``create_user``,
  ``create_group``, ``add_user_to_group``, ``put_role_policy``/``put_user_policy``/``put_group_policy``,
  ``create_policy``, ``attach_*_policy``, ``delete_role``/``delete_user``, ``put_role_permissions_boundary``,
  ``managed_policies`` (by ARN); models ``Role`` (``id``, ``path``,
  ``arn``, ``tags``, ``policies``, ``managed_policies``, ``assume_role_policy_document``,
  ``permissions_boundary_arn``), ``User`` (``id`` is
  overwritten with an ``AIDA…`` id, as IAM's), ``Group``, ``ManagedPolicy.versions``.
- ``moto.kms.models.kms_backends[account][region]`` (``KmsBackend``, one per Region; the ``regions`` moto serves
  KMS in are ``kms_backends[account].regions``): ``create_key`` (then re-keyed to the
  scenario's id by rewriting ``Key.id``/``Key.arn`` and the ``keys`` dict), ``keys``, ``create_alias``,
  ``get_key_id_from_alias``, ``tagger``, ``schedule_key_deletion``/``cancel_key_deletion``; ``Key.to_dict()``.
  ``moto.kms.models.generate_private_key`` is swapped for a lazy one while the lab creates keys (an RSA key per
  symmetric key costs ~60 ms), ``moto.kms.utils._deserialize_ciphertext_blob`` tells which key a ciphertext is for.
- ``moto.backends.get_backend(service)``: the process-wide ``BackendDict`` (a dict: account id ->
  ``AccountSpecificBackend``) of each service. Every lab owns private ``AccountSpecificBackend`` objects for its
  accounts and installs them into those dicts only while it holds :data:`_ACTIVE_LOCK` (see
  :meth:`MotoState.__enter__`), restoring what was there afterwards. So labs for the same account can run side by
  side in one process, and code that resets moto (``mock_aws``) does not touch a lab's state between requests.
- ``moto.moto_server.werkzeug_app.create_backend_app(service)``: the Flask app requests are forwarded to, with the
  ``x-moto-account-id`` header selecting the account (moto honours ``MOTO_ACCOUNT_ID`` before it, so the lab
  refuses to start when that variable is set).
"""

from __future__ import annotations

import json
import os
import string
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from importlib.metadata import version
from secrets import choice
from typing import Any, Literal

from moto.backends import get_backend
from moto.iam.models import iam_backends
from moto.iam.utils import generate_access_key_id_from_account_id
from moto.kms import models as kms_models
from moto.kms.models import kms_backends
from moto.kms.utils import _deserialize_ciphertext_blob
from moto.moto_server.werkzeug_app import create_backend_app
from werkzeug.test import EnvironBuilder, run_wsgi_app

PrincipalKind = Literal["role", "user"]

#: The services whose per-account state each lab keeps to itself.
SERVICES = ("iam", "kms", "sts", "cloudtrail", "support")

_UPPER = string.ascii_uppercase + string.digits
_create_lock = threading.Lock()
#: Held while a lab's backends are installed in moto's process-wide registries: one lab at a time talks to moto.
_ACTIVE_LOCK = threading.RLock()


def moto_version() -> str:
    return version("moto")


def account_override() -> str | None:
    """``MOTO_ACCOUNT_ID``: moto routes every request to this account when it is set."""
    return os.environ.get("MOTO_ACCOUNT_ID")


@dataclass(frozen=True)
class PrincipalInfo:
    kind: PrincipalKind
    name: str
    account: str
    path: str
    arn: str
    unique_id: str
    tags: Mapping[str, str] = field(default_factory=dict)
    trust: str | None = None  # a role's trust policy


@dataclass(frozen=True)
class KeyInfo:
    id: str
    arn: str
    account: str
    region: str
    state: str
    policy: str
    key_spec: str
    key_usage: str
    origin: str
    multi_region: bool
    description: str
    aliases: tuple[str, ...]
    tags: Mapping[str, str]
    deletion_date: datetime | None


class _LazyPrivateKey:
    """Stands in for moto's private key object until something (Sign, GetPublicKey, ...) needs it."""

    def __init__(self, key_spec: str) -> None:
        self._key_spec = key_spec
        self._real: Any = None

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        if self._real is None:
            self._real = _ORIGINAL_GENERATE_PRIVATE_KEY(self._key_spec)
        return getattr(self._real, name)


_ORIGINAL_GENERATE_PRIVATE_KEY = kms_models.generate_private_key


class MotoState:
    """moto's in-memory backends for one lab's accounts, in its Regions (KMS keeps a backend per Region).

    Use every method inside ``with state:`` (reentrant): entering takes :data:`_ACTIVE_LOCK` and installs this
    lab's backends in moto's registries; leaving puts back whatever was there before.
    """

    def __init__(self, regions: Iterable[str], accounts: Iterable[str]) -> None:
        self.regions = tuple(regions)
        self.region = self.regions[0]  # the primary Region: IAM users are created there, as IAM's global data
        self.accounts = tuple(accounts)
        self._apps: dict[str, Any] = {}
        self._own: dict[tuple[str, str], Any] = {}  # (service, account) -> this lab's AccountSpecificBackend
        self._saved: dict[tuple[str, str], Any] = {}
        self._depth = 0
        self._registries = {service: get_backend(service) for service in SERVICES}  # type: ignore[call-overload]

    # --- lifecycle -----------------------------------------------------------------------------------------

    def __enter__(self) -> MotoState:
        _ACTIVE_LOCK.acquire()
        if self._depth == 0:
            for service in SERVICES:
                registry = self._registries[service]
                for account in self.accounts:
                    self._saved[(service, account)] = dict.get(registry, account)
                    own = self._own.get((service, account))
                    if own is None:
                        dict.pop(registry, account, None)  # moto creates a fresh one on first use
                    else:
                        dict.__setitem__(registry, account, own)
        self._depth += 1
        return self

    def __exit__(self, *exc: object) -> None:
        self._depth -= 1
        try:
            if self._depth == 0:
                for service in SERVICES:
                    registry = self._registries[service]
                    for account in self.accounts:
                        current = dict.get(registry, account)
                        if current is None:
                            self._own.pop((service, account), None)
                        else:
                            self._own[(service, account)] = current
                        saved = self._saved.pop((service, account), None)
                        if saved is None:
                            dict.pop(registry, account, None)
                        else:
                            dict.__setitem__(registry, account, saved)
        finally:
            _ACTIVE_LOCK.release()

    def reset(self) -> None:
        """Forget the lab's accounts: the next use starts from empty backends."""
        with self:
            for service in SERVICES:
                registry = self._registries[service]
                for account in self.accounts:
                    dict.pop(registry, account, None)

    # --- IAM -----------------------------------------------------------------------------------------------

    @staticmethod
    def _iam(account: str) -> Any:
        return iam_backends[account]["aws"]

    @staticmethod
    def _role_info(role: Any) -> PrincipalInfo:
        return PrincipalInfo(
            kind="role", name=role.name, account=role.account_id, path=role.path, arn=role.arn,
            unique_id=role.id, tags={t["Key"]: t["Value"] for t in role.tags or ()},
            trust=role.assume_role_policy_document,
        )

    def _user_info(self, user: Any) -> PrincipalInfo:
        tags = self._iam(user.account_id).tagger.get_tag_dict_for_resource(user.arn)
        return PrincipalInfo(
            kind="user", name=user.name, account=user.account_id, path=user.path, arn=user.arn,
            unique_id=user.id, tags=tags,
        )

    def create_role(
        self, account: str, name: str, *, path: str = "/", trust: str, tags: Mapping[str, str] | None = None
    ) -> PrincipalInfo:
        role = self._iam(account).create_role(
            role_name=name, assume_role_policy_document=trust, path=path, permissions_boundary=None,
            description="", tags=[{"Key": k, "Value": v} for k, v in (tags or {}).items()],
            max_session_duration=None,
        )
        return self._role_info(role)

    def create_user(
        self, account: str, name: str, *, path: str = "/", tags: Mapping[str, str] | None = None
    ) -> PrincipalInfo:
        user = self._iam(account).create_user(
            region_name=self.region, user_name=name, path=path,
            tags=[{"Key": k, "Value": v} for k, v in (tags or {}).items()],
        )
        # IAM user ids start with AIDA (IAM User Guide, "IAM identifiers"); moto's are random lowercase.
        user.id = generate_access_key_id_from_account_id(account, "AIDA", 21)
        return self._user_info(user)

    def create_group(self, account: str, name: str, *, path: str = "/") -> None:
        self._iam(account).create_group(name, path)

    def add_user_to_group(self, account: str, group: str, user: str) -> None:
        self._iam(account).add_user_to_group(group, user)

    def put_inline_policy(self, account: str, kind: str, name: str, policy_name: str, document: str) -> None:
        iam = self._iam(account)
        if kind == "role":
            iam.put_role_policy(name, policy_name, document)
        elif kind == "user":
            iam.put_user_policy(name, policy_name, document)
        else:
            iam.put_group_policy(name, policy_name, document)

    def create_managed_policy(
        self, account: str, name: str, document: str, *, path: str = "/", description: str = ""
    ) -> str:
        policy = self._iam(account).create_policy(
            description=description, path=path, policy_document=document, policy_name=name, tags=[]
        )
        return str(policy.arn)

    def attach_policy(self, account: str, kind: str, name: str, policy_arn: str) -> None:
        iam = self._iam(account)
        if kind == "role":
            iam.attach_role_policy(policy_arn, name)
        elif kind == "user":
            iam.attach_user_policy(policy_arn, name)
        else:
            iam.attach_group_policy(policy_arn, name)

    def set_role_boundary(self, account: str, name: str, policy_arn: str) -> None:
        self._iam(account).put_role_permissions_boundary(name, policy_arn)

    def role_boundary(self, account: str, name: str) -> str | None:
        """The ARN of a role's permissions boundary (``Role.permissions_boundary_arn``), None without one."""
        for role in self._iam(account).get_roles():
            if role.name == name:
                return role.permissions_boundary_arn or None
        return None

    def managed_policy_document(self, account: str, policy_arn: str) -> str | None:
        """The default version's document of a managed policy of ``account``, None when there is no such policy."""
        policy = self._iam(account).managed_policies.get(policy_arn)
        if policy is None:
            return None
        return next((str(v.document) for v in policy.versions if v.is_default), None)

    def role(self, account: str, name: str) -> PrincipalInfo | None:
        for role in self._iam(account).get_roles():
            if role.name == name:
                return self._role_info(role)
        return None

    def user(self, account: str, name: str) -> PrincipalInfo | None:
        user = self._iam(account).users.get(name)
        return self._user_info(user) if user is not None else None

    def principal(self, account: str, kind: str, name: str) -> PrincipalInfo | None:
        return self.role(account, name) if kind == "role" else self.user(account, name)

    def principal_by_arn(self, arn: str) -> PrincipalInfo | None:
        parts = arn.split(":", 5)
        if len(parts) != 6 or parts[2] != "iam" or parts[4] not in self.accounts:
            return None
        kind, _, rest = parts[5].partition("/")
        if kind not in ("role", "user"):
            return None
        info = self.principal(parts[4], kind, rest.rpartition("/")[2])
        return info if info is not None and info.arn == arn else None

    def principal_by_unique_id(self, account: str, unique_id: str) -> PrincipalInfo | None:
        iam = self._iam(account)
        for role in iam.get_roles():
            if role.id == unique_id:
                return self._role_info(role)
        for user in iam.users.values():
            if user.id == unique_id:
                return self._user_info(user)
        return None

    def identity_policies(self, account: str, kind: str, name: str) -> list[str]:
        """The JSON documents of a role's or user's inline and attached managed policies (default versions), a
        user's groups' too."""
        iam = self._iam(account)
        holders: list[Any] = []
        if kind == "role":
            holders = [r for r in iam.get_roles() if r.name == name]
        elif name in iam.users:
            holders = [iam.users[name], *iam.get_groups_for_user(name)]
        docs: list[str] = []
        for holder in holders:
            docs.extend(holder.policies.values())
            for managed in holder.managed_policies.values():
                docs.extend(v.document for v in managed.versions if v.is_default)
        return docs

    def delete_principal(self, account: str, kind: str, name: str) -> PrincipalInfo | None:
        """Delete a role or user the way an administrator must (inline policies deleted, managed ones detached,
        the user taken out of its groups first)."""
        iam = self._iam(account)
        info = self.principal(account, kind, name)
        if info is None:
            return None
        if kind == "role":
            role = iam.get_role(name)
            for policy_name in list(role.policies):
                iam.delete_role_policy(name, policy_name)
            for arn in list(role.managed_policies):
                iam.detach_role_policy(arn, name)
            iam.delete_role(name)
        else:
            user = iam.users[name]
            for policy_name in list(user.policies):
                iam.delete_user_policy(name, policy_name)
            for arn in list(user.managed_policies):
                iam.detach_user_policy(arn, name)
            for group in iam.get_groups_for_user(name):
                iam.remove_user_from_group(group.name, name)
            iam.delete_user(name)
        return info

    # --- KMS -----------------------------------------------------------------------------------------------

    def unsupported_regions(self) -> list[str]:
        """The lab's Regions that this moto cannot serve KMS in (use inside ``with state:``)."""
        known = set(kms_backends[self.accounts[0]].regions)
        return [r for r in self.regions if r not in known]

    @staticmethod
    def _kms(account: str, region: str) -> Any:
        return kms_backends[account][region]

    def _key_info(self, key: Any) -> KeyInfo:
        backend = self._kms(key.account_id, key.region)
        return KeyInfo(
            id=key.id, arn=key.arn, account=key.account_id, region=key.region, state=key.key_state,
            policy=key.policy, key_spec=key.key_spec, key_usage=key.key_usage, origin=key.origin,
            multi_region=bool(key.multi_region), description=key.description,
            aliases=tuple(sorted(key.aliases)), tags=backend.tagger.get_tag_dict_for_resource(key.id),
            deletion_date=key.deletion_date,
        )

    def create_key(
        self,
        account: str,
        *,
        region: str,
        key_id: str | None,
        policy: str,
        description: str = "",
        key_spec: str = "SYMMETRIC_DEFAULT",
        key_usage: str = "ENCRYPT_DECRYPT",
        multi_region: bool = False,
        origin: str = "AWS_KMS",
        tags: Mapping[str, str] | None = None,
    ) -> KeyInfo:
        """Create a key, with exactly ``key_id`` when given (moto draws random ids: the key is re-keyed)."""
        backend = self._kms(account, region)
        if key_id is not None and key_id in backend.keys:
            raise ValueError(f"a key {key_id} exists already")
        with _create_lock:
            kms_models.generate_private_key = _LazyPrivateKey  # type: ignore[assignment]
            try:
                key = backend.create_key(policy, key_usage, key_spec, description, None, multi_region, origin)
            finally:
                kms_models.generate_private_key = _ORIGINAL_GENERATE_PRIVATE_KEY
        if key_id is not None and key_id != key.id:
            backend.keys.pop(key.id)
            old_arn = key.arn
            key.id = key_id
            key.arn = old_arn.rsplit("/", 1)[0] + "/" + key_id
            if multi_region:
                key.multi_region_configuration["PrimaryKey"]["Arn"] = key.arn
            backend.keys[key_id] = key
        if tags:
            backend.tagger.tag_resource(key.id, [{"TagKey": k, "TagValue": v} for k, v in tags.items()])
        return self._key_info(key)

    def key(self, account: str, key_id: str, *, region: str) -> KeyInfo | None:
        """The key ``key_id`` in ``region`` of ``account``; None when there is none (or not a lab Region)."""
        if account not in self.accounts or region not in self.regions:
            return None
        key = self._kms(account, region).keys.get(key_id)
        return self._key_info(key) if key is not None else None

    def key_ids(self, account: str, *, region: str) -> list[str]:
        """The ids of the keys of ``account`` in ``region``, oldest first (moto keeps them in creation order)."""
        if account not in self.accounts or region not in self.regions:
            return []
        return list(self._kms(account, region).keys)

    def key_policies(self, account: str, *, region: str) -> list[tuple[str, str]]:
        """(key id, key policy) of every key of ``account`` in ``region``."""
        return [(key_id, key.policy) for key_id, key in self._kms(account, region).keys.items()]

    def key_for_alias(self, account: str, alias: str, *, region: str) -> str | None:
        if account not in self.accounts or region not in self.regions:
            return None
        for key in self._kms(account, region).keys.values():
            if alias in key.aliases:
                return str(key.id)
        return None

    def add_alias(self, account: str, key_id: str, alias: str, *, region: str) -> None:
        self._kms(account, region).create_alias(key_id, alias)

    def set_key_policy(self, account: str, key_id: str, policy: str, *, region: str) -> None:
        self._kms(account, region).keys[key_id].policy = policy

    def set_key_state(
        self, account: str, key_id: str, state: str, *, region: str, pending_days: int = 30
    ) -> KeyInfo:
        backend = self._kms(account, region)
        if state == "Enabled":
            backend.enable_key(key_id)
        elif state == "Disabled":
            backend.disable_key(key_id)
        elif state == "PendingDeletion":
            backend.schedule_key_deletion(key_id, pending_days)
        elif state == "CancelDeletion":
            backend.cancel_key_deletion(key_id)
        else:
            raise ValueError(f"unknown key state {state}")
        return self._key_info(backend.keys[key_id])

    def describe_key(self, account: str, key_id: str, *, region: str) -> dict[str, Any]:
        """DescribeKey's response body, as moto renders it."""
        result: dict[str, Any] = self._kms(account, region).keys[key_id].to_dict()
        return result

    @staticmethod
    def ciphertext_key_id(blob: bytes) -> str | None:
        """The key id a lab ciphertext was made with (moto's ciphertext format), or None if it is not one."""
        try:
            key_id = _deserialize_ciphertext_blob(blob).key_id
        except Exception:
            return None
        return key_id if all(c in string.hexdigits + "-mrk" for c in key_id) else None

    # --- forwarding ----------------------------------------------------------------------------------------

    def forward(
        self,
        service: str,
        *,
        account: str,
        headers: Mapping[str, str],
        body: bytes,
        region: str | None = None,
        method: str = "POST",
        path: str = "/",
        query_string: str = "",
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        """Hand a request to moto's Flask app for ``service`` in ``account``; return status, headers, body."""
        app = self._apps.get(service)
        if app is None:
            app = self._apps[service] = create_backend_app(service)  # type: ignore[arg-type]
        host = {"iam": "iam.amazonaws.com", "sts": "sts.amazonaws.com"}.get(
            service, f"{service}.{region or self.region}.amazonaws.com"
        )
        forwarded = {k: v for k, v in headers.items() if k.lower() not in ("host", "content-length")}
        forwarded["x-moto-account-id"] = account
        environ = EnvironBuilder(
            path=path, method=method, base_url=f"https://{host}", headers=list(forwarded.items()), data=body,
            query_string=query_string,
        ).get_environ()
        app_iter, status, response_headers = run_wsgi_app(app, environ, buffered=True)
        try:
            payload = b"".join(app_iter)
        finally:
            close = getattr(app_iter, "close", None)
            if close is not None:
                close()
        return int(status.split()[0]), list(response_headers.items()), payload


def random_id(prefix: str, length: int = 20) -> str:
    """An AWS-looking identifier: ``prefix`` followed by upper-case letters and digits."""
    return prefix + "".join(choice(_UPPER) for _ in range(length - len(prefix)))


def default_key_policy(account: str) -> str:
    """KMS's default key policy (KMS Developer Guide, "Default key policy"): the account principal, kms:*."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Id": "key-default-1",
            "Statement": [
                {
                    "Sid": "Enable IAM User Permissions",
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
                    "Action": "kms:*",
                    "Resource": "*",
                }
            ],
        },
        indent=2,
    )
