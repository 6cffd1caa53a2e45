"""Lab scenarios: load a JSON file, a built-in by name, or a dict; validate it; return plain dataclasses.

Validation has two layers. The JSON Schema shipped with the package (``scenario.schema.json``, documented in
docs/lab.md) checks the shape: every error names the JSON path of the problem (``$.identities[2].polcies: unknown
field``). Then the checks a schema cannot express: names are unique, each identity is exactly one of a role, a
user or the root user, policies parse with the policy engine, key policies name only principals the scenario
creates (KMS refuses a policy naming a principal that does not exist: KMS API reference, PutKeyPolicy, "The
principals in the key policy must exist and be visible to KMS"), history refers to keys of the scenario.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from functools import cached_property, lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from kms_rescue.errors import UsageError
from kms_rescue.lab.organization import Organization, OrgProblem, build_organization, policy_documents
from kms_rescue.lab.regions import region_problem
from kms_rescue.policy import parse_policy
from kms_rescue.policy.errors import PolicyInputError
from kms_rescue.policy.input_limits import DOCUMENT_MAX_BYTES, read_bounded_text
from kms_rescue.policy.model import KEY_POLICY_MAX_BYTES, load_json_text
from kms_rescue.policy.principals import classify_aws_value, parse_caller

PrincipalKind = Literal["role", "user", "root"]
VERDICTS = ("manageable", "recoverable", "locked_out", "undetermined", "not_found")
_RELATIVE_TIME = re.compile(r"^-(\d+)([dhms])$")
_BUILTIN_PACKAGE = "kms_rescue.lab"


class ScenarioError(UsageError):
    """A scenario that does not load or does not validate. The message starts with the JSON path of the problem."""


# --- the loaded scenario ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PrincipalSpec:
    """A role or a user (with or without a profile), or the root user of an account."""

    kind: PrincipalKind
    name: str | None
    account: str
    path: str = "/"
    policies: tuple[Mapping[str, Any], ...] = ()
    attach: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    tags: Mapping[str, str] = field(default_factory=dict)
    trust: Mapping[str, Any] | None = None
    permissions_boundary: str | None = None  # a managed policy: a name from managed_policies, or its ARN
    where: str = "$"  # JSON path, for messages

    @property
    def ref(self) -> str:
        """``role/NAME`` / ``user/NAME`` (with the path), or ``root``."""
        if self.kind == "root":
            return "root"
        return f"{self.kind}{self.path}{self.name}"

    @property
    def arn(self) -> str:
        if self.kind == "root":
            return f"arn:aws:iam::{self.account}:root"
        return f"arn:aws:iam::{self.account}:{self.kind}{self.path}{self.name}"


@dataclass(frozen=True)
class IdentitySpec:
    """A principal the lab issues credentials for, under an AWS config profile."""

    profile: str
    principal: PrincipalSpec
    session_name: str | None = None
    description: str = ""

    @property
    def kind(self) -> PrincipalKind:
        return self.principal.kind

    @property
    def caller_arn(self) -> str:
        """The ARN the caller has in requests: the session ARN for a role (which carries no path)."""
        p = self.principal
        if p.kind == "role":
            return f"arn:aws:sts::{p.account}:assumed-role/{p.name}/{self.session_name or self.profile}"
        return p.arn


@dataclass(frozen=True)
class GroupSpec:
    name: str
    account: str
    path: str = "/"
    policies: tuple[Mapping[str, Any], ...] = ()
    attach: tuple[str, ...] = ()


@dataclass(frozen=True)
class ManagedPolicySpec:
    name: str
    account: str
    document: Mapping[str, Any]
    path: str = "/"
    description: str = ""

    @property
    def arn(self) -> str:
        return f"arn:aws:iam::{self.account}:policy{self.path}{self.name}"


@dataclass(frozen=True)
class KeySpec:
    id: str
    region: str
    account: str = ""  # the key's account; the loader always sets it (default: the scenario's)
    aliases: tuple[str, ...] = ()
    description: str = ""
    policy: Mapping[str, Any] | None = None  # None: the default key policy
    state: str = "Enabled"
    multi_region: bool = False
    key_spec: str = "SYMMETRIC_DEFAULT"
    key_usage: str = "ENCRYPT_DECRYPT"
    tags: Mapping[str, str] = field(default_factory=dict)
    expected_verdict: str | None = None


@dataclass(frozen=True)
class HistorySpec:
    """One CloudTrail event to seed. ``time`` is absolute (aware datetime) or relative to the lab's start."""

    event: str
    principal: str
    time: str
    key: str | None = None
    target: str | None = None
    policy: Mapping[str, Any] | None = None
    bypass_lockout_check: bool = False
    pending_window_days: int | None = None
    error_code: str | None = None
    error_message: str | None = None
    source_ip: str | None = None

    def resolve_time(self, now: datetime) -> datetime:
        m = _RELATIVE_TIME.match(self.time)
        if m:
            amount, unit = int(m[1]), m[2]
            seconds = amount * {"d": 86400, "h": 3600, "m": 60, "s": 1}[unit]
            return now - timedelta(seconds=seconds)
        return datetime.fromisoformat(self.time.replace("Z", "+00:00")).astimezone(timezone.utc)


@dataclass(frozen=True)
class Scenario:
    name: str
    account: str
    region: str
    keys: tuple[KeySpec, ...]
    description: str = ""
    expected_verdict: str | None = None
    identities: tuple[IdentitySpec, ...] = ()
    roles: tuple[PrincipalSpec, ...] = ()
    users: tuple[PrincipalSpec, ...] = ()
    groups: tuple[GroupSpec, ...] = ()
    managed_policies: tuple[ManagedPolicySpec, ...] = ()
    deleted: tuple[PrincipalSpec, ...] = ()
    history: tuple[HistorySpec, ...] = ()
    enabled_regions: tuple[str, ...] = ()
    organization: Organization | None = None
    source: str = "<scenario>"
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def regions(self) -> tuple[str, ...]:
        """The Regions the lab serves (EC2's enabled Regions): the scenario's own first."""
        return self.enabled_regions or (self.region,)

    def key(self, key_id: str) -> KeySpec | None:
        return self._keys_by_id.get(key_id)

    @cached_property
    def _keys_by_id(self) -> dict[str, KeySpec]:
        return {k.id: k for k in self.keys}

    @cached_property
    def accounts(self) -> tuple[str, ...]:
        """Every account the lab serves, the scenario's own first: those of its principals, groups and keys, and
        every account of its organization."""
        seen = dict.fromkeys([self.account])
        seen.update(dict.fromkeys(p.account for p in self.all_principals()))
        seen.update(dict.fromkeys(g.account for g in self.groups))
        seen.update(dict.fromkeys(k.account for k in self.keys))
        if self.organization is not None:
            seen.update(dict.fromkeys(self.organization.accounts))
        return tuple(seen)

    def all_principals(self) -> list[PrincipalSpec]:
        """Roles and users to create (identities' included, root excluded), deleted ones last."""
        out: list[PrincipalSpec] = []
        refs: set[tuple[str, str]] = set()
        for p in [*self.roles, *self.users, *(i.principal for i in self.identities), *self.deleted]:
            if p.kind == "root" or (p.account, p.ref) in refs:
                continue
            refs.add((p.account, p.ref))
            out.append(p)
        return out

    def identity(self, profile: str) -> IdentitySpec:
        for ident in self.identities:
            if ident.profile == profile:
                return ident
        known = ", ".join(i.profile for i in self.identities) or "none"
        raise UsageError(f"scenario {self.name} has no profile {profile!r} (profiles: {known})")


# --- loading ---------------------------------------------------------------------------------------------------


def builtin_names() -> list[str]:
    """The names of the built-in scenarios, sorted."""
    folder = resources.files(_BUILTIN_PACKAGE).joinpath("scenarios")
    return sorted(p.name[: -len(".json")] for p in folder.iterdir() if p.name.endswith(".json"))


def builtin_text(name: str) -> str:
    return resources.files(_BUILTIN_PACKAGE).joinpath("scenarios").joinpath(f"{name}.json").read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def schema() -> dict[str, Any]:
    """The scenario JSON Schema (package data ``kms_rescue/lab/scenario.schema.json``)."""
    text = resources.files(_BUILTIN_PACKAGE).joinpath("scenario.schema.json").read_text(encoding="utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


@lru_cache(maxsize=1)
def _inlined_schema() -> dict[str, Any]:
    """:func:`schema` with every local ``$ref`` replaced by the definition it names (the schema is not recursive):
    the same schema, validated several times faster on a scenario of thousands of keys, because jsonschema then
    resolves no reference per key (docs/lab.md, "A generated scenario", gives the load rate)."""
    root = schema()
    defs = root.get("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                rest = {k: inline(v) for k, v in node.items() if k != "$ref"}
                return {**inline(defs[ref[len("#/$defs/"):]]), **rest}
            return {k: inline(v) for k, v in node.items() if k != "$defs"}
        if isinstance(node, list):
            return [inline(v) for v in node]
        return node

    inlined: dict[str, Any] = inline(root)
    return inlined


def load_scenario(ref: str | Path | Mapping[str, Any] | Scenario) -> Scenario:
    """A scenario from a built-in name, a JSON file path, a dict, or an already loaded :class:`Scenario`.

    Raises :class:`ScenarioError` (a :class:`UsageError`) with one line naming the JSON path of the problem.
    """
    if isinstance(ref, Scenario):
        return ref
    if isinstance(ref, Mapping):
        return validate(ref, source="<scenario>", default_name="scenario")
    text_ref = str(ref)
    names = builtin_names()
    if isinstance(ref, str) and ref in names:
        doc = _parse_json(builtin_text(ref), f"{ref} (built-in)")
        return validate(doc, source=f"{ref} (built-in)", default_name=ref)
    path = Path(text_ref)
    if not path.exists():
        raise ScenarioError(
            f"no scenario {text_ref!r}: not a file, nor a built-in scenario ({', '.join(names)})"
        )
    doc = _parse_json(_read_text(path), str(path))
    stem = path.name[: -len(".json")] if path.name.endswith(".json") else path.name
    return validate(doc, source=str(path), default_name=re.sub(r"[^a-z0-9-]+", "-", stem.lower()) or "scenario")


def _read_text(path: Path) -> str:
    try:
        return read_bounded_text(str(path), max_bytes=DOCUMENT_MAX_BYTES, why="the cap on a scenario file")
    except PolicyInputError as exc:
        raise ScenarioError(f"scenario {exc}") from None


def _parse_json(text: str, source: str) -> Any:
    try:
        return load_json_text(text, source)
    except PolicyInputError as exc:
        raise ScenarioError(str(exc)) from None


def json_path(parts: Sequence[str | int]) -> str:
    out = "$"
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif re.match(r"^[A-Za-z_$][A-Za-z0-9_$]*$", part):
            out += f".{part}"
        else:
            out += f"[{json.dumps(part)}]"
    return out


def _schema_error(doc: Any, source: str) -> str | None:
    """The first schema violation as ``$.path: message``, or None."""
    try:
        import jsonschema  # deferred: in the lab extra, which loading a scenario for `lab --list` does not need
    except ImportError:  # pragma: no cover - jsonschema is in the lab extra
        raise UsageError(
            "the lab needs the 'lab' extra: pip install 'kms-rescue[lab]'"
        ) from None
    validator = jsonschema.Draft202012Validator(_inlined_schema())
    errors = list(validator.iter_errors(doc))
    if not errors:
        return None
    # Report the deepest error first: it is the most specific one (an unknown field inside identities[2], not
    # "identities[2] is not valid").
    errors.sort(key=lambda e: (-len(e.absolute_path), str(list(e.absolute_path))))
    err = errors[0]
    where = list(err.absolute_path)
    if err.validator == "additionalProperties" and isinstance(err.instance, dict):
        allowed = set(err.schema.get("properties", {}))
        extra = sorted(k for k in err.instance if k not in allowed)
        if extra:
            return f"{json_path([*where, extra[0]])}: unknown field"
    if err.validator == "required":
        missing = err.message.split("'")[1] if "'" in err.message else err.message
        return f"{json_path([*where, missing])}: required field is missing"
    if err.validator == "oneOf" and where and where[-1] == "alias":
        return f"{json_path(where)}: must be an alias name (alias/NAME, not alias/aws/...) or a list of them"
    if err.validator == "pattern":
        return f"{json_path(where)}: {json.dumps(err.instance)} does not match {err.validator_value}"
    if err.validator == "enum":
        allowed_values = ", ".join(json.dumps(v) for v in err.validator_value)
        return f"{json_path(where)}: {json.dumps(err.instance)} is not one of {allowed_values}"
    if err.validator == "const":
        return f"{json_path(where)}: must be {json.dumps(err.validator_value)}"
    if err.validator == "not" and "ous" in where:
        return f"{json_path(where)}: \"root\" names the organization's root; an OU needs another name"
    if err.validator == "not":
        return f"{json_path(where)}: {json.dumps(err.instance)} is not allowed here (reserved for AWS)"
    return f"{json_path(where)}: {err.message}"


def validate(doc: Any, *, source: str, default_name: str) -> Scenario:
    """Validate a scenario document and build the :class:`Scenario`. Raises :class:`ScenarioError`."""
    problem = _schema_error(doc, source)
    if problem:
        raise ScenarioError(f"{source}: {problem}")
    try:
        return _build(doc, source=source, default_name=default_name)
    except _Problem as exc:
        raise ScenarioError(f"{source}: {exc}") from None


class _Problem(Exception):
    pass


def _policies(raw: list[Any] | None, where: str) -> tuple[Mapping[str, Any], ...]:
    out = []
    for i, doc in enumerate(raw or ()):
        try:
            parse_policy(doc)
        except PolicyInputError as exc:
            raise _Problem(f"{where}[{i}]: {exc}") from None
        out.append(doc)
    return tuple(out)


def _principal(kind: PrincipalKind, d: Mapping[str, Any], where: str, account: str) -> PrincipalSpec:
    name: str | None = None if kind == "root" else d.get(kind, d.get("name"))
    trust = d.get("trust")
    if trust is not None:
        _policies([trust], f"{where}.trust")
    return PrincipalSpec(
        kind=kind,
        name=name,
        account=d.get("account", account),
        path=d.get("path", "/"),
        policies=_policies(d.get("policies"), f"{where}.policies"),
        attach=tuple(d.get("attach", ())),
        groups=tuple(d.get("groups", ())),
        tags=dict(d.get("tags", {})),
        trust=trust,
        permissions_boundary=d.get("permissions_boundary"),
        where=where,
    )


def _deleted_ref(ref: str, account: str) -> PrincipalSpec:
    if ref.startswith("arn:"):  # arn:aws:iam::ACCOUNT:role/NAME: a principal of another account
        _, _, _, _, account, ref = ref.split(":", 5)
    kind, _, rest = ref.partition("/")
    path, _, name = rest.rpartition("/")
    return PrincipalSpec(
        kind="role" if kind == "role" else "user", name=name, account=account, path=f"/{path}/" if path else "/"
    )


def _build(doc: Mapping[str, Any], *, source: str, default_name: str) -> Scenario:
    account: str = doc["account"]
    identities: list[IdentitySpec] = []
    profiles: set[str] = set()
    for i, d in enumerate(doc.get("identities", ())):
        where = f"$.identities[{i}]"
        kinds = [k for k in ("role", "user", "root") if k in d]
        if len(kinds) != 1:
            got = " and ".join(kinds) if kinds else "none of them"
            raise _Problem(f"{where}: an identity is exactly one of role, user or root (got {got})")
        kind: PrincipalKind = kinds[0]  # type: ignore[assignment]
        if d["profile"] in profiles:
            raise _Problem(f"{where}.profile: {d['profile']!r} is used by another identity")
        profiles.add(d["profile"])
        if kind == "root":
            for bad in ("policies", "attach", "groups", "path", "tags", "trust", "session_name",
                        "permissions_boundary"):
                if bad in d:
                    raise _Problem(f"{where}.{bad}: the root user has no {bad.replace('_', ' ')}")
        if kind != "role":
            for bad in ("session_name", "trust"):
                if bad in d:
                    raise _Problem(f"{where}.{bad}: only role identities have a {bad.replace('_', ' ')}")
        if kind != "user" and "groups" in d:
            raise _Problem(f"{where}.groups: only users belong to groups")
        principal = _principal(kind, d, where, account)
        identities.append(
            IdentitySpec(
                profile=d["profile"], principal=principal, session_name=d.get("session_name"),
                description=d.get("description", ""),
            )
        )

    roles = tuple(_principal("role", d, f"$.roles[{i}]", account) for i, d in enumerate(doc.get("roles", ())))
    users = tuple(_principal("user", d, f"$.users[{i}]", account) for i, d in enumerate(doc.get("users", ())))
    for label, group in (("roles", roles), ("users", users)):
        seen: dict[tuple[str, str | None], str] = {}
        for p in group:
            if (p.account, p.name) in seen:
                raise _Problem(f"{p.where}.name: {p.name!r} is defined twice in $.{label}")
            seen[(p.account, p.name)] = p.where
    defined = {(p.account, p.kind, p.name): p for p in (*roles, *users)}
    for ident in identities:
        p = ident.principal
        other = defined.get((p.account, p.kind, p.name))
        if other is not None and (p.policies or p.attach or p.tags or p.trust or p.groups or p.path != "/"
                                  or p.permissions_boundary):
            raise _Problem(
                f"{p.where}: {p.kind} {p.name} is defined in {other.where}; give its policies there, not here"
            )

    groups = []
    for i, d in enumerate(doc.get("groups", ())):
        where = f"$.groups[{i}]"
        groups.append(
            GroupSpec(
                name=d["name"], account=d.get("account", account), path=d.get("path", "/"),
                policies=_policies(d.get("policies"), f"{where}.policies"), attach=tuple(d.get("attach", ())),
            )
        )
    group_names = {(g.account, g.name) for g in groups}
    managed = []
    for i, d in enumerate(doc.get("managed_policies", ())):
        where = f"$.managed_policies[{i}]"
        _policies([d["document"]], f"{where}.document")
        managed.append(
            ManagedPolicySpec(
                name=d["name"], account=d.get("account", account), document=d["document"],
                path=d.get("path", "/"), description=d.get("description", ""),
            )
        )
    managed_names = {(m.account, m.name) for m in managed}
    managed_arns = {m.arn for m in managed}

    principals_with_where = [*roles, *users, *(i.principal for i in identities)]
    for p in principals_with_where:
        for j, att in enumerate(p.attach):
            if not (att.startswith("arn:") and att in managed_arns) and (p.account, att) not in managed_names:
                raise _Problem(f"{p.where}.attach[{j}]: no managed policy {att!r} in $.managed_policies")
        pb = p.permissions_boundary
        known = pb is None or (pb.startswith("arn:") and pb in managed_arns) or (p.account, pb) in managed_names
        if not known:
            raise _Problem(f"{p.where}.permissions_boundary: no managed policy {pb!r} in $.managed_policies")
        for j, group_name in enumerate(p.groups):
            if (p.account, group_name) not in group_names:
                raise _Problem(f"{p.where}.groups[{j}]: no group {group_name!r} in $.groups")
    for i, gspec in enumerate(groups):
        for j, att in enumerate(gspec.attach):
            if not (att.startswith("arn:") and att in managed_arns) and (gspec.account, att) not in managed_names:
                raise _Problem(f"$.groups[{i}].attach[{j}]: no managed policy {att!r} in $.managed_policies")

    deleted = []
    profiled = {(i.principal.account, i.principal.kind, i.principal.name): i for i in identities}
    for i, ref in enumerate(doc.get("deleted", ())):
        spec = _deleted_ref(ref, account)
        if (spec.account, spec.kind, spec.name) in profiled:
            raise _Problem(
                f"$.deleted[{i}]: {ref} has a profile in $.identities; a deleted principal has no credentials"
            )
        base = defined.get((spec.account, spec.kind, spec.name))
        if base is not None:
            if base.path != spec.path:
                raise _Problem(f"$.deleted[{i}]: {ref} does not match the path {base.path} of {base.where}")
            spec = base
        deleted.append(spec)

    region: str = doc["region"]
    _check_region(region, "$.region")
    keys = []
    key_ids: set[str] = set()
    aliases: set[tuple[str, str, str]] = set()  # (account, region, alias): unique in its account and Region
    for i, d in enumerate(doc["keys"]):
        where = f"$.keys[{i}]"
        if d["id"] in key_ids:
            raise _Problem(f"{where}.id: {d['id']} is used by another key")
        key_ids.add(d["id"])
        key_region = d.get("region", region)
        key_account = d.get("account", account)
        _check_region(key_region, f"{where}.region")
        raw_alias = d.get("alias", ())
        key_aliases = (raw_alias,) if isinstance(raw_alias, str) else tuple(raw_alias)
        for a in key_aliases:
            if (key_account, key_region, a) in aliases:
                where_else = key_region if key_account == account else f"{key_account} {key_region}"
                raise _Problem(f"{where}.alias: {a} points to another key in {where_else} already")
            aliases.add((key_account, key_region, a))
        policy = d.get("policy")
        if policy is not None:
            _key_policy_check(policy, f"{where}.policy")
        keys.append(
            KeySpec(
                id=d["id"], region=key_region, account=key_account, aliases=key_aliases,
                description=d.get("description", ""), policy=policy,
                state=d.get("state", "Enabled"), multi_region=bool(d.get("multi_region", False)),
                key_spec=d.get("key_spec", "SYMMETRIC_DEFAULT"),
                key_usage=d.get("key_usage", _default_usage(d.get("key_spec", "SYMMETRIC_DEFAULT"))),
                tags=dict(d.get("tags", {})), expected_verdict=d.get("expected_verdict"),
            )
        )
        if d["id"].startswith("mrk-") != bool(d.get("multi_region", False)):
            raise _Problem(f"{where}.id: multi-Region key ids start with mrk- (and only they do)")

    history = []
    for i, d in enumerate(doc.get("history", ())):
        where = f"$.history[{i}]"
        event = d["event"]
        if event in ("DeleteRole", "DeleteUser"):
            if "target" not in d:
                raise _Problem(f"{where}.target: {event} needs the target (role/NAME or user/NAME)")
        elif d.get("key") not in key_ids:
            raise _Problem(f"{where}.key: {event} needs the id of a key in $.keys (got {d.get('key')!r})")
        if "policy" in d:
            if event not in ("CreateKey", "PutKeyPolicy"):
                raise _Problem(f"{where}.policy: only CreateKey and PutKeyPolicy events carry a policy")
            _key_policy_check(d["policy"], f"{where}.policy")
        elif event == "PutKeyPolicy":
            raise _Problem(f"{where}.policy: a PutKeyPolicy event needs the policy it set")
        try:
            parse_caller(d["principal"])
        except Exception as exc:
            raise _Problem(f"{where}.principal: {exc}") from None
        try:
            HistorySpec(event=event, principal=d["principal"], time=d["time"]).resolve_time(
                datetime.now(timezone.utc)
            )
        except (ValueError, OverflowError):  # OverflowError: a relative time beyond what a datetime can hold
            raise _Problem(f"{where}.time: not a valid time: {d['time'][:40]!r}") from None
        history.append(
            HistorySpec(
                event=event, principal=d["principal"], time=d["time"], key=d.get("key"), target=d.get("target"),
                policy=d.get("policy"), bypass_lockout_check=bool(d.get("bypass_lockout_check", False)),
                pending_window_days=d.get("pending_window_days"), error_code=d.get("error_code"),
                error_message=d.get("error_message"), source_ip=d.get("source_ip"),
            )
        )

    enabled_regions = _enabled_regions(doc, region, keys)
    try:
        organization = build_organization(doc.get("organization"), account)
    except OrgProblem as exc:
        raise _Problem(str(exc)) from None
    if organization is not None:
        for where, document in policy_documents(organization):
            try:
                parse_policy(document)
            except PolicyInputError as exc:
                raise _Problem(f"{where}: {exc}") from None
        roles = (*roles, *_access_roles(organization, [*roles, *(i.principal for i in identities)]))
    scenario = Scenario(
        name=doc.get("name", default_name),
        account=account,
        region=region,
        enabled_regions=enabled_regions,
        keys=tuple(keys),
        description=doc.get("description", ""),
        expected_verdict=doc.get("expected_verdict"),
        identities=tuple(identities),
        roles=roles,
        users=users,
        groups=tuple(groups),
        managed_policies=tuple(managed),
        deleted=tuple(deleted),
        history=tuple(history),
        organization=organization,
        source=source,
        raw=doc,
    )
    _check_named_principals(scenario)
    return scenario


#: What the access role may do: everything, as the AdministratorAccess policy Organizations attaches to it.
ADMINISTRATOR_ACCESS: Mapping[str, Any] = {
    "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
}


def _access_roles(org: Organization, declared: Sequence[PrincipalSpec]) -> list[PrincipalSpec]:
    """The organization's access role in each member account that does not declare it itself (AWS Organizations
    User Guide, "Accessing member accounts in your organization": an account Organizations creates gets
    OrganizationAccountAccessRole, which trusts the management account and has administrator permissions)."""
    if org.access_role is None:
        return []
    have = {(p.account, p.name) for p in declared if p.kind == "role"}
    trust = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{org.management_account}:root"},
        "Action": "sts:AssumeRole"}]}
    return [
        PrincipalSpec(kind="role", name=org.access_role, account=member, policies=(ADMINISTRATOR_ACCESS,),
                      trust=trust, where="$.organization.access_role")
        for member in org.members if (member, org.access_role) not in have
    ]


def _check_region(name: str, where: str) -> None:
    problem = region_problem(name)
    if problem:
        raise _Problem(f"{where}: {problem}")


def _enabled_regions(doc: Mapping[str, Any], region: str, keys: Sequence[KeySpec]) -> tuple[str, ...]:
    """``enabled_regions`` as given (each a Region, including the scenario's and every key's), or those."""
    needed = [region, *(k.region for k in keys)]
    if "enabled_regions" not in doc:
        return tuple(dict.fromkeys(needed))
    given: list[str] = list(doc["enabled_regions"])
    for i, name in enumerate(given):
        _check_region(name, f"$.enabled_regions[{i}]")
    for name, where in [(region, "$.region"), *((k.region, f"$.keys[{i}].region") for i, k in enumerate(keys))]:
        if name not in given:
            raise _Problem(f"$.enabled_regions: must include {name}, the Region of {where}")
    # The scenario's own Region first: it is the one the profiles use.
    return (region, *(name for name in given if name != region))


def _default_usage(spec: str) -> str:
    if spec.startswith("HMAC_"):
        return "GENERATE_VERIFY_MAC"
    if spec.startswith("ECC_"):
        return "SIGN_VERIFY"
    return "ENCRYPT_DECRYPT"


def _key_policy_check(policy: Mapping[str, Any], where: str) -> None:
    try:
        parse_policy(json.dumps(policy), max_bytes=KEY_POLICY_MAX_BYTES)
    except PolicyInputError as exc:
        raise _Problem(f"{where}: {exc}") from None


def principal_values(policy: Mapping[str, Any]) -> list[str]:
    """Every AWS principal value of a policy's Principal and NotPrincipal elements, as written."""
    out: list[str] = []
    statements = policy.get("Statement", [])
    if isinstance(statements, dict):
        statements = [statements]
    for st in statements if isinstance(statements, list) else []:
        if not isinstance(st, dict):
            continue
        for element in ("Principal", "NotPrincipal"):
            spec = st.get(element)
            if isinstance(spec, dict):
                aws = spec.get("AWS", [])
                out.extend([aws] if isinstance(aws, str) else [v for v in aws if isinstance(v, str)])
    return out


def _check_named_principals(scenario: Scenario) -> None:
    """Key policies may name only principals the scenario creates (or deletes), in the accounts it manages."""
    accounts = set(scenario.accounts)
    known = {p.arn for p in scenario.all_principals()}
    sources: list[tuple[str, Mapping[str, Any]]] = [
        (f"$.keys[{i}].policy", k.policy) for i, k in enumerate(scenario.keys) if k.policy is not None
    ]
    for where, policy in sources:
        for value in principal_values(policy):
            pv = classify_aws_value(value)
            if pv.kind == "invalid":
                raise _Problem(f"{where}: {value!r} is not a valid principal (KMS would refuse this policy)")
            if pv.kind in ("user", "role") and pv.account in accounts and value not in known:
                raise _Problem(
                    f"{where}: names {value}, which the scenario does not create (add it to roles, users or "
                    "deleted; KMS refuses a key policy naming a principal that does not exist)"
                )
