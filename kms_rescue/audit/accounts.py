"""Which accounts and Regions an audit covers: ``--accounts ID,…`` or ``--organization``, entered through a role
you name, and each account's enabled Regions narrowed by ``--regions`` (docs/audit.md, "Many accounts").

The AWS side of the audit's planning (through :class:`kms_rescue.aws.probe.IdentityRun`, so every AWS error is
classified and redacted, never raised):

- ``--organization``: ``organizations:ListAccounts`` with the caller's identity, page after page until no
  ``NextToken`` (AWS Organizations API reference, ListAccounts: it "can be called only from the organization's
  management account or by a member account that is a delegated administrator", and a page may be empty while
  more follow, so only a missing ``NextToken`` ends the list). Accounts not ``ACTIVE`` are rows, not targets.
- Each other account is entered by ``sts:AssumeRole`` on ``arn:PARTITION:iam::ACCOUNT:role/ROLE``, default
  ``OrganizationAccountAccessRole``: the role AWS Organizations creates in every account it creates, trusting the
  management account (AWS Organizations User Guide, "Accessing member accounts in your organization"; an account
  that was invited has it only if someone created it). An account whose role cannot be assumed is one
  :class:`~kms_rescue.audit.model.AuditError` row (stage ``assume_role``, AWS's reason, redacted), never a crash.
  The caller's own account is audited with the caller's identity directly.
- Its Regions: ``ec2:DescribeRegions`` in that account (EC2 API reference: without ``AllRegions`` it lists the
  Regions enabled for the account), narrowed by ``--regions``; a Region asked for that is not enabled there is a
  row. When DescribeRegions is not allowed, the Regions asked for are audited as asked; without ``--regions``,
  the profile's Region is, and a row says the list could not be read.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from kms_rescue.audit.account import AuditTarget
from kms_rescue.audit.model import AuditError
from kms_rescue.aws.probe import IdentityRun, ProbeSettings
from kms_rescue.aws.redact import Redactor
from kms_rescue.aws.results import IdentitySpec
from kms_rescue.aws.runtime import AwsRuntime
from kms_rescue.aws.sessions import SessionOptions, session_with_credentials
from kms_rescue.errors import UsageError
from kms_rescue.policy.partitions import DEFAULT_PARTITION, partition_of_arn

#: The role AWS Organizations creates in the accounts it creates (AWS Organizations User Guide, "Accessing member
#: accounts in your organization").
DEFAULT_ROLE_NAME = "OrganizationAccountAccessRole"
#: The role session name of the audit's AssumeRole calls (shown in the member account's CloudTrail).
SESSION_NAME = "kms-rescue-audit"
ACCOUNT_RE = re.compile(r"\A[0-9]{12}\Z", re.ASCII)
#: IAM role names: up to 64 of letters, digits and ``+=,.@_-`` (IAM API reference, CreateRole, RoleName).
ROLE_NAME_RE = re.compile(r"\A[\w+=,.@-]{1,64}\Z", re.ASCII)
#: At most this many accounts or Regions on the command line.
MAX_LISTED = 1000


def _items(text: str, option: str) -> list[str]:
    if len(text) > 20 * MAX_LISTED:
        raise UsageError(f"{option}: the list is too long")
    items = [p.strip() for p in text.split(",")]
    if not any(items):
        raise UsageError(f"{option}: give at least one value (comma-separated)")
    if any(not p for p in items):
        raise UsageError(f"{option}: an empty value in {text!r} (values are comma-separated, without spaces)")
    if len(items) > MAX_LISTED:
        raise UsageError(f"{option}: at most {MAX_LISTED} values")
    return list(dict.fromkeys(items))


def parse_accounts(text: str) -> tuple[str, ...]:
    """``--accounts 111122223333,444455556666``: 12-digit account ids, duplicates dropped."""
    items = _items(text, "--accounts")
    for item in items:
        if not ACCOUNT_RE.fullmatch(item):
            raise UsageError(f"--accounts: {item!r} is not an AWS account id (12 digits)")
    return tuple(items)


def parse_role_name(name: str) -> str:
    """``--role-name``: an IAM role name (a path, if any, is part of the ARN, not of the name)."""
    if not ROLE_NAME_RE.fullmatch(name or ""):
        raise UsageError(f"--role-name: {name!r} is not an IAM role name (up to 64 of letters, digits, +=,.@_-)")
    return name


def member_identity(base: IdentitySpec, account: str, role_name: str, partition: str = DEFAULT_PARTITION
                    ) -> IdentitySpec:
    """The identity that enters ``account``: ``base``'s credentials assuming ``role_name`` there."""
    return IdentitySpec(
        name=f"{role_name}@{account}", source="assume_role", profile=base.profile,
        role_arn=f"arn:{partition}:iam::{account}:role/{role_name}", base=base.name, kind="assume_role",
        session_name=SESSION_NAME,
    )


def _row(account: str | None, region: str | None, stage: str, outcome: str, message: str | None) -> AuditError:
    return AuditError(account, region, stage, outcome, " ".join((message or outcome).split()))


def organization_accounts(run: IdentityRun) -> tuple[list[dict[str, Any]], AuditError | None]:
    """Every account of the organization (``Id`` and ``State``/``Status``), or the row saying why not."""
    client = run.client("organizations")
    accounts: list[dict[str, Any]] = []
    token: str | None = None
    while True:
        kwargs: dict[str, Any] = {"NextToken": token} if token else {}
        got, rec = run.call("organizations:ListAccounts", None,
                            lambda kw=kwargs: client.list_accounts(**kw))  # type: ignore[misc]
        if got is None:
            message = rec.message
            if rec.outcome == "access_denied":  # the usual cause: a member account's profile
                message = (f"{message or 'access denied'} (--organization lists the accounts with "
                           "organizations:ListAccounts, which only the management account or a delegated "
                           "administrator may call: use a profile of one, or name the accounts with --accounts; "
                           "this account is audited on its own)")
            return accounts, _row(run.probe.account, None, "list_accounts", rec.outcome, message)
        accounts.extend(a for a in got.get("Accounts") or [] if isinstance(a, dict) and a.get("Id"))
        token = got.get("NextToken")
        if not token:
            return accounts, None


def _state(account: Mapping[str, Any]) -> str:
    # ``State`` replaces the deprecated ``Status`` (AWS Organizations API reference, Account).
    return str(account.get("State") or account.get("Status") or "ACTIVE")


def _enter(run: IdentityRun, base: IdentitySpec, account: str, role_name: str, partition: str,
           settings: ProbeSettings, region: str) -> tuple[IdentityRun | None, IdentitySpec, AuditError | None]:
    spec = member_identity(base, account, role_name, partition)
    role_arn = spec.role_arn or ""
    got, rec = run.call("sts:AssumeRole", role_arn, lambda: run.client("sts").assume_role(
        RoleArn=role_arn, RoleSessionName=SESSION_NAME))
    if got is None:
        return None, spec, _row(account, None, "assume_role", rec.outcome,
                                f"cannot assume {role_arn}: {rec.message or rec.outcome}")
    c = got["Credentials"]
    settings.redactor.add(c["AccessKeyId"], c["SecretAccessKey"], c.get("SessionToken"))
    member = IdentityRun(spec, settings, region)
    member.session = session_with_credentials(base.profile, c["AccessKeyId"], c["SecretAccessKey"],
                                              c.get("SessionToken"), region=region, runtime=settings.runtime)
    member.connected = True
    return member, spec, None


def _regions(run: IdentityRun, account: str, wanted: Sequence[str], region: str
             ) -> tuple[list[str], list[AuditError]]:
    got, rec = run.call("ec2:DescribeRegions", None, lambda: run.client("ec2").describe_regions())
    if got is None:
        if wanted:  # the Regions asked for are audited as asked (one that is not enabled fails its ListKeys)
            return list(wanted), []
        return [region], [_row(account, None, "describe_regions", rec.outcome,
                               f"could not list the enabled Regions ({rec.message or rec.outcome}): auditing "
                               f"{region} only (name others with --regions)")]
    enabled = sorted({r["RegionName"] for r in got.get("Regions") or [] if r.get("RegionName")})
    if not wanted:
        return enabled, []
    rows = [_row(account, r, "describe_regions", "RegionNotEnabled", f"{r} is not enabled for account {account}")
            for r in wanted if r not in enabled]
    return [r for r in wanted if r in enabled], rows


def plan_targets(
    base: IdentitySpec,
    *,
    region: str,
    accounts: Sequence[str] = (),
    organization: bool = False,
    role_name: str = DEFAULT_ROLE_NAME,
    regions: Sequence[str] = (),
    identities: Sequence[IdentitySpec] = (),
    options: SessionOptions | None = None,
    environ: Mapping[str, str] | None = None,
    redactor: Redactor | None = None,
    runtime: AwsRuntime | None = None,
) -> Iterator[AuditTarget | AuditError]:
    """The audit's targets (one per account and enabled Region) and a row for each account or Region that cannot
    be audited, account by account. ``region``: where the planning calls go (the profile's Region);
    ``regions``: only these (already checked Region codes); ``identities``: more identities of the caller's own
    account, used beside ``base`` there."""
    if accounts and organization:
        raise UsageError("--accounts and --organization cannot be used together")
    settings = ProbeSettings(options=options or SessionOptions(), runtime=runtime or AwsRuntime(),
                             redactor=redactor or Redactor(), environ=environ)
    run = IdentityRun(base, settings, region)
    if not run.connect() or run.probe.account is None:
        last = run.probe.calls[-1] if run.probe.calls else None
        yield _row(None, None, "credentials", run.probe.status or "error",
                   (last.message if last else None) or run.probe.hint)
        return
    caller = run.probe.account
    partition = partition_of_arn(run.probe.arn or "") or DEFAULT_PARTITION
    wanted: list[str]
    if organization:
        found, row = organization_accounts(run)
        if row is not None:
            yield row
        wanted = []
        for acc in found:
            state = _state(acc)
            if state != "ACTIVE":
                yield _row(str(acc["Id"]), None, "list_accounts", state,
                           f"the account is {state} in the organization: not audited")
            else:
                wanted.append(str(acc["Id"]))
        if caller not in wanted and row is not None:
            wanted.insert(0, caller)  # the list failed: the caller's own account is still audited
    else:
        wanted = list(accounts) or [caller]
    for account in dict.fromkeys(wanted):
        extra: tuple[IdentitySpec, ...] = ()
        if account == caller:
            member, spec, extra = run, base, tuple(identities)
        else:
            entered, spec, row = _enter(run, base, account, role_name, partition, settings, region)
            if entered is None:
                if row is not None:
                    yield row
                continue
            member = entered
        names, rows = _regions(member, account, regions, region)
        yield from rows
        for r in names:
            yield AuditTarget(account=account, region=r, identity=spec, identities=extra)


__all__ = ["DEFAULT_ROLE_NAME", "SESSION_NAME", "member_identity", "organization_accounts", "parse_accounts",
           "parse_role_name", "plan_targets"]
