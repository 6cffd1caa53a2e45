"""Plain data: what each identity saw, call by call (returned by ``kms_rescue.aws``).

Pure: nothing here imports boto3 or ``kms_rescue.aws``, so the verdict layer (:mod:`kms_rescue.verdict`) and
:mod:`kms_rescue.report` can decide from these objects without depending on the code that gathered them, and the
wizard and the ticket read them. No object here ever holds a credential; every message has been through
:mod:`kms_rescue.aws.redact` before it is stored.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from kms_rescue.policy.guardrails import UNREAD, Guardrails, OrgMembership, Unread
from kms_rescue.policy.guardrails import OrgLevel as EngineLevel

#: How one AWS call (or credential resolution) ended.
#:
#: ``ok``; ``access_denied`` (AccessDenied*, a policy said no); ``not_found`` (no such key, alias, role, user);
#: ``wrong_region`` (the request went to a region that does not hold the key or the credentials are scoped to
#: another region); ``key_disabled`` / ``pending_deletion`` (KMSInvalidStateException, DisabledException);
#: ``throttled`` (still throttled after the standard retries); ``timeout`` (connect/read timeout, or credentials
#: that did not resolve in time); ``no_credentials`` (none configured, or the credential process failed);
#: ``invalid_credentials`` (expired or unrecognised: ExpiredToken, InvalidClientTokenId,
#: UnrecognizedClientException, SignatureDoesNotMatch); ``sso_expired`` (IAM Identity Center token missing or
#: expired: run ``aws sso login``); ``needs_mfa`` (a role profile with ``mfa_serial``: ``report`` never prompts);
#: ``error`` (anything else).
Outcome = Literal[
    "ok",
    "access_denied",
    "not_found",
    "wrong_region",
    "key_disabled",
    "pending_deletion",
    "throttled",
    "timeout",
    "no_credentials",
    "invalid_credentials",
    "sso_expired",
    "needs_mfa",
    "error",
]
OUTCOMES: tuple[str, ...] = Outcome.__args__  # type: ignore[attr-defined]

#: Outcomes that mean "these credentials cannot be used at all": stop probing that identity.
CREDENTIAL_FAILURES = frozenset({"no_credentials", "invalid_credentials", "sso_expired", "needs_mfa"})

IdentitySource = Literal["profile", "env", "assume_role"]


@dataclass(frozen=True)
class CallResult:
    """One AWS call made by one identity.

    ``operation`` is ``service:Operation`` (``kms:GetKeyPolicy``, ``iam:GetRolePolicy``), or ``credentials`` for
    credential resolution. ``target`` is what the call was about (a key ARN, an alias, a role name), when any.
    ``at`` is the UTC start time in ISO 8601; ``duration_ms`` includes botocore's retries.
    """

    operation: str
    outcome: Outcome
    error_code: str | None = None
    message: str | None = None
    duration_ms: int = 0
    at: str = ""
    target: str | None = None

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"

    def to_dict(self) -> dict[str, Any]:
        return {
            "operation": self.operation,
            "outcome": self.outcome,
            "error_code": self.error_code,
            "message": self.message,
            "duration_ms": self.duration_ms,
            "at": self.at,
            "target": self.target,
        }


@dataclass(frozen=True)
class IdentitySpec:
    """An identity to probe: a profile, the environment's credentials, or a role assumed from a base identity.

    ``profile`` names the config profile that supplies region/endpoint settings (and credentials, except for
    ``env``). ``kind`` says how its credentials are obtained, from the config alone (no call is made to learn it):
    ``static``, ``sso``, ``assume_role``, ``credential_process``, ``web_identity``, ``env`` or ``unknown``.
    """

    name: str
    source: IdentitySource
    profile: str | None = None
    role_arn: str | None = None
    base: str | None = None  # for source == "assume_role": the name of the identity it is assumed from
    kind: str = "unknown"
    mfa_serial: str | None = None
    session_name: str | None = None  # for source == "assume_role": the role session name (default kms-rescue)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "source": self.source,
            "profile": self.profile,
            "role_arn": self.role_arn,
            "base": self.base,
            "kind": self.kind,
            "session_name": self.session_name,
        }


@dataclass(frozen=True)
class PolicyDoc:
    """One identity policy of a probed principal: where it came from and its document."""

    source: str  # e.g. "inline role/App:AppKms", "managed arn:aws:iam::aws:policy/AdministratorAccess"
    document: dict[str, Any]


@dataclass
class IdentityPolicies:
    """The identity policies of a principal, as far as they could be read.

    ``status``: ``read`` (every policy was read), ``not_needed`` (the root user: covered by the account principal
    without any identity policy), ``unknown`` (some could not be read; ``documents`` holds what could).
    ``read_by`` names the identity whose IAM permissions were used.
    """

    status: Literal["read", "not_needed", "unknown"]
    documents: list[PolicyDoc] = field(default_factory=list)
    read_by: str | None = None
    reason: str | None = None

    @property
    def complete(self) -> bool:
        return self.status in ("read", "not_needed")


@dataclass(frozen=True)
class PermissionsBoundary:
    """A user's or role's permissions boundary (IAM User Guide, "Permissions boundaries for IAM entities").

    ``status``: ``read`` (``document`` is the boundary policy's default version), ``none`` (it has no boundary, or
    it is the root user), ``unknown`` (not read: ``reason`` says why; ``policy_arn`` when GetRole/GetUser showed
    it but the policy could not be read)."""

    status: Literal["read", "none", "unknown"]
    policy_arn: str | None = None
    document: dict[str, Any] | None = None
    read_by: str | None = None
    reason: str | None = None


@dataclass
class IdentityProbe:
    """Everything one identity saw. ``status`` is the outcome of getting usable credentials and
    sts:GetCallerIdentity; ``calls`` lists every call in order (credential failures included)."""

    spec: IdentitySpec
    status: Outcome = "error"
    arn: str | None = None
    account: str | None = None
    hint: str | None = None
    calls: list[CallResult] = field(default_factory=list)
    key_metadata: dict[str, Any] | None = None  # DescribeKey's KeyMetadata (JSON-safe)
    key_arn: str | None = None  # the key ARN this identity resolved (DescribeKey, ListAliases, an error message)
    aliases: list[str] = field(default_factory=list)  # alias names of the key seen through ListAliases
    key_policy: dict[str, Any] | None = None  # GetKeyPolicy's document, parsed
    key_policy_text: str | None = None
    grants: list[dict[str, Any]] | None = None  # ListGrants
    identity_policies: IdentityPolicies | None = None
    #: For a role session: its role's ARN, path included (iam:GetRole). A session ARN drops the role's path, but a
    #: session's aws:PrincipalArn is the role's ARN with it. None when not a session or GetRole was not allowed.
    role_arn: str | None = None
    #: The caller's permissions boundary (iam:GetRole / iam:GetUser, then iam:GetPolicy + iam:GetPolicyVersion);
    #: None when it was not looked for.
    permissions_boundary: PermissionsBoundary | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def usable(self) -> bool:
        return self.status == "ok" and self.arn is not None

    def last(self, operation: str) -> CallResult | None:
        for call in reversed(self.calls):
            if call.operation == operation:
                return call
        return None


@dataclass(frozen=True)
class KeyFacts:
    """What the probes established about the key itself."""

    input: str
    arn: str | None
    key_id: str | None
    account: str | None
    region: str
    state: str | None = None
    aliases: tuple[str, ...] = ()
    multi_region: bool | None = None
    key_manager: str | None = None
    description: str | None = None
    creation_date: str | None = None
    deletion_date: str | None = None
    resolved_by: str | None = None  # the identity (and call) that resolved the key, e.g. "admin kms:DescribeKey"
    multi_region_type: str | None = None  # PRIMARY | REPLICA (DescribeKey's MultiRegionConfiguration)
    primary_arn: str | None = None  # a replica's primary key
    origin: str | None = None  # AWS_KMS | EXTERNAL | AWS_CLOUDHSM | EXTERNAL_KEY_STORE
    custom_key_store_id: str | None = None
    pending_window_days: int | None = None


@dataclass(frozen=True)
class HistoryEvent:
    """One CloudTrail management event about the key."""

    event_id: str
    name: str  # CreateKey, PutKeyPolicy, ScheduleKeyDeletion, DisableKey
    time: str  # ISO 8601 UTC
    actor: str | None  # userIdentity.arn
    error_code: str | None = None  # set when the call failed
    policy: dict[str, Any] | None = None  # the policy in requestParameters (CreateKey / PutKeyPolicy)
    policy_note: str | None = None  # e.g. "default key policy: CreateKey had no Policy parameter"

    @property
    def succeeded(self) -> bool:
        return self.error_code is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "name": self.name,
            "time": self.time,
            "actor": self.actor,
            "error_code": self.error_code,
            "succeeded": self.succeeded,
            "policy": self.policy,
            "policy_note": self.policy_note,
        }


@dataclass(frozen=True)
class HistoryLookup:
    """The outcome of looking the key up in CloudTrail event history (LookupEvents, last 90 days)."""

    attempted: bool
    region: str
    events: tuple[HistoryEvent, ...] = ()
    read_by: str | None = None
    outcome: Outcome | None = None
    error_code: str | None = None
    message: str | None = None
    requests: int = 0
    truncated: bool = False  # stopped at the page limit before the end of the history


@dataclass(frozen=True)
class PrincipalCheck:
    """Whether a principal named by the policy exists, and how we know."""

    arn: str
    exists: bool | None
    evidence: str
    checked_by: str | None = None  # the identity whose iam:GetRole/GetUser answered


@dataclass(frozen=True)
class FoundElsewhere:
    """The key (or alias) found in another Region than the one asked."""

    region: str
    key_arn: str
    found_by: str  # the identity whose kms:DescribeKey found it


@dataclass(frozen=True)
class KeyLocation:
    """The search for a key that was not found where it was asked: the account's other enabled Regions.

    ``regions_from``: ``ec2:DescribeRegions`` (the account's enabled Regions) or ``partition`` (every Region of the
    partition botocore knows, when DescribeRegions was not allowed)."""

    searched: tuple[str, ...] = ()
    found: tuple[FoundElsewhere, ...] = ()
    searched_by: str | None = None
    regions_from: str | None = None
    note: str | None = None


@dataclass(frozen=True)
class OrgPolicyDoc:
    """One SCP or RCP (organizations:DescribePolicy)."""

    id: str
    name: str
    type: Literal["SERVICE_CONTROL_POLICY", "RESOURCE_CONTROL_POLICY"]
    document: dict[str, Any]
    aws_managed: bool = False


@dataclass(frozen=True)
class OrganizationLevel:
    """One level on the path from the organization's root to the key's account, with its SCPs and RCPs."""

    target: str  # r-…, ou-…, or the account id
    kind: Literal["root", "ou", "account"]
    scps: tuple[OrgPolicyDoc, ...] = ()
    rcps: tuple[OrgPolicyDoc, ...] = ()


@dataclass(frozen=True)
class OrganizationGuardrails:
    """The SCPs and RCPs that apply to the key's account (AWS Organizations: DescribeOrganization, ListRoots,
    ListParents up to the root, ListPoliciesForTarget per level and type, DescribePolicy).

    ``status``: ``read`` (``levels`` run from the root to the account; ``scps_enabled``/``rcps_enabled`` say
    whether each type is enabled: a type that is not has no effect), ``none`` (the account is in no organization),
    ``management_account`` (the key's account is the management account: SCPs and RCPs do not apply there),
    ``unknown`` (``reason`` says why: typically no identity of the management account)."""

    status: Literal["read", "none", "management_account", "unknown"]
    organization_id: str | None = None
    management_account: str | None = None
    read_by: str | None = None
    reason: str | None = None
    scps_enabled: bool | None = None
    rcps_enabled: bool | None = None
    levels: tuple[OrganizationLevel, ...] = ()


@dataclass
class Investigation:
    """Everything :func:`kms_rescue.aws.investigate.investigate` gathered; input to
    :func:`kms_rescue.report.build_report`."""

    key: KeyFacts
    identities: list[IdentityProbe]
    history: HistoryLookup
    principal_checks: dict[str, PrincipalCheck] = field(default_factory=dict)
    started_at: str = ""
    finished_at: str = ""
    warnings: list[str] = field(default_factory=list)
    trail_bucket: str | None = None
    location: KeyLocation | None = None  # set when every identity that looked found no such key
    #: The SCPs and RCPs of the key's account; None when not looked for.
    organization: OrganizationGuardrails | None = None

    def guardrails_for(self, identity: str) -> Guardrails:
        """The engine's guardrails for a request by the probed identity ``identity`` on the key: its permissions
        boundary and the organization's SCPs and RCPs, each :data:`UNREAD` when it was not read (see
        :func:`kms_rescue.policy.evaluate`, argument ``guardrails``)."""
        probe = next(p for p in self.identities if p.name == identity)
        return guardrails_from(probe.permissions_boundary, self.organization, caller_account=probe.account,
                               key_account=self.key.account)


@dataclass(frozen=True)
class ProgressEvent:
    """Reported to the injected progress callback.

    ``kind``: ``plan`` (``total`` steps announced), ``step`` (one step finished: an identity's probe, the history
    lookup, the existence checks), ``call`` (one AWS call finished; ``identity``, ``operation``, ``outcome``).
    """

    kind: Literal["plan", "step", "call"]
    identity: str | None = None
    operation: str | None = None
    outcome: str | None = None
    total: int | None = None
    message: str | None = None


Progress = Callable[[ProgressEvent], None]


def no_progress(_event: ProgressEvent) -> None:
    """The default progress callback: ignore."""


def guardrails_from(
    boundary: PermissionsBoundary | None,
    organization: OrganizationGuardrails | None,
    *,
    caller_account: str | None,
    key_account: str | None,
) -> Guardrails:
    """Guardrails for the engine from what was read. Not read (None or ``unknown``) becomes :data:`UNREAD`."""
    pb: object | Unread | None
    if boundary is None or boundary.status == "unknown":
        pb = UNREAD
    else:
        pb = boundary.document if boundary.status == "read" else None
    org = organization
    if org is None or org.status == "unknown":
        scps: tuple[EngineLevel, ...] | Unread | None = UNREAD
        rcps: tuple[EngineLevel, ...] | Unread | None = UNREAD
    elif org.status in ("none", "management_account"):
        scps = rcps = None
    else:
        def levels(kind: str) -> tuple[EngineLevel, ...]:
            return tuple(EngineLevel(target=lv.target, policies=tuple(
                d.document for d in (lv.scps if kind == "scp" else lv.rcps))) for lv in org.levels)

        # SCPs were read for the key's account: a caller of another account is not covered by them.
        scps = (levels("scp") if org.scps_enabled else None) if caller_account == key_account else UNREAD
        rcps = levels("rcp") if org.rcps_enabled else None
    member: OrgMembership | None = None
    if org is not None and org.organization_id:  # DescribeOrganization answered, whatever was read after it
        ids = [lv.target for lv in org.levels[:-1]]  # the root and the OUs above the account
        member = OrgMembership(org.organization_id,
                               org.organization_id + "/" + "".join(f"{t}/" for t in ids) if ids else None)
    return Guardrails(permissions_boundary=pb, scps=scps, rcps=rcps,
                      management_account=org.management_account if org is not None else None,
                      principal_org=member if caller_account == key_account else None, resource_org=member)
