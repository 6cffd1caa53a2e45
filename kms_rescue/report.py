"""Build the report: what the probes found, the verdict, its evidence and the next step. Pure: no I/O, no boto3.

:func:`build_report` turns an :class:`~kms_rescue.observations.Investigation` (gathered by
``kms_rescue.aws.investigate.investigate``) into a :class:`~kms_rescue.contract.Report`. The decisions come from
the verdict layer (:mod:`kms_rescue.verdict`: candidate worlds narrowed by every observed call outcome), the words
and commands from :mod:`kms_rescue.advice`; this module puts them together. The contract's classes are importable
from here as well as from :mod:`kms_rescue.contract`.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

from kms_rescue import __version__, advice
from kms_rescue.advice import delegation_identity_policy, exempt_session
from kms_rescue.athena import athena_query
from kms_rescue.contract import (
    EXIT_CODES,
    MANAGE_ACTION,
    SCHEMA_VERSION,
    VERDICTS,
    Evidence,
    FormerAdmin,
    HistorySection,
    IdentityPolicySummary,
    IdentityReport,
    KeySection,
    LastPolicy,
    LocationSection,
    NextStep,
    PathEntry,
    PolicyEvent,
    PolicySection,
    PolicySource,
    PrincipalEntry,
    Report,
    StepAction,
    Verdict,
    exit_code_for,
)
from kms_rescue.observations import (
    HistoryEvent,
    IdentityProbe,
    Investigation,
    KeyFacts,
    PrincipalCheck,
    guardrails_from,
)
from kms_rescue.policy import PolicyInputError, analyze_management, parse_policy
from kms_rescue.policy.management import ManagementAnalysis
from kms_rescue.policy.named import NamedPrincipal, policy_principals
from kms_rescue.policy.partitions import DEFAULT_PARTITION, is_region_code, partition_for_region
from kms_rescue.policy.principals import parse_caller
from kms_rescue.verdict.identity import IdentityDecision, decide_identity, key_context, request_time_context
from kms_rescue.verdict.key_state import state_notices
from kms_rescue.verdict.overall import choose_verdict, key_not_found
from kms_rescue.verdict.paths import apply_guardrails

__all__ = [
    "EXIT_CODES", "MANAGE_ACTION", "SCHEMA_VERSION", "VERDICTS", "Evidence", "IdentityReport", "NextStep",
    "PathEntry", "Report", "StepAction", "Verdict", "build_report", "delegation_identity_policy", "exempt_session",
    "exit_code_for", "policy_principals",
]


def _partition(region: str) -> str:
    """The Region's partition from botocore's partition data (the commercial one for a Region it does not know)."""
    return partition_for_region(region).id if is_region_code(region) else DEFAULT_PARTITION


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def _key_section(key: KeyFacts) -> KeySection:
    return KeySection(
        input=key.input, arn=key.arn, id=key.key_id, account=key.account, region=key.region, state=key.state,
        aliases=tuple(key.aliases), multi_region=key.multi_region, key_manager=key.key_manager,
        description=key.description, creation_date=key.creation_date, deletion_date=key.deletion_date,
        resolved_by=key.resolved_by, multi_region_type=key.multi_region_type, primary_arn=key.primary_arn,
        origin=key.origin,
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




def _apply_decision(identity: IdentityReport, d: IdentityDecision) -> IdentityReport:
    return replace(
        identity, can_manage=d.can_manage, decision=d.decision, grant=d.grant, why=d.why, assumption=d.assumption,
        assumed=d.assumed, observations=tuple(o.describe(identity.name) for o in d.observations), worlds=d.worlds,
        worlds_left=d.worlds_left,
    )


def _decide_all(
    inv: Investigation, identities: list[IdentityReport], document: dict[str, Any], key_arn: str, key_account: str,
    source: PolicySource, now: _dt.datetime, action: str = MANAGE_ACTION,
) -> dict[str, IdentityDecision]:
    """The decision for every identity with working credentials (``action`` on the key)."""
    policy = parse_policy(document, source="key policy")
    grants = next((p.grants for p in inv.identities if p.grants is not None), None)
    metadata = next((p.key_metadata for p in inv.identities if p.key_metadata), None)
    context = {**request_time_context(now), **key_context(inv.key.region, metadata)}
    out: dict[str, IdentityDecision] = {}
    for probe in inv.identities:
        if probe.arn is None:
            continue
        try:
            out[probe.name] = decide_identity(
                probe, key_policy=policy, key_arn=key_arn, key_account=key_account, key_id=inv.key.key_id,
                aliases=inv.key.aliases, grants=grants, context=context, policy_is_live=source == "live",
                action=action, guardrails=inv.guardrails_for(probe.name),
            )
        except PolicyInputError as exc:
            out[probe.name] = IdentityDecision(None, None, None, f"could not be evaluated: {exc}")
    return out


def _path_entries(analysis: Any) -> list[PathEntry]:
    out = []
    for p in analysis.paths:
        out.append(PathEntry(
            kind=p.kind, principal=p.principal, statement=p.statement, conditions=tuple(p.conditions),
            satisfiable=p.satisfiable, can_manage=p.can_manage, needs_identity_policy=p.needs_identity_policy,
            exists=getattr(p, "exists", None), blocked_by=tuple(p.blocked_by),
            may_be_blocked_by=tuple(getattr(p, "may_be_blocked_by", ())), why=p.why,
            opens_at=p.opens_at, closes_at=p.closes_at,
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



def _athena(inv: Investigation) -> str:
    return athena_query(key_arn=inv.key.arn, key_id=inv.key.key_id, account=inv.key.account,
                        region=inv.key.region, trail_bucket=inv.trail_bucket)


def _history_section(inv: Investigation) -> HistorySection:
    h = inv.history
    key_account = inv.key.account
    former = _former_admins(h.events, key_account, inv.key.arn)
    return HistorySection(
        searched=h.attempted, region=h.region, read_by=h.read_by, outcome=h.outcome, error_code=h.error_code,
        message=h.message, requests=h.requests, truncated=h.truncated, events=tuple(h.events),
        former_admins=tuple(former), last_policy=_last_policy(h.events), athena_query=_athena(inv),
    )


def _location(inv: Investigation) -> LocationSection | None:
    return inv.location


def _identity_evidence(identities: Iterable[IdentityReport], statements: Mapping[str, str | None]
                       ) -> list[Evidence]:
    out = []
    for ident in identities:
        detail = ident.why
        if ident.observations:
            detail = f"{detail}; observed: " + "; ".join(ident.observations)
        if ident.can_manage is True:
            if ident.assumed:
                detail = f"{detail}; assumed: " + "; ".join(ident.assumed)
            out.append(Evidence(f"{ident.name} can call kms:PutKeyPolicy now", statement=statements.get(ident.name),
                                identity=ident.name, call="sts:GetCallerIdentity", detail=detail))
        elif ident.can_manage is None and ident.decision is not None:
            out.append(Evidence(f"{ident.name} may be able to call kms:PutKeyPolicy", identity=ident.name,
                                call=", ".join(o.split(" by ")[0] for o in ident.observations) or None,
                                detail=detail))
    return out


def _credential_steps(identities: Iterable[IdentityReport]) -> list[NextStep]:
    steps = []
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
    return steps


def build_report(inv: Investigation, *, generated_at: str | None = None, now: _dt.datetime | None = None
                 ) -> Report:
    """The report for an investigation: verdict, evidence and next steps (see :mod:`kms_rescue.contract`).

    ``now`` is the clock for ``aws:CurrentTime``/``aws:EpochTime`` (default: the current UTC time)."""
    now = now or _dt.datetime.now(_dt.timezone.utc)
    key = _key_section(inv.key)
    key_ref = key.arn or key.input
    warnings = list(inv.warnings)
    evidence: list[Evidence] = []
    steps: list[NextStep] = []
    identities = [_identity_report(p) for p in inv.identities]
    policy_section, document = _choose_policy(inv)
    history = _history_section(inv)
    location = _location(inv)
    principals = _principal_entries(document, policy_section.source, inv.principal_checks)
    paths: list[PathEntry] = []
    analysis: ManagementAnalysis | None = None
    intentional = False
    notices = state_notices(inv.key)
    key_arn = key.arn or (f"arn:{_partition(key.region)}:kms:{key.region}:{key.account}:key/{key.id}"
                          if key.account and key.id else None)

    if key_not_found(inv):
        verdict: Verdict = "not_found"
        evidence.extend(_not_found_evidence(inv))
        steps.extend(advice.not_found_steps(key, location))
    else:
        if policy_section.source == "live":
            evidence.append(Evidence("the key policy was read live", identity=policy_section.read_by,
                                     call="kms:GetKeyPolicy"))
        elif policy_section.source == "cloudtrail" and policy_section.event is not None:
            evidence.append(Evidence("no identity could read the key policy; the last policy recorded in CloudTrail "
                                     "was used", identity=inv.history.read_by, call="cloudtrail:LookupEvents",
                                     detail=policy_section.note))
            warnings.append("the policy comes from CloudTrail, not from the key: a change since then (or older than "
                            "90 days) would not be seen")
        decisions: dict[str, IdentityDecision] = {}
        if document is not None and key.account is not None and key_arn is not None:
            try:
                analysis = analyze_management(document, key_account=key.account, key_arn=key_arn,
                                              existing=_existing_map(principals), now=now)
            except PolicyInputError as exc:
                warnings.append(f"the key policy could not be analysed: {exc}")
            if analysis is not None:
                decisions = _decide_all(inv, identities, document, key_arn, key.account, policy_section.source, now)
                identities = [_apply_decision(i, decisions[i.name]) if i.name in decisions else
                              replace(i, why="its credentials did not work, so it was not evaluated")
                              for i in identities]
                paths = apply_guardrails(
                    _path_entries(analysis), key_policy=document, key_arn=key_arn, key_account=key.account,
                    guardrails=guardrails_from(None, inv.organization, caller_account=key.account,
                                               key_account=key.account),
                    context=request_time_context(now))
                intentional = bool(analysis.intentional_lock)
                if inv.key.state in ("PendingDeletion", "PendingReplicaDeletion"):
                    cancel = _decide_all(inv, identities, document, key_arn, key.account, policy_section.source, now,
                                         action="kms:CancelKeyDeletion")
                    notices = state_notices(
                        inv.key, can_cancel=tuple(n for n, d in cancel.items() if d.can_manage is True),
                        cancel_unknown=tuple(n for n, d in cancel.items() if d.can_manage is None))
        elif document is not None:
            warnings.append("the key's account is unknown, so the policy could not be analysed")
        verdict = choose_verdict(document is not None, analysis, [i.can_manage for i in identities
                                                                   if i.decision is not None or i.can_manage], paths)
        evidence.extend(_identity_evidence(identities, {n: d.statement for n, d in decisions.items()}))
        for p in paths:
            claim = f"{p.principal} can manage the key" if p.can_manage else f"{p.principal} cannot manage the key"
            if p.opens_at and not p.can_manage:
                claim = f"{p.principal} can manage the key from {p.opens_at}"
            evidence.append(Evidence(claim, statement=p.statement, detail=p.why))
        if key_arn is not None:
            cancellers = [i for i in identities if i.name in notices[0].can_cancel] if notices else []
            steps.extend(advice.state_steps(key, key_arn, cancellers))
        steps.extend(_verdict_steps(verdict, key, key_arn, identities, paths, intentional, document))
        if verdict == "locked_out" and analysis is not None and not analysis.root_can_manage:
            evidence.append(Evidence(
                "the root user cannot manage the key either",
                detail="no statement lets the root user in (no account principal, no \"*\" or aws:PrincipalArn "
                       "condition that admits it), and the key policy is the gatekeeper even for root",
            ))
        if analysis is not None:
            if any(i.identity_policies is not None and i.identity_policies.status == "unknown" for i in identities):
                warnings.append("some identities' IAM policies could not be read: their access through "
                                "delegation is unknown, not denied")
            unread = _unread_guardrails(identities)
            if unread:
                warnings.append(f"{_join(unread)} could not be read: a verdict that an identity can manage the key "
                                "assumes they do not deny it")
            if verdict == "recoverable" and (inv.organization is None or inv.organization.status == "unknown"):
                warnings.append("the organization's service and resource control policies could not be read: the "
                                "ways in named below assume they do not deny kms:PutKeyPolicy")
    if _no_identity_of(key.account, identities):
        warnings.append(f"none of the identities tried belongs to account {key.account}, the key's account")
    steps.extend(_credential_steps(identities))
    if verdict in ("locked_out", "undetermined") and not intentional:
        steps.append(NextStep(
            "athena_history",
            "CloudTrail event history covers 90 days; query the trail with Athena for older policy changes "
            "(the query is in history.athena_query; set the trail's bucket with --trail-bucket)",
        ))
    opens_at = analysis.opens_at if analysis is not None else None
    foreign = key.account if _no_identity_of(key.account, identities) else None
    summary = advice.summary(verdict, key_ref, identities, paths, intentional, policy_section, location, opens_at,
                             foreign)
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
        key_state=notices,
        location=location,
    )


def _unread_guardrails(identities: Iterable[IdentityReport]) -> list[str]:
    """The guardrail kinds some decision took for granted, in a fixed order."""
    said = " ".join(a for i in identities for a in i.assumed)
    kinds = ("service control policy", "resource control policy", "permissions boundary")
    return [k.replace("policy", "policies") if "policy" in k else k + "s" for k in kinds if f"no {k}" in said]


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _no_identity_of(account: str | None, identities: Iterable[IdentityReport]) -> bool:
    """The key's account is known, and no identity that connected belongs to it."""
    connected = [i for i in identities if i.account]
    return bool(account and connected and all(i.account != account for i in connected))


def _not_found_evidence(inv: Investigation) -> list[Evidence]:
    out = []
    for probe in inv.identities:
        for call in probe.calls:
            if call.operation.startswith("kms:") and call.outcome in ("not_found", "wrong_region"):
                out.append(Evidence(f"{call.operation} by {probe.name}: the key or alias does not exist there",
                                    identity=probe.name, call=call.operation, detail=call.message))
                break
    loc = inv.location
    if loc is not None and loc.found:
        for f in loc.found:
            out.append(Evidence(f"the key exists in {f.region}", identity=f.found_by, call="kms:DescribeKey",
                                detail=f.key_arn))
    elif loc is not None and loc.searched:
        out.append(Evidence(f"not found in the {len(loc.searched)} other Regions searched ({loc.regions_from})",
                            identity=loc.searched_by, call="kms:DescribeKey"))
    return out


def _verdict_steps(
    verdict: Verdict, key: KeySection, key_arn: str | None, identities: list[IdentityReport],
    paths: list[PathEntry], intentional: bool, document: dict[str, Any] | None,
) -> list[NextStep]:
    foreign = _no_identity_of(key.account, identities)
    if verdict == "undetermined" and foreign:
        return [NextStep(
            "read_policy",
            f"None of the identities tried belongs to account {key.account}, the key's account. Only principals of "
            "that account can read or change its key policy (GetKeyPolicy and PutKeyPolicy cannot be called "
            f"across accounts): run this again with a profile or role of {key.account}.",
        )]
    if verdict == "undetermined" or key_arn is None:
        return [NextStep(
            "read_policy",
            "No identity could read the key policy and CloudTrail had no record of it. Try an identity that has "
            "kms:GetKeyPolicy on the key (a role the policy names, the key's administrators), or one that can "
            "read CloudTrail in the key's account and Region.",
        )]
    if verdict == "manageable":
        return advice.manageable_steps(key, key_arn, [i for i in identities if i.can_manage is True])
    if verdict == "locked_out":
        return advice.locked_out_steps(key, key_arn, intentional)
    maybes = [i for i in identities if i.can_manage is None and i.decision is not None]
    return advice.recoverable_steps(key, key_arn, maybes, paths, identities, document)


def _last_policy(events: Iterable[HistoryEvent]) -> LastPolicy | None:
    last = _last_policy_event(events)
    if last is None or last.policy is None:
        return None
    return LastPolicy(last.policy, last.event_id, last.name, last.time, last.actor, last.policy_note)


