"""The report's contract: the dataclasses :func:`kms_rescue.report.build_report` fills and the renderers, the rescue
session and the ticket read. :meth:`Report.to_dict` is the JSON document described by ``docs/report.schema.json``
(``schema_version`` changes when a field is added, changes meaning or goes away). Pure: no I/O.

Verdicts (docs/report.md, "The verdict"; their exit statuses: docs/exit-status.md):

* ``manageable`` — a probed identity can call kms:PutKeyPolicy now (in every world the observations leave).
* ``recoverable`` — none can for certain, but a principal of the key's account that exists (or may exist) can:
  a role or user named by the policy, the root user when the policy lets root in, any IAM principal given an
  identity policy when the policy delegates to IAM, or a probed identity whose access rests on an unknown.
* ``locked_out`` — no principal of the key's account can ever call PutKeyPolicy: only AWS Support can help
  (unless ``intentional_lock``: the key is locked to Nitro Enclaves attestation on purpose).
* ``undetermined`` — no identity could read the policy and CloudTrail did not have it.
* ``not_found`` — every identity that looked was told the key or alias does not exist in the Region asked
  (``location`` says where else it was looked for, and where it is).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from kms_rescue.observations import CallResult, HistoryEvent, KeyLocation
from kms_rescue.status import VERDICT_STATUS, verdict_status
from kms_rescue.verdict.key_state import KeyStateNotice

SCHEMA_VERSION = "1.1"
MANAGE_ACTION = "kms:PutKeyPolicy"

Verdict = Literal["manageable", "recoverable", "locked_out", "undetermined", "not_found"]
VERDICTS: tuple[Verdict, ...] = ("manageable", "recoverable", "locked_out", "undetermined", "not_found")
#: The exit status of each verdict, as plain numbers (the table is :mod:`kms_rescue.status`; docs/exit-status.md).
EXIT_CODES: dict[str, int] = {verdict: int(status) for verdict, status in VERDICT_STATUS.items()}

PolicySource = Literal["live", "cloudtrail", "none"]
StepAction = Literal[
    "use_identity",  # a probed identity can repair the policy now
    "cancel_key_deletion",  # the key is pending deletion: cancel first
    "enable_key",  # the key is disabled (management still works; use needs it enabled)
    "assume_role",  # a role the policy names (or a "*" statement narrows to) can manage
    "sign_in_user",  # an IAM user the policy names can manage
    "sign_in_root",  # the policy lets the root user in
    "attach_identity_policy",  # the policy delegates to IAM: an IAM admin grants kms:PutKeyPolicy
    "check_identity_policy",  # a probed identity may already be allowed: its IAM policies could not be read
    "check_unknown",  # a probed identity may already be allowed: it rests on another unknown (named in detail)
    "use_region",  # the key is in another Region than the one asked
    "check_key_reference",  # no such key or alias: check for a typo, the Region and the account
    "change_guardrail",  # a way in that only an SCP or RCP closes: the organization's management account changes it
    "sso_login",  # an identity's IAM Identity Center session expired
    "mfa",  # an identity needs an MFA code
    "read_policy",  # nobody could read the policy: what else to try
    "athena_history",  # look further back than CloudTrail's 90 days
    "contact_support",  # nobody in the account can manage the key
    "intentional",  # locked on purpose (Nitro Enclaves): nothing to fix
]


def exit_code_for(verdict: str) -> int:
    """The exit status of a verdict (:data:`kms_rescue.status.VERDICT_STATUS`; docs/exit-status.md)."""
    return int(verdict_status(verdict))


# --- the contract ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KeySection:
    """The key. ``arn``/``id``/``account`` are None when no identity could resolve the key."""

    input: str
    arn: str | None
    id: str | None
    account: str | None
    region: str
    state: str | None = None  # Enabled, Disabled, PendingDeletion, PendingImport, ...; None when unread
    aliases: tuple[str, ...] = ()
    multi_region: bool | None = None
    key_manager: str | None = None  # CUSTOMER or AWS
    description: str | None = None
    creation_date: str | None = None
    deletion_date: str | None = None
    resolved_by: str | None = None
    multi_region_type: str | None = None  # PRIMARY | REPLICA
    primary_arn: str | None = None
    origin: str | None = None


@dataclass(frozen=True)
class IdentityPolicySummary:
    """What was read of an identity's own IAM policies: ``status`` read | not_needed (root) | unknown."""

    status: str
    sources: tuple[str, ...] = ()
    read_by: str | None = None
    reason: str | None = None


@dataclass(frozen=True)
class IdentityReport:
    """One identity: how it was configured, whether its credentials worked (``status``), every call it made, and
    whether it can manage the key (``can_manage``: True, False, or None when that could not be decided)."""

    name: str
    source: str  # profile | env | assume_role
    profile: str | None
    role_arn: str | None  # for assume_role identities, and role profiles
    base: str | None  # for assume_role identities: the identity the role is assumed from
    session_name: str | None  # for assume_role identities: the role session name asked for (None: kms-rescue)
    kind: str  # static | sso | assume_role | credential_process | web_identity | env | unknown
    arn: str | None  # the caller ARN (sts:GetCallerIdentity)
    account: str | None
    status: str  # an Outcome: ok, sso_expired, needs_mfa, no_credentials, invalid_credentials, timeout, ...
    hint: str | None
    calls: tuple[CallResult, ...]
    can_manage: bool | None = None
    decision: str | None = None  # the engine's decision for kms:PutKeyPolicy: allow | explicit_deny | implicit_deny
    grant: str | None = None  # how the key policy lets it in: direct | delegated | None
    why: str | None = None
    identity_policies: IdentityPolicySummary | None = None
    assumption: str | None = None  # when can_manage is None: the one unknown that decides it
    assumed: tuple[str, ...] = ()  # what the decision takes for granted because it was not read
    observations: tuple[str, ...] = ()  # the observed calls that narrowed the decision, in words
    worlds: int = 1  # candidate worlds of its unknowns
    worlds_left: int = 1  # those consistent with every observed outcome


@dataclass(frozen=True)
class PolicyEvent:
    """The CloudTrail event a reconstructed policy comes from."""

    event_id: str
    name: str
    time: str
    actor: str | None


@dataclass(frozen=True)
class PolicySection:
    """The key policy the analysis used: ``live`` (kms:GetKeyPolicy by ``read_by``), ``cloudtrail`` (the last
    policy recorded in CloudTrail, ``event``), or ``none``."""

    source: PolicySource
    document: dict[str, Any] | None = None
    read_by: str | None = None
    event: PolicyEvent | None = None
    note: str | None = None


@dataclass(frozen=True)
class PrincipalEntry:
    """A principal the policy names (in Principal/NotPrincipal, or an ``aws:PrincipalArn`` condition).

    ``exists``: True, False (deleted: a unique id, or IAM says no such entity), None (unknown)."""

    value: str
    kind: str  # account | user | role | session | unique_id | wildcard | service | federated_user | invalid | ...
    account: str | None
    exists: bool | None
    evidence: str
    statements: tuple[str, ...] = ()
    in_condition: bool = False


@dataclass(frozen=True)
class PathEntry:
    """One way in to kms:PutKeyPolicy that the policy opens (from the engine's management analysis)."""

    kind: str
    principal: str
    statement: str
    conditions: tuple[str, ...] = ()
    satisfiable: bool = True
    can_manage: bool = False
    needs_identity_policy: bool = False
    exists: bool | None = None
    blocked_by: tuple[str, ...] = ()
    may_be_blocked_by: tuple[str, ...] = ()
    why: str = ""
    opens_at: str | None = None  # a way in that only a date keeps shut: when it opens (ISO 8601 UTC)
    closes_at: str | None = None  # a way in that works now until a date shuts it


@dataclass(frozen=True)
class FormerAdmin:
    """A principal that could manage the key under an earlier policy, or that changed the policy."""

    principal: str
    evidence: str
    event_id: str | None = None
    time: str | None = None


@dataclass(frozen=True)
class LastPolicy:
    """The most recent policy CloudTrail recorded for the key."""

    document: dict[str, Any]
    event_id: str
    name: str
    time: str
    actor: str | None
    note: str | None = None


@dataclass(frozen=True)
class HistorySection:
    """CloudTrail event history (90 days) for the key, and the Athena query for older history."""

    searched: bool
    region: str
    read_by: str | None = None
    outcome: str | None = None
    error_code: str | None = None
    message: str | None = None
    requests: int = 0
    truncated: bool = False
    events: tuple[HistoryEvent, ...] = ()
    former_admins: tuple[FormerAdmin, ...] = ()
    last_policy: LastPolicy | None = None
    athena_query: str = ""


@dataclass(frozen=True)
class NextStep:
    """A concrete thing to do. ``command`` is a shell command when there is one; ``policy`` a document to use."""

    action: StepAction
    detail: str
    principal: str | None = None
    command: str | None = None
    policy: dict[str, Any] | None = None


@dataclass(frozen=True)
class Evidence:
    """Why the report says something: the claim, and the statement, identity and call it rests on."""

    claim: str
    statement: str | None = None
    identity: str | None = None
    call: str | None = None
    detail: str | None = None


#: Where a key that was not found was looked for (``not_found`` verdict), and where it is: the investigation's
#: own record of the search.
LocationSection = KeyLocation


@dataclass(frozen=True)
class Report:
    schema_version: str
    generated_at: str
    tool_version: str
    verdict: Verdict
    exit_code: int
    summary: str
    key: KeySection
    identities: tuple[IdentityReport, ...]
    policy: PolicySection
    principals: tuple[PrincipalEntry, ...]
    management_paths: tuple[PathEntry, ...]
    intentional_lock: bool
    history: HistorySection
    next_steps: tuple[NextStep, ...]
    evidence: tuple[Evidence, ...]
    warnings: tuple[str, ...] = ()
    key_state: tuple[KeyStateNotice, ...] = ()  # the key's state, most urgent first: shown before anything else
    location: LocationSection | None = None

    @property
    def managers(self) -> tuple[IdentityReport, ...]:
        """The probed identities that can call PutKeyPolicy now."""
        return tuple(i for i in self.identities if i.can_manage is True)

    def identity(self, name: str) -> IdentityReport | None:
        return next((i for i in self.identities if i.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        """The JSON document (``docs/report.schema.json``)."""
        return _to_json(self)


def _to_json(value: Any) -> Any:
    if isinstance(value, CallResult | HistoryEvent):
        return value.to_dict()
    if hasattr(value, "__dataclass_fields__"):
        return {name: _to_json(getattr(value, name)) for name in value.__dataclass_fields__}
    if isinstance(value, Mapping):
        return {str(k): _to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_to_json(v) for v in value]
    return value


