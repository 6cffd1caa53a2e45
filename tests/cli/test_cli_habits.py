"""CLI habits: "did you mean" for a misspelt command (decided by shape: no key reference looks like a short word),
shell completion, --quiet / --verbose / --debug anywhere on the line, --debug's one line per AWS request (no
credential in it), and the text report's short reason for every failing identity."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from kms_rescue.cli.app import main
from tests.helpers.cli import SCRIPT, clean_env, lab_secrets, run_cli

KEY_ARN = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def _run(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL, env=env)


@pytest.mark.parametrize(("typed", "meant"), [("lnit", "lint"), ("reprot", "report"), ("tikcet", "ticket"),
                                              ("expalin", "explain"), ("Lint", "lint"), ("rescu", "rescue")])
def test_a_misspelt_command_says_did_you_mean(typed: str, meant: str):
    proc = _run([typed, "policy.json"])
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"kms-rescue: error: no command {typed!r}: did you mean {meant}?"
    assert proc.stdout == ""


def test_a_word_that_is_no_command_is_not_taken_for_a_key():
    proc = _run(["payments"])
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    assert "no command 'payments'" in proc.stderr and "alias/NAME" in proc.stderr


@pytest.mark.parametrize("key", [
    "1234abcd-12ab-34cd-56ef-1234567890ab",
    "abcdefab-abcd-abcd-abcd-abcdefabcdef",  # a key id of hex letters only is still a key id
    "alias/lint",
    KEY_ARN,
])
def test_key_references_still_mean_the_rescue_session(key: str, tmp_path: Path):
    env = clean_env(tmp_path, tmp_path / "no-config")
    proc = _run([key], env)
    assert "no command" not in proc.stderr
    if not key.startswith("arn:"):
        assert proc.returncode == 2 and "needs --region" in proc.stderr, proc.stderr


def test_show_completion_prints_a_completion_script():
    proc = _run(["--show-completion", "bash"])
    assert proc.returncode == 0, proc.stderr
    assert "complete -o default -F _kms_rescue_completion kms-rescue" in proc.stdout


def test_the_completion_variable_completes_commands_and_options(tmp_path: Path):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "_KMS_RESCUE_COMPLETE": "complete_bash",
           "COMP_WORDS": "kms-rescue li", "COMP_CWORD": "1"}
    proc = _run([], env)
    assert proc.returncode == 0 and proc.stdout.split() == ["lint"], proc
    env.update({"COMP_WORDS": "kms-rescue report --for", "COMP_CWORD": "2"})
    assert "--format" in _run([], env).stdout.split()


@pytest.mark.parametrize(("words", "expected"), [
    ("kms-rescue report --profile ", ["alpha", "beta", "env"]),
    ("kms-rescue ticket --base-profile al", ["alpha"]),
    ("kms-rescue report --region cn-", ["cn-north-1", "cn-northwest-1"]),
    ("kms-rescue rescue --region us-gov", ["us-gov-east-1", "us-gov-west-1"]),
])
def test_profiles_and_regions_complete(words: str, expected: list[str], tmp_path: Path):
    config = tmp_path / "config"
    config.write_text("[profile alpha]\nregion = us-east-1\n[profile beta]\n", encoding="utf-8")
    cword = len(words.split()) - (0 if words.endswith(" ") else 1)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "AWS_CONFIG_FILE": str(config),
           "_KMS_RESCUE_COMPLETE": "complete_bash", "COMP_WORDS": words, "COMP_CWORD": str(cword)}
    proc = _run([], env)
    assert proc.returncode == 0 and proc.stdout.split() == expected, proc


def test_quiet_and_verbose_cannot_be_combined(capsys):
    assert main(["lint", "--quiet", "x.json", "--verbose"]) == 2
    assert capsys.readouterr().err.strip() == "kms-rescue: error: --quiet cannot be combined with --verbose or --debug"


def test_level_flags_work_anywhere_and_stop_at_double_dash(tmp_path: Path, capsys):
    policy = tmp_path / "p.json"
    policy.write_text(json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:root"}, "Action": "kms:*",
         "Resource": "*"}]}))
    assert main(["lint", str(policy), "--account", "111122223333", "-q"]) == 0
    assert main(["-v", "lint", str(policy), "--account", "111122223333"]) == 0
    capsys.readouterr()
    # After --, "-q" is an argument (a file name), not the flag.
    assert main(["lint", "--account", "111122223333", "--", "-q"]) == 2
    assert "-q" in capsys.readouterr().err


def test_the_level_is_one_runs_only(capsys):
    from kms_rescue.cli import _say

    assert main(["--verbose", "lint", "--account", "111122223333", "no-such-file.json"]) == 2
    assert _say.LEVEL.value == _say.NORMAL


def test_the_help_lists_the_flags_and_completion(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for flag in ("--quiet", "--verbose", "--debug", "--install-completion", "--show-completion"):
        assert flag in out


# --- against the lab -------------------------------------------------------------------------------------------

moto = pytest.importorskip("moto")

DEBUG_LINE = re.compile(r"^kms-rescue: debug: (?P<service>[a-z0-9-]+)\.(?P<op>[A-Za-z]+) region=(?P<region>\S+) "
                        r"status=(?P<status>\S+) request_id=(?P<rid>\S+) retries=(?P<retries>\S+) "
                        r"elapsed=(?P<ms>\d+)ms(?: error=\S+)?$")


#: The scenario of the lab the module's tests share (the ``lab`` fixture of tests/conftest.py).
SCENARIO = "healthy-default"


def test_debug_logs_each_aws_request_without_credentials(lab, tmp_path: Path):
    key = lab.key_arn("1234abcd-12ab-34cd-56ef-1234567890ab")
    proc = run_cli(["report", key, "--format", "json", "--debug", "--no-history"],
                   clean_env(tmp_path, lab.config_path))
    assert proc.returncode == 0, proc.stderr
    lines = [m for m in map(DEBUG_LINE.match, proc.stderr.splitlines()) if m]
    seen = {(m["service"], m["op"]) for m in lines}
    assert {("sts", "GetCallerIdentity"), ("kms", "GetKeyPolicy"), ("kms", "DescribeKey")} <= seen, proc.stderr
    assert all(m["region"] == lab.region for m in lines if m["service"] == "kms")
    assert {m["status"] for m in lines} >= {"200", "400"}  # the intern is denied
    assert any(m["rid"] != "-" for m in lines)
    assert not any(s in proc.stderr for s in lab_secrets(lab.config_path))
    json.loads(proc.stdout)  # stdout stays the payload
    # Without --debug: no request lines.
    quiet = run_cli(["report", key, "--format", "json", "--no-history"], clean_env(tmp_path, lab.config_path))
    assert "kms-rescue: debug:" not in quiet.stderr


def test_the_text_report_gives_a_reason_for_every_failure(lab, tmp_path: Path):
    config = tmp_path / "config"
    failing = Path(tmp_path / "fail.py")
    failing.write_text("import sys\nsys.stderr.write('the token broker is down\\n')\nsys.exit(3)\n")
    config.write_text(lab.config_path.read_text(encoding="utf-8")
                      + f"\n[profile broken]\ncredential_process = {sys.executable} {failing}\n"
                        f"region = {lab.region}\nendpoint_url = {lab.endpoint}\n", encoding="utf-8")
    key = lab.key_arn("1234abcd-12ab-34cd-56ef-1234567890ab")
    proc = run_cli(["report", key, "--no-history"], clean_env(tmp_path, config))
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(run_cli(["report", key, "--no-history", "--format", "json"],
                             clean_env(tmp_path, config)).stdout)
    failed = {i["name"] for i in doc["identities"] if any(c["outcome"] != "ok" for c in i["calls"])}
    assert {"broken", "intern"} <= failed
    for name in failed:
        assert re.search(rf"(?m)^  {name}: \S+ [a-z_]+", proc.stdout), (name, proc.stdout)
    flat = " ".join(proc.stdout.split())  # a long reason wraps at the terminal's width
    assert ("broken: credentials no_credentials (CredentialRetrievalError): Error when retrieving credentials from "
            "custom-process: the token broker is down") in flat
    intern = re.search(r"(?ms)^  intern: (.*?)(?=^  \S+: |^\s*$)", proc.stdout)  # a long reason wraps
    assert intern and "kms:GetKeyPolicy access_denied" in " ".join(intern.group(1).split()), proc.stdout
    ok = {i["name"] for i in doc["identities"]} - failed
    for name in ok:
        assert not re.search(rf"(?m)^  {name}: \S+ [a-z_]+ ", proc.stdout)


@pytest.mark.parametrize("argv", [["explain", "--help"], ["--help"], ["lint", "--help"]])
def test_a_reader_that_goes_away_is_not_an_internal_error(argv: list[str]) -> None:
    """`kms-rescue … | head -1`: the reader closes the pipe before the help is written. The process ends as one
    killed by SIGPIPE would report it (128 + 13: docs/exit-status.md), never 1 (an internal error)."""
    proc = subprocess.Popen([str(SCRIPT), *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # before the interpreter has even started: every write meets a closed pipe
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 141, err
    assert "Traceback" not in err and "internal error" not in err
