"""Callers of the lab: who an access key id stands for, and what AWS knows about them in a request.

Static credentials are issued per scenario identity (``AKIA…`` for users and the root user, ``ASIA…`` plus a session
token for role sessions); ``sts:AssumeRole`` through the gate issues more sessions. The request-context keys follow
the IAM User Guide, "AWS global condition context keys": ``aws:userid`` is ``AIDA…`` for a user,
``AROA…:SESSION`` for a role session and the account id for the root user; ``aws:PrincipalArn`` is the role's ARN
(with its path) for a session and ``arn:aws:iam::ACCOUNT:root`` for the root user.
"""

from __future__ import annotations

import hashlib
import secrets
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

CallerKind = Literal["user", "session", "root"]
_ALNUM = string.ascii_uppercase + string.digits


@dataclass(frozen=True)
class Principal:
    kind: CallerKind
    arn: str  # the caller ARN AWS reports (a session ARN for a role session)
    account: str
    unique_id: str  # aws:userid
    name: str | None = None  # user name, or the role's name for a session
    path: str = "/"
    session_name: str | None = None
    role_arn: str | None = None  # a session's role, with its path
    role_id: str | None = None  # a session's role id (AROA…)
    tags: Mapping[str, str] = field(default_factory=dict)

    @property
    def principal_arn(self) -> str:
        """``aws:PrincipalArn``."""
        return self.role_arn if self.kind == "session" and self.role_arn else self.arn

    @property
    def username(self) -> str:
        """CloudTrail's user name: the user's name, the session's name, or ``root``."""
        if self.kind == "root":
            return "root"
        if self.kind == "session":
            return self.session_name or ""
        return self.name or ""

    def user_identity(self, access_key_id: str | None, *, session_created: datetime | None = None) -> dict[str, Any]:
        """CloudTrail's ``userIdentity`` element for this caller."""
        ident: dict[str, Any] = {
            "type": {"user": "IAMUser", "session": "AssumedRole", "root": "Root"}[self.kind],
            "principalId": self.unique_id,
            "arn": self.arn,
            "accountId": self.account,
        }
        if access_key_id:
            ident["accessKeyId"] = access_key_id
        if self.kind == "user":
            ident["userName"] = self.name
        if self.kind == "session":
            ident["sessionContext"] = {
                "sessionIssuer": {
                    "type": "Role",
                    "principalId": self.role_id,
                    "arn": self.role_arn,
                    "accountId": self.account,
                    "userName": self.name,
                },
                "attributes": {
                    "creationDate": (session_created or datetime.now()).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "mfaAuthenticated": "false",
                },
            }
        return ident


@dataclass(frozen=True)
class Credentials:
    access_key_id: str
    secret_access_key: str
    principal: Principal
    session_token: str | None = None
    profile: str | None = None
    expiration: datetime | None = None
    issued: datetime | None = None


def new_access_key_id(session: bool) -> str:
    return ("ASIA" if session else "AKIA") + "".join(secrets.choice(_ALNUM) for _ in range(16))


def new_secret() -> str:
    return secrets.token_urlsafe(30)[:40]


def new_session_token() -> str:
    return "LAB" + secrets.token_urlsafe(96)


def stable_id(prefix: str, seed: str, length: int = 21) -> str:
    """A deterministic AWS-looking id (for principals the lab only knows from history)."""
    digest = hashlib.sha256(seed.encode()).digest()
    body = "".join(_ALNUM[b % len(_ALNUM)] for b in digest)
    return (prefix + body)[:length]


def user_principal(arn: str, account: str, name: str, path: str, unique_id: str,
                   tags: Mapping[str, str] | None = None) -> Principal:
    return Principal("user", arn, account, unique_id, name=name, path=path, tags=dict(tags or {}))


def root_principal(account: str) -> Principal:
    return Principal("root", f"arn:aws:iam::{account}:root", account, account)


def session_principal(role_arn: str, role_id: str, account: str, role_name: str, path: str, session: str,
                      tags: Mapping[str, str] | None = None) -> Principal:
    return Principal(
        "session", f"arn:aws:sts::{account}:assumed-role/{role_name}/{session}", account, f"{role_id}:{session}",
        name=role_name, path=path, session_name=session, role_arn=role_arn, role_id=role_id, tags=dict(tags or {}),
    )
