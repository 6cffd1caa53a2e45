"""Lint findings and the catalogue of rules. Rule ids are stable: never renumber or reuse one.

Each rule is documented in ``docs/rules.md`` (a test checks that every id here has a section there with the same
severity).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Severity = Literal["low", "medium", "high", "critical"]
SEVERITIES: tuple[Severity, ...] = ("low", "medium", "high", "critical")
_RANK: dict[str, int] = {name: rank for rank, name in enumerate(SEVERITIES)}

#: SARIF ``security-severity`` (a number as a string, 0.0-10.0) per severity; GitHub maps >= 9.0 to critical,
#: 7.0-8.9 to high, 4.0-6.9 to medium and 0.1-3.9 to low.
SECURITY_SEVERITY: dict[str, str] = {"critical": "9.5", "high": "8.0", "medium": "5.5", "low": "3.0"}

DOCS_BASE = "https://docs.aws.amazon.com"
KMS_DEFAULT_KEY_POLICY = f"{DOCS_BASE}/kms/latest/developerguide/key-policy-default.html"
KMS_KEY_POLICIES = f"{DOCS_BASE}/kms/latest/developerguide/key-policies.html"
KMS_PUT_KEY_POLICY = f"{DOCS_BASE}/kms/latest/APIReference/API_PutKeyPolicy.html"
KMS_CONDITION_KEYS = f"{DOCS_BASE}/kms/latest/developerguide/conditions-kms.html"
KMS_PERMISSIONS = f"{DOCS_BASE}/kms/latest/developerguide/kms-api-permissions-reference.html"
KMS_CROSS_ACCOUNT = f"{DOCS_BASE}/kms/latest/developerguide/key-policy-modifying-external-accounts.html"
KMS_NITRO = f"{DOCS_BASE}/kms/latest/developerguide/conditions-nitro-enclaves.html"
IAM_PRINCIPAL = f"{DOCS_BASE}/IAM/latest/UserGuide/reference_policies_elements_principal.html"
IAM_NOT_PRINCIPAL = f"{DOCS_BASE}/IAM/latest/UserGuide/reference_policies_elements_notprincipal.html"
IAM_IDENTIFIERS = f"{DOCS_BASE}/IAM/latest/UserGuide/reference_identifiers.html"
IAM_CONDITION_OPERATORS = f"{DOCS_BASE}/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html"
IAM_GLOBAL_KEYS = f"{DOCS_BASE}/IAM/latest/UserGuide/reference_policies_condition-keys.html"
IAM_ACTION = f"{DOCS_BASE}/IAM/latest/UserGuide/reference_policies_elements_action.html"
SSO_PERMISSION_SETS = f"{DOCS_BASE}/singlesignon/latest/userguide/referencingpermissionsets.html"
CFN_INTRINSICS = f"{DOCS_BASE}/AWSCloudFormation/latest/UserGuide/intrinsic-function-reference.html"
KMS_AUTHORIZATION_REFERENCE = f"{DOCS_BASE}/service-authorization/latest/reference/list_awskeymanagementservice.html"


@dataclass(frozen=True)
class Rule:
    id: str
    name: str  # a kebab-case slug, also the anchor in docs/rules.md
    severity: Severity
    summary: str  # one line: what is wrong
    why: str  # why it matters, with the AWS fact behind it
    fix: str  # the default remedy (findings may give a more specific one)
    help_uri: str  # the AWS documentation page the rule rests on

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "severity": self.severity,
            "summary": self.summary,
            "why": self.why,
            "fix": self.fix,
            "help_uri": self.help_uri,
        }


_RULES: tuple[Rule, ...] = (
    Rule(
        "KR001", "key-lockout", "critical",
        "No principal of the key's account can ever call kms:PutKeyPolicy.",
        "The key policy is the only gatekeeper of a KMS key: nobody, not even the root user, can act on the key "
        "unless the key policy allows it, and KMS does not let other accounts call PutKeyPolicy. With no way in, "
        "the key is unmanageable and only AWS Support can restore access.",
        "Keep the default key policy's first statement (the account principal arn:aws:iam::ACCOUNT:root with "
        "kms:*), or name an existing administrator role of the key's account for kms:PutKeyPolicy.",
        KMS_DEFAULT_KEY_POLICY,
    ),
    Rule(
        "KR002", "no-account-delegation", "medium",
        "The key's own account principal is not allowed to manage the key.",
        "An Allow for the account principal (arn:aws:iam::ACCOUNT:root) lets the root user and IAM policies "
        "manage the key. Without it only the principals named in the policy can, and when the last of them is "
        "deleted the key becomes unmanageable.",
        "Add the statement {\"Sid\": \"Enable IAM User Permissions\", \"Effect\": \"Allow\", \"Principal\": "
        "{\"AWS\": \"arn:aws:iam::ACCOUNT:root\"}, \"Action\": \"kms:*\", \"Resource\": \"*\"}.",
        KMS_DEFAULT_KEY_POLICY,
    ),
    Rule(
        "KR003", "orphaned-unique-id", "high",
        "A principal is a unique id (AIDA.../AROA...): the user or role it named was deleted.",
        "Key policies store principals by unique id. When the user or role is deleted the policy shows the id, "
        "and a new user or role with the same name does not match it. If it was the only administrator, the "
        "key is unmanageable.",
        "Remove the unique id and name the current principal by its ARN.",
        KMS_DEFAULT_KEY_POLICY,
    ),
    Rule(
        "KR004", "session-principal", "medium",
        "A principal is an assumed-role session ARN, which covers only that one session.",
        "A session ARN (arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION) matches only a session with that exact "
        "name; other sessions of the role are not covered, and access depends on a session name chosen at "
        "sign-in.",
        "Name the role ARN (arn:aws:iam::ACCOUNT:role/ROLE), which covers every session of the role.",
        IAM_PRINCIPAL,
    ),
    Rule(
        "KR005", "identity-center-role", "medium",
        "An IAM Identity Center reserved role (AWSReservedSSO_...) is named directly.",
        "IAM Identity Center deletes the role when the permission set's last assignment to the account is "
        "removed and creates a role with a new random suffix when it is assigned again; the key policy then "
        "shows a stale unique id and the new role is not covered.",
        "Allow the account principal (or \"*\") with an ArnLike condition on aws:PrincipalArn, e.g. "
        "arn:aws:iam::ACCOUNT:role/aws-reserved/sso.amazonaws.com/*AWSReservedSSO_PERMISSIONSET_*.",
        SSO_PERMISSION_SETS,
    ),
    Rule(
        "KR006", "management-only-other-accounts", "high",
        "kms:PutKeyPolicy is granted only to principals of other accounts.",
        "KMS never lets a principal of another account call PutKeyPolicy (or the other management operations) "
        "on a key, whatever the key policy says; the cross-account use column of the KMS permissions reference "
        "is \"No\" for them.",
        "Grant key management to a principal of the key's own account (its account principal or an "
        "administrator role).",
        KMS_PERMISSIONS,
    ),
    Rule(
        "KR007", "wildcard-principal-unconditioned", "high",
        "An Allow statement has a \"*\" principal and no condition.",
        "\"*\" means every principal of every AWS account (and, with identity policies of their own, anyone). "
        "KMS key policies use \"*\" safely only with conditions such as kms:CallerAccount, kms:ViaService or "
        "aws:PrincipalOrgID.",
        "Name the principals, or add conditions that limit who qualifies (kms:CallerAccount, "
        "aws:PrincipalOrgID, aws:PrincipalArn).",
        IAM_PRINCIPAL,
    ),
    Rule(
        "KR008", "statement-without-effect", "medium",
        "A statement has no Action/NotAction or no Resource/NotResource.",
        "A statement without an action or a resource matches no request, so it has no effect; KMS also rejects "
        "new key policies with such statements.",
        "Add the missing element (in a key policy \"Resource\": \"*\" means this key).",
        KMS_KEY_POLICIES,
    ),
    Rule(
        "KR009", "deny-covers-administrators", "high",
        "An unconditional Deny of kms:PutKeyPolicy covers the root user or everyone.",
        "An explicit Deny wins over every Allow. A Deny whose principal is \"*\" or the account, or whose "
        "NotPrincipal does not exempt the account's root user, takes kms:PutKeyPolicy away from the principals "
        "that would repair the policy. With NotPrincipal, a user or role is exempt only when its account is "
        "listed too.",
        "Narrow the Deny with conditions (e.g. ArnNotLike aws:PrincipalArn for the administrator roles), or "
        "list the account and the administrator role (and its session) in NotPrincipal.",
        IAM_NOT_PRINCIPAL,
    ),
    Rule(
        "KR010", "condition-never-true", "medium",
        "A condition can never hold on a direct call, so the statement grants nothing there.",
        "Some condition keys are only in the request context when a service calls on the principal's behalf "
        "(kms:ViaService, aws:SourceArn, aws:CalledVia), for cryptographic or grant operations "
        "(kms:EncryptionContext:*, kms:GrantIsForAWSResource), and aws:PrincipalArn of a role session is the "
        "role's ARN, never the session's. A missing key makes the condition false.",
        "Remove the condition from the statement that grants key management, or put management and usage in "
        "separate statements.",
        KMS_CONDITION_KEYS,
    ),
    Rule(
        "KR011", "unknown-kms-action", "medium",
        "An action names no KMS operation (a typo?).",
        "An action pattern that matches no KMS action grants (or denies) nothing: an Allow silently gives less "
        "than intended and a Deny silently protects nothing. Action names come from the KMS API.",
        "Correct the action name (see the KMS permissions reference), or use a wildcard such as kms:Get*.",
        KMS_PERMISSIONS,
    ),
    Rule(
        "KR012", "partial-wildcard-principal", "high",
        "A principal ARN contains a wildcard, which the Principal element does not allow.",
        "Principal accepts \"*\" alone but not a partial wildcard such as arn:aws:iam::ACCOUNT:role/*; KMS "
        "rejects the policy as malformed.",
        "Use \"Principal\": {\"AWS\": \"*\"} (or the account principal) with an ArnLike condition on "
        "aws:PrincipalArn holding the pattern.",
        IAM_PRINCIPAL,
    ),
    Rule(
        "KR013", "invalid-principal", "high",
        "A principal value is not a valid AWS principal.",
        "Principal takes account ids, account/user/role ARNs, role session ARNs, federated users and service "
        "names; IAM groups and other strings are not principals, and KMS rejects a key policy whose principals "
        "are invalid or do not exist.",
        "Replace the value with the ARN of a user or role (for a group: the roles or users it should cover, or "
        "an aws:PrincipalArn condition).",
        IAM_PRINCIPAL,
    ),
    Rule(
        "KR014", "missing-principal", "high",
        "A key policy statement has neither Principal nor NotPrincipal.",
        "KMS requires every statement of a key policy to name one or more principals and rejects the policy "
        "otherwise.",
        "Add a Principal element naming who the statement is for.",
        KMS_PUT_KEY_POLICY,
    ),
    Rule(
        "KR015", "allow-with-notprincipal", "high",
        "An Allow statement uses NotPrincipal, which grants every principal not listed.",
        "Allow with NotPrincipal allows everybody except the listed principals, across all accounts, including "
        "anonymous callers; AWS advises against it.",
        "Use Principal with the principals that should be allowed.",
        IAM_NOT_PRINCIPAL,
    ),
    Rule(
        "KR016", "policy-too-large", "high",
        "The key policy is larger than KMS accepts (32 KB).",
        "PutKeyPolicy and CreateKey reject key policy documents over 32,768 bytes.",
        "Shorten the policy: merge statements, use the account principal with IAM policies, or wildcards in "
        "actions.",
        KMS_PUT_KEY_POLICY,
    ),
    Rule(
        "KR017", "intentional-lock", "low",
        "The key can only be used from an attested Nitro enclave and nobody can manage it: locked on purpose.",
        "A key policy whose only grants require Nitro Enclaves attestation (kms:RecipientAttestation:*) is a "
        "deliberate design; it is reported so nobody \"fixes\" it by accident.",
        "Nothing to do if this is intended.",
        KMS_NITRO,
    ),
    Rule(
        "KR018", "unresolved-reference", "low",
        "A CloudFormation reference could not be resolved offline.",
        "Values computed at deploy time (a Ref to a parameter without a Default, a GetAtt of a resource, "
        "Fn::ImportValue) are unknown to lint; they are checked as placeholders, so findings about them may be "
        "incomplete.",
        "Nothing to do, or lint the deployed policy (aws kms get-key-policy) as well.",
        CFN_INTRINSICS,
    ),
    Rule(
        "KR019", "policy-unknown", "low",
        "The key policy cannot be read from this file.",
        "In a Terraform plan a policy that depends on values computed at apply time is unknown; a "
        "CloudFormation KeyPolicy that is itself an intrinsic cannot be evaluated offline. A key without a "
        "policy gets KMS's default key policy.",
        "Lint the rendered policy instead (e.g. the output of aws kms get-key-policy after apply).",
        KMS_DEFAULT_KEY_POLICY,
    ),
    Rule(
        "KR020", "lockout-depends-on-unresolved", "medium",
        "Whether the key is locked out depends on values that could not be resolved offline.",
        "The only principals that could manage the key are CloudFormation references; if they do not resolve "
        "to principals of the key's account, the key will be unmanageable.",
        "Make sure the referenced principals belong to the key's account, or add the account principal.",
        KMS_DEFAULT_KEY_POLICY,
    ),
    Rule(
        "KR021", "cross-account-action-without-effect", "low",
        "An action is granted to another account although KMS does not allow it across accounts.",
        "Operations such as PutKeyPolicy, ScheduleKeyDeletion, EnableKey/DisableKey and CreateAlias cannot be "
        "called on a key in another account, so granting them to another account has no effect.",
        "Remove the action from the cross-account statement (cryptographic operations, DescribeKey and grant "
        "operations do work across accounts).",
        KMS_CROSS_ACCOUNT,
    ),
    Rule(
        "KR022", "condition-problem", "medium",
        "A condition is malformed or does not do what it seems to.",
        "IAM evaluates condition operators exactly as written: an unknown operator makes the policy unusable, "
        "StringEquals compares * and ? literally, a malformed number, date, IP address or ARN never matches, "
        "and policy variables work only in the String and ARN families.",
        "Correct the operator or the value as the message says (e.g. StringLike for a pattern).",
        IAM_CONDITION_OPERATORS,
    ),
    Rule(
        "KR023", "unknown-condition-key", "medium",
        "A condition key of a service is not one that service defines (a typo?).",
        "A condition on a key that is not in the request context does not match: a positive operator is false, so "
        "an Allow silently grants nothing; a negated operator is true, so a Deny applies to everyone. Service "
        "condition keys are listed in the Service Authorization Reference (kms:ViaService, kms:CallerAccount, ...).",
        "Correct the key name (see the KMS condition keys page), or use the global aws: key you meant.",
        KMS_AUTHORIZATION_REFERENCE,
    ),
)

RULES: dict[str, Rule] = {rule.id: rule for rule in _RULES}


def severity_rank(severity: str) -> int:
    """0 for low ... 3 for critical; KeyError for anything else."""
    return _RANK[severity]


@dataclass(frozen=True)
class Finding:
    rule_id: str
    severity: Severity
    message: str
    statement_label: str | None = None  # '"Sid"' or "statement #2"; None for a policy-wide finding
    statement_index: int | None = None
    line: int | None = None  # 1-based, where the input has positions
    column: int | None = None
    fix: str = ""

    @property
    def rule(self) -> Rule:
        return RULES[self.rule_id]

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule_id": self.rule_id,
            "rule": self.rule.name,
            "severity": self.severity,
            "message": self.message,
            "statement": self.statement_label,
            "statement_index": self.statement_index,
            "line": self.line,
            "column": self.column,
            "fix": self.fix,
        }


def make_finding(
    rule_id: str,
    message: str,
    *,
    statement: Any = None,
    fix: str | None = None,
    line: int | None = None,
    column: int | None = None,
) -> Finding:
    """A finding for ``rule_id``; ``statement`` is a model ``Statement`` (or None for a policy-wide finding)."""
    rule = RULES[rule_id]
    return Finding(
        rule_id=rule_id,
        severity=rule.severity,
        message=message,
        statement_label=statement.label if statement is not None else None,
        statement_index=statement.index if statement is not None else None,
        line=line,
        column=column,
        fix=fix if fix is not None else rule.fix,
    )
