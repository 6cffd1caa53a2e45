"""The lint rules: one function per concern, each yielding findings for one key policy.

The lockout verdict comes from :func:`kms_rescue.policy.management.analyze_management`; the other rules look at
statements one at a time. Every rule is grounded in AWS documentation (see ``docs/rules.md``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from typing import Any

from kms_rescue.policy import catalogue
from kms_rescue.policy.actions import (
    action_matches,
    cross_account_allowed,
    is_known_kms_action,
    unknown_kms_actions,
)
from kms_rescue.policy.condition_check import evaluate_condition
from kms_rescue.policy.errors import PolicyInputError
from kms_rescue.policy.lint.condition_problems import condition_problems
from kms_rescue.policy.lint.findings import Finding, make_finding, severity_rank
from kms_rescue.policy.management import ManagementAnalysis, analyze_management, never_on_direct_call
from kms_rescue.policy.model import Policy, PrincipalSpec, Statement, parse_policy
from kms_rescue.policy.partitions import DEFAULT_PARTITION, account_root_arn, partition_of_arn
from kms_rescue.policy.principals import (
    ACCOUNT_RE,
    classify_aws_value,
    exempt_by_not_principal,
    parse_caller,
    role_caller,
)
from kms_rescue.policy.request_context import RequestContext
from kms_rescue.policy.sources import LocatedPolicy, is_placeholder

PUT_KEY_POLICY = "kms:PutKeyPolicy"
_SSO_PATH = "/aws-reserved/sso.amazonaws.com/"
_SSO_PREFIX = "AWSReservedSSO_"
_SESSION_ARN_RE = re.compile(r"^arn:[^:]+:sts::[^:]*:assumed-role/", re.IGNORECASE)
_POSITIVE_PRINCIPAL_ARN_OPS = ("stringequals", "stringequalsignorecase", "stringlike", "arnequals", "arnlike")
_UNIQUE_ID_KIND = {"AIDA": "IAM user", "AROA": "IAM role", "AGPA": "IAM group", "ANPA": "managed policy"}


def lint_policy(
    policy: Policy, *, key_account: str, location: LocatedPolicy | None = None, partition: str | None = None
) -> list[Finding]:
    """Lint one key policy of a key in ``key_account``; ``location`` adds line numbers and the issues found
    while reading it (unresolved CloudFormation references, size). Findings are sorted by line, then severity.
    ``partition`` is the key's partition for the ARNs in suggested fixes (default: the partition the policy's own
    ARNs name, else ``aws``).

    Raises :class:`PolicyInputError` only for a bad ``key_account``.
    """
    if not ACCOUNT_RE.match(key_account or ""):
        raise PolicyInputError(f"the account must be a 12-digit AWS account id, not {key_account!r}")
    findings: list[Finding] = []
    for statement in policy.statements:
        findings.extend(_statement_findings(statement, key_account))
    findings.extend(_management_findings(policy, key_account, location, partition or _policy_partition(policy)))
    if location is not None:
        findings.extend(_source_findings(location))
    return _placed(findings, location)


def lint_located(located: LocatedPolicy, *, key_account: str, partition: str | None = None) -> list[Finding]:
    """Lint a policy found by :func:`kms_rescue.policy.sources.load_policies` (its policy may be unknown)."""
    if located.policy is None:
        if not ACCOUNT_RE.match(key_account or ""):
            raise PolicyInputError(f"the account must be a 12-digit AWS account id, not {key_account!r}")
        return _placed(list(_source_findings(located)), located)
    return lint_policy(located.policy, key_account=key_account, location=located, partition=partition)


def is_lockout(findings: Sequence[Finding]) -> bool:
    """Whether the findings say the key is locked out (rule KR001)."""
    return any(f.rule_id == "KR001" for f in findings)


# --- placing and ordering ---------------------------------------------------------------------------------------


def _placed(findings: list[Finding], location: LocatedPolicy | None) -> list[Finding]:
    out: list[Finding] = []
    seen: set[tuple[str, int | None, str]] = set()
    for f in findings:
        key = (f.rule_id, f.statement_index, f.message)
        if key in seen:
            continue
        seen.add(key)
        if location is not None and f.line is None:
            line, column = location.line_of(f.statement_index)
            f = Finding(f.rule_id, f.severity, f.message, f.statement_label, f.statement_index, line, column, f.fix)
        out.append(f)
    out.sort(key=lambda f: (f.line or 0, -severity_rank(f.severity), f.rule_id, f.statement_index or 0))
    return out


# --- helpers ----------------------------------------------------------------------------------------------------


def _covers(statement: Statement, action: str) -> bool:
    """Whether the statement's Action/NotAction covers ``action`` (False without either)."""
    if statement.actions is not None:
        return any(action_matches(p, action) for p in statement.actions)
    if statement.not_actions is not None:
        return not any(action_matches(p, action) for p in statement.not_actions)
    return False


def _short(value: str, limit: int = 90) -> str:
    return value if len(value) <= limit else value[: limit - 3] + "..."


def _account_of_arn(arn: str) -> str | None:
    parts = arn.split(":")
    return parts[4] if len(parts) > 5 and ACCOUNT_RE.match(parts[4]) else None


def _policy_partition(policy: Policy) -> str:
    """The partition the policy's principal ARNs name (the first known one), else the commercial partition."""
    for st in policy.statements:
        for spec in (st.principal, st.not_principal):
            for raw in spec.aws if spec is not None else ():
                found = partition_of_arn(raw)
                if found:
                    return found
    return DEFAULT_PARTITION


def _partition_of(arn: str) -> str:
    parts = arn.split(":")
    return parts[1] if len(parts) > 1 and parts[0] == "arn" and parts[1] else "aws"


def _is_account_value(raw: str, account: str) -> bool:
    value = classify_aws_value(raw)
    return value.kind == "account" and value.account == account


# --- statement rules --------------------------------------------------------------------------------------------


def _statement_findings(st: Statement, key_account: str) -> Iterator[Finding]:
    if not st.has_effect:
        missing = []
        if st.actions is None and st.not_actions is None:
            missing.append("Action/NotAction")
        if st.resources is None and st.not_resources is None:
            missing.append("Resource/NotResource")
        yield make_finding(
            "KR008", f"{st.label} has no {' and no '.join(missing)}, so it matches no request", statement=st
        )
    if st.principal is None and st.not_principal is None:
        yield make_finding("KR014", f"{st.label} names no Principal; KMS rejects such a key policy", statement=st)
    if st.effect == "Allow" and st.not_principal is not None:
        listed = ", ".join(st.not_principal.values()) or "nobody"
        yield make_finding(
            "KR015", f"{st.label} allows every principal except {_short(listed)}", statement=st
        )
    for spec, element in ((st.principal, "Principal"), (st.not_principal, "NotPrincipal")):
        if spec is not None:
            yield from _principal_values(st, spec, element, key_account)
    yield from _wildcard_principal(st)
    yield from _unknown_actions(st)
    yield from _deny_covers_administrators(st, key_account)
    yield from _conditions(st)
    yield from _cross_account_actions(st, key_account)


def _principal_values(st: Statement, spec: PrincipalSpec, element: str, key_account: str) -> Iterator[Finding]:
    for raw in spec.aws:
        if is_placeholder(raw):
            continue  # reported as an unresolved reference (KR018)
        value = classify_aws_value(raw)
        if value.kind == "unique_id":
            what = _UNIQUE_ID_KIND.get(raw[:4], "principal")
            if element == "Principal":
                message = (
                    f"{st.label}: {raw} is the unique id of a deleted {what}; it matches nobody, not even a new "
                    f"{what} with the same name"
                )
            else:
                message = (
                    f"{st.label}: NotPrincipal lists {raw}, the unique id of a deleted {what}; it exempts nobody "
                    "from this Deny"
                )
            yield make_finding("KR003", message, statement=st)
        elif value.kind == "invalid":
            if "*" in raw or "?" in raw:
                account = _account_of_arn(raw) or key_account
                fix = (
                    f'Use "Principal": {{"AWS": "arn:{_partition_of(raw)}:iam::{account}:root"}} (or "*") with '
                    f'"Condition": {{"ArnLike": {{"aws:PrincipalArn": "{raw}"}}}}.'
                )
                yield make_finding(
                    "KR012", f"{st.label}: {element} value {raw!r} has a partial wildcard, which {element} does not "
                    "accept", statement=st, fix=fix,
                )
            else:
                detail = (
                    "an IAM group cannot be a principal" if ":group/" in raw
                    else "expected an account id or an IAM/STS ARN of an account, user, role or session"
                )
                yield make_finding(
                    "KR013", f"{st.label}: {element} value {raw!r} is not a valid principal ({detail})", statement=st
                )
        elif value.kind == "session" and element == "Principal":
            role = f"arn:{_partition_of(raw)}:iam::{value.account}:role/{value.name}"
            yield make_finding(
                "KR004",
                f"{st.label}: {raw} is a role session ARN; it covers only the session named "
                f"{value.session_name!r}, not the role {value.name}",
                statement=st,
                fix=f"Name the role instead: {role} (if the role has a path, include it).",
            )
        elif value.kind == "role" and (_SSO_PATH in raw or (value.name or "").startswith(_SSO_PREFIX)):
            name = value.name or ""
            permission_set = name[len(_SSO_PREFIX):].rsplit("_", 1)[0] if name.startswith(_SSO_PREFIX) else "*"
            account = value.account or key_account
            pattern = (
                f"arn:{_partition_of(raw)}:iam::{account}:role/aws-reserved/sso.amazonaws.com/*"
                f"{_SSO_PREFIX}{permission_set}_*"
            )
            fix = (
                f'Use "Principal": {{"AWS": "arn:{_partition_of(raw)}:iam::{account}:root"}} with "Condition": '
                f'{{"ArnLike": {{"aws:PrincipalArn": "{pattern}"}}}} (the permission set must then allow the KMS '
                'actions), or "Principal": "*" with the same condition.'
            )
            yield make_finding(
                "KR005",
                f"{st.label}: {raw} is an IAM Identity Center role; it is replaced by a role with a new suffix "
                "when the permission set is re-assigned",
                statement=st,
                fix=fix,
            )


def _wildcard_principal(st: Statement) -> Iterator[Finding]:
    if st.effect != "Allow" or not st.has_effect or st.principal is None or not st.principal.wildcard:
        return
    if st.conditions:
        return
    manage = _covers(st, PUT_KEY_POLICY)
    scope = "including kms:PutKeyPolicy" if manage else f"for {', '.join(st.actions or ('all but NotAction',))}"
    yield make_finding(
        "KR007",
        f"{st.label} allows any principal in any account {_short(scope, 120)}, with no condition",
        statement=st,
    )


def _unknown_actions(st: Statement) -> Iterator[Finding]:
    for element, patterns in (("Action", st.actions), ("NotAction", st.not_actions)):
        if not patterns:
            continue
        for pattern in unknown_kms_actions(patterns):
            hint = catalogue.closest_action(pattern)
            extra = f" (did you mean {hint}?)" if hint else ""
            yield make_finding(
                "KR011", f"{st.label}: {element} {pattern!r} matches no KMS action{extra}", statement=st,
                fix=f"Use {hint}." if hint else None,
            )


def _deny_covers_administrators(st: Statement, key_account: str) -> Iterator[Finding]:
    if st.effect != "Deny" or not st.has_effect or st.conditions or not _covers(st, PUT_KEY_POLICY):
        return
    root = parse_caller(key_account)
    if st.principal is not None:
        if st.principal.wildcard:
            who = "everyone (\"*\")"
        elif any(_is_account_value(raw, key_account) for raw in st.principal.aws):
            who = f"every principal of {key_account}, the root user included"
        else:
            return
        yield make_finding(
            "KR009", f"{st.label} denies kms:PutKeyPolicy to {who}, with no condition: nobody can change the "
            "key policy", statement=st,
        )
        return
    if st.not_principal is None:
        return
    spec = st.not_principal
    not_exempt: list[str] = []
    if not exempt_by_not_principal(spec, root):
        not_exempt.append(f"the root user of {key_account}")
    for raw in spec.aws:
        if is_placeholder(raw):
            continue
        value = classify_aws_value(raw)
        if value.kind == "user":
            if not exempt_by_not_principal(spec, parse_caller(raw)):
                not_exempt.append(f"{raw} (its account {value.account} must be listed too)")
        elif value.kind == "role":
            sessions = [
                classify_aws_value(s).session_name for s in spec.aws
                if classify_aws_value(s).kind == "session" and classify_aws_value(s).name == value.name
                and classify_aws_value(s).account == value.account
            ]
            session = next((s for s in sessions if s), "session")
            if not exempt_by_not_principal(spec, role_caller(raw, session)):
                missing = [] if exempt_by_not_principal(spec, parse_caller(value.account or key_account)) else [
                    f"its account {value.account}"
                ]
                if not sessions:
                    missing.append("the session ARN (arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION)")
                not_exempt.append(f"sessions of {raw} (list {' and '.join(missing)} too)")
    if not not_exempt:
        return
    yield make_finding(
        "KR009",
        f"{st.label} denies kms:PutKeyPolicy to every principal its NotPrincipal does not fully exempt, "
        f"including {_short('; '.join(not_exempt), 300)}",
        statement=st,
    )


def _conditions(st: Statement) -> Iterator[Finding]:
    for condition in st.conditions:
        for problem in condition_problems(condition):
            yield make_finding("KR022", f"{st.label}: {problem}", statement=st)
    yield from _unknown_condition_keys(st)
    if st.effect != "Allow" or not st.has_effect or not st.conditions:
        return
    principal_kinds = st.principal
    if principal_kinds is not None and not principal_kinds.wildcard and not principal_kinds.aws:
        return  # service principals: service-only keys are expected there
    for condition in st.conditions:
        op = condition.operator.lower()
        base = op.split(":", 1)[-1]
        if (
            condition.key.lower() == "aws:principalarn"
            and base in _POSITIVE_PRINCIPAL_ARN_OPS
            and not op.startswith("forallvalues:")
            and condition.values
            and all(_SESSION_ARN_RE.match(v) for v in condition.values)
        ):
            yield make_finding(
                "KR010",
                f"{st.label}: {condition.describe()} can never hold: for a role session aws:PrincipalArn is the "
                "role's ARN (arn:aws:iam::ACCOUNT:role/ROLE), never the session's",
                statement=st,
                fix="Compare aws:PrincipalArn with the role's ARN, or aws:userid with ROLE-ID:SESSION-NAME.",
            )
    if not _covers(st, PUT_KEY_POLICY):
        return
    for condition in st.conditions:
        key = condition.key.lower()
        if not never_on_direct_call(key) or key.startswith("kms:recipientattestation:"):
            continue
        try:
            check = evaluate_condition(condition, RequestContext({}))
        except PolicyInputError:
            continue  # an unknown operator: reported above (KR022)
        if check.result is False:
            yield make_finding(
                "KR010",
                f"{st.label}: {condition.describe()} can never hold on a direct kms:PutKeyPolicy call "
                f"({condition.key} is not in its request context), so this statement grants no key management",
                statement=st,
            )


def _unknown_condition_keys(st: Statement) -> Iterator[Finding]:
    """Condition keys that are not documented: a service key (``kms:ViaServce``) the Service Authorization Reference
    does not list, or an ``aws:`` key (``aws:SourceIpp``) that is not on the IAM User Guide's "AWS global condition
    context keys" page. Services the catalogue does not have are not judged (``condition_key_known`` is None)."""
    seen: set[str] = set()
    for condition in st.conditions:
        key = condition.key
        if key.lower() in seen or catalogue.condition_key_known(key) is not False:
            continue
        seen.add(key.lower())
        negated = "not" in condition.operator.lower().split(":")[-1] or condition.operator.lower() == "null"
        effect = (
            "so this Deny applies to every request" if st.effect == "Deny" and negated else
            "so this Allow grants nothing" if st.effect == "Allow" and not negated else
            "so the condition never sees a value"
        )
        service = key.split(":", 1)[0]
        if service.lower() == "aws":
            owner = f"on the IAM User Guide's list of global condition keys (read {catalogue.global_keys_read()})"
        else:
            owner = f"a condition key of {service}"
        hint = catalogue.closest_condition_key(key)
        extra = f" (did you mean {hint}?)" if hint else ""
        yield make_finding(
            "KR023",
            f"{st.label}: condition key {key!r} is not {owner}{extra}; it is never in the request context, {effect}",
            statement=st,
            fix=f"Use {hint}." if hint else None,
        )


def _cross_account_actions(st: Statement, key_account: str) -> Iterator[Finding]:
    if st.effect != "Allow" or st.principal is None or st.principal.wildcard or not st.actions:
        return
    others = sorted({
        v.account for v in (classify_aws_value(raw) for raw in st.principal.aws if not is_placeholder(raw))
        if v.account and v.account != key_account and v.kind != "invalid"
    })
    if not others:
        return
    useless = [
        a for a in st.actions
        if "*" not in a and "?" not in a and is_known_kms_action(a) and not cross_account_allowed(a)
    ]
    if not useless:
        return
    yield make_finding(
        "KR021",
        f"{st.label} grants {', '.join(useless)} to account {', '.join(others)}, but KMS does not allow "
        f"{'this operation' if len(useless) == 1 else 'these operations'} on a key in another account",
        statement=st,
    )


# --- policy-wide rules ------------------------------------------------------------------------------------------


def _analyze(policy: Policy, key_account: str) -> ManagementAnalysis | None:
    try:
        return analyze_management(policy, key_account=key_account)
    except PolicyInputError:
        return None  # e.g. an unknown condition operator: reported per statement (KR022)


def _management_findings(
    policy: Policy, key_account: str, location: LocatedPolicy | None, partition: str = DEFAULT_PARTITION
) -> Iterator[Finding]:
    analysis = _analyze(policy, key_account)
    if analysis is None:
        return
    if analysis.intentional_lock:
        yield make_finding(
            "KR017",
            "nobody can manage this key and it is usable only with Nitro Enclaves attestation: locked on purpose",
        )
        return
    if analysis.locked_out:
        if location is not None and _has_unresolved_principals(policy) and not _locked_if_resolved(
            policy, key_account, partition
        ):
            yield make_finding(
                "KR020",
                f"only unresolved references could manage this key; unless they name principals of {key_account}, "
                "nobody can call kms:PutKeyPolicy",
            )
        else:
            yield make_finding(
                "KR001",
                _lockout_message(analysis, key_account),
                fix=(
                    'Before applying it, add {"Sid": "Enable IAM User Permissions", "Effect": "Allow", "Principal": '
                    f'{{"AWS": "{account_root_arn(key_account, partition)}"}}, "Action": "kms:*", "Resource": "*"}} '
                    "or allow an "
                    f"existing administrator role of {key_account} kms:PutKeyPolicy. If it is already attached, only "
                    "AWS Support can restore access."
                ),
            )
        others = [p for p in analysis.paths if p.kind == "other_account"]
        if others and all(p.kind in ("other_account", "service") for p in analysis.paths):
            accounts = sorted({_account_of_arn(p.principal) or p.principal for p in others})
            yield make_finding(
                "KR006",
                f"kms:PutKeyPolicy is granted only to other accounts ({', '.join(accounts)}); KMS never lets "
                "another account change a key's policy",
            )
        return
    if not any(p.can_manage and p.kind in ("account_delegation", "root_user") for p in analysis.paths):
        managers = sorted({p.principal for p in analysis.managing_paths})
        they = "it is" if len(managers) == 1 else "they are"
        yield make_finding(
            "KR002",
            f"the account principal of {key_account} is not allowed kms:PutKeyPolicy; only "
            f"{_short(', '.join(managers), 200)} can manage the key, and if {they} deleted the key becomes "
            "unmanageable",
            fix=(
                'Add {"Sid": "Enable IAM User Permissions", "Effect": "Allow", "Principal": {"AWS": '
                f'"{account_root_arn(key_account, partition)}"}}, "Action": "kms:*", "Resource": "*"}}.'
            ),
        )


def _lockout_message(analysis: ManagementAnalysis, key_account: str) -> str:
    reasons = []
    for path in analysis.paths:
        if path.why:
            reasons.append(f"{path.principal} ({path.statement}): {path.why}")
    detail = "; ".join(reasons[:4]) if reasons else "no Allow statement covers kms:PutKeyPolicy"
    if len(reasons) > 4:
        detail += f"; and {len(reasons) - 4} more"
    return (
        f"no principal of {key_account} can ever call kms:PutKeyPolicy on this key, so only AWS Support could "
        f"restore access: {_short(detail, 600)}"
    )


def _has_unresolved_principals(policy: Policy) -> bool:
    return any(
        is_placeholder(raw)
        for st in policy.statements
        for spec in (st.principal, st.not_principal) if spec is not None
        for raw in spec.aws
    )


def _locked_if_resolved(policy: Policy, key_account: str, partition: str = DEFAULT_PARTITION) -> bool:
    """Whether the key stays locked out when every unresolved principal is taken to be a role of the key's account
    (the most favourable reading)."""
    counter = iter(range(1, 10_000))

    def substitute(value: Any) -> Any:
        if isinstance(value, str) and is_placeholder(value):
            return f"arn:{partition}:iam::{key_account}:role/kms-rescue-unresolved-{next(counter)}"
        if isinstance(value, list):
            return [substitute(v) for v in value]
        return value

    raw = json.loads(json.dumps(dict(policy.raw)))
    statements = raw.get("Statement")
    for st in statements if isinstance(statements, list) else [statements]:
        if not isinstance(st, dict):
            continue
        for element in ("Principal", "NotPrincipal"):
            spec = st.get(element)
            if isinstance(spec, dict) and "AWS" in spec:
                spec["AWS"] = substitute(spec["AWS"])
    try:
        optimistic = analyze_management(parse_policy(raw), key_account=key_account)
    except PolicyInputError:
        return True
    return optimistic.locked_out


# --- source issues ----------------------------------------------------------------------------------------------


def _source_findings(location: LocatedPolicy) -> Iterator[Finding]:
    for issue in location.issues:
        rule = {
            "unresolved_reference": "KR018",
            "policy_unknown": "KR019",
            "policy_too_large": "KR016",
        }[issue.kind]
        statement = None
        if location.policy is not None and issue.statement_index is not None:
            statements = location.policy.statements
            statement = statements[issue.statement_index] if issue.statement_index < len(statements) else None
        yield make_finding(
            rule, issue.message, statement=statement, line=issue.line or location.document_line, column=issue.column
        )
