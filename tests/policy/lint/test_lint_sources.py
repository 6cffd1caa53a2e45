"""Reading key policies out of files: key policy JSON, Terraform plans, CloudFormation JSON/YAML, with lines."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kms_rescue.policy.errors import PolicyInputError
from kms_rescue.policy.model import KEY_POLICY_MAX_BYTES
from kms_rescue.policy.sources import (
    LocatedPolicy,
    json_positions,
    load_policies,
    load_policies_from_text,
)
from tests.helpers import paths

FIXTURES = paths.FIXTURES / "lint"
ACCOUNT = "111122223333"


def fixture(name: str) -> str:
    return str(FIXTURES / name)


def line_of(path: str, needle: str, occurrence: int = 1) -> int:
    """The 1-based line of the n-th line containing ``needle``."""
    hits = [i for i, line in enumerate(Path(path).read_text().splitlines(), 1) if needle in line]
    return hits[occurrence - 1]


def only(path: str, **kwargs: str) -> LocatedPolicy:
    [located] = load_policies(path, account=kwargs.pop("account", ACCOUNT), **kwargs)
    return located


# --- key policy JSON --------------------------------------------------------------------------------------------


def test_key_policy_statement_lines_point_at_each_statement_object() -> None:
    path = fixture("default-console-policy.json")
    located = only(path)
    assert located.kind == "key_policy" and located.name == "default-console-policy.json"
    assert located.policy is not None and len(located.policy.statements) == 4
    for index, sid in enumerate(["Enable IAM User Permissions", "Allow access for Key Administrators",
                                 "Allow use of the key", "Allow attachment of persistent resources"]):
        line, column = located.statement_lines[index]
        assert line == line_of(path, f'"Sid": "{sid}"') - 1, sid  # the "{" opening the statement
        assert column == 5
    assert located.document_line == 1
    assert located.size_bytes == len(Path(path).read_bytes())


def test_a_single_statement_object_gets_a_line() -> None:
    text = (
        '{\n  "Statement":\n    {"Effect": "Allow", "Principal": {"AWS": "111122223333"}, '
        '"Action": "kms:*", "Resource": "*"}\n}\n'
    )
    [located] = load_policies_from_text(text, source="one.json", account=ACCOUNT)
    assert located.statement_lines == {0: (3, 5)}


def test_get_key_policy_output_is_understood() -> None:
    """``aws kms get-key-policy --output json`` wraps the policy in a JSON string."""
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": ACCOUNT},
                                                      "Action": "kms:*", "Resource": "*"}]}
    text = json.dumps({"Policy": json.dumps(policy), "PolicyName": "default"}, indent=2)
    [located] = load_policies_from_text(text, source="got.json", account=ACCOUNT)
    assert located.policy is not None and located.policy.statements[0].principal.aws == (ACCOUNT,)  # type: ignore[union-attr]
    assert located.document_line == 2


def test_json_positions_tracks_nesting_and_escapes() -> None:
    text = '{"a": "x\\"}{[", "b": [1, {"c": [true, null]}, "d"],\n "e": {}}'
    positions = json_positions(text)
    assert positions[("a",)] == (1, 7)
    assert positions[("b", 0)] == (1, 23)
    assert positions[("b", 1, "c", 1)] == (1, 39)
    assert positions[("b", 2)] == (1, 47)
    assert positions[("e",)] == (2, 7)
    assert json.loads(text)["b"][2] == "d"


def test_oversized_policy_is_reported_not_rejected() -> None:
    statements = [{"Sid": f"S{i}", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:role/R{i}"},
                   "Action": "kms:Decrypt", "Resource": "*"} for i in range(300)]
    statements.append({"Effect": "Allow", "Principal": {"AWS": ACCOUNT}, "Action": "kms:*", "Resource": "*"})
    text = json.dumps({"Version": "2012-10-17", "Statement": statements}, indent=2)
    assert len(text) > KEY_POLICY_MAX_BYTES
    [located] = load_policies_from_text(text, source="big.json", account=ACCOUNT)
    assert [i.kind for i in located.issues] == ["policy_too_large"]
    assert "32,768" in located.issues[0].message


# --- Terraform --------------------------------------------------------------------------------------------------


def test_terraform_plan_finds_every_kms_policy_resource_including_child_modules() -> None:
    path = fixture("terraform-plan.json")
    found = {lp.name: lp for lp in load_policies(path, account=ACCOUNT)}
    assert set(found) == {"aws_kms_key.this", "aws_kms_key_policy.shared", "module.logs.aws_kms_key.logs"}
    this = found["aws_kms_key.this"]
    assert this.kind == "terraform" and this.policy is not None
    assert [s.sid for s in this.policy.statements] == ["EnableIAMPolicies", "PlatformAdmins"]
    shared = found["aws_kms_key_policy.shared"]
    assert shared.policy is not None and shared.policy.statements[0].principal.aws == (  # type: ignore[union-attr]
        f"arn:aws:iam::{ACCOUNT}:role/admin-*",
    )


def test_terraform_policy_line_is_the_planned_value() -> None:
    path = fixture("terraform-plan.json")
    found = {lp.name: lp for lp in load_policies(path, account=ACCOUNT)}
    plan = Path(path).read_text().splitlines()
    for name in ("aws_kms_key.this", "aws_kms_key_policy.shared"):
        line = found[name].document_line
        assert line is not None and '"policy": "{' in plan[line - 1], name


def test_terraform_policy_known_after_apply_is_reported_not_an_error() -> None:
    found = {lp.name: lp for lp in load_policies(fixture("terraform-plan.json"), account=ACCOUNT)}
    logs = found["module.logs.aws_kms_key.logs"]
    assert logs.policy is None
    assert [i.kind for i in logs.issues] == ["policy_unknown"] and "after apply" in logs.issues[0].message


def test_terraform_deleted_resources_and_data_sources_are_skipped() -> None:
    plan = {
        "format_version": "1.2",
        "resource_changes": [
            {"address": "aws_kms_key.gone", "type": "aws_kms_key", "mode": "managed",
             "change": {"actions": ["delete"], "before": {"policy": "{}"}, "after": None}},
            {"address": "data.aws_kms_key.x", "type": "aws_kms_key", "mode": "data",
             "change": {"actions": ["read"], "after": {"policy": "not json"}}},
        ],
    }
    assert load_policies_from_text(json.dumps(plan), source="p.json", account=ACCOUNT) == []


def test_terraform_malformed_policy_string_names_the_resource() -> None:
    plan = {"planned_values": {"root_module": {"resources": [
        {"address": "aws_kms_key.bad", "type": "aws_kms_key", "mode": "managed", "values": {"policy": "{oops"}}]}}}
    with pytest.raises(PolicyInputError, match=r"^p\.json \(aws_kms_key\.bad\):1:2: invalid JSON"):
        load_policies_from_text(json.dumps(plan), source="p.json", account=ACCOUNT)


# --- CloudFormation ---------------------------------------------------------------------------------------------


def test_cloudformation_yaml_resolves_sub_getatt_and_marks_unresolved_refs() -> None:
    path = fixture("cfn-template.yaml")
    located = only(path, region="eu-west-2")
    assert located.kind == "cloudformation" and located.name == "PaymentsKey"
    assert located.policy is not None
    principals = [s.principal.aws for s in located.policy.statements if s.principal]  # type: ignore[union-attr]
    assert principals[0] == (f"arn:aws:iam::{ACCOUNT}:root",), "!Sub with ${AWS::Partition} and ${AWS::AccountId}"
    assert principals[1] == (f"arn:aws:iam::{ACCOUNT}:role/break-glass",), "!GetAtt of a role with a RoleName"
    assert principals[2] == ("{{unresolved:!Ref AdminRoleArn}}",), "a parameter is unknown offline"
    conditions = {c.key: c.values for c in located.policy.statements[3].conditions}
    assert conditions == {"kms:CallerAccount": (ACCOUNT,), "kms:ViaService": ("s3.eu-west-2.amazonaws.com",)}
    assert located.policy.version == "2012-10-17", "an unquoted YAML date stays the string CloudFormation sends"
    [issue] = located.issues
    assert issue.kind == "unresolved_reference" and issue.statement_index == 2 and "AdminRoleArn" in issue.message


def test_cloudformation_yaml_statement_lines() -> None:
    path = fixture("cfn-template.yaml")
    located = only(path)
    for index, sid in enumerate(["EnableIAMPolicies", "BreakGlass", "Administrators", "UseThroughS3"]):
        assert located.statement_lines[index] == (line_of(path, f"- Sid: {sid}"), 13), sid
    assert located.document_line == line_of(path, "KeyPolicy:")


def test_cloudformation_json_resolves_fn_sub_and_fn_join() -> None:
    path = fixture("cfn-template.json")
    located = only(path, region="eu-west-2")
    assert located.policy is not None
    admins, logs = located.policy.statements
    assert admins.principal.aws == (f"arn:aws:sts::{ACCOUNT}:assumed-role/Admin/alice",)  # type: ignore[union-attr]
    assert logs.principal.service == ("logs.eu-west-2.amazonaws.com",)  # type: ignore[union-attr]
    assert logs.conditions[0].values == (f"arn:aws:logs:eu-west-2:{ACCOUNT}:*",)
    assert located.statement_lines[0][0] == line_of(path, '"Sid": "Admins"') - 1
    assert located.statement_lines[1][0] == line_of(path, '"Sid": "CloudWatchLogs"') - 1
    assert located.issues == ()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}, "arn:aws-cn:iam::111122223333:root"),
        ({"Fn::Sub": ["arn:aws:iam::${Acct}:role/${Name}", {"Acct": {"Ref": "AWS::AccountId"}, "Name": "Ops"}]},
         "arn:aws:iam::111122223333:role/Ops"),
        ({"Fn::Sub": "${!Literal}-${AWS::Region}"}, "${Literal}-cn-north-1"),
        ({"Fn::Join": [":", ["a", {"Ref": "AWS::URLSuffix"}]]}, "a:amazonaws.com.cn"),
        ({"Fn::Select": [1, ["x", "y"]]}, "y"),
        ({"Fn::FindInMap": ["Admins", "prod", "Arn"]}, "arn:aws:iam::111122223333:role/ProdAdmin"),
        ({"Fn::GetAtt": ["Gen", "Arn"]}, "arn:aws-cn:iam::111122223333:role/ops/{{unresolved:generated name of Gen}}"),
        ({"Fn::ImportValue": "shared-admin"}, "{{unresolved:!ImportValue shared-admin}}"),
        ({"Fn::If": ["IsProd", "a", "b"]}, '{{unresolved:!If ["IsProd", "a", "b"]}}'),
    ],
)
def test_cloudformation_intrinsics(value: object, expected: str) -> None:
    template = {
        "Mappings": {"Admins": {"prod": {"Arn": "arn:aws:iam::111122223333:role/ProdAdmin"}}},
        "Resources": {
            "Gen": {"Type": "AWS::IAM::Role", "Properties": {"Path": "/ops/"}},
            "Key": {"Type": "AWS::KMS::Key", "Properties": {"KeyPolicy": {"Statement": [
                {"Effect": "Allow", "Principal": {"AWS": "111122223333"}, "Action": "kms:*", "Resource": "*",
                 "Condition": {"StringEquals": {"aws:ResourceTag/x": value}}}]}}},
        },
    }
    [located] = load_policies_from_text(json.dumps(template), source="t.json", account=ACCOUNT, region="cn-north-1")
    assert located.policy is not None
    assert located.policy.statements[0].conditions[0].values == (expected,)


def test_cloudformation_no_value_removes_the_item() -> None:
    template = {"Resources": {"Key": {"Type": "AWS::KMS::Key", "Properties": {"KeyPolicy": {"Statement": [
        {"Effect": "Allow", "Principal": {"AWS": ["111122223333", {"Ref": "AWS::NoValue"}]}, "Action": "kms:*",
         "Resource": "*"}]}}}}}
    [located] = load_policies_from_text(json.dumps(template), source="t.json", account=ACCOUNT)
    assert located.policy is not None and located.policy.statements[0].principal.aws == ("111122223333",)  # type: ignore[union-attr]


def test_cloudformation_key_without_policy_gets_the_default_key_policy() -> None:
    template = "Resources:\n  Key:\n    Type: AWS::KMS::Key\n    Properties:\n      Description: x\n"
    [located] = load_policies_from_text(template, source="t.yaml", account=ACCOUNT)
    assert located.policy is not None
    assert located.policy.statements[0].principal.aws == (f"arn:aws:iam::{ACCOUNT}:root",)  # type: ignore[union-attr]
    assert located.document_line == 2


def test_cloudformation_key_policy_that_is_an_intrinsic_is_unknown() -> None:
    template = "Resources:\n  Key:\n    Type: AWS::KMS::Key\n    Properties:\n      KeyPolicy: !If [Prod, {}, {}]\n"
    [located] = load_policies_from_text(template, source="t.yaml", account=ACCOUNT)
    assert located.policy is None and located.issues[0].kind == "policy_unknown"


def test_cloudformation_template_without_keys_has_no_policies() -> None:
    template = "AWSTemplateFormatVersion: '2010-09-09'\nResources:\n  B:\n    Type: AWS::S3::Bucket\n"
    assert load_policies_from_text(template, source="t.yaml", account=ACCOUNT) == []


def test_yaml_key_policy_is_understood() -> None:
    text = "Version: '2012-10-17'\nStatement:\n  - Effect: Allow\n    Principal: {AWS: '111122223333'}\n" \
           "    Action: kms:*\n    Resource: '*'\n"
    [located] = load_policies_from_text(text, source="p.yaml", account=ACCOUNT)
    assert located.kind == "key_policy" and located.statement_lines == {0: (3, 5)}


# --- bad input --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("malformed.json", None, r"^.*malformed\.json:5:3: invalid JSON: Expecting property name"),
        ("not-a-policy.json", None,
         r"not a key policy, Terraform plan or CloudFormation template: no Statement, planned_values or Resources$"),
        ("list.json", "[1, 2]", r"list\.json: not a key policy.*expected an object, got a list"),
        ("empty.json", "  \n", r"empty\.json: empty file"),
        ("bad.yaml", "Resources:\n  Key: [unclosed\n", r"bad\.yaml:3:1: invalid YAML: "),
        ("tabs.yaml", "a:\n\tb: 1\n", r"tabs\.yaml:2:1: invalid YAML"),
        ("scalar.yaml", "just text\n", r"scalar\.yaml: not a key policy.*got a string"),
        ("two.yaml", "a: 1\n---\nb: 2\n", r"two\.yaml:\d+:\d+: invalid YAML: "),
        ("stmt.json", '{"Statement": [{"Effect": "Permit"}]}', r"Effect must be"),
    ],
)
def test_bad_input_is_one_line(tmp_path: Path, name: str, text: str | None, message: str) -> None:
    path = fixture(name) if text is None else str(tmp_path / name)
    if text is not None:
        Path(path).write_text(text)
    with pytest.raises(PolicyInputError, match=message) as err:
        load_policies(path, account=ACCOUNT)
    assert "\n" not in str(err.value)


def test_missing_file_directory_and_binary(tmp_path: Path) -> None:
    with pytest.raises(PolicyInputError, match=r"nope\.json: no such file"):
        load_policies(str(tmp_path / "nope.json"), account=ACCOUNT)
    with pytest.raises(PolicyInputError, match="is a directory"):
        load_policies(str(tmp_path), account=ACCOUNT)
    (tmp_path / "bin.json").write_bytes(b"\xff\xfe{")
    with pytest.raises(PolicyInputError, match="not UTF-8"):
        load_policies(str(tmp_path / "bin.json"), account=ACCOUNT)


def test_account_must_be_twelve_digits() -> None:
    with pytest.raises(PolicyInputError, match="12-digit"):
        load_policies(fixture("default-console-policy.json"), account="1234")
