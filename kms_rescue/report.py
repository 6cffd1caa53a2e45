"""The report: what the probes found, the verdict, its evidence and the next step. Pure: no I/O, no boto3.

:func:`build_report` turns an :class:`~kms_rescue.aws.results.Investigation` (gathered by
:func:`kms_rescue.aws.investigate.investigate`) into a :class:`Report` using the policy engine. The report is the
contract the renderers, the rescue session and the ticket consume; :meth:`Report.to_dict` is the JSON document
described by ``docs/report.schema.json`` (``schema_version`` changes when a field changes meaning or goes away).

Verdicts (DESIGN.md §2):

* ``manageable`` — a probed identity can call kms:PutKeyPolicy now (the key policy and the identity policies we
  read allow it, and nothing denies it).
* ``recoverable`` — none can, but a principal of the key's account that exists (or may exist) can: a role or user
  named by the policy, the root user when the policy lets root in, or any IAM principal given an identity policy when
  the policy delegates to IAM. The next steps name it and say what to do.
* ``locked_out`` — no principal of the key's account can ever call PutKeyPolicy: only AWS Support can help
  (unless ``intentional_lock``: the key is locked to Nitro Enclaves attestation on purpose).
* ``undetermined`` — no identity could read the policy and CloudTrail did not have it.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from kms_rescue import __version__
from kms_rescue.aws.iam import is_role_session, mentions_principal_arn
from kms_rescue.aws.results import (
    CallResult,
    HistoryEvent,
    IdentityProbe,
    Investigation,
    KeyFacts,
    PrincipalCheck,
)
from kms_rescue.policy import PolicyInputError, analyze_management, evaluate, parse_policy
from kms_rescue.policy.principals import classify_aws_value, parse_caller

SCHEMA_VERSION = "1.0"
MANAGE_ACTION = "kms:PutKeyPolicy"

Verdict = Literal["manageable", "recoverable", "locked_out", "undetermined"]
VERDICTS: tuple[Verdict, ...] = ("manageable", "recoverable", "locked_out", "undetermined")
EXIT_CODES: dict[str, int] = {"manageable": 0, "recoverable": 3, "locked_out": 4, "undetermined": 5}

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
    "sso_login",  # an identity's IAM Identity Center session expired
    "mfa",  # an identity needs an MFA code
    "read_policy",  # nobody could read the policy: what else to try
    "athena_history",  # look further back than CloudTrail's 90 days
    "contact_support",  # nobody in the account can manage the key
    "intentional",  # locked on purpose (Nitro Enclaves): nothing to fix
]


def exit_code_for(verdict: str) -> int:
    """The ``report`` exit code of a verdict: 0 manageable, 3 recoverable, 4 locked_out, 5 undetermined."""
    try:
        return EXIT_CODES[verdict]
    except KeyError:
        raise ValueError(f"unknown verdict {verdict!r}") from None


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
    opens_at: str | None = None  # ISO 8601 UTC: a date alone keeps this path shut until then


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


# --- principals named by a policy ------------------------------------------------------------------------------


@dataclass
class NamedPrincipal:
    value: str
    kind: str
    account: str | None
    statements: list[str] = field(default_factory=list)
    in_condition: bool = False


def policy_principals(document: Mapping[str, Any]) -> list[NamedPrincipal]:
    """Every principal value a key policy names, in Principal/NotPrincipal or in a positive ``aws:PrincipalArn``
    condition (wildcard patterns excluded), in order of first appearance."""
    try:
        policy = parse_policy(dict(document))
    except PolicyInputError:
        return []
    found: dict[str, NamedPrincipal] = {}

    def add(value: str, kind: str, account: str | None, label: str, in_condition: bool = False) -> None:
        entry = found.setdefault(value, NamedPrincipal(value, kind, account, in_condition=in_condition))
        if label not in entry.statements:
            entry.statements.append(label)
        entry.in_condition = entry.in_condition and in_condition

    for st in policy.statements:
        for spec in (st.principal, st.not_principal):
            if spec is None:
                continue
            if spec.wildcard:
                add("*", "wildcard", None, st.label)
            for raw in spec.aws:
                v = classify_aws_value(raw)
                add(raw, v.kind, v.account, st.label)
            for raw in spec.service:
                add(raw, "service", None, st.label)
            for raw in spec.federated:
                add(raw, "federated", None, st.label)
        for cond in st.conditions:
            if cond.key.lower() != "aws:principalarn" or cond.operator.lower().startswith("stringnot") or \
                    cond.operator.lower().startswith("arnnot"):
                continue
            for raw in cond.values:
                if "*" in raw or "?" in raw or "${" in raw:
                    continue
                v = classify_aws_value(raw)
                if v.kind in ("user", "role"):
                    add(raw, v.kind, v.account, st.label, in_condition=True)
    return list(found.values())


# --- building the report ---------------------------------------------------------------------------------------


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def _key_section(key: KeyFacts) -> KeySection:
    return KeySection(
        input=key.input, arn=key.arn, id=key.key_id, account=key.account, region=key.region, state=key.state,
        aliases=tuple(key.aliases), multi_region=key.multi_region, key_manager=key.key_manager,
        description=key.description, creation_date=key.creation_date, deletion_date=key.deletion_date,
        resolved_by=key.resolved_by,
    )


def _choose_policy(inv: Investigation) -> tuple[PolicySection, dict[str, Any] | None]:
    readers = [p for p in inv.identities if p.key_policy is not None]
    if readers:
        in_account = [p for p in readers if p.account == inv.key.account] or readers
        reader = in_account[0]
        return PolicySection("live", reader.key_policy, read_by=reader.name,
                             note=f"read with kms:GetKeyPolicy by {reader.name}"), reader.key_policy
    last = _last_policy_event(inv.history.events)
    if last is not None and last.policy is not None:
        note = f"reconstructed from CloudTrail: {last.name} by {last.actor or 'unknown'} at {last.time}"
        if last.policy_note:
            note += f" ({last.policy_note})"
        return PolicySection("cloudtrail", last.policy, event=PolicyEvent(last.event_id, last.name, last.time,
                                                                          last.actor), note=note), last.policy
    return PolicySection("none", note="no identity could read the key policy and CloudTrail had no record of it"), None


def _last_policy_event(events: Iterable[HistoryEvent]) -> HistoryEvent | None:
    last = None
    for ev in events:
        if ev.succeeded and ev.policy is not None and ev.name in ("CreateKey", "PutKeyPolicy"):
            last = ev
    return last


def _principal_entries(
    document: Mapping[str, Any] | None, source: PolicySource, checks: Mapping[str, PrincipalCheck]
) -> list[PrincipalEntry]:
    if document is None:
        return []
    out = []
    for p in policy_principals(document):
        check = checks.get(p.value)
        if check is not None:
            exists, evidence = check.exists, check.evidence
        else:
            exists, evidence = _static_existence(p, source)
        out.append(PrincipalEntry(p.value, p.kind, p.account, exists, evidence, tuple(p.statements),
                                  p.in_condition))
    return out


def _static_existence(p: NamedPrincipal, source: PolicySource) -> tuple[bool | None, str]:
    if p.kind == "unique_id":
        return False, ("a unique id in place of an ARN: the principal it named was deleted (a new one with the "
                       "same name does not match)")
    if p.kind == "account":
        return True, "an account principal"
    if p.kind in ("wildcard", "service", "federated"):
        return None, f"a {p.kind} principal"
    if source == "live" and not p.in_condition and p.kind in ("user", "role"):
        return True, "kms:GetKeyPolicy returned its ARN (KMS shows deleted principals as unique ids)"
    return None, "unknown: could not be checked with iam:GetRole/GetUser"


def _existing_map(principals: Iterable[PrincipalEntry]) -> dict[str, bool | None]:
    return {p.value: p.exists for p in principals if p.kind in ("user", "role", "session", "unique_id")}


def _identity_report(probe: IdentityProbe) -> IdentityReport:
    pols = probe.identity_policies
    summary = None
    if pols is not None:
        summary = IdentityPolicySummary(pols.status, tuple(d.source for d in pols.documents), pols.read_by,
                                        pols.reason)
    spec = probe.spec
    return IdentityReport(
        name=spec.name, source=spec.source, profile=spec.profile, role_arn=spec.role_arn, base=spec.base,
        session_name=spec.session_name, kind=spec.kind,
        arn=probe.arn, account=probe.account, status=probe.status, hint=probe.hint, calls=tuple(probe.calls),
        identity_policies=summary,
    )


def _with(identity: IdentityReport, **changes: Any) -> IdentityReport:
    from dataclasses import replace

    return replace(identity, **changes)


def _evaluate_identity(
    identity: IdentityReport, probe: IdentityProbe, document: dict[str, Any], key_arn: str, key_account: str,
) -> tuple[IdentityReport, str | None]:
    """The engine's decision for this identity calling PutKeyPolicy; returns the updated entry and the label of
    the key-policy statement that lets it in (for the evidence)."""
    if probe.arn is None:
        return _with(identity, why="its credentials did not work, so it was not evaluated"), None
    if probe.account != key_account:
        return _with(identity, can_manage=False, decision="implicit_deny",
                     why=f"PutKeyPolicy cannot be called on a key in another account ({key_account})"), None
    pols = probe.identity_policies
    docs = [d.document for d in pols.documents] if pols is not None and pols.complete else None
    # A session's aws:PrincipalArn is its role's ARN with the role's path, which the session ARN does not carry.
    session = is_role_session(probe.arn)
    context = {"aws:PrincipalArn": probe.role_arn} if session and probe.role_arn else None
    try:
        ev = evaluate(principal=probe.arn, action=MANAGE_ACTION, resource=key_arn, key_policy=document,
                      identity_policies=docs, context=context)
    except PolicyInputError as exc:
        return _with(identity, why=f"could not be evaluated: {exc}"), None
    if session and not probe.role_arn and mentions_principal_arn([document, *(docs or [])]):
        return _with(identity, can_manage=None, decision=ev.decision.value, grant=ev.key_policy_grant,
                     why=("unknown: a policy tests aws:PrincipalArn, which for a session is its role's ARN with the "
                          "role's path, and iam:GetRole could not be called to learn the path")), None
    allow_label = next((r.statement for r in ev.reasons
                        if r.policy == "key policy" and r.effect == "Allow" and r.matched), None)
    rule = next((r.detail for r in reversed(ev.reasons) if r.policy == "rule"), "")
    decision = ev.decision.value
    if ev.allowed:
        can: bool | None = True
        why = rule
        if docs is None and ev.key_policy_grant == "direct":
            why += " (assumed: its identity policies could not be read; an explicit Deny there would block it)"
    elif ev.identity_unknown and ev.key_policy_grant == "delegated" and decision == "implicit_deny":
        can = None
        why = ("unknown: the key policy delegates to IAM and this identity's own IAM policies could not be read "
               "(they may allow kms:PutKeyPolicy)")
    else:
        can = False
        why = rule
    return _with(identity, can_manage=can, decision=decision, grant=ev.key_policy_grant, why=why), allow_label


def _path_entries(analysis: Any) -> list[PathEntry]:
    out = []
    for p in analysis.paths:
        out.append(PathEntry(
            kind=p.kind, principal=p.principal, statement=p.statement, conditions=tuple(p.conditions),
            satisfiable=p.satisfiable, can_manage=p.can_manage, needs_identity_policy=p.needs_identity_policy,
            exists=getattr(p, "exists", None), blocked_by=tuple(p.blocked_by),
            may_be_blocked_by=tuple(getattr(p, "may_be_blocked_by", ())), why=p.why,
            opens_at=getattr(p, "opens_at", None),
        ))
    return out


def _principal_of(actor: str) -> tuple[str, str | None]:
    """A CloudTrail actor as a principal: a role session becomes its role (and the session name)."""
    try:
        caller = parse_caller(actor)
    except PolicyInputError:
        return actor, None
    if caller.kind == "assumed_role" and caller.role_arn:
        return caller.role_arn, caller.session_name
    return actor, None


def _former_admins(events: Iterable[HistoryEvent], key_account: str | None, key_arn: str | None) -> list[FormerAdmin]:
    """Who created the key or changed its policy (a role session counts as its role), and who could manage the key
    under each earlier policy, first appearance first."""
    out: dict[str, FormerAdmin] = {}
    for ev in events:
        if not ev.succeeded:
            continue
        if ev.name in ("CreateKey", "PutKeyPolicy") and ev.actor:
            who, session = _principal_of(ev.actor)
            verb = "created the key" if ev.name == "CreateKey" else "changed the key policy"
            by = f" as session {session}" if session else ""
            out.setdefault(who, FormerAdmin(who, f"{verb}{by} ({ev.name} at {ev.time})", ev.event_id, ev.time))
        if ev.policy is not None and key_account:
            try:
                analysis = analyze_management(ev.policy, key_account=key_account, key_arn=key_arn)
            except PolicyInputError:
                continue
            for path in analysis.paths:
                if path.can_manage and path.kind in ("named_principal", "session"):
                    out.setdefault(path.principal, FormerAdmin(
                        path.principal, f"could manage the key under the policy of {ev.name} at {ev.time} "
                                        f"({path.statement})", ev.event_id, ev.time))
    return list(out.values())


def _shell_quote(value: str) -> str:
    import shlex

    return shlex.quote(value)


def build_report(inv: Investigation, *, generated_at: str | None = None) -> Report:
    """The report for an investigation: verdict, evidence and next steps (see the module docstring)."""
    key = _key_section(inv.key)
    key_ref = key.arn or key.input
    warnings = list(inv.warnings)
    evidence: list[Evidence] = []
    steps: list[NextStep] = []
    identities = [_identity_report(p) for p in inv.identities]
    probes = {p.spec.name: p for p in inv.identities}

    policy_section, document = _choose_policy(inv)
    if policy_section.source == "live":
        evidence.append(Evidence("the key policy was read live", identity=policy_section.read_by,
                                 call="kms:GetKeyPolicy"))
    elif policy_section.source == "cloudtrail" and policy_section.event:
        evidence.append(Evidence("no identity could read the key policy; the last policy recorded in CloudTrail "
                                 "was used", identity=inv.history.read_by, call="cloudtrail:LookupEvents",
                                 detail=policy_section.note))
        warnings.append("the policy comes from CloudTrail, not from the key: a change since then (or older than "
                        "90 days) would not be seen")

    history = HistorySection(
        searched=inv.history.attempted, region=inv.history.region, read_by=inv.history.read_by,
        outcome=inv.history.outcome, error_code=inv.history.error_code, message=inv.history.message,
        requests=inv.history.requests, truncated=inv.history.truncated, events=tuple(inv.history.events),
        former_admins=tuple(_former_admins(inv.history.events, key.account, key.arn)),
        last_policy=_last_policy(inv.history.events),
        athena_query=_athena(inv),
    )

    principals = _principal_entries(document, policy_section.source, inv.principal_checks)
    paths: list[PathEntry] = []
    intentional = False
    verdict: Verdict
    key_arn = key.arn or (f"arn:aws:kms:{key.region}:{key.account}:key/{key.id}" if key.account and key.id
                          else None)

    if document is None or key.account is None or key_arn is None:
        verdict = "undetermined"
        if document is not None:
            warnings.append("the key's account is unknown, so the policy could not be analysed")
        steps.append(NextStep(
            "read_policy",
            "No identity could read the key policy and CloudTrail had no record of it. Try an identity that has "
            "kms:GetKeyPolicy on the key (a role the policy names, the key's administrators), or one that can "
            "read CloudTrail in the key's account and Region.",
        ))
    else:
        analysis = None
        try:
            analysis = analyze_management(document, key_account=key.account, key_arn=key_arn,
                                          existing=_existing_map(principals))
        except PolicyInputError as exc:
            warnings.append(f"the key policy could not be analysed: {exc}")
        if analysis is None:
            verdict = "undetermined"
        else:
            paths = _path_entries(analysis)
            intentional = bool(analysis.intentional_lock)
            for i, ident in enumerate(identities):
                updated, label = _evaluate_identity(ident, probes[ident.name], document, key_arn, key.account)
                identities[i] = updated
                if updated.can_manage is True:
                    evidence.append(Evidence(f"{updated.name} can call kms:PutKeyPolicy now", statement=label,
                                             identity=updated.name, call="sts:GetCallerIdentity",
                                             detail=updated.why))
                elif updated.can_manage is None and updated.decision is not None:
                    evidence.append(Evidence(f"{updated.name} may be able to call kms:PutKeyPolicy",
                                             identity=updated.name, call="iam (identity policies)",
                                             detail=updated.why))
            managers = [i for i in identities if i.can_manage is True]
            maybes = [i for i in identities if i.can_manage is None and i.decision is not None]
            for p in paths:
                claim = (f"{p.principal} can manage the key" if p.can_manage
                         else f"{p.principal} cannot manage the key")
                evidence.append(Evidence(claim, statement=p.statement, detail=p.why))
            if managers:
                verdict = "manageable"
            elif not analysis.locked_out:
                verdict = "recoverable"
            else:
                verdict = "locked_out"
            steps.extend(_steps(verdict, key, key_arn, managers, maybes, paths, identities, intentional,
                                document))
            if verdict == "locked_out" and not analysis.root_can_manage:
                evidence.append(Evidence(
                    "the root user cannot manage the key either",
                    detail="no statement lets the root user in (no account principal, no \"*\" or aws:PrincipalArn "
                           "condition that admits it), and the key policy is the gatekeeper even for root",
                ))
            if any(i.identity_policies is not None and i.identity_policies.status == "unknown"
                   for i in identities):
                warnings.append("some identities' IAM policies could not be read: their access through "
                                "delegation is unknown, not denied")
            warnings.append("service control policies and permissions boundaries were not read: they can still "
                            "deny what the key policy and identity policies allow")

    for ident in identities:
        if ident.status == "sso_expired":
            steps.append(NextStep("sso_login", f"{ident.name}: the IAM Identity Center session expired or was "
                                               "never started; log in and run the report again",
                                  principal=ident.name, command=ident.hint))
        elif ident.status == "needs_mfa":
            steps.append(NextStep("mfa", f"{ident.name}: the role needs an MFA code; `report` never prompts. "
                                         "Run the interactive `kms-rescue KEY` session, or any AWS CLI command "
                                         "with this profile first so its credentials are cached",
                                  principal=ident.name))
    if verdict in ("locked_out", "undetermined") and not intentional:
        steps.append(NextStep(
            "athena_history",
            "CloudTrail event history covers 90 days; query the trail with Athena for older policy changes "
            "(the query is in history.athena_query; set the trail's bucket with --trail-bucket)",
        ))

    summary = _summary(verdict, key_ref, identities, paths, intentional, policy_section)
    return Report(
        schema_version=SCHEMA_VERSION,
        generated_at=generated_at or inv.finished_at or _now(),
        tool_version=__version__,
        verdict=verdict,
        exit_code=exit_code_for(verdict),
        summary=summary,
        key=key,
        identities=tuple(identities),
        policy=policy_section,
        principals=tuple(principals),
        management_paths=tuple(paths),
        intentional_lock=intentional,
        history=history,
        next_steps=tuple(steps),
        evidence=tuple(evidence),
        warnings=tuple(dict.fromkeys(warnings)),
    )


def _last_policy(events: Iterable[HistoryEvent]) -> LastPolicy | None:
    last = _last_policy_event(events)
    if last is None or last.policy is None:
        return None
    return LastPolicy(last.policy, last.event_id, last.name, last.time, last.actor, last.policy_note)


def _athena(inv: Investigation) -> str:
    from kms_rescue.aws.history import athena_query  # pure text; no boto3 behind it

    return athena_query(key_arn=inv.key.arn, key_id=inv.key.key_id, account=inv.key.account,
                        region=inv.key.region, trail_bucket=inv.trail_bucket)


def delegation_identity_policy(key_arn: str) -> dict[str, Any]:
    """The identity policy an IAM administrator attaches to let a principal repair the key's policy."""
    return {
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "RepairKeyPolicy",
            "Effect": "Allow",
            "Action": ["kms:GetKeyPolicy", "kms:PutKeyPolicy", "kms:DescribeKey"],
            "Resource": key_arn,
        }],
    }


def exempt_session(document: Mapping[str, Any], role_arn: str) -> tuple[str, str] | None:
    """(session name, Deny label) when a Deny's NotPrincipal exempts only one session of ``role_arn``: assuming the
    role under any other session name is denied (IAM User Guide, "NotPrincipal")."""
    try:
        policy = parse_policy(dict(document))
        role = parse_caller(role_arn)
    except PolicyInputError:
        return None
    for st in policy.statements:
        if st.effect != "Deny" or st.not_principal is None:
            continue
        for raw in st.not_principal.aws:
            v = classify_aws_value(raw)
            if v.kind == "session" and v.account == role.account and v.name == role.name and v.session_name:
                return v.session_name, st.label
    return None


def _steps(
    verdict: Verdict, key: KeySection, key_arn: str, managers: list[IdentityReport], maybes: list[IdentityReport],
    paths: list[PathEntry], identities: list[IdentityReport], intentional: bool,
    document: Mapping[str, Any] | None = None,
) -> list[NextStep]:
    steps: list[NextStep] = []
    q = _shell_quote
    if verdict == "manageable":
        if key.state == "PendingDeletion":
            who = managers[0]
            steps.append(NextStep(
                "cancel_key_deletion", "The key is pending deletion: cancel the deletion before anything else",
                principal=who.name,
                command=f"aws kms cancel-key-deletion --key-id {q(key_arn)}"
                        + (f" --profile {q(who.profile)}" if who.source == "profile" and who.profile else ""),
            ))
        for m in managers:
            profile = f" --profile {q(m.profile)}" if m.source == "profile" and m.profile else ""
            steps.append(NextStep(
                "use_identity",
                f"{m.name} can call kms:PutKeyPolicy now: use it to repair the key policy (keep a backup of the "
                f"current one first)",
                principal=m.arn,
                command=(f"aws kms put-key-policy --key-id {q(key_arn)} --policy-name default "
                         f"--policy file://fixed-policy.json{profile}"),
            ))
        if key.state == "Disabled":
            steps.append(NextStep("enable_key", "The key is disabled: management works, but nothing can use the "
                                                "key until it is enabled (kms:EnableKey)",
                                  command=f"aws kms enable-key --key-id {q(key_arn)}"))
        return steps
    if verdict == "locked_out":
        if intentional:
            steps.append(NextStep(
                "intentional",
                "The key policy limits the key to Nitro Enclaves attestation on purpose: nobody is meant to manage "
                "it. This is not a lockout to fix; if it must change, its owners (or AWS Support) decide.",
            ))
            return steps
        steps.append(NextStep(
            "contact_support",
            f"No principal of account {key.account} can call kms:PutKeyPolicy on this key. Contact your cloud "
            f"team or AWS Support with the key ARN {key_arn}: AWS verifies the request with a call to the "
            f"account's phone number and works with the root user; it may ask for a recovery IAM user.",
            command="kms-rescue ticket " + q(key_arn),
        ))
        return steps
    # recoverable
    usable = [i for i in identities if i.status == "ok" and i.account == key.account and i.source == "profile"]
    base = f" --base-profile {q(usable[0].profile)}" if usable and usable[0].profile else ""
    for ident in maybes:
        steps.append(NextStep(
            "check_identity_policy",
            f"{ident.name} may already be able to repair the key: the key policy delegates to IAM, but its own "
            f"IAM policies could not be read. Check them for kms:PutKeyPolicy on this key.",
            principal=ident.arn,
        ))
    seen: set[tuple[str, str]] = set()
    order = {"named_principal": 0, "session": 1, "wildcard": 2, "account_delegation": 3, "root_user": 4}
    for p in sorted((p for p in paths if p.can_manage), key=lambda p: order.get(p.kind, 9)):
        if (p.kind, p.principal) in seen:
            continue
        seen.add((p.kind, p.principal))
        cond = f" (only when: {'; '.join(p.conditions)})" if p.conditions else ""
        maybe = " if it still exists" if p.exists is None else ""
        kind = classify_aws_value(p.principal).kind if p.principal.startswith("arn:") else ""
        if p.kind in ("named_principal", "wildcard") and kind == "role":
            exempt = exempt_session(document, p.principal) if document is not None else None
            session = ""
            how = ""
            if exempt:
                session = f" --role-session-name {q(exempt[0])}"
                how = (f" with the session name {exempt[0]} (Deny {exempt[1]} exempts only that session; any "
                       "other session name is denied)")
            steps.append(NextStep(
                "assume_role",
                f"Assume the role {p.principal}{maybe}{how} (statement {p.statement}{cond}) and repair the key "
                "policy with it; re-run this report with it to confirm",
                principal=p.principal,
                command=f"kms-rescue report {q(key_arn)} --role-arn {q(p.principal)}{base}{session}",
            ))
        elif p.kind == "named_principal" and kind == "user":
            steps.append(NextStep(
                "sign_in_user",
                f"Use the IAM user {p.principal}{maybe} (statement {p.statement}{cond}) to repair the key policy",
                principal=p.principal,
            ))
        elif p.kind == "session":
            steps.append(NextStep(
                "assume_role",
                f"Only the role session {p.principal} is named (statement {p.statement}): assume its role with "
                f"that exact session name",
                principal=p.principal,
            ))
        elif p.kind == "wildcard":
            steps.append(NextStep(
                "assume_role",
                f"Statement {p.statement} lets {p.principal} in{cond}: use a principal of {key.account} that "
                "meets it",
                principal=p.principal,
            ))
        elif p.kind == "account_delegation":
            steps.append(NextStep(
                "attach_identity_policy",
                f"The key policy delegates to IAM (statement {p.statement}{cond}): an IAM administrator of "
                f"{key.account} attaches this identity policy to a role or user you can use, then repairs the key "
                "policy with it",
                principal=p.principal,
                policy=delegation_identity_policy(key_arn),
            ))
        elif p.kind == "root_user":
            steps.append(NextStep(
                "sign_in_root",
                f"Sign in as the root user of {key.account}: the key policy lets root in (statement "
                f"{p.statement}{cond}), and root needs no identity policy",
                principal=f"arn:aws:iam::{key.account}:root",
            ))
    return steps


def _summary(
    verdict: Verdict, key_ref: str, identities: list[IdentityReport], paths: list[PathEntry], intentional: bool,
    policy: PolicySection,
) -> str:
    tried = len(identities)
    working = sum(1 for i in identities if i.status == "ok")
    base = f"{working} of {tried} identities had working credentials"
    if verdict == "manageable":
        names = ", ".join(i.name for i in identities if i.can_manage is True)
        return f"{key_ref} is manageable: {names} can call kms:PutKeyPolicy now ({base})."
    if verdict == "recoverable":
        who = [p.principal for p in paths if p.can_manage]
        return (f"{key_ref} is recoverable: none of the probed identities can manage it now, but "
                f"{', '.join(dict.fromkeys(who))} can ({base}).")
    if verdict == "locked_out":
        if intentional:
            return f"{key_ref} is locked on purpose (Nitro Enclaves attestation): nothing to fix ({base})."
        return (f"{key_ref} is locked out: no principal of its account can call kms:PutKeyPolicy; only AWS "
                f"Support can restore access ({base}).")
    return (f"{key_ref}: undetermined: no identity could read the key policy and CloudTrail had no record of it "
            f"({base}).")
