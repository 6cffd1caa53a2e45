"""audit_region against the lab's real HTTP endpoint (kms_rescue/audit/account.py; docs/audit.md)."""

from __future__ import annotations

import pytest

from kms_rescue.audit.account import AccountCache, AuditOptions, AuditTarget, audit_region
from kms_rescue.audit.model import AuditError, KeyAudit
from kms_rescue.observations import IdentitySpec

pytest.importorskip("moto")

from kms_rescue.lab import Lab


def profile(name: str) -> IdentitySpec:
    return IdentitySpec(name=name, source="profile", profile=name, kind="static")


@pytest.fixture
def lab_env(aws_home, monkeypatch):
    def use(lab: Lab) -> None:
        monkeypatch.setenv("AWS_CONFIG_FILE", str(lab.config_path))
    return use


def test_sole_admin_deleted_is_locked_out_with_an_orphan(lab_env):
    with Lab("sole-admin-deleted") as lab:
        lab_env(lab)
        items = list(audit_region(AuditTarget(None, lab.region, profile("app")), AuditOptions()))
    assert len(items) == 1 and isinstance(items[0], KeyAudit)
    k = items[0]
    assert k.verdict == "locked_out" and k.managers == ()
    rules = {f.rule for f in k.findings}
    assert {"KA008", "KA002", "KA004"} <= rules and "KR003" not in rules  # KA002 supersedes lint's KR003
    assert k.requests == 2  # DescribeKey and GetKeyPolicy


def test_account_reads_are_shared_across_regions(lab_env):
    with Lab("key-in-other-region") as lab:
        lab_env(lab)
        cache = AccountCache()
        before = sum(lab.admin.stats().values()) if callable(lab.admin.stats) else 0
        first = list(audit_region(AuditTarget(None, "us-east-1", profile("admin")), AuditOptions(), cache=cache))
        mid = sum(lab.admin.stats().values())
        second = list(audit_region(AuditTarget(None, "eu-west-1", profile("admin")), AuditOptions(), cache=cache))
        after = sum(lab.admin.stats().values())
    assert first == []
    assert [k.region for k in second if isinstance(k, KeyAudit)] == ["eu-west-1"]
    # The second Region: ListKeys, ListAliases, DescribeKey, GetKeyPolicy; no sts, iam or organizations call again.
    assert after - mid == 4, (before, mid, after)


def test_bad_credentials_are_a_row(lab_env, monkeypatch):
    with Lab("healthy-default") as lab:
        lab_env(lab)
        items = list(audit_region(AuditTarget(None, lab.region, profile("nosuchprofile")), AuditOptions()))
    assert len(items) == 1 and isinstance(items[0], AuditError)
    assert items[0].stage == "credentials"
