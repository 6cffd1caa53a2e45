"""The rescue session with a scripted prompter (``FakePrompter``), in this process, and the lab's secrets to look
for in what it printed."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from kms_rescue.cli.prompter import FakePrompter
from kms_rescue.cli.rescue import RescueSession, SessionSettings, run_rescue
from kms_rescue.lab import Lab

#: The session's first questions answered: investigate, the default identities, no role added.
START = [("confirm", "Investigate", True), ("checkbox", "default"), ("text", "Add a role", "")]


def lab_secrets(lab: Lab) -> list[str]:
    """Every credential value the lab issued for its profiles."""
    out: list[str] = []
    for profile in lab.profiles:
        c = lab.credentials(profile)
        out += [v for v in (c.access_key_id, c.secret_access_key, c.session_token) if v]
    return out


def assert_no_secrets(lab: Lab, *texts: str | bytes) -> None:
    secrets = lab_secrets(lab)
    assert secrets
    for text in texts:
        body = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
        for s in secrets:
            assert s not in body, "a lab credential leaked into an output"


@dataclass
class Run:
    code: int
    out: str
    err: str
    prompter: FakePrompter
    session: RescueSession

    def asked(self, kind: str | None = None) -> list[str]:
        return [a.message for a in self.prompter.asked if kind is None or a.kind == kind]


def run_session(key: str | None, script: Sequence[tuple[Any, ...]], *, settings: SessionSettings | None = None,
                tmp: Path | None = None) -> Run:
    out, err = io.StringIO(), io.StringIO()
    consoles = (Console(file=out, width=140, no_color=True, highlight=False),
                Console(file=err, width=140, no_color=True, highlight=False))
    prompter = FakePrompter(script)
    sessions: list[RescueSession] = []
    where = str(tmp or Path.cwd())
    code = run_rescue(key, settings or SessionSettings(backup_dir=where, ticket_dir=where), interactive=True,
                      prompter=prompter, consoles=consoles, progress_bar=False, on_session=sessions.append)
    assert prompter.done, f"script not used up: {prompter.script}"
    return Run(code, out.getvalue(), err.getvalue(), prompter, sessions[0])
