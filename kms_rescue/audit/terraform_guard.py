"""``audit --terraform-plan FILE``: the plan's deletions (:mod:`kms_rescue.audit.terraform_plan`) made concrete in
the audited account, as the ``--if-deleted`` principals (docs/audit.md, "What a deletion would break: Terraform
plans"). The AWS side: one connection (sts:GetCallerIdentity) gives the account, which builds the ARNs a plan
leaves unknown; Identity Center roles, matched by name pattern, are looked up among the account's roles under
``/aws-reserved/sso.amazonaws.com/`` (iam:ListRoles with that PathPrefix), since their suffix is in no plan.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from kms_rescue.audit.account import AuditOptions
from kms_rescue.audit.terraform_plan import IDENTITY_CENTER_PATH, PlannedDeletion, deleted_principals
from kms_rescue.aws.conventions import choose_region
from kms_rescue.aws.credential_process import ProcessGroups
from kms_rescue.aws.probe import IdentityRun, ProbeSettings
from kms_rescue.aws.sessions import SessionOptions
from kms_rescue.observations import IdentitySpec
from kms_rescue.policy.partitions import DEFAULT_PARTITION, partition_of_arn
from kms_rescue.policy.principals import parse_caller

__all__ = ["PlanPrincipals", "missing_principals", "plan_principals"]


@dataclass
class PlanPrincipals:
    """The principals to treat as deleted, and one line per deletion saying what it became (for stderr)."""

    principals: tuple[str, ...] = ()
    notes: list[str] = field(default_factory=list)
    deletions: list[PlannedDeletion] = field(default_factory=list)


def _reserved_roles(run: IdentityRun) -> tuple[list[str] | None, str]:
    def thunk() -> list[str]:
        arns: list[str] = []
        for page in run.client("iam").get_paginator("list_roles").paginate(PathPrefix=IDENTITY_CENTER_PATH):
            arns += [str(r["Arn"]) for r in page.get("Roles") or [] if r.get("Arn")]
        return arns

    got, rec = run.call("iam:ListRoles", IDENTITY_CENTER_PATH, thunk)
    return (got if got is not None else None), (rec.message or rec.outcome)


def plan_principals(plan: Mapping[str, Any], identity: IdentitySpec, options: AuditOptions) -> PlanPrincipals:
    """The deletions of ``plan`` in the account of ``identity`` (see the module's doc)."""
    home = choose_region(None, profiles=[identity.profile] if identity.profile else [],
                         environ=options.environ).region or "us-east-1"
    groups = ProcessGroups()
    out = PlanPrincipals()
    try:
        settings = ProbeSettings(options=SessionOptions(timeout=options.timeout, max_attempts=options.max_attempts,
                                                        process_groups=groups),
                                 redactor=options.redactor, environ=options.environ)
        run = IdentityRun(identity, settings, home)
        connected = run.connect() and run.probe.account is not None
        account = run.probe.account if connected else None
        partition = partition_of_arn(run.probe.arn or "") or DEFAULT_PARTITION
        out.deletions = deleted_principals(plan, account=account, partition=partition)
        exact = [d.arn for d in out.deletions if d.arn is not None]
        patterns = [d for d in out.deletions if d.pattern is not None and d.account in (None, account)]
        matched: list[str] = []
        roles: list[str] | None = []
        why = ""
        if patterns and connected:
            roles, why = _reserved_roles(run)
        for d in out.deletions:
            if d.arn is not None:
                out.notes.append(d.describe())
            elif d.pattern is None:
                out.notes.append(f"{d.describe()}: not checked")
            elif d.account not in (None, account):
                out.notes.append(f"{d.describe()}: in another account than the one audited ({account}): not checked")
            elif not connected or roles is None:
                out.notes.append(f"{d.describe()}: could not list the account's Identity Center roles "
                                 f"(iam:ListRoles: {why or 'not connected'}): not checked")
            else:
                hits = [r for r in roles if d.matches(r)]
                matched += hits
                out.notes.append(f"{d.describe()}: {len(hits)} role(s) of {account} match"
                                 + (f" ({', '.join(hits)})" if hits else ""))
        out.principals = tuple(dict.fromkeys([*exact, *matched]))
        return out
    finally:
        groups.kill_all()


def missing_principals(arns: tuple[str, ...], identity: IdentitySpec, options: AuditOptions
                       ) -> tuple[list[str], list[str]]:
    """Of the ``--if-deleted`` ``arns`` in the account of ``identity``: those IAM says do not exist
    (iam:GetUser / iam:GetRole answer NoSuchEntity), and one line for each that could not be checked."""
    home = choose_region(None, profiles=[identity.profile] if identity.profile else [],
                         environ=options.environ).region or "us-east-1"
    groups = ProcessGroups()
    missing: list[str] = []
    unchecked: list[str] = []
    try:
        settings = ProbeSettings(options=SessionOptions(timeout=options.timeout, max_attempts=options.max_attempts,
                                                        process_groups=groups),
                                 redactor=options.redactor, environ=options.environ)
        run = IdentityRun(identity, settings, home)
        account = run.probe.account if run.connect() else None
        for arn in arns:
            caller = parse_caller(arn)
            if caller is None or account is None or caller.account != account:
                continue  # another account's principal, or no connection: the audit reports that itself
            if caller.kind == "user":
                _got, rec = run.call("iam:GetUser", arn, partial(run.client("iam").get_user, UserName=caller.name))
            else:
                _got, rec = run.call("iam:GetRole", arn, partial(run.client("iam").get_role, RoleName=caller.name))
            if rec.outcome == "not_found":
                missing.append(arn)
            elif rec.outcome != "ok":
                unchecked.append(f"{arn}: could not check that it exists ({rec.operation}: "
                                 f"{rec.message or rec.outcome})")
        return missing, unchecked
    finally:
        groups.kill_all()
