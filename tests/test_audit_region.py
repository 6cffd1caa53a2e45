"""audit_region against the lab's real HTTP endpoint (kms_rescue/audit/account.py; docs/audit.md)."""

from __future__ import annotations

import pytest

from kms_rescue.audit.account import AccountCache, AuditOptions, AuditTarget, audit_region
from kms_rescue.audit.model import AuditError, KeyAudit
from kms_rescue.lab import Lab
from kms_rescue.observations import IdentitySpec

pytest.importorskip("moto")



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
        first = list(audit_region(AuditTarget(None, "us-east-1", profile("admin")), AuditOptions(), cache=cache))
        mid = lab.admin.stats().get("requests", 0)
        second = list(audit_region(AuditTarget(None, "eu-west-1", profile("admin")), AuditOptions(), cache=cache))
        after = lab.admin.stats().get("requests", 0)
    assert first == []
    assert [k.region for k in second if isinstance(k, KeyAudit)] == ["eu-west-1"]
    # The second Region: ListKeys, ListAliases, DescribeKey, GetKeyPolicy; no sts, iam or organizations call again.
    assert after - mid == 4, (mid, after)


def test_bad_credentials_are_a_row(lab_env, monkeypatch):
    with Lab("healthy-default") as lab:
        lab_env(lab)
        items = list(audit_region(AuditTarget(None, lab.region, profile("nosuchprofile")), AuditOptions()))
    assert len(items) == 1 and isinstance(items[0], AuditError)
    assert items[0].stage == "credentials"


def test_an_account_that_answers_nothing_is_a_row(lab_env):
    """Every request throttled: the credentials' check fails, and that is one error row, not a crash."""
    with Lab("healthy-default", fault_rate=1.0, fault="throttle", seed=1) as lab:
        lab_env(lab)
        items = list(audit_region(AuditTarget(None, lab.region, profile("admin")), AuditOptions(max_attempts=1)))
    assert len(items) == 1 and isinstance(items[0], AuditError)  # nothing works: the credentials' check fails
    assert items[0].stage == "credentials" and items[0].error == "throttled"


def test_aws_managed_keys_are_known_by_their_reserved_alias():
    """KMS Developer Guide, "Create aliases": the alias/aws/ prefix is reserved for AWS managed keys, so a key an
    alias/aws/ alias points to is AWS managed without a DescribeKey (the lab cannot serve such keys)."""
    from kms_rescue.audit.account import customer_managed

    aliases = {"k1": ["alias/aws/ebs"], "k2": ["alias/payments"], "k3": ["alias/awsome", "alias/x"]}
    assert customer_managed(["k1", "k2", "k3", "k4"], aliases) == ["k2", "k3", "k4"]


def test_closing_the_stream_early_reads_no_more_keys(lab_env):
    """A caller that stops after the first key (Ctrl-C, a deadline) leaves the keys not begun unread."""
    with Lab("docs/examples/audit-scenario.json") as lab:
        lab_env(lab)
        stream = audit_region(AuditTarget(None, "us-east-1", profile("auditor")), AuditOptions(workers=1))
        first = next(stream)
        stream.close()
        at_close = lab.admin.stats().get("requests", 0)
        full = list(audit_region(AuditTarget(None, "us-east-1", profile("auditor")), AuditOptions(workers=1)))
        whole = lab.admin.stats().get("requests", 0) - at_close
    assert isinstance(first, KeyAudit) and len(full) == 10
    # With one worker, at most the first key and the two read ahead were read before the close.
    assert at_close < whole
