"""The audit's results and their JSON (kms_rescue/audit/model.py; docs/audit.md, "The JSON contract")."""

from __future__ import annotations

import pytest

from kms_rescue.audit.model import (
    SEVERITIES,
    AuditError,
    Finding,
    KeyAudit,
    Manager,
    from_json,
    summarize,
    to_json,
)

ARN = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def key(verdict: str = "manageable", *, findings: tuple[Finding, ...] = (), after: str | None = None) -> KeyAudit:
    return KeyAudit(
        key_arn=ARN, account="111122223333", region="us-east-1", key_id=ARN.rsplit("/", 1)[1], key_manager="CUSTOMER",
        key_state="Enabled", aliases=("alias/payments",), verdict=verdict,
        managers=(Manager("arn:aws:iam::111122223333:role/KeyAdmin", "named", True),),
        findings=findings, verdict_if_deleted=after,
        managers_if_deleted=() if after else None, requests=2,
    )


@pytest.mark.parametrize("item", [
    key(),
    key("recoverable", findings=(Finding("KA001", "high", "only one", None), Finding("KR007", "high", "m", '"S"'))),
    key("manageable", after="locked_out"),
    AuditError("111122223333", "eu-west-1", "list_keys", "access_denied", "kms:ListKeys was denied"),
    AuditError(None, None, "assume_role", "access_denied", "could not assume the role"),
])
def test_round_trip(item: KeyAudit | AuditError):
    assert from_json(to_json(item)) == item


def test_verdict_if_deleted_only_with_if_deleted():
    assert "verdict_if_deleted" not in to_json(key())
    assert to_json(key(after="locked_out"))["verdict_if_deleted"] == "locked_out"


def test_bad_values_are_refused():
    with pytest.raises(ValueError):
        Finding("KA001", "info", "not on lint's scale")
    with pytest.raises(ValueError):
        Manager("arn:aws:iam::111122223333:role/A", "somehow")
    with pytest.raises(ValueError):
        key("locked")
    with pytest.raises(ValueError):
        from_json({"neither": True})


def test_summarize_counts_verdicts_severities_errors():
    items = [
        key(findings=(Finding("KA001", "high", "x"),)),
        key("locked_out", findings=(Finding("KA008", "critical", "x"),)),
        key(after="locked_out"), AuditError("111122223333", "us-west-2", "list_keys", "throttled", "slow down"),
    ]
    s = summarize(items)
    assert s["keys"] == 3 and s["errors"] == 1
    assert s["verdicts"]["manageable"] == 2 and s["verdicts"]["locked_out"] == 1
    assert s["findings"] == {"critical": 1, "high": 1, "medium": 0, "low": 0}
    assert s["keys_with_findings"] == 2 and s["would_lose_last_manager"] == 1 and s["requests"] == 6
    assert list(s["findings"]) == list(SEVERITIES)


def test_worst_is_the_most_severe():
    assert key(findings=(Finding("KR011", "medium", "m"), Finding("KA008", "critical", "c"))).worst == "critical"
    assert key().worst is None


def test_the_pure_parts_import_no_boto3_and_no_aws_package():
    """model, findings, keys and the renderers decide and write from plain data (docs/architecture.md)."""
    import subprocess
    import sys

    code = ("import sys, kms_rescue.audit.model, kms_rescue.audit.findings, kms_rescue.audit.keys, "
            "kms_rescue.render.audit; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('boto3', 'botocore') "
            "or m.startswith('kms_rescue.aws')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
