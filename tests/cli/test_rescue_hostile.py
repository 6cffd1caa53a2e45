"""The interactive session under hostile conditions: its probe stage ends at ``--deadline`` with half the requests
hanging, and the ticket it saves never replaces a file already there (docs/rescue.md)."""

from __future__ import annotations

import io
import stat
import time
from pathlib import Path
from typing import Any

from rich.console import Console

from kms_rescue.aws.keyref import parse_key_ref
from kms_rescue.aws.sessions import discover_identities
from kms_rescue.cli.prompter import FakePrompter
from kms_rescue.cli.rescue import RescueSession, SessionSettings
from kms_rescue.lab import Lab
from tests.helpers.session import START, run_session


def test_the_probe_stage_ends_at_its_deadline(clean_env: Path, monkeypatch: Any) -> None:
    with Lab("busy-account", fault="hang", fault_rate=0.5, seed=11) as lab:
        monkeypatch.setenv("AWS_CONFIG_FILE", str(lab.config_path))
        key = lab.key_arn(lab.scenario.keys[0].id)
        settings = SessionSettings(timeout=2, deadline=4, backup_dir=str(clean_env), ticket_dir=str(clean_env))
        started = time.monotonic()
        session = RescueSession(FakePrompter([]), Console(file=io.StringIO()), Console(file=io.StringIO()),
                                settings, progress_bar=False)
        report = session.investigate(parse_key_ref(key, None), discover_identities())
        elapsed = time.monotonic() - started
    assert elapsed < 4 + 5, f"the probe stage took {elapsed:.1f} s for a 4 s deadline"
    assert any(i.status == "timeout" for i in report.identities)
    assert any("deadline" in w for w in report.warnings)


def test_a_taken_ticket_name_gets_a_number(lab_for: Any, clean_env: Path) -> None:
    lab = lab_for("sole-admin-deleted")
    key = lab.key_arn("alias/payments")
    mine = clean_env / "ticket.md"
    mine.write_text("my own notes\n")
    run = run_session(key, [*START, ("confirm", "Draft the escalation ticket", True),
                            ("select", "format", "markdown"), ("text", "Save the ticket", str(mine)),
                            ("confirm", "AWS Support case", False)])
    assert run.code == 4
    assert mine.read_text() == "my own notes\n"
    saved = run.session.saved_ticket
    assert saved == clean_env / "ticket-2.md" and key in saved.read_text()
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    assert "ticket-2.md" in run.out
