"""Real CloudFormation through cfn-lint's decoder: Fn::If combinations, parameter Defaults, Fn::Sub of a JSON text,
line numbers, and cfn-lint imported only when a template is seen.

Each case names the AWS page and the fact it rests on.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from kms_rescue.policy.lint import lint_files
from kms_rescue.policy.sources import load_policies_from_text
from tests.helpers.paths import FIXTURES

ACCOUNT = "111122223333"

ROOT = "!Sub arn:${AWS::Partition}:iam::${AWS::AccountId}:root"
ROOT_QUOTED = '!Sub "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"'


#: A key whose account-principal statement exists only in production: in dev the only admin is a deleted user.
IF_IN_STATEMENT = f"""\
AWSTemplateFormatVersion: "2010-09-09"
Parameters:
  Env:
    Type: String
    Default: dev
    AllowedValues: [dev, prod]
Conditions:
  IsProd: !Equals [!Ref Env, prod]
  IsDev: !Not [!Condition IsProd]
Resources:
  Key:
    Type: AWS::KMS::Key
    Properties:
      KeyPolicy:
        Version: 2012-10-17
        Statement:
          - !If
            - IsProd
            - Sid: Root
              Effect: Allow
              Principal:
                AWS: {ROOT}
              Action: kms:*
              Resource: "*"
            - !Ref AWS::NoValue
          - !If
            - IsDev
            - Sid: OldAdmin
              Effect: Allow
              Principal:
                AWS: AIDAJQABLZS4A3QDU576Q
              Action: kms:*
              Resource: "*"
            - !Ref AWS::NoValue
"""


def _policies(text: str) -> dict[str, list[str]]:
    located = load_policies_from_text(text, source="t.yaml", account=ACCOUNT)
    return {loc.name: [s.sid or "" for s in loc.policy.statements] if loc.policy else [] for loc in located}


def _line(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def test_fn_if_in_statement_is_linted_once_per_satisfiable_combination(tmp_path: Path) -> None:
    """Fn::If returns the value for the condition's result and AWS::NoValue removes the item; IsDev is Fn::Not of
    IsProd, so only two of the four combinations can happen.
    https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/intrinsic-function-reference-conditions.html"""
    assert _policies(IF_IN_STATEMENT) == {
        "Key (IsDev=false, IsProd=true)": ["Root"],
        "Key (IsDev=true, IsProd=false)": ["OldAdmin"],
    }
    path = tmp_path / "t.yaml"
    path.write_text(IF_IN_STATEMENT)
    report = lint_files([str(path)], account=ACCOUNT)
    locked = [r.location.name for r in report.results if r.locked_out]
    assert locked == ["Key (IsDev=true, IsProd=false)"], "the finding says which combination locks the key out"
    [orphan] = [f for r, f in report.findings if f.rule_id == "KR003"]
    assert orphan.line == _line(IF_IN_STATEMENT, "- Sid: OldAdmin"), "the branch's own line"


def test_fn_if_around_the_whole_key_policy() -> None:
    """Fn::If may be any property value, KeyPolicy included.
    https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/intrinsic-function-reference-conditions.html"""
    text = textwrap.dedent(f"""\
        Parameters:
          Strict: {{Type: String, Default: "no"}}
        Conditions:
          IsStrict: !Equals [!Ref Strict, "yes"]
        Resources:
          Key:
            Type: AWS::KMS::Key
            Properties:
              KeyPolicy: !If
                - IsStrict
                - Version: "2012-10-17"
                  Statement:
                    - {{Sid: Admin, Effect: Allow, Action: "kms:*", Resource: "*",
                       Principal: {{AWS: !Sub "arn:aws:iam::${{AWS::AccountId}}:role/Admin"}}}}
                - Version: "2012-10-17"
                  Statement:
                    - {{Sid: Root, Effect: Allow, Principal: {{AWS: {ROOT_QUOTED}}}, Action: "kms:*", Resource: "*"}}
        """)
    assert _policies(text) == {"Key (IsStrict=false)": ["Root"], "Key (IsStrict=true)": ["Admin"]}


def test_a_key_whose_condition_is_false_is_not_linted_in_that_combination() -> None:
    """A resource with a Condition attribute is created only when the condition is true.
    https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-attribute-condition.html"""
    text = IF_IN_STATEMENT.replace("  Key:\n    Type: AWS::KMS::Key\n", "  Key:\n    Type: AWS::KMS::Key\n"
                                   "    Condition: IsProd\n")
    assert _policies(text) == {"Key (IsDev=false, IsProd=true)": ["Root"]}


def test_an_fn_if_on_an_undefined_condition_stays_a_placeholder() -> None:
    """Fn::If names a condition of the Conditions section; an undefined one cannot be evaluated.
    https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/intrinsic-function-reference-conditions.html"""
    text = "Resources:\n  Key:\n    Type: AWS::KMS::Key\n    Properties:\n      KeyPolicy: !If [Prod, {}, {}]\n"
    [located] = load_policies_from_text(text, source="t.yaml", account=ACCOUNT)
    assert located.policy is None and located.issues[0].kind == "policy_unknown"


def test_parameter_defaults_are_used() -> None:
    """A parameter not given at deployment takes its Default.
    https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_Parameter.html"""
    text = textwrap.dedent("""\
        Parameters:
          AdminRoleName: {Type: String, Default: KeyAdmin}
          Admins:
            Type: CommaDelimitedList
            Default: "arn:aws:iam::111122223333:role/A,arn:aws:iam::111122223333:role/B"
          NoDefault: {Type: String}
        Resources:
          Key:
            Type: AWS::KMS::Key
            Properties:
              KeyPolicy:
                Version: "2012-10-17"
                Statement:
                  - Sid: Named
                    Effect: Allow
                    Principal: {AWS: !Sub "arn:aws:iam::${AWS::AccountId}:role/${AdminRoleName}"}
                    Action: kms:*
                    Resource: "*"
                  - Sid: List
                    Effect: Allow
                    Principal: {AWS: !Ref Admins}
                    Action: kms:Decrypt
                    Resource: "*"
                  - Sid: Unknown
                    Effect: Allow
                    Principal: {AWS: !Ref NoDefault}
                    Action: kms:Decrypt
                    Resource: "*"
        """)
    [located] = load_policies_from_text(text, source="t.yaml", account=ACCOUNT)
    assert located.policy is not None
    named, listed, _ = located.policy.statements
    assert named.principal is not None and named.principal.aws == ("arn:aws:iam::111122223333:role/KeyAdmin",)
    assert listed.principal is not None and listed.principal.aws == (
        "arn:aws:iam::111122223333:role/A", "arn:aws:iam::111122223333:role/B")
    assert [i.kind for i in located.issues] == ["unresolved_reference"], "only the parameter without a Default"
    assert "!Ref NoDefault" in located.issues[0].message


SUB_BLOCK = """\
Parameters:
  AdminRoleName: {Type: String, Default: KeyAdmin}
Resources:
  Key:
    Type: AWS::KMS::Key
    Properties:
      KeyPolicy: !Sub |
        {
          "Version": "2012-10-17",
          "Statement": [
            {
              "Sid": "Admins",
              "Effect": "Allow",
              "Principal": {"AWS": "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/${AdminRoleName}"},
              "Action": "kms:*",
              "Resource": "*"
            },
            {
              "Sid": "Session",
              "Effect": "Allow",
              "Principal": {"AWS": "arn:${AWS::Partition}:sts::${AWS::AccountId}:assumed-role/Ops/carol"},
              "Action": "kms:Decrypt",
              "Resource": "*"
            }
          ]
        }
"""


def test_fn_sub_of_a_json_text_is_resolved_with_its_lines(tmp_path: Path) -> None:
    """Fn::Sub substitutes ${Var} in a string, here the key policy's JSON text.
    https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/intrinsic-function-reference-sub.html"""
    path = tmp_path / "t.yaml"
    path.write_text(SUB_BLOCK)
    report = lint_files([str(path)], account=ACCOUNT)
    [result] = report.results
    assert result.location.policy is not None
    admins = result.location.policy.statements[0]
    assert admins.principal is not None and admins.principal.aws == ("arn:aws:iam::111122223333:role/KeyAdmin",)
    [session] = [f for f in result.findings if f.rule_id == "KR004"]
    assert session.line == _line(SUB_BLOCK, '"Sid": "Session"') - 1, "the statement's opening brace"
    assert not [f for f in result.findings if f.rule_id == "KR018"]


def test_fn_sub_of_a_json_string_in_a_json_template() -> None:
    """The same in a JSON template, where the text is one escaped string on one line.
    https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/intrinsic-function-reference-sub.html"""
    policy = {"Version": "2012-10-17", "Statement": [
        {"Sid": "Root", "Effect": "Allow", "Principal": {"AWS": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"},
         "Action": "kms:*", "Resource": "*"}]}
    template = {"Resources": {"Key": {"Type": "AWS::KMS::Key",
                                      "Properties": {"KeyPolicy": {"Fn::Sub": json.dumps(policy)}}}}}
    text = json.dumps(template, indent=2)
    [located] = load_policies_from_text(text, source="t.json", account=ACCOUNT)
    assert located.policy is not None
    assert located.policy.statements[0].principal.aws == (f"arn:aws:iam::{ACCOUNT}:root",)  # type: ignore[union-attr]
    assert located.statement_lines[0][0] == _line(text, '"KeyPolicy"')


@pytest.mark.parametrize(
    ("region", "partition", "suffix"),
    [
        ("us-east-1", "aws", "amazonaws.com"),
        ("cn-north-1", "aws-cn", "amazonaws.com.cn"),
        ("us-gov-west-1", "aws-us-gov", "amazonaws.com"),
        ("us-iso-east-1", "aws-iso", "c2s.ic.gov"),
        ("us-isob-east-1", "aws-iso-b", "sc2s.sgov.gov"),
        ("eusc-de-east-1", "aws-eusc", "amazonaws.eu"),
    ],
)
def test_pseudo_parameters_follow_the_regions_partition(region: str, partition: str, suffix: str) -> None:
    """AWS::Partition and AWS::URLSuffix are the stack Region's partition and domain (CloudFormation, "Pseudo
    parameters reference"); the values come from botocore's partition data.
    https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/pseudo-parameter-reference.html"""
    text = SUB_BLOCK.replace('"Action": "kms:Decrypt",', '"Action": "kms:Decrypt", "Condition": {"StringEquals": '
                             '{"kms:ViaService": "s3.${AWS::Region}.${AWS::URLSuffix}"}},')
    [located] = load_policies_from_text(text, source="t.yaml", account=ACCOUNT, region=region)
    assert located.policy is not None
    admins, session = located.policy.statements
    assert admins.principal is not None
    assert admins.principal.aws == (f"arn:{partition}:iam::111122223333:role/KeyAdmin",)
    assert session.conditions[0].values == (f"s3.{region}.{suffix}",)


def test_lint_accepts_every_partitions_regions(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from kms_rescue.cli.app import main

    (tmp_path / "t.yaml").write_text(SUB_BLOCK)
    assert main(["lint", str(tmp_path / "t.yaml"), "--account", ACCOUNT, "--region", "eusc-de-east-1"]) == 0
    out = capsys.readouterr().out
    assert main(["lint", str(tmp_path / "t.yaml"), "--account", ACCOUNT, "--region", "mars-east-1"]) == 2
    assert "--region must be an AWS Region code" in capsys.readouterr().err
    assert '"Principal": {"AWS": "arn:aws-eusc:iam::111122223333:root"}' in out, "the fix is in the key's partition"


def test_cfn_lint_is_imported_only_for_templates(tmp_path: Path) -> None:
    (tmp_path / "t.yaml").write_text(SUB_BLOCK)
    fixtures = FIXTURES / "lint"
    probe = textwrap.dedent("""\
        import sys
        from kms_rescue.policy.lint import lint_files
        lint_files([sys.argv[1]], account="111122223333")
        print(any(m.split(".")[0] == "cfnlint" for m in sys.modules))
        """)
    plain = subprocess.run([sys.executable, "-c", probe, str(fixtures / "locked-out.json")],
                           capture_output=True, text=True, check=True)
    assert plain.stdout.strip() == "False", "a plain key policy never imports cfn-lint"
    plan = subprocess.run([sys.executable, "-c", probe, str(fixtures / "terraform-plan.json")],
                          capture_output=True, text=True, check=True)
    assert plan.stdout.strip() == "False", "nor does a Terraform plan"
    template = subprocess.run([sys.executable, "-c", probe, str(tmp_path / "t.yaml")],
                              capture_output=True, text=True, check=True)
    assert template.stdout.strip() == "True"


@pytest.mark.parametrize("name", ["cfn-template.yaml", "cfn-template.json"])
def test_the_fixture_templates_keep_their_lines(name: str) -> None:
    path = FIXTURES / "lint" / name
    [located] = load_policies_from_text(path.read_text(), source=name, account=ACCOUNT, region="eu-west-2")
    text = path.read_text()
    first_sid = "- Sid: EnableIAMPolicies" if name.endswith("yaml") else '"Sid": "Admins"'
    expected = _line(text, first_sid) - (0 if name.endswith("yaml") else 1)
    assert located.statement_lines[0][0] == expected


@pytest.mark.parametrize("condition", ["!Equals [a]", "[1, 2]", "!Not [!Condition Missing]", "{}"])
def test_conditions_cfn_lint_cannot_relate_give_every_combination(condition: str) -> None:
    """A malformed condition is still a condition of the template: both of its values are linted, never a crash.
    https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/intrinsic-function-reference-conditions.html"""
    text = textwrap.dedent(f"""\
        Conditions:
          IsProd: {condition}
        Resources:
          K:
            Type: AWS::KMS::Key
            Properties:
              KeyPolicy:
                Version: "2012-10-17"
                Statement:
                  - !If
                    - IsProd
                    - {{Sid: Root, Effect: Allow, Principal: {{AWS: "arn:aws:iam::111122223333:root"}},
                       Action: "kms:*", Resource: "*"}}
                    - {{Sid: Role, Effect: Allow, Principal: {{AWS: "arn:aws:iam::111122223333:role/A"}},
                       Action: "kms:*", Resource: "*"}}
        """)
    assert _policies(text) == {"K (IsProd=true)": ["Root"], "K (IsProd=false)": ["Role"]}
