"""``kms-rescue demo``: the lab's "sole admin deleted" scenario through the session, in a real terminal once."""

from __future__ import annotations

import io
import os
import re
import sys
from pathlib import Path

import pytest
from rich.console import Console

from kms_rescue.cli.app import main
from kms_rescue.cli.demo import lab_environment, run_demo
from kms_rescue.cli.prompter import FakePrompter
from tests.helpers.paths import DOCS, REPO
from tests.helpers.session import START
from tests.helpers.terminal import ANSI


def test_demo_without_a_terminal_prints_the_report_and_explains(clean_env: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    before = dict(os.environ)
    assert main(["demo", "--no-input"]) == 4
    out = capsys.readouterr().out
    assert "LOCKED OUT" in out and "What you just saw" in out and "On a real account" in out
    assert dict(os.environ) == before, "the demo restores the environment"


def test_demo_session_with_a_scripted_prompter(clean_env: Path) -> None:
    out = io.StringIO()
    consoles = (Console(file=out, width=140, no_color=True), Console(file=io.StringIO(), width=140, no_color=True))
    prompter = FakePrompter([*START, ("confirm", "Draft", True), ("select", "format", "eml"),
                             ("text", "Send it to", "cloud-team@example.com"), ("text", "Save", "default"),
                             ("confirm", "Support", False)])
    assert run_demo(interactive=True, prompter=prompter, consoles=consoles, progress_bar=False) == 4
    text = out.getvalue()
    saved = re.search(r"The ticket is in (\S+)\.\n", text)
    assert saved, text
    path = Path(saved.group(1))
    assert path.suffix == ".eml" and b"To: cloud-team@example.com" in path.read_bytes()


def test_demo_epilogue_says_what_happened_after_an_early_ctrl_c(clean_env: Path) -> None:
    """Issue 10: Ctrl-C at the first question: the epilogue does not claim every identity was tried."""
    out = io.StringIO()
    consoles = (Console(file=out, width=140, no_color=True), Console(file=io.StringIO(), width=140, no_color=True))
    prompter = FakePrompter([("confirm", "Investigate", KeyboardInterrupt())])
    assert run_demo(interactive=True, prompter=prompter, consoles=consoles, progress_bar=False) == 130
    text = " ".join(out.getvalue().split())
    assert "You stopped the session before the identities were tried" in text
    assert "were tried (" not in text and "ticket is in" not in text


def test_lab_environment_hides_real_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE")
    monkeypatch.setenv("AWS_PROFILE", "prod")
    monkeypatch.setenv("AWS_ENDPOINT_URL_KMS", "https://kms.example.com")
    with lab_environment(str(tmp_path / "config"), str(tmp_path)):
        assert "AWS_ACCESS_KEY_ID" not in os.environ and "AWS_PROFILE" not in os.environ
        assert "AWS_ENDPOINT_URL_KMS" not in os.environ
        assert os.environ["AWS_CONFIG_FILE"] == str(tmp_path / "config")
    assert os.environ["AWS_PROFILE"] == "prod"


@pytest.mark.slow
def test_demo_in_a_real_terminal_through_the_lockout_to_a_saved_ticket(clean_env: Path) -> None:
    """One end-to-end run in a pseudo-terminal (pexpect), with questionary answering real key presses: the
    locked-out branch, the ticket drafted and saved, exit code 4."""
    pexpect = pytest.importorskip("pexpect")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(HOME=str(clean_env), TERM="xterm", NO_COLOR="1", COLUMNS="120", LINES="40",
               PROMPT_TOOLKIT_NO_CPR="1")  # a pexpect terminal does not answer cursor-position requests
    script = Path(sys.executable).parent / "kms-rescue"
    child = pexpect.spawn(str(script), ["demo"], env=env, cwd=str(clean_env), encoding="utf-8", timeout=90,
                          dimensions=(40, 120))
    log = io.StringIO()
    child.logfile_read = log
    try:
        child.expect("Investigate arn:aws:kms:us-east-1:111122223333:key/")
        # Issue 10: a yes/no answer needs Enter. A typed-ahead "n" (of "arn") answers nothing by itself.
        child.send("n")
        with pytest.raises(pexpect.TIMEOUT):
            child.expect("Which (identities|KMS key)", timeout=1.5)
        child.send("y\r")
        child.expect("Which identities")
        child.send("\r")  # all ticked
        child.expect("Add a role")
        child.send("\r")
        child.expect("Verdict: LOCKED OUT")
        child.expect("Draft the escalation ticket")
        child.send("y\r")
        child.expect("Which format")
        child.send("\r")  # markdown
        child.expect("Save the ticket to")
        child.send("\r")  # the suggested path
        child.expect(r"Saved the ticket to (\S+\.md)")
        saved = Path(ANSI.sub("", child.match.group(1)))
        child.expect("AWS Support case")
        child.send("n\r")
        child.expect("What you just saw")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 4, ANSI.sub("", log.getvalue())[-3000:]
    text = saved.read_text()
    assert "KMS key locked out" in text and "## What AWS will ask for" in text
    transcript = ANSI.sub("", log.getvalue())
    assert "Traceback" not in transcript
    # The demo's lab issues credentials this test cannot see: scan for their shapes (access key ids, lab tokens).
    for output in (transcript, text):
        assert not re.search(r"(?<![A-Z0-9])(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Z0-9])", output)
        assert not re.search(r"LAB[A-Za-z0-9_-]{100,}", output)
        assert "aws_secret_access_key" not in output.lower()


# --- the docs' examples run ----------------------------------------------------------------------------------------

def doc_commands() -> list[tuple[str, str, int]]:
    """(doc, command, expected exit code) for every ``$ kms-rescue …  # exit N`` line in a console block."""
    out: list[tuple[str, str, int]] = []
    for name in ("rescue.md", "ticket.md", "demo.md"):
        in_console = False
        for line in (DOCS / name).read_text().splitlines():
            if line.startswith("```"):
                in_console = line.strip() == "```console"
                continue
            if in_console and line.startswith("$ kms-rescue "):
                command, _, comment = line[2:].partition("#")
                m = re.search(r"exit (\d+)", comment)
                assert m, f"{name}: say the exit code of: {line}"
                out.append((name, command.strip(), int(m.group(1))))
    return out


def test_docs_have_runnable_examples() -> None:
    docs = {d for d, _, _ in doc_commands()}
    assert docs == {"rescue.md", "ticket.md", "demo.md"}


@pytest.mark.parametrize(("doc", "command", "code"), doc_commands(), ids=lambda v: str(v)[:60])
def test_doc_example_runs(clean_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                          doc: str, command: str, code: int) -> None:
    """Each example runs against the lab's sole-admin-deleted scenario (the demo starts its own lab)."""
    import shlex

    from kms_rescue.lab import Lab

    args = shlex.split(command)[1:]
    if args[0] == "demo":
        assert main(args) == code
    else:
        with Lab("sole-admin-deleted") as lab:
            monkeypatch.setenv("AWS_CONFIG_FILE", str(lab.config_path))
            assert main(args) == code
    err = capsys.readouterr().err
    assert "Traceback" not in err and "internal error" not in err
    if "--output" in args:
        assert (clean_env / args[args.index("--output") + 1]).is_file()


@pytest.mark.slow
def test_bare_command_in_a_terminal_starts_the_session_and_asks_for_the_key(clean_env: Path) -> None:
    """`kms-rescue` with no arguments, at a terminal: the session starts and asks which key; Ctrl-C there leaves
    with 130. Without a terminal there is nobody to ask, so it prints the help."""
    pexpect = pytest.importorskip("pexpect")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(HOME=str(clean_env), TERM="xterm", NO_COLOR="1", COLUMNS="120", LINES="40",
               PROMPT_TOOLKIT_NO_CPR="1", AWS_CONFIG_FILE=str(clean_env / "no-config"),
               AWS_SHARED_CREDENTIALS_FILE=str(clean_env / "no-credentials"))
    script = Path(sys.executable).parent / "kms-rescue"
    child = pexpect.spawn(str(script), [], env=env, cwd=str(clean_env), encoding="utf-8", timeout=60,
                          dimensions=(40, 120))
    log = io.StringIO()
    child.logfile_read = log
    try:
        child.expect("Which KMS key")
        child.send("\x03")  # Ctrl-C
        child.expect(pexpect.EOF)
    finally:
        child.close()
    transcript = ANSI.sub("", log.getvalue())
    assert child.exitstatus == 130, transcript[-2000:]
    assert "Traceback" not in transcript and "Usage:" not in transcript

    import subprocess

    done = subprocess.run([str(script)], env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                          timeout=60)
    assert "Usage:" in done.stdout + done.stderr, "no terminal: nothing to ask, so the help"


@pytest.mark.slow
def test_make_demo_succeeds_on_the_demos_verdict(clean_env: Path) -> None:
    """`make demo`, the README's first command, without a terminal: the report and the explanation, and make
    succeeds although the demo exits 4 (its verdict, locked out)."""
    import shutil
    import subprocess

    root = REPO
    if shutil.which("make") is None or not (root / ".venv" / ".installed").exists():
        pytest.skip("needs make and the project's .venv (make install)")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(HOME=str(clean_env), NO_COLOR="1")
    done = subprocess.run(["make", "-s", "demo"], cwd=root, env=env, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "LOCKED OUT" in done.stdout and "What you just saw" in done.stdout
