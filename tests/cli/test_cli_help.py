"""Command help reads well at any terminal width: a docstring's paragraphs are reflowed by the terminal, not broken
where the source lines happen to end."""

from __future__ import annotations

import pytest

from kms_rescue.cli.app import app, main


def test_every_command_help_has_one_line_paragraphs():
    for info in app.registered_commands:
        assert info.help, f"{info.name} has a help text"
        for paragraph in info.help.split("\n\n"):
            assert "\n" not in paragraph, (info.name, paragraph)


@pytest.mark.parametrize("command, sentence", [
    ("ticket", "the ticket names the key, every identity and call tried, the last known policy"),
    ("report", "is tried concurrently: who am I, DescribeKey, GetKeyPolicy, ListGrants and its own IAM policies"),
])
def test_help_paragraphs_wrap_at_the_terminal_width(command: str, sentence: str, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")
    monkeypatch.setenv("NO_COLOR", "1")
    assert main([command, "--help"]) == 0
    out = capsys.readouterr().out
    assert any(sentence in line for line in out.splitlines()), out
