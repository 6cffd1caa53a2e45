"""The audit past one machine, in-process against the lab (kms_rescue/audit/lambda_handler.py; docs/audit.md,
"Past one machine"): ``handler(event, None)`` with the function's credentials in the environment, as Lambda gives
them, and the SDK's own ``AWS_ENDPOINT_URL`` pointing at the lab; the JSON lines it wrote are read back from the
lab's S3 and validated against the audit's model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kms_rescue.audit.lambda_handler import EventError, handler
from kms_rescue.audit.model import AuditError, KeyAudit, from_json

pytest.importorskip("moto")

from kms_rescue.lab import Lab
from tests.helpers.paths import DOCS, FIXTURES

SCENARIO = DOCS / "examples" / "audit-cloud-scenario.json"
BUCKET = "kms-rescue-results"
ACCOUNT = "111122223333"


@pytest.fixture
def lab(aws_home: Path, monkeypatch: pytest.MonkeyPatch, as_lambda):
    with Lab(str(SCENARIO)) as running:
        running.client("operator", "s3").create_bucket(Bucket=BUCKET)
        as_lambda(monkeypatch, running, aws_home)
        monkeypatch.setenv("KMS_RESCUE_RESULTS_BUCKET", BUCKET)
        monkeypatch.setenv("KMS_RESCUE_RESULTS_PREFIX", "audits")
        monkeypatch.setenv("KMS_RESCUE_MEMBER_ROLE_NAME", "AuditMember")
        monkeypatch.setenv("KMS_RESCUE_REGIONS", "")
        yield running


def _read_back(lab: Lab, key: str) -> list[dict]:
    body = lab.client("operator", "s3").get_object(Bucket=BUCKET, Key=key)["Body"].read().decode()
    assert body.endswith("\n")
    return [json.loads(line) for line in body.splitlines()]


def test_one_account_every_enabled_region(lab: Lab) -> None:
    result = handler({"action": "audit_account", "account": ACCOUNT, "run_id": "run-1"}, None)
    assert result == {"account": ACCOUNT, "bucket": BUCKET, "key": f"audits/run-1/{ACCOUNT}.jsonl",
                      "keys": 4, "errors": 0}
    items = [from_json(d) for d in _read_back(lab, result["key"])]
    assert all(isinstance(i, KeyAudit) for i in items)
    # both enabled Regions, from ec2:DescribeRegions through the member role
    assert sorted(i.region for i in items if isinstance(i, KeyAudit)) == ["eu-west-1"] + ["us-east-1"] * 3
    verdicts = {i.aliases[0]: i.verdict for i in items if isinstance(i, KeyAudit)}
    # alias/orphaned's policy lets in only the deleted KeyAdmin, so the member role cannot even read it.
    assert verdicts == {"alias/orphaned": "undetermined", "alias/healthy": "recoverable",
                        "alias/payments": "recoverable", "alias/sso-managed": "recoverable"}
    assert all(i.account == ACCOUNT for i in items)


def test_regions_narrowed_by_the_event(lab: Lab) -> None:
    result = handler({"account": ACCOUNT, "run_id": "run-2", "regions": ["eu-west-1"]}, None)
    assert [d["region"] for d in _read_back(lab, result["key"])] == ["eu-west-1"]


def test_a_role_that_cannot_be_assumed_is_a_row(lab: Lab) -> None:
    """An account the function cannot enter is an error line in its file, not a failed invocation."""
    result = handler({"account": "444455556666", "run_id": "run-3"}, None)
    lines = _read_back(lab, result["key"])
    assert result["keys"] == 0 and result["errors"] == 1 and len(lines) == 1
    row = from_json(lines[0])
    assert isinstance(row, AuditError) and row.stage == "assume_role" and row.account == "444455556666"


def test_the_function_writes_only_under_its_prefix(lab: Lab) -> None:
    """The role's s3:PutObject covers audits/* only: another prefix is refused by the lab's IAM check."""
    with pytest.raises(EventError, match="AccessDenied"):
        handler({"account": ACCOUNT, "run_id": "run-4", "prefix": "elsewhere"}, None)


@pytest.mark.parametrize(("event", "message"), [
    ([], "JSON object"),
    ({"action": "nuke"}, "not audit_account"),
    ({"account": "1111", "run_id": "r"}, "12-digit"),
    ({"account": ACCOUNT}, "run_id"),
    ({"account": ACCOUNT, "run_id": "../x"}, "run_id"),
    ({"account": ACCOUNT, "run_id": "r", "bucket": "Not_A_Bucket"}, "bucket"),
    ({"account": ACCOUNT, "run_id": "r", "regions": ["mars-1"]}, "Region"),
])
def test_bad_events(lab: Lab, event: object, message: str) -> None:
    with pytest.raises(EventError, match=message):
        handler(event, None)


ORG_SCENARIO = FIXTURES / "lab" / "audit-org.json"


def test_the_whole_run_over_an_organization(aws_home: Path, monkeypatch: pytest.MonkeyPatch, as_lambda) -> None:
    """What the state machine does, step by step: list_accounts writes the items file (organizations:ListAccounts
    from the management account), one audit_account per item enters each account through
    OrganizationAccountAccessRole, and audit --merge's reader gets one stream of both accounts' keys back."""
    from kms_rescue.audit.merge import MergeStats, merge

    with Lab(str(ORG_SCENARIO)) as lab:
        s3 = lab.client("operator", "s3")
        s3.create_bucket(Bucket=BUCKET)
        as_lambda(monkeypatch, lab, aws_home)
        base = {"run_id": "org-1", "bucket": BUCKET, "prefix": "audits",
                "member_role_name": "OrganizationAccountAccessRole"}
        listed = handler({"action": "list_accounts", **base}, None)
        assert listed == {"bucket": BUCKET, "key": "audits/org-1/accounts.json", "accounts": 2}
        items = json.loads(s3.get_object(Bucket=BUCKET, Key=listed["key"])["Body"].read())
        assert items == [{"account": ACCOUNT}, {"account": "444455556666"}]
        for item in items:  # the Distributed Map's ItemSelector: {"action", "account", "run_id"}
            done = handler({"action": "audit_account", "account": item["account"], **base}, None)
            assert done["keys"] == 1 and done["errors"] == 0
        stats = MergeStats()
        merged = list(merge([f"s3://{BUCKET}/audits/org-1/"], stats=stats, s3_client=s3))
    assert stats.files == 2 and stats.malformed == 0  # accounts.json is not a .jsonl file: not read
    assert sorted((k.account, k.aliases[0]) for k in merged if isinstance(k, KeyAudit)) == [
        (ACCOUNT, "alias/management"), ("444455556666", "alias/member")]
