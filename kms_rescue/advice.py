"""What to do next, in words and commands: the report's next steps and its one-line summary.

Decisions are made elsewhere (:mod:`kms_rescue.verdict`); this module only words them and builds the shell
commands (quoted with :func:`shlex.quote`). Pure: no I/O.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from typing import Any

from kms_rescue.contract import IdentityReport, KeySection, LocationSection, NextStep, PathEntry, PolicySection
from kms_rescue.policy import PolicyInputError, parse_policy
from kms_rescue.policy.partitions import account_root_arn
from kms_rescue.policy.principals import classify_aws_value, parse_caller


def q(value: str) -> str:
    return shlex.quote(value)


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


def _profile_flag(ident: IdentityReport) -> str:
    return f" --profile {q(ident.profile)}" if ident.source == "profile" and ident.profile else ""


def state_steps(key: KeySection, key_arn: str, cancellers: Sequence[IdentityReport]) -> list[NextStep]:
    """Steps the key's state asks for before anything else."""

    steps: list[NextStep] = []
    if key.state == "PendingDeletion":
        who = cancellers[0] if cancellers else None
        steps.append(NextStep(
            "cancel_key_deletion",
            f"The key is pending deletion (deletion date {key.deletion_date or 'unknown'}): cancel the deletion "
            "before anything else" + (f"; {who.name} can" if who else
                                     "; none of the probed identities can: a principal allowed "
                                     "kms:CancelKeyDeletion must"),
            principal=who.arn if who else None,
            command=f"aws kms cancel-key-deletion --key-id {q(key_arn)}" + (_profile_flag(who) if who else ""),
        ))
    return steps


def not_found_steps(key: KeySection, location: LocationSection | None) -> list[NextStep]:

    found = location.found if location else ()
    if found:
        where = found[0]
        return [NextStep(
            "use_region",
            f"The key is in {where.region}, not {key.region}: run the command again for that Region",
            command=f"kms-rescue report {q(where.key_arn)}",
        )]
    return [NextStep(
        "check_key_reference",
        f"No such key or alias in {key.region}"
        + (f" or in the other {len(location.searched)} Regions searched" if location and location.searched else "")
        + ": check the key id, alias or ARN (a typo?) and the account. A key that does not exist is not a case "
          "for AWS Support.",
    )]


def manageable_steps(key: KeySection, key_arn: str, managers: Sequence[IdentityReport]) -> list[NextStep]:

    steps: list[NextStep] = []
    for m in managers:
        steps.append(NextStep(
            "use_identity",
            f"{m.name} can call kms:PutKeyPolicy now: use it to repair the key policy (keep a backup of the "
            f"current one first)",
            principal=m.arn,
            command=(f"aws kms put-key-policy --key-id {q(key_arn)} --policy-name default "
                     f"--policy file://fixed-policy.json{_profile_flag(m)}"),
        ))
    if key.state == "Disabled":
        steps.append(NextStep("enable_key", "The key is disabled: management works, but nothing can use the "
                                            "key until it is enabled (kms:EnableKey)",
                              command=f"aws kms enable-key --key-id {q(key_arn)}"))
    return steps


def locked_out_steps(key: KeySection, key_arn: str, intentional: bool) -> list[NextStep]:

    if intentional:
        return [NextStep(
            "intentional",
            "The key policy limits the key to Nitro Enclaves attestation on purpose: nobody is meant to manage "
            "it. This is not a lockout to fix; if it must change, its owners (or AWS Support) decide.",
        )]
    return [NextStep(
        "contact_support",
        f"No principal of account {key.account} can call kms:PutKeyPolicy on this key. Contact your cloud "
        f"team or AWS Support with the key ARN {key_arn}: AWS verifies the request with a call to the "
        f"account's phone number and works with the root user; it may ask for a recovery IAM user.",
        command="kms-rescue ticket " + q(key_arn),
    )]


_PATH_ORDER = {"named_principal": 0, "session": 1, "wildcard": 2, "account_delegation": 3, "root_user": 4}


def recoverable_steps(
    key: KeySection, key_arn: str, maybes: Sequence[IdentityReport], paths: Sequence[PathEntry],
    identities: Sequence[IdentityReport], document: Mapping[str, Any] | None,
) -> list[NextStep]:

    steps: list[NextStep] = []
    usable = [i for i in identities if i.status == "ok" and i.account == key.account and i.source == "profile"
              and not (i.arn or "").endswith(":root")]
    base = f" --base-profile {q(usable[0].profile)}" if usable and usable[0].profile else ""
    for ident in maybes:
        steps.append(NextStep(
            "check_identity_policy" if ident.assumption and "identity polic" in ident.assumption else "check_unknown",
            f"{ident.name} may already be able to repair the key: {ident.why}",
            principal=ident.arn,
        ))
    seen: set[tuple[str, str]] = set()
    ways = [p for p in paths if p.can_manage] or [p for p in paths if p.opens_at]  # now, else from a date
    if not ways and not maybes:
        steps.extend(guardrail_steps(key, paths))
    for p in sorted(ways, key=lambda p: (p.opens_at or "", _PATH_ORDER.get(p.kind, 9))):
        if (p.kind, p.principal) in seen:
            continue
        seen.add((p.kind, p.principal))
        steps.extend(_path_step(p, key, key_arn, base, document))
    return steps


def guardrail_steps(key: KeySection, paths: Sequence[PathEntry]) -> list[NextStep]:
    """Ways in that only an SCP or RCP closes: the organization's management account can change the policy."""
    steps: list[NextStep] = []
    for p in paths:
        if p.can_manage or not p.blocked_by:
            continue
        guard = next((b for b in p.blocked_by if "control polic" in b), None)
        if guard is None:
            continue
        steps.append(NextStep(
            "change_guardrail",
            f"{p.principal} would manage the key (statement {p.statement}), but the organization's {guard} deny "
            f"kms:PutKeyPolicy: ask the organization's management account to exempt it or detach the policy for "
            f"account {key.account}, then repair the key policy ({p.why})",
            principal=p.principal,
        ))
    return steps


def _path_step(p: PathEntry, key: KeySection, key_arn: str, base: str, document: Mapping[str, Any] | None
               ) -> list[NextStep]:

    cond = f" (only when: {'; '.join(p.conditions)})" if p.conditions else ""
    opens = f" from {p.opens_at}" if p.opens_at else ""
    maybe = " if it still exists" if p.exists is None else ""
    kind = classify_aws_value(p.principal).kind if p.principal.startswith("arn:") else ""
    if p.kind in ("named_principal", "wildcard") and kind == "role":
        exempt = exempt_session(document, p.principal) if document is not None else None
        session = how = ""
        if exempt:
            session = f" --role-session-name {q(exempt[0])}"
            how = (f" with the session name {exempt[0]} (Deny {exempt[1]} exempts only that session; any "
                   "other session name is denied)")
        return [NextStep(
            "assume_role",
            f"Assume the role {p.principal}{maybe}{how}{opens} (statement {p.statement}{cond}) and repair the key "
            "policy with it; re-run this report with it to confirm",
            principal=p.principal,
            command=f"kms-rescue report {q(key_arn)} --role-arn {q(p.principal)}{base}{session}",
        )]
    if p.kind == "named_principal" and kind == "user":
        return [NextStep("sign_in_user", f"Use the IAM user {p.principal}{maybe}{opens} (statement "
                                         f"{p.statement}{cond}) to repair the key policy", principal=p.principal)]
    if p.kind == "session":
        return [NextStep("assume_role", f"Only the role session {p.principal} is named (statement {p.statement}): "
                                        "assume its role with that exact session name", principal=p.principal)]
    if p.kind == "wildcard":
        return [NextStep("assume_role", f"Statement {p.statement} lets {p.principal} in{cond}{opens}: use a "
                                        f"principal of {key.account} that meets it", principal=p.principal)]
    if p.kind == "account_delegation":
        return [NextStep(
            "attach_identity_policy",
            f"The key policy delegates to IAM (statement {p.statement}{cond}){opens}: an IAM administrator of "
            f"{key.account} attaches this identity policy to a role or user you can use, then repairs the key "
            "policy with it",
            principal=p.principal, policy=delegation_identity_policy(key_arn),
        )]
    if p.kind == "root_user":
        return [NextStep(
            "sign_in_root",
            f"Sign in as the root user of {key.account}{opens}: the key policy lets root in (statement "
            f"{p.statement}{cond}), and root needs no identity policy",
            principal=account_root_arn(key.account or "", key_arn.split(":")[1]),
        )]
    return []


def summary(
    verdict: str, key_ref: str, identities: Sequence[IdentityReport], paths: Sequence[PathEntry], intentional: bool,
    policy: PolicySection, location: LocationSection | None = None, opens_at: str | None = None,
    foreign_account: str | None = None,
) -> str:
    """The report's one-line summary. ``foreign_account``: the key's account, when no identity belongs to it."""
    tried = len(identities)
    working = sum(1 for i in identities if i.status == "ok")
    base = f"{working} of {tried} identities had working credentials"
    if verdict == "not_found":
        if location and location.found:
            where = ", ".join(f"{f.region} ({f.key_arn})" for f in location.found)
            return f"{key_ref} does not exist where it was asked; it is in {where} ({base})."
        return (f"{key_ref}: no such key or alias: every identity that looked was told it does not exist "
                f"({base}).")
    if verdict == "manageable":
        names = ", ".join(i.name for i in identities if i.can_manage is True)
        return f"{key_ref} is manageable: {names} can call kms:PutKeyPolicy now ({base})."
    if verdict == "recoverable":
        who = [p.principal for p in paths if p.can_manage]
        who += [i.name for i in identities if i.can_manage is None and i.decision is not None]
        if not who and opens_at:
            later = [p.principal for p in paths if p.opens_at == opens_at]
            return (f"{key_ref} is recoverable on {opens_at}: nobody can manage it now, and a date condition opens "
                    f"the way in for {', '.join(dict.fromkeys(later))} then ({base}).")
        return (f"{key_ref} is recoverable: none of the probed identities can manage it for certain now, but "
                f"{', '.join(dict.fromkeys(who)) or 'a principal of its account'} can or may ({base}).")
    if verdict == "locked_out":
        if intentional:
            return f"{key_ref} is locked on purpose (Nitro Enclaves attestation): nothing to fix ({base})."
        return (f"{key_ref} is locked out: no principal of its account can call kms:PutKeyPolicy; only AWS "
                f"Support can restore access ({base}).")
    if foreign_account:
        return (f"{key_ref}: undetermined: none of the identities tried belongs to the key's account "
                f"{foreign_account}, and only principals of that account can read its policy ({base}).")
    return (f"{key_ref}: undetermined: no identity could read the key policy and CloudTrail had no record of it "
            f"({base}).")
