"""The KMS action catalogue comes from botocore's KMS service model and the Service Authorization Reference, read
as data (docs/engine.md, "The action catalogue")."""

from __future__ import annotations

import subprocess
import sys

import botocore.session
import pytest

from kms_rescue.policy import actions, catalogue
from kms_rescue.policy.actions import (
    ADMIN_ACTIONS,
    MANAGEMENT_ACTIONS,
    action_matches,
    canonical_action,
    cross_account_allowed,
    expand,
    is_known_kms_action,
    kms_actions,
    unknown_kms_actions,
)
from kms_rescue.policy.errors import PolicyInputError


@pytest.fixture(scope="module")
def botocore_operations() -> set[str]:
    """The KMS operations as botocore itself reports them (an independent reading of the same model)."""
    model = botocore.session.get_session().get_service_model("kms")
    return set(model.operation_names)


def test_catalogue_is_every_operation_of_botocores_kms_model(botocore_operations: set[str]) -> None:
    operations = {f"kms:{name}" for name in botocore_operations}
    # KMS API Reference, ReEncrypt: the operation is authorized as kms:ReEncryptFrom and kms:ReEncryptTo.
    assert operations - kms_actions() == {"kms:ReEncrypt"}
    assert {"kms:ReEncryptFrom", "kms:ReEncryptTo", "kms:SynchronizeMultiRegionKey"} <= kms_actions() - operations
    assert kms_actions() == actions.KMS_ACTIONS


def test_cross_account_flags_follow_the_model_documentation(botocore_operations: set[str]) -> None:
    model = botocore.session.get_session().get_service_model("kms")
    for name in botocore_operations - {"ReEncrypt"}:
        doc = model.operation_model(name).documentation
        expected = "Cross-account use</b>: Yes" in doc
        assert cross_account_allowed(f"kms:{name}") is expected, name


@pytest.mark.parametrize(
    ("action", "allowed", "fact"),
    [
        ("kms:PutKeyPolicy", False, "PutKeyPolicy cannot be called on a key in another account"),
        ("kms:GetKeyPolicy", False, "GetKeyPolicy cannot be called on a key in another account"),
        ("kms:ScheduleKeyDeletion", False, "key deletion is same-account only"),
        ("kms:CreateAlias", False, "aliases are same-account only"),
        ("kms:Decrypt", True, "Decrypt works across accounts with both policies allowing"),
        ("kms:DescribeKey", True, "DescribeKey works across accounts"),
        ("kms:CreateGrant", True, "grants can be created across accounts"),
        ("kms:GenerateRandom", False, '"Not applicable" is not a yes'),
        ("kms:ListRetirableGrants", False, "a line that does not say Yes counts as No"),
        ("kms:decrypt", True, "action names are case-insensitive"),
        ("kms:NoSuchOperation", False, "unknown actions are never cross-account"),
        ("s3:GetObject", False, "other services are not in the KMS catalogue"),
    ],
)
def test_cross_account_table(action: str, allowed: bool, fact: str) -> None:
    assert cross_account_allowed(action) is allowed, fact


@pytest.mark.parametrize(
    ("pattern", "action", "matches", "fact"),
    [
        ("kms:PutKeyPolicy", "kms:PutKeyPolicy", True, "exact name"),
        ("KMS:putkeypolicy", "kms:PutKeyPolicy", True, "IAM action names are case-insensitive"),
        ("kms:put*", "kms:PutKeyPolicy", True, "* matches any run of characters, any case"),
        ("kms:*", "kms:Decrypt", True, "service wildcard"),
        ("*", "kms:Decrypt", True, '"*" alone is every action'),
        ("kms:?ncrypt", "kms:Encrypt", True, "? matches exactly one character"),
        ("kms:?ncrypt", "kms:Decrypt", False, "? does not match two characters"),
        ("kms:Get*", "kms:PutKeyPolicy", False, "prefix must match"),
        ("kms:*", "s3:GetObject", False, "the service prefix is part of the name"),
        ("kms:Encrypt", "kms:EncryptX", False, "no implicit trailing wildcard"),
        ("kms:Create.*", "kms:CreateGrant", False, "regex characters are literal"),
    ],
)
def test_action_matches(pattern: str, action: str, matches: bool, fact: str) -> None:
    assert action_matches(pattern, action) is matches, fact


def test_expand_wildcards_against_the_catalogue() -> None:
    assert "kms:GetKeyPolicy" in expand("kms:Get*")
    assert "kms:GetPublicKey" in expand("kms:get*")
    assert all(a.startswith("kms:Get") for a in expand("kms:Get*"))
    assert expand("kms:?ncrypt") == ("kms:Encrypt",)
    assert set(expand("kms:*")) == kms_actions() == set(expand("*"))
    assert expand("kms:PutKeyPolicies") == ()
    assert expand("s3:*") == ()
    assert list(expand("kms:*")) == sorted(expand("kms:*"))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("kms:putkeypolicy", "kms:PutKeyPolicy"),
        ("KMS:DECRYPT", "kms:Decrypt"),
        ("kms:NotAnOperation", "kms:NotAnOperation"),
        ("s3:GetObject", "s3:GetObject"),
        ("kms:Get*", "kms:Get*"),
    ],
)
def test_canonical_action(value: str, expected: str) -> None:
    assert canonical_action(value) == expected


@pytest.mark.parametrize("bad", ["PutKeyPolicy", "kms:", ":Decrypt", "kms:Put Key", "kms:a:b", ""])
def test_canonical_action_rejects_malformed_names_in_one_line(bad: str) -> None:
    with pytest.raises(PolicyInputError) as err:
        canonical_action(bad)
    assert "\n" not in str(err.value) and "service:Name" in str(err.value)


def test_known_and_unknown_actions() -> None:
    assert is_known_kms_action("kms:putkeypolicy")
    assert not is_known_kms_action("kms:PutKeyPolicies")
    patterns = ["kms:PutKeyPolicies", "kms:Get*", "s3:*", "*", "kms:Decript", "kms:PutKeyPolicies"]
    assert unknown_kms_actions(patterns) == [
        "kms:PutKeyPolicies",
        "kms:Decript",
    ]


def test_management_actions_are_all_in_the_catalogue() -> None:
    assert [a for a in MANAGEMENT_ACTIONS if not is_known_kms_action(a)] == []
    assert "kms:PutKeyPolicy" in MANAGEMENT_ACTIONS
    assert [a for a in MANAGEMENT_ACTIONS if cross_account_allowed(a)] == ["kms:CreateGrant", "kms:RevokeGrant"]


def test_admin_actions_from_the_default_key_policy() -> None:
    """KMS Developer Guide, "Default key policy": key administrators manage the key but cannot use it."""
    assert all(expand(p) for p in ADMIN_ACTIONS), "every pattern names at least one KMS action"
    covered = {a for p in ADMIN_ACTIONS for a in expand(p)}
    assert {"kms:PutKeyPolicy", "kms:ScheduleKeyDeletion", "kms:CancelKeyDeletion", "kms:EnableKey",
            "kms:DisableKey", "kms:CreateGrant", "kms:RevokeGrant", "kms:TagResource"} <= covered
    assert not {"kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey", "kms:Sign", "kms:ReEncrypt"} & covered


def test_reading_the_catalogue_does_not_import_botocore() -> None:
    code = (
        "import sys\n"
        "from kms_rescue.policy.actions import kms_actions, cross_account_allowed\n"
        "assert len(kms_actions()) > 40 and not cross_account_allowed('kms:PutKeyPolicy')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('boto3', 'botocore')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_missing_botocore_data_is_a_clear_runtime_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(catalogue.importlib.util, "find_spec", lambda name: None)
    catalogue._botocore_kms.cache_clear()
    catalogue.service_actions.cache_clear()
    try:
        with pytest.raises(RuntimeError, match="botocore is not installed"):
            kms_actions()
    finally:
        monkeypatch.undo()
        catalogue._botocore_kms.cache_clear()
        catalogue.service_actions.cache_clear()
    assert "kms:PutKeyPolicy" in kms_actions()
