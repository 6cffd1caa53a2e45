"""audit --merge (kms_rescue/audit/merge.py; docs/audit.md, "Past one machine"): the JSON lines the Lambda handler
wrote to the lab's S3 are read back, from S3 and from local files, into one report that matches the live audit of
the same account; malformed lines are errors naming FILE:LINE, and bad paths one line and exit 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from kms_rescue.audit.lambda_handler import handler
from kms_rescue.status import ExitStatus

pytest.importorskip("moto")

from kms_rescue.lab import Lab
from tests.helpers.paths import DOCS, REPO

SCENARIO = DOCS / "examples" / "audit-cloud-scenario.json"
SCHEMA = json.loads((REPO / "kms_rescue" / "audit.schema.json").read_text())
SCRIPT = Path(sys.executable).parent / "kms-rescue"
BUCKET = "kms-rescue-results"
ACCOUNT = "111122223333"


def _env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "KMS_RESCUE_"))}
    env.update({"HOME": str(home), "AWS_CONFIG_FILE": str(home / "no-config"), "NO_COLOR": "1",
                "AWS_SHARED_CREDENTIALS_FILE": str(home / "no-credentials"), **extra})
    return env


def _cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SCRIPT), "audit", *args], env=env, capture_output=True, text=True, timeout=180,
                          stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory, as_lambda) -> Iterator[dict[str, Any]]:
    """One lab: the handler audits the account (and one it cannot enter) into s3://BUCKET/audits/r1/."""
    home = tmp_path_factory.mktemp("home")
    with Lab(str(SCENARIO)) as lab, pytest.MonkeyPatch.context() as mp:
        lab.client("operator", "s3").create_bucket(Bucket=BUCKET)
        as_lambda(mp, lab, home)
        fn = lab.credentials("function")
        for account in (ACCOUNT, "444455556666"):
            handler({"account": account, "run_id": "r1", "bucket": BUCKET, "prefix": "audits",
                     "member_role_name": "AuditMember"}, None)
        op = lab.credentials("operator")
        s3_env = _env(home, AWS_ACCESS_KEY_ID=op.access_key_id, AWS_SECRET_ACCESS_KEY=op.secret_access_key,
                      AWS_REGION="us-east-1", AWS_ENDPOINT_URL=lab.endpoint,
                      **({"AWS_SESSION_TOKEN": op.session_token} if op.session_token else {}))
        live_env = _env(home, AWS_CONFIG_FILE=str(lab.config_path))
        s3 = lab.client("operator", "s3")
        files = home / "files"
        files.mkdir()
        for obj in s3.list_objects_v2(Bucket=BUCKET, Prefix="audits/r1/")["Contents"]:
            (files / Path(obj["Key"]).name).write_bytes(s3.get_object(Bucket=BUCKET, Key=obj["Key"])["Body"].read())
        yield {"lab": lab, "s3_env": s3_env, "live_env": live_env, "files": files, "home": home,
               "secrets": [fn.secret_access_key, op.secret_access_key]}


def _digest(report: dict[str, Any]) -> dict[str, Any]:
    return {k["key_arn"]: (k["verdict"], sorted(f["rule"] for f in k["findings"]),
                           sorted((m["principal"], m["how"]) for m in k["managers"])) for k in report["keys"]}


def test_merge_from_s3_is_the_live_audit(results: dict[str, Any]) -> None:
    merged = _cli(["--merge", f"s3://{BUCKET}/audits/r1", "--format", "json"], results["s3_env"])
    live = _cli(["--profile", "auditor", "--format", "json"], results["live_env"])
    assert merged.stdout and live.stdout, (merged.stderr, live.stderr)
    report, live_report = json.loads(merged.stdout), json.loads(live.stdout)
    jsonschema.validate(report, SCHEMA)
    assert len(report["keys"]) == 4
    assert _digest(report) == _digest(live_report)
    assert [(e["account"], e["stage"]) for e in report["errors"]] == [("444455556666", "assume_role")]
    assert merged.returncode == live.returncode == ExitStatus.FINDINGS  # high findings reach the default --fail-on
    for secret in results["secrets"]:
        assert secret not in merged.stdout + merged.stderr


def test_merge_local_files_with_malformed_lines(results: dict[str, Any], tmp_path: Path) -> None:
    good = (results["files"] / f"{ACCOUNT}.jsonl").read_text().splitlines()
    bad = tmp_path / "more" / "bad.jsonl"
    bad.parent.mkdir()
    bad.write_text("\n".join(["not json", '{"key_arn": "x"}', "[1]", "", good[0],
                              '{"stage": "list_keys"}', "x" * (1024 * 1024 + 10)]) + "\n")
    done = _cli(["--merge", str(results["files"]), "--merge", str(tmp_path), "--format", "json"],
                results["s3_env"])
    assert done.returncode == 2, done.stderr
    report = json.loads(done.stdout)
    jsonschema.validate(report, SCHEMA)
    assert len(report["keys"]) == 4  # the repeated line is kept once
    messages = [e["message"] for e in report["errors"] if e["stage"] == "merge"]
    assert [m.split(": ", 1)[0] for m in messages] == [f"{bad}:{n}" for n in (1, 2, 3, 6, 7)]
    assert "invalid JSON" in messages[0] and "audit schema's key" in messages[1]
    assert "not a JSON object" in messages[2] and "audit schema's error" in messages[3]
    assert "a line of more than" in messages[4]
    assert f"{bad}:1:" in done.stderr and "Traceback" not in done.stderr
    assert "5 malformed line(s)" in done.stderr


def test_merge_text_report(results: dict[str, Any]) -> None:
    done = _cli(["--merge", str(results["files"] / f"{ACCOUNT}.jsonl")], results["s3_env"])
    assert done.returncode == ExitStatus.FINDINGS
    assert "alias/payments" in done.stdout and "KA001" in done.stdout


@pytest.mark.parametrize(("args", "message"), [
    (["--merge", "/nonexistent/results"], "no such file or directory"),
    (["--merge", "{empty}"], "no .jsonl files"),
    (["--merge", "/dev/null"], "not a regular file"),
    (["--merge", "s3://"], "expected s3://BUCKET/PREFIX"),
    (["--merge", f"s3://{BUCKET}/nothing-here"], "no .jsonl objects"),
    (["--merge", "{empty}", "--regions", "us-east-1"], "--regions cannot be used with it"),
    (["--merge", "{empty}", "--if-deleted", "arn:aws:iam::111122223333:role/X"], "--if-deleted cannot"),
])
def test_bad_merge_paths(results: dict[str, Any], tmp_path: Path, args: list[str], message: str) -> None:
    (tmp_path / "empty").mkdir()
    done = _cli([a.replace("{empty}", str(tmp_path / "empty")) for a in args], results["s3_env"])
    assert done.returncode == 2
    assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
