"""One key's audit from what was read: the verdict exactly as ``report`` decides it (:func:`build_report` on the
same observations), its managers, its findings, and what deleting principals would leave. Pure: no boto3.
"""

from __future__ import annotations

import copy
import datetime as _dt
from collections.abc import Sequence
from dataclasses import replace

from kms_rescue.audit.findings import lint_findings, live_findings
from kms_rescue.audit.model import Finding, KeyAudit, Manager, severity_rank
from kms_rescue.contract import Report
from kms_rescue.observations import IdentityProbe, Investigation, PrincipalCheck
from kms_rescue.policy import PolicyInputError
from kms_rescue.policy.partitions import account_root_arn, partition_of_arn
from kms_rescue.policy.principals import parse_caller
from kms_rescue.report import build_report


def _principal_of(arn: str) -> str:
    """A role session manages as its role."""
    try:
        caller = parse_caller(arn)
    except PolicyInputError:
        return arn
    return caller.role_arn if caller.kind == "assumed_role" and caller.role_arn else arn


def managers_of(report: Report) -> tuple[Manager, ...]:
    """Who can call kms:PutKeyPolicy now, with how: the ways in the policy opens that manage now (after the
    guardrails that were read), and the probed identities the engine decided can."""
    out: dict[str, Manager] = {}
    account = report.key.account or ""
    for p in report.management_paths:
        if not p.can_manage:
            continue
        if p.kind == "root_user":
            arn = account_root_arn(account, partition_of_arn(report.key.arn or "") or "aws")
            out.setdefault(arn, Manager(arn, "root", True))
        elif p.kind == "account_delegation":  # IAM principals of the account whose identity policies allow it
            out.setdefault(p.principal, Manager(p.principal, "iam", None))
        elif p.kind in ("named_principal", "session", "wildcard"):
            out.setdefault(p.principal, Manager(p.principal, "named", p.exists))
    for ident in report.identities:
        if ident.can_manage is True and ident.arn:
            who = _principal_of(ident.arn)
            if who.endswith(":root"):
                out.setdefault(who, Manager(who, "root", True))
            else:
                out.setdefault(who, Manager(who, "iam" if ident.grant == "delegated" else "named", True))
    return tuple(out.values())


def _gone(arn: str, deleted: Sequence[str]) -> bool:
    return _principal_of(arn) in deleted


def without(inv: Investigation, deleted: Sequence[str]) -> Investigation:
    """The investigation as it would be after the users and roles ``deleted`` are gone: each is a principal that
    does not exist (the engine's management analysis then gives it no way in, as KMS matches a deleted principal's
    unique id to nobody), and a probed identity that is one of them (or a session of one) can no longer call."""
    checks = dict(inv.principal_checks)
    for arn in deleted:
        checks[arn] = PrincipalCheck(arn, False, "deleted (--if-deleted)")
    identities: list[IdentityProbe] = []
    for probe in inv.identities:
        if probe.arn and _gone(probe.arn, deleted):
            # What it read stays read (the policy is the same); it no longer decides anything.
            probe = copy.copy(probe)
            probe.arn, probe.status, probe.hint = None, "not_found", "deleted (--if-deleted)"
        identities.append(probe)
    return replace(inv, identities=identities, principal_checks=checks)


def _unread_because(inv: Investigation) -> str:
    """How each identity's kms:GetKeyPolicy ended: "auditor: access_denied; admin: throttled"."""
    said = []
    for probe in inv.identities:
        call = probe.last("kms:GetKeyPolicy")
        said.append(f"{probe.name}: {call.outcome if call is not None else probe.status}")
    return "; ".join(said)


def decide(inv: Investigation, now: _dt.datetime) -> Report:
    """``report``'s decision for the key of ``inv`` (:func:`kms_rescue.report.build_report`)."""
    return build_report(inv, now=now, generated_at="-")


def grants_would_matter(inv: Investigation, report: Report) -> bool:
    """Whether kms:ListGrants could change ``report``'s decisions: only for an identity still undecided whose
    kms:DescribeKey succeeded. A grant can allow DescribeKey but never GetKeyPolicy or PutKeyPolicy (KMS Developer
    Guide, "Grant operations"), so with the grants unknown that success constrains nothing; with them known it may
    drop candidate worlds (docs/engine.md, "Deciding under uncertainty"). A decided identity stays decided."""
    if report.policy.document is None:
        return False
    undecided = {i.name for i in report.identities if i.can_manage is None and i.decision is not None}
    for probe in inv.identities:
        call = probe.last("kms:DescribeKey")
        if probe.name in undecided and call is not None and call.ok:
            return True
    return False


def audit_key(inv: Investigation, *, if_deleted: Sequence[str] = (), now: _dt.datetime | None = None,
              requests: int = 0, extra: Sequence[Finding] = (), report: Report | None = None) -> KeyAudit:
    """The audit of the key of ``inv`` (its ARN, account and id must be known); ``report``: its decision when
    already made (:func:`decide`)."""
    now = now or _dt.datetime.now(_dt.timezone.utc)
    report = report or decide(inv, now)
    key = report.key
    assert key.arn is not None and key.account is not None
    managers = managers_of(report)
    findings: list[Finding] = list(extra)
    document = report.policy.document
    findings += live_findings(
        verdict=report.verdict, managers=managers, principals=report.principals, paths=report.management_paths,
        key_state=key.state, deletion_date=key.deletion_date, policy_read=document is not None,
        unread_because=_unread_because(inv) if document is None else "",
    )
    if document is not None:
        findings += lint_findings(document, key.account)
    after = after_managers = None
    if if_deleted:
        later = decide(without(inv, if_deleted), now)
        after, after_managers = later.verdict, managers_of(later)
    return KeyAudit(
        key_arn=key.arn, account=key.account, region=key.region, key_id=key.id or "", key_manager=key.key_manager,
        key_state=key.state, aliases=tuple(key.aliases), verdict=report.verdict, managers=managers,
        findings=tuple(sorted(findings, key=lambda f: severity_rank(f.severity))), verdict_if_deleted=after,
        managers_if_deleted=after_managers,
        summary=report.summary, policy_read_by=report.policy.read_by, requests=requests,
    )
