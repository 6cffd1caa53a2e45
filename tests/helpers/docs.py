"""The examples a docs page gives in its ```console blocks."""

from __future__ import annotations

import re
from pathlib import Path


def console_commands(page: Path) -> list[tuple[str, int]]:
    """(command, expected exit code) for every ``$ kms-rescue …  # exit N`` line of ``page``'s ```console blocks,
    in order; a line that does not say its exit code fails the test that reads it."""
    out: list[tuple[str, int]] = []
    in_console = False
    for line in page.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            in_console = line.strip() == "```console"
            continue
        if in_console and line.startswith("$ kms-rescue "):
            command, _, comment = line[2:].partition("#")
            m = re.search(r"exit (\d+)", comment)
            assert m, f"{page.parent.name}/{page.name}: say the exit code of: {line}"
            out.append((command.strip(), int(m.group(1))))
    return out
