"""Callers and principal values: parse ARNs, derive the request context, match Principal/NotPrincipal elements.

Grounded in the IAM User Guide, "AWS JSON policy elements: Principal" and "NotPrincipal", and "AWS global
condition context keys" (aws:PrincipalArn, aws:PrincipalAccount, aws:PrincipalType, aws:username, aws:userid).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from kms_rescue.policy.errors import PolicyInputError
from kms_rescue.policy.model import PrincipalSpec

CallerKind = Literal["root", "user", "role", "assumed_role", "federated_user", "service", "anonymous"]

ACCOUNT_RE = re.compile(r"\A[0-9]{12}\Z")  # 12 ASCII digits: no full-width digits, no trailing newline
#: IAM unique-id prefixes (IAM User Guide, "IAM identifiers": unique identifiers). A key policy shows these in
#: place of an ARN once the principal it named was deleted (docs/engine.md, rule 5).
UNIQUE_ID_RE = re.compile(r"^(AIDA|AROA|AGPA|ANPA|ANVA|AIPA|ASIA|AKIA|APKA|ABIA|ACCA)[A-Z0-9]{12,}$")
#: IAM API Reference, CreateUser/CreateRole (UserName, RoleName): upper and lower case letters, digits and
#: ``_+=,.@-``, 1 to 64 characters. GetFederationToken (Name) uses the same characters.
NAME_RE = re.compile(r"^[A-Za-z0-9_+=,.@-]{1,64}$")
#: IAM API Reference, CreateUser/CreateRole (Path): "/" alone, or a string that begins and ends with "/" holding
#: any ASCII character from "!" (U+0021) to DEL (U+007F), 1 to 512 characters. A path may hold "*"; a name may not.
PATH_RE = re.compile(r"^(?:/|/[\x21-\x7f]+/)$")
_ARN_RE = re.compile(
    r"\Aarn:(?P<partition>aws[a-zA-Z-]*):(?P<service>iam|sts)::(?P<account>[0-9]{12}):(?P<resource>.+)\Z"
)  # "." stops at a newline


@dataclass(frozen=True)
class Caller:
    """The principal making a request."""

    arn: str
    kind: CallerKind
    partition: str = "aws"
    account: str | None = None
    name: str | None = None  # user name, role name, federated user name or service name
    path: str = "/"
    session_name: str | None = None

    @property
    def account_arn(self) -> str | None:
        return f"arn:{self.partition}:iam::{self.account}:root" if self.account else None

    @property
    def role_arn(self) -> str | None:
        """For a role or a session of one: the role's ARN (the session ARN does not carry the role's path)."""
        if self.kind == "role":
            return self.arn
        if self.kind == "assumed_role":
            return f"arn:{self.partition}:iam::{self.account}:role{self.path}{self.name}"
        return None

    @property
    def principal_arn(self) -> str:
        """``aws:PrincipalArn``: the role's ARN for a session, the account root ARN for the root user."""
        if self.kind == "assumed_role":
            return self.role_arn or self.arn
        return self.arn

    @property
    def principal_type(self) -> str | None:
        return {
            "root": "Account",
            "user": "User",
            "role": "AssumedRole",
            "assumed_role": "AssumedRole",
            "federated_user": "FederatedUser",
            "anonymous": "Anonymous",
        }.get(self.kind)

    def layers(self) -> tuple[str, ...]:
        """The ARNs a Deny+NotPrincipal must all list to exempt this caller (IAM User Guide, "NotPrincipal"):
        the account, then the user or role, then the role's session."""
        if self.kind == "service" or self.kind == "anonymous" or not self.account_arn:
            return (self.arn,)
        if self.kind == "root":
            return (self.account_arn,)
        if self.kind == "assumed_role":
            role = self.role_arn or ""
            return (self.account_arn, role, self.arn)
        return (self.account_arn, self.arn)

    def context(self) -> dict[str, list[str]]:
        """The principal-derived global condition keys that are knowable from the ARN alone."""
        ctx: dict[str, list[str]] = {}
        if self.kind in ("service", "anonymous"):
            if self.kind == "service" and self.name:
                ctx["aws:PrincipalServiceName"] = [self.name]
            return ctx
        ctx["aws:PrincipalArn"] = [self.principal_arn]
        if self.account:
            ctx["aws:PrincipalAccount"] = [self.account]
            ctx["kms:CallerAccount"] = [self.account]
        if self.principal_type:
            ctx["aws:PrincipalType"] = [self.principal_type]
        if self.kind == "user" and self.name:
            ctx["aws:username"] = [self.name]
        if self.kind == "root" and self.account:
            ctx["aws:userid"] = [self.account]
        return ctx


@lru_cache(maxsize=4096)
def parse_caller(arn: str) -> Caller:
    """Parse a caller ARN: an IAM user or role, an assumed-role session, a federated user, the account root
    (``arn:aws:iam::ACCOUNT:root`` or a bare account id), a service principal (``x.amazonaws.com``) or ``*``
    (anonymous). Raises :class:`PolicyInputError` otherwise."""
    value = arn.strip()
    if value == "*":
        return Caller(arn="*", kind="anonymous")
    if ACCOUNT_RE.match(value):
        return Caller(arn=f"arn:aws:iam::{value}:root", kind="root", account=value)
    if value.endswith(".amazonaws.com") or value.endswith(".amazonaws.com.cn"):
        return Caller(arn=value, kind="service", name=value)
    m = _ARN_RE.match(value)
    if not m:
        raise PolicyInputError(
            f"not a principal ARN: {arn!r} (expected e.g. arn:aws:iam::111122223333:role/Admin, "
            "arn:aws:sts::111122223333:assumed-role/Admin/session, arn:aws:iam::111122223333:user/alice)"
        )
    partition, service, account, resource = m["partition"], m["service"], m["account"], m["resource"]
    if service == "iam" and resource == "root":
        return Caller(arn=value, kind="root", partition=partition, account=account)
    if service == "iam" and (resource.startswith("user/") or resource.startswith("role/")):
        kind: CallerKind = "user" if resource.startswith("user/") else "role"
        rest = resource.split("/", 1)[1]
        path, _, name = rest.rpartition("/")
        if not name:
            raise PolicyInputError(f"the ARN {arn!r} names no {kind}")
        return Caller(
            arn=value, kind=kind, partition=partition, account=account, name=name,
            path=f"/{path}/" if path else "/",
        )
    if service == "sts" and resource.startswith("assumed-role/"):
        parts = resource.split("/")
        if len(parts) != 3 or not all(parts[1:]):
            raise PolicyInputError(f"the session ARN {arn!r} must be assumed-role/ROLE/SESSION")
        return Caller(
            arn=value, kind="assumed_role", partition=partition, account=account, name=parts[1],
            session_name=parts[2],
        )
    if service == "sts" and resource.startswith("federated-user/"):
        return Caller(
            arn=value, kind="federated_user", partition=partition, account=account, name=resource.split("/", 1)[1]
        )
    raise PolicyInputError(f"unsupported principal ARN {arn!r} (users, roles, sessions and root are supported)")


def role_caller(role_arn: str, session_name: str = "session") -> Caller:
    """A session of the given role, keeping the role's path (which a session ARN loses)."""
    role = parse_caller(role_arn)
    if role.kind != "role":
        raise PolicyInputError(f"not a role ARN: {role_arn!r}")
    return Caller(
        arn=f"arn:{role.partition}:sts::{role.account}:assumed-role/{role.name}/{session_name}",
        kind="assumed_role", partition=role.partition, account=role.account, name=role.name, path=role.path,
        session_name=session_name,
    )


def principal_arn_never(value: str) -> str | None:
    """Why no principal's ``aws:PrincipalArn`` can ever equal ``value`` exactly, or None when one can.

    ``aws:PrincipalArn`` is a user's or role's ARN (a role's for its sessions), the root user's, or a federated
    user's (IAM User Guide, "AWS global condition context keys"); names and paths follow IAM's character rules
    (:data:`NAME_RE`, :data:`PATH_RE`)."""
    m = _ARN_RE.match(value)
    if not m:
        return f"{value} is not the ARN of an IAM user, role, federated user or root user"
    service, resource = m["service"], m["resource"]
    if service == "iam" and resource == "root":
        return None
    kind, _, rest = resource.partition("/")
    if service == "iam" and kind in ("user", "role") and rest:
        path_part, _, name = rest.rpartition("/")
        path = f"/{path_part}/" if path_part else "/"
        if not NAME_RE.match(name):
            return (f"no {kind} name can be {name!r}: IAM {kind} names hold only letters, digits and _+=,.@- "
                    f"(IAM API Reference, Create{kind.capitalize()})")
        if len(path) > 512 or not PATH_RE.match(path):
            return f"no IAM path can be {path!r} (IAM API Reference, Create{kind.capitalize()}: Path)"
        return None
    if service == "sts" and kind == "assumed-role":
        return "for a role session aws:PrincipalArn is the role's ARN, not the session's"
    if service == "sts" and kind == "federated-user" and rest:
        return None if NAME_RE.match(rest) else f"no federated user name can be {rest!r}"
    return f"{value} is not the ARN of an IAM user, role, federated user or root user"


# --- principal values as written in policies -------------------------------------------------------------

PrincipalValueKind = Literal[
    "wildcard", "account", "user", "role", "session", "federated_user", "unique_id", "service", "federated",
    "canonical_user", "invalid",
]


@dataclass(frozen=True)
class PrincipalValue:
    """One value of a Principal element, classified."""

    raw: str
    kind: PrincipalValueKind
    account: str | None = None
    name: str | None = None  # user/role name (last path segment) or session's role name
    session_name: str | None = None

    @property
    def account_arn(self) -> str | None:
        return f"arn:aws:iam::{self.account}:root" if self.account else None


@lru_cache(maxsize=4096)
def classify_aws_value(raw: str) -> PrincipalValue:
    """Classify an ``AWS`` principal value: ``*``, an account (ARN or bare id), a user, role, session, federated
    user, a unique id (a deleted principal), or invalid (e.g. a partial wildcard, which Principal does not allow)."""
    if raw == "*":
        return PrincipalValue(raw, "wildcard")
    if ACCOUNT_RE.match(raw):
        return PrincipalValue(raw, "account", account=raw)
    if UNIQUE_ID_RE.match(raw):
        return PrincipalValue(raw, "unique_id")
    if "*" in raw or "?" in raw:
        return PrincipalValue(raw, "invalid")
    try:
        caller = parse_caller(raw)
    except PolicyInputError:
        return PrincipalValue(raw, "invalid")
    kind: PrincipalValueKind = {
        "root": "account",
        "user": "user",
        "role": "role",
        "assumed_role": "session",
        "federated_user": "federated_user",
    }.get(caller.kind, "invalid")  # type: ignore[assignment]
    return PrincipalValue(raw, kind, account=caller.account, name=caller.name, session_name=caller.session_name)


MatchKind = Literal["direct", "account", "wildcard"]


def match_value(value: PrincipalValue, caller: Caller) -> MatchKind | None:
    """How one AWS principal value covers ``caller``: ``direct`` (names the caller, its role, or its session),
    ``account`` (names the caller's account: a delegation to IAM), ``wildcard``, or None.

    Unique ids never match a live principal (docs/engine.md, rule 5); a role ARN covers every session of that role,
    and a session ARN only that session (docs/engine.md, rule 3)."""
    if value.kind == "wildcard":
        return "wildcard"
    if caller.kind in ("service", "anonymous") or value.account is None or value.account != caller.account:
        return None
    if value.kind == "account":
        return "account"
    if value.kind == "user" and caller.kind == "user":
        return "direct" if value.raw == caller.arn else None
    if value.kind == "role" and caller.kind in ("role", "assumed_role"):
        # ARNs in a stored policy carry the role's path; a session ARN does not, so compare by role name.
        if caller.kind == "role":
            return "direct" if value.raw == caller.arn else None
        return "direct" if value.name == caller.name else None
    if value.kind == "session" and caller.kind == "assumed_role":
        return "direct" if value.raw == caller.arn else None
    if value.kind == "federated_user" and caller.kind == "federated_user":
        return "direct" if value.raw == caller.arn else None
    return None


def match_spec(spec: PrincipalSpec, caller: Caller) -> MatchKind | None:
    """The strongest way a Principal element covers ``caller`` (direct > account > wildcard), or None."""
    if caller.kind == "service":
        if spec.wildcard:
            return "wildcard"
        return "direct" if caller.name in spec.service else None
    best: MatchKind | None = "wildcard" if spec.wildcard else None
    for raw in spec.aws:
        kind = match_value(classify_aws_value(raw), caller)
        if kind == "direct":
            return "direct"
        if kind == "account" or (kind == "wildcard" and best is None):
            best = kind
    return best


def listed_in(spec: PrincipalSpec, arn: str) -> bool:
    """Whether a NotPrincipal element lists exactly this ARN (an account also by its bare id)."""
    if spec.wildcard:
        return True
    for raw in spec.aws + spec.service:
        if raw == arn:
            return True
        # A bare account id is the account principal of the caller's own partition (arn:aws-cn:iam::…:root too).
        if ACCOUNT_RE.match(raw) and arn.startswith("arn:") and arn == f"arn:{arn.split(':')[1]}:iam::{raw}:root":
            return True
    return False


def exempt_by_not_principal(spec: PrincipalSpec, caller: Caller) -> bool:
    """A NotPrincipal exempts the caller only when every layer of it is listed (account, user or role, session)."""
    return all(listed_in(spec, layer) for layer in caller.layers())
