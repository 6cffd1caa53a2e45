"""Lint rules: each case is a key policy, the rule ids it must raise, and the AWS fact it demonstrates."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from kms_rescue.policy import parse_policy
from kms_rescue.policy.errors import PolicyInputError
from kms_rescue.policy.lint import RULES, SEVERITIES, Finding, lint_policy
from kms_rescue.policy.lint.findings import severity_rank
from kms_rescue.policy.sources import load_policies
from tests.helpers import paths
from tests.helpers.paths import DOCS

FIXTURES = paths.FIXTURES / "lint"
ACCOUNT = "111122223333"
OTHER = "444455556666"
ROOT = f"arn:aws:iam::{ACCOUNT}:root"
ADMIN = f"arn:aws:iam::{ACCOUNT}:role/Admin"
APP = f"arn:aws:iam::{ACCOUNT}:role/AppRole"
SESSION = f"arn:aws:sts::{ACCOUNT}:assumed-role/Admin/alice"
SSO = f"arn:aws:iam::{ACCOUNT}:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_KeyAdmin_0123456789abcdef"
DELETED_USER = "AIDAJQABLZS4A3QDU576Q"
DELETED_ROLE = "AROAJQABLZS4A3QDU576R"


def stmt(effect: str = "Allow", principal: Any = None, action: Any = "kms:*", **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"Effect": effect}
    if principal is not None:
        out["Principal"] = principal if principal == "*" else {"AWS": principal}
    if action is not None:
        out["Action"] = action
    out["Resource"] = "*"
    out.update(extra)
    return {k: v for k, v in out.items() if v is not None}


def pol(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


ENABLE_IAM = {"Sid": "Enable IAM User Permissions", **stmt(principal=ROOT)}
USERS = {"Sid": "KeyUsers", **stmt(principal=APP, action=["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey*"])}


@dataclass
class Case:
    id: str
    fact: str
    policy: dict[str, Any]
    rules: set[str]
    absent: set[str] = field(default_factory=set)


CASES = [
    Case("programmatic-default", "KMS Developer Guide, Default key policy: the account principal with kms:*",
         pol(ENABLE_IAM), set()),
    Case("bare-account-id", "Principal accepts a bare account id for the account principal",
         pol(stmt(principal=ACCOUNT)), set()),
    Case("deleted-only-admin", "engine rule 5: a deleted principal shows as a unique id and matches nobody",
         pol({"Sid": "Admins", **stmt(principal=DELETED_USER)}, USERS), {"KR001", "KR003"}),
    Case("deleted-role-but-delegation", "a unique id is reported even when the account principal keeps the key "
         "manageable", pol(ENABLE_IAM, stmt(principal=DELETED_ROLE)), {"KR003"}, {"KR001"}),
    Case("session-admin", "a session ARN covers only that session (IAM User Guide, role session principals)",
         pol({"Sid": "Admin", **stmt(principal=SESSION)}), {"KR002", "KR004"}, {"KR001"}),
    Case("sso-role", "Identity Center recreates AWSReservedSSO_ roles with a new suffix (IAM Identity Center "
         "User Guide, Referencing permission sets)", pol(ENABLE_IAM, stmt(principal=SSO)), {"KR005"}),
    Case("only-other-account", "engine rule 6: PutKeyPolicy is never allowed across accounts",
         pol(stmt(principal=f"arn:aws:iam::{OTHER}:root")), {"KR001", "KR006"}),
    Case("unconditioned-star", '"*" without a condition is every principal of every account',
         pol(ENABLE_IAM, stmt(principal="*", action="kms:Decrypt")), {"KR007"}),
    Case("star-with-caller-account", "KMS Developer Guide: \"*\" narrowed by kms:CallerAccount is the "
         "documented way to allow a whole account", pol(ENABLE_IAM, stmt(
             principal="*", action=["kms:Encrypt", "kms:Decrypt"],
             Condition={"StringEquals": {"kms:CallerAccount": ACCOUNT, "kms:ViaService": "s3.us-east-1.amazonaws.com"}},
         )), set()),
    Case("no-resource", "engine rule 9: a statement without Resource has no effect",
         pol(ENABLE_IAM, {"Effect": "Allow", "Principal": {"AWS": ADMIN}, "Action": "kms:*"}), {"KR008"}),
    Case("no-action-only-admin", "a statement without Action grants nothing, so the admin cannot manage",
         pol({"Effect": "Allow", "Principal": {"AWS": ADMIN}, "Resource": "*"}), {"KR008", "KR001"}),
    Case("deny-everyone-putkeypolicy", "engine rule 4: explicit deny wins, so an unconditional Deny on "
         "PutKeyPolicy for \"*\" locks the key", pol(ENABLE_IAM, stmt("Deny", "*", "kms:PutKeyPolicy")),
         {"KR009", "KR001"}),
    Case("deny-account", "a Deny naming the account covers its root user and every principal of it",
         pol(stmt(principal=ADMIN), stmt("Deny", ROOT, "kms:*")), {"KR009", "KR001"}),
    Case("deny-notprincipal-role-only", "IAM User Guide, NotPrincipal: listing a role without its account "
         "(and session) exempts neither the root user nor the role's sessions",
         pol(ENABLE_IAM, stmt(principal=ADMIN), {"Effect": "Deny", "NotPrincipal": {"AWS": [ADMIN]},
                                                 "Action": "kms:*", "Resource": "*"}), {"KR009", "KR001"}),
    Case("deny-notprincipal-fully-listed", "listing the account, the role and its session exempts them",
         pol(ENABLE_IAM, stmt(principal=ADMIN), {"Effect": "Deny",
             "NotPrincipal": {"AWS": [ROOT, ADMIN, SESSION]}, "Action": "kms:PutKeyPolicy", "Resource": "*"}),
         set(), {"KR009", "KR001"}),
    Case("deny-scheduled-deletion", "a Deny that leaves PutKeyPolicy alone does not lock anyone out",
         pol(ENABLE_IAM, stmt("Deny", "*", "kms:ScheduleKeyDeletion")), set()),
    Case("via-service-on-admin", "engine rule 8: a direct PutKeyPolicy call carries no kms:ViaService",
         pol(stmt(principal=ADMIN, Condition={"StringEquals": {"kms:ViaService": "ec2.us-east-1.amazonaws.com"}})),
         {"KR010", "KR001"}),
    Case("via-service-ifexists", "…IfExists holds when the key is absent (IAM condition operators)",
         pol(stmt(principal=ADMIN,
                  Condition={"StringEqualsIfExists": {"kms:ViaService": "ec2.us-east-1.amazonaws.com"}})),
         {"KR002"}, {"KR010", "KR001"}),
    Case("encryption-context-on-admin", "PutKeyPolicy has no encryption context",
         pol(ENABLE_IAM, stmt(principal=ADMIN, Condition={"StringEquals": {"kms:EncryptionContext:app": "pay"}})),
         {"KR010"}),
    Case("principal-arn-is-session", "engine rule 8: aws:PrincipalArn of a session is its role's ARN",
         pol(ENABLE_IAM, stmt(principal="*", action="kms:Decrypt",
                              Condition={"ArnEquals": {"aws:PrincipalArn": SESSION}})), {"KR010"}),
    Case("source-arn-service-statement", "aws:SourceArn belongs on service-principal statements",
         pol(ENABLE_IAM, {"Effect": "Allow", "Principal": {"Service": "cloudtrail.amazonaws.com"},
                          "Action": "kms:GenerateDataKey*", "Resource": "*",
                          "Condition": {"StringEquals": {
                              "aws:SourceArn": f"arn:aws:cloudtrail:us-east-1:{ACCOUNT}:trail/t"}}}),
         set()),
    Case("typo-action", "actions come from the KMS API; a typo matches nothing",
         pol(ENABLE_IAM, stmt(principal=ADMIN, action=["kms:PutKeyPolicies", "kms:Get*"])), {"KR011"}),
    Case("misspelt-action", "KMS permissions reference: kms:Decrypt; kms:Decryptt names no action",
         pol(ENABLE_IAM, stmt(principal=APP, action=["kms:Decryptt", "kms:Encrypt"])), {"KR011"}),
    Case("misspelt-condition-key",
         "Service Authorization Reference, AWS KMS condition keys: kms:ViaService exists, kms:ViaServce does not; "
         "IAM User Guide, Condition operators: a key absent from the request context makes a positive operator "
         "false",
         pol(ENABLE_IAM, stmt(principal="*", action="kms:Decrypt",
                              Condition={"StringEquals": {"kms:ViaServce": "s3.us-east-1.amazonaws.com",
                                                          "kms:CallerAccount": ACCOUNT}})), {"KR023"}),
    Case("misspelt-condition-key-in-deny",
         "IAM User Guide, Condition operators: a negated operator on an absent key is true, so the Deny applies",
         pol(ENABLE_IAM, stmt(effect="Deny", principal="*", action="kms:Decrypt",
                              Condition={"StringNotEquals": {"kms:CallerAcount": ACCOUNT}})), {"KR023"}),
    Case("known-condition-keys", "kms:EncryptionContext:<key> and global aws: keys are not flagged",
         pol(ENABLE_IAM, stmt(principal="*", action="kms:Decrypt",
                              Condition={"StringEquals": {"kms:EncryptionContext:app": "billing",
                                                          "aws:PrincipalOrgID": "o-abc123def4"}})), set()),
    Case("misspelt-global-condition-key",
         "IAM User Guide, AWS global condition context keys: aws:SourceIp exists, aws:SourceIpp does not",
         pol(ENABLE_IAM, stmt(principal=APP, action="kms:Decrypt",
                              Condition={"IpAddress": {"aws:SourceIpp": "192.0.2.0/24"}})), {"KR023"}),
    Case("misspelt-global-tag-key",
         "IAM User Guide, AWS global condition context keys: aws:PrincipalTag/tag-key, no aws:PrincipalTags/",
         pol(ENABLE_IAM, stmt(effect="Deny", principal="*", action="kms:Decrypt",
                              Condition={"StringNotEquals": {"aws:PrincipalTags/team": "pay"}})), {"KR023"}),
    Case("known-global-condition-keys",
         "IAM User Guide, AWS global condition context keys: aws:SourceVpce, aws:PrincipalTag/tag-key, "
         "aws:ResourceOrgPaths and aws:MultiFactorAuthPresent are global keys; names are case-insensitive",
         pol(ENABLE_IAM, stmt(principal=APP, action="kms:Decrypt",
                              Condition={"StringEquals": {"aws:sourcevpce": "vpce-1a2b3c4d",
                                                          "aws:PrincipalTag/team": "pay"},
                                         "ForAnyValue:StringLike": {"aws:ResourceOrgPaths": "o-abc123def4/*"},
                                         "Bool": {"aws:MultiFactorAuthPresent": "true"}})), set(), {"KR023"}),
    Case("partial-wildcard-principal", "IAM User Guide, Principal: no partial wildcards",
         pol(ENABLE_IAM, stmt(principal=f"arn:aws:iam::{ACCOUNT}:role/*")), {"KR012"}),
    Case("group-principal", "IAM groups are not principals",
         pol(ENABLE_IAM, stmt(principal=f"arn:aws:iam::{ACCOUNT}:group/Admins")), {"KR013"}),
    Case("missing-principal", "KMS API, PutKeyPolicy: each statement must contain one or more principals",
         pol(ENABLE_IAM, {"Effect": "Allow", "Action": "kms:Decrypt", "Resource": "*"}), {"KR014"}),
    Case("allow-notprincipal", "IAM User Guide, NotPrincipal: Allow with NotPrincipal grants everybody else",
         pol(ENABLE_IAM, {"Effect": "Allow", "NotPrincipal": {"AWS": ADMIN}, "Action": "kms:Decrypt",
                          "Resource": "*"}), {"KR015"}),
    Case("nitro-enclave", "docs/rescue.md, 'Intentional locks': Nitro Enclaves attestation keys are locked on purpose",
         pol(stmt(principal=APP, action="kms:Decrypt", Condition={"StringEqualsIgnoreCase": {
             "kms:RecipientAttestation:ImageSha384": "a" * 96}})), {"KR017"}, {"KR001"}),
    Case("cross-account-management", "KMS permissions reference: PutKeyPolicy is not a cross-account operation",
         pol(ENABLE_IAM, stmt(principal=f"arn:aws:iam::{OTHER}:root", action=["kms:Decrypt", "kms:PutKeyPolicy"])),
         {"KR021"}),
    Case("cross-account-crypto", "Decrypt works across accounts: nothing to report",
         pol(ENABLE_IAM, stmt(principal=f"arn:aws:iam::{OTHER}:root", action=["kms:Decrypt", "kms:DescribeKey"])),
         set()),
    Case("stringequals-with-wildcard", "IAM condition operators: StringEquals compares * literally",
         pol(ENABLE_IAM, stmt(principal="*", action="kms:Decrypt",
                              Condition={"StringEquals": {"aws:PrincipalArn": f"arn:aws:iam::{ACCOUNT}:role/App*"}})),
         {"KR022"}),
]


def rule_ids(document: dict[str, Any]) -> set[str]:
    return {f.rule_id for f in lint_policy(parse_policy(document), key_account=ACCOUNT)}


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_lint_rules(case: Case) -> None:
    found = rule_ids(case.policy)
    assert found == case.rules, f"{case.fact}: expected {sorted(case.rules)}, got {sorted(found)}"
    assert not (case.absent & found), case.fact


def test_every_rule_is_exercised_by_a_case_or_a_source_test() -> None:
    covered = set().union(*(c.rules for c in CASES)) | {"KR016", "KR018", "KR019", "KR020"}
    assert covered == set(RULES)


def test_the_kms_console_default_key_policy_lints_clean_of_high_findings() -> None:
    """KMS Developer Guide, "Default key policy": the console's policy (admins, users, grants for AWS resources)."""
    [located] = load_policies(str(FIXTURES / "default-console-policy.json"), account=ACCOUNT)
    findings = lint_policy(located.policy, key_account=ACCOUNT, location=located)  # type: ignore[arg-type]
    assert [f for f in findings if severity_rank(f.severity) >= severity_rank("high")] == []


def test_lockout_finding_explains_each_path_and_the_fix_names_the_account() -> None:
    [finding] = [f for f in lint_policy(parse_policy(pol(stmt(principal=DELETED_USER))), key_account=ACCOUNT)
                 if f.rule_id == "KR001"]
    assert finding.severity == "critical" and finding.statement_index is None
    assert DELETED_USER in finding.message
    assert f"arn:aws:iam::{ACCOUNT}:root" in finding.fix


def test_statement_findings_carry_label_and_index() -> None:
    document = pol(ENABLE_IAM, {"Sid": "Typo", **stmt(principal=ADMIN, action="kms:PutKeyPolicies")})
    [finding] = lint_policy(parse_policy(document), key_account=ACCOUNT)
    assert (finding.rule_id, finding.statement_label, finding.statement_index) == ("KR011", '"Typo"', 1)
    assert "did you mean kms:PutKeyPolicy" in finding.message


@pytest.mark.parametrize(
    ("key", "hint"),
    [
        ("kms:ViaServce", "kms:ViaService"),  # Service Authorization Reference, AWS KMS condition keys
        ("aws:SourceIpp", "aws:SourceIp"),  # IAM User Guide, AWS global condition context keys
        ("aws:PrincipalTags/team", "aws:PrincipalTag/team"),  # the same page: aws:PrincipalTag/tag-key
    ],
)
def test_unknown_condition_key_suggests_the_closest_key_of_its_service(key: str, hint: str) -> None:
    document = pol(ENABLE_IAM, {"Sid": "Typo", **stmt(principal=APP, action="kms:Decrypt",
                                                      Condition={"StringEquals": {key: "x"}})})
    [finding] = [f for f in lint_policy(parse_policy(document), key_account=ACCOUNT) if f.rule_id == "KR023"]
    assert f"did you mean {hint}?" in finding.message
    assert finding.fix == f"Use {hint}."


def test_findings_are_sorted_by_line_then_severity(tmp_path: Path) -> None:
    path = tmp_path / "p.json"
    path.write_text(json.dumps(pol(stmt(principal=f"arn:aws:iam::{ACCOUNT}:role/*"), stmt(principal=DELETED_USER)),
                               indent=2))
    [located] = load_policies(str(path), account=ACCOUNT)
    findings = lint_policy(located.policy, key_account=ACCOUNT, location=located)  # type: ignore[arg-type]
    keys = [((f.line or 0), -SEVERITIES.index(f.severity)) for f in findings]
    assert keys == sorted(keys)
    assert {f.rule_id for f in findings} >= {"KR001", "KR003", "KR012"}


@pytest.mark.parametrize("account", ["", "11112222333", "abcdefghijkl", "1111-2222-3333"])
def test_bad_key_account_is_an_input_error(account: str) -> None:
    with pytest.raises(PolicyInputError, match="12-digit"):
        lint_policy(parse_policy(pol(ENABLE_IAM)), key_account=account)


def test_every_rule_is_documented_with_its_severity() -> None:
    text = (DOCS / "rules.md").read_text(encoding="utf-8")
    for rule in RULES.values():
        heading = f"## {rule.id} {rule.name}"
        assert heading in text, heading
        section = text.split(heading, 1)[1].split("\n## ", 1)[0]
        assert f"Severity: **{rule.severity}**" in section, rule.id
        labels = re.findall(r"\]\[([a-z0-9-]+)\]", section)
        assert labels, f"{rule.id} cites AWS documentation"
        for label in labels:
            assert re.search(rf"^\[{label}\]: https://docs\.aws\.amazon\.com/", text, re.MULTILINE), label
        assert "**Fix.**" in section, rule.id


def test_finding_to_dict_is_stable() -> None:
    finding = Finding("KR003", "high", "m", '"A"', 0, 4, 5, "f")
    assert finding.to_dict() == {
        "rule_id": "KR003", "rule": "orphaned-unique-id", "severity": "high", "message": "m", "statement": '"A"',
        "statement_index": 0, "line": 4, "column": 5, "fix": "f",
    }


# --- rules that need a source: size, unresolved references, unknown policies -----------------------------------


def lint_text(text: str, source: str = "t.json") -> list[set[str]]:
    from kms_rescue.policy.lint import lint_located
    from kms_rescue.policy.sources import load_policies_from_text

    return [{f.rule_id for f in lint_located(lp, key_account=ACCOUNT)}
            for lp in load_policies_from_text(text, source=source, account=ACCOUNT)]


def test_oversized_policy_is_kr016() -> None:
    """KMS API reference, PutKeyPolicy: the policy document is at most 32 KB."""
    statements = [stmt(principal=f"arn:aws:iam::{ACCOUNT}:role/Role{i:04d}", action="kms:Decrypt")
                  for i in range(250)]
    assert lint_text(json.dumps(pol(ENABLE_IAM, *statements), indent=2)) == [{"KR016"}]


def cfn(*statements: dict[str, Any]) -> str:
    return json.dumps({
        "Parameters": {"AdminRoleArn": {"Type": "String"}},
        "Resources": {"Key": {"Type": "AWS::KMS::Key", "Properties": {"KeyPolicy": pol(*statements)}}},
    })


def test_unresolved_only_admin_is_kr020_not_a_lockout() -> None:
    """An admin given by a parameter is unknown offline: the key is manageable only if it is of this account."""
    found = lint_text(cfn(stmt(principal={"Ref": "AdminRoleArn"}), USERS))
    assert found == [{"KR018", "KR020"}]


def test_unresolved_admin_denied_anyway_is_still_a_lockout() -> None:
    found = lint_text(cfn(stmt(principal={"Ref": "AdminRoleArn"}), stmt("Deny", "*", "kms:PutKeyPolicy")))
    assert found == [{"KR001", "KR009", "KR018"}]


def test_unresolved_admin_next_to_the_account_principal_is_only_reported() -> None:
    assert lint_text(cfn(ENABLE_IAM, stmt(principal={"Fn::GetAtt": ["Elsewhere", "Arn"]}))) == [{"KR018"}]


def test_policy_known_after_apply_is_kr019() -> None:
    plan = {"resource_changes": [{"address": "aws_kms_key.k", "type": "aws_kms_key", "mode": "managed",
                                  "change": {"actions": ["create"], "after": {}, "after_unknown": {"policy": True}}}]}
    assert lint_text(json.dumps(plan)) == [{"KR019"}]


def test_the_kr023_example_in_docs_rules_md_is_what_lint_says() -> None:
    text = (DOCS / "rules.md").read_text(encoding="utf-8")
    section = text.split("## KR023 ", 1)[1].split("\n## ", 1)[0]
    example = section.split("```text\n", 1)[1].split("```", 1)[0].splitlines()
    message = example[0].split("MEDIUM KR023 ", 1)[1].removesuffix("...").rstrip()
    fix = example[1].strip().removeprefix("fix: ")
    document = pol(ENABLE_IAM, {"Sid": "Net", **stmt(principal=APP, action="kms:Decrypt", Condition={
        "StringEquals": {"kms:ViaServce": "s3.us-east-1.amazonaws.com"}})})
    [finding] = [f for f in lint_policy(parse_policy(document), key_account=ACCOUNT) if f.rule_id == "KR023"]
    assert finding.message.startswith(message), (finding.message, message)
    assert finding.fix == fix
