"""docs/lab.md stays true: its Python example runs, its AWS CLI session behaves as annotated, its tables and
scenario example match the package."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from kms_rescue.lab import Lab, builtin_names, load_scenario

DOC = Path(__file__).resolve().parents[1] / "docs" / "lab.md"


def blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", DOC.read_text(), flags=re.S)


def test_python_example_runs(capsys: pytest.CaptureFixture[str]) -> None:
    (code,) = blocks("python")
    exec(compile(code, str(DOC), "exec"), {})
    out = capsys.readouterr().out
    assert "is not authorized to perform: kms:PutKeyPolicy" in out


def test_scenario_example_validates() -> None:
    (example,) = blocks("json")
    sc = load_scenario(json.loads(example))
    assert sc.deleted[0].ref == "role/KeyAdmin"


def test_builtin_table_matches_the_package() -> None:
    rows = re.findall(r"^\| `([a-z0-9-]+)` \| ([a-z_]+) \|", DOC.read_text(), flags=re.M)
    assert sorted(name for name, _ in rows) == builtin_names()
    for name, verdict in rows:
        assert load_scenario(name).expected_verdict == verdict


def test_schema_link_points_at_package_data() -> None:
    links = re.findall(r"\]\((\.\./kms_rescue/lab/[^)]+)\)", DOC.read_text())
    assert links and all((DOC.parent / link).resolve().is_file() for link in links)


def run_annotated(commands: list[str], cwd: Path) -> list[str]:
    """Run each ``aws`` line as annotated (``# fails: Code`` must fail with that code); return the outputs."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["AWS_CONFIG_FILE"] = "lab.ini"
    env["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    outputs = []
    for line in commands:
        command, _, comment = line.partition("#")
        done = subprocess.run(shlex.split(command), cwd=cwd, env=env, capture_output=True, text=True, timeout=60)
        expected = re.search(r"fails: (\w+)", comment)
        if expected:
            assert done.returncode != 0 and expected.group(1) in done.stderr, (line, done.stderr)
        else:
            assert done.returncode == 0, (line, done.stderr)
        outputs.append(done.stdout)
    return outputs


@pytest.mark.skipif(shutil.which("aws") is None, reason="the AWS CLI is not installed")
def test_cli_session_behaves_as_annotated(tmp_path: Path) -> None:
    session = next(b for b in blocks("shell") if "aws --profile" in b)
    commands = [line for line in session.splitlines() if line.startswith("aws ")]
    assert len(commands) >= 4
    (tmp_path / "policy.json").write_text(json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:root"}, "Action": "kms:*",
         "Resource": "*"}]}))
    with Lab("sole-admin-deleted", config_path=tmp_path / "lab.ini"):
        outputs = run_annotated(commands, tmp_path)
    for line, out in zip(commands, outputs, strict=True):
        if "AROA" in line.partition("#")[2]:
            assert '"AWS": "AROA' in out.replace("\\", "")


@pytest.mark.skipif(shutil.which("aws") is None, reason="the AWS CLI is not installed")
def test_several_regions_session_behaves_as_annotated(tmp_path: Path) -> None:
    session = next(b for b in blocks("shell") if "kms-rescue lab key-in-other-region" in b)
    commands = [line for line in session.splitlines() if line.startswith("aws ")]
    assert len(commands) == 4
    with Lab("key-in-other-region", config_path=tmp_path / "lab.ini") as lab:
        outputs = run_annotated(commands, tmp_path)
        listed = re.findall(r"[a-z]{2}-[a-z]+-\d", commands[0].partition("#")[2])
        assert json.loads(outputs[0]) == listed == list(lab.regions)
        assert json.loads(outputs[2])["KeyMetadata"]["Arn"] == lab.key_arn("alias/payments")
        assert ":eu-west-1:" in lab.key_arn("alias/payments")


@pytest.mark.skipif(shutil.which("aws") is None, reason="the AWS CLI is not installed")
def test_several_accounts_session_behaves_as_annotated(tmp_path: Path) -> None:
    from kms_rescue.lab.generate import generate_scenario

    session = next(b for b in blocks("shell") if "organizations list-accounts" in b)
    commands = [line for line in session.splitlines() if line.startswith("aws ")]
    assert len(commands) == 4
    generated = re.search(r"kms-rescue lab --generate (\d+) --seed (\d+)", DOC.read_text())
    assert generated is not None
    doc = generate_scenario(int(generated.group(1)), seed=int(generated.group(2))).scenario
    with Lab(doc, config_path=tmp_path / "lab.ini"):
        outputs = run_annotated(commands, tmp_path)
    listed = re.findall(r"\d{12}", commands[0].partition("#")[2])
    assert json.loads(outputs[0]) == listed
    member_keys = [k["id"] for k in doc["keys"] if k.get("account") == "444455556666" and "region" not in k]
    assert [arn.rsplit("/", 1)[1] for arn in json.loads(outputs[1])] == member_keys
    assumed = json.loads(outputs[3])["AssumedRoleUser"]["Arn"]
    assert assumed == "arn:aws:sts::444455556666:assumed-role/OrganizationAccountAccessRole/audit"
