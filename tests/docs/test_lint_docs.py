"""Every example in docs/lint.md runs, exits as documented and prints what the page shows."""

from __future__ import annotations

import json
import re
import shlex
import shutil
from pathlib import Path

import pytest

from kms_rescue.cli.app import main
from tests.helpers.paths import REPO

PAGE = REPO / "docs" / "lint.md"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def examples() -> list[tuple[str, int, str | None]]:
    """(command, documented exit status, the text block that follows it or None)."""
    blocks = [(m.group(1), m.group(2)) for m in FENCE.finditer(PAGE.read_text(encoding="utf-8"))]
    out: list[tuple[str, int, str | None]] = []
    for i, (lang, body) in enumerate(blocks):
        if lang != "sh":
            continue
        command, _, comment = body.strip().partition("#")
        status = re.fullmatch(r"\s*exits (\d+)\s*", comment)
        assert status, f"every example documents its exit status: {body!r}"
        following = blocks[i + 1] if i + 1 < len(blocks) else None
        expected = following[1] if following and following[0] == "text" else None
        out.append((command.strip(), int(status.group(1)), expected))
    return out


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    shutil.copytree(REPO / "tests" / "fixtures" / "lint", tmp_path / "tests" / "fixtures" / "lint")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_the_page_has_examples() -> None:
    assert len(examples()) >= 5


@pytest.mark.parametrize(("command", "status", "expected"), examples(), ids=lambda v: str(v)[:60])
def test_documented_example(
    command: str, status: int, expected: str | None, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = shlex.split(command)
    assert argv[0] == "kms-rescue"
    assert main(argv[1:]) == status
    out = capsys.readouterr().out
    assert out == (expected or "")
    if "--output" in argv:
        written = json.loads((workdir / argv[argv.index("--output") + 1]).read_text())
        assert written["version"] == "2.1.0"


def test_python_example(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    [code] = [m.group(2) for m in FENCE.finditer(PAGE.read_text(encoding="utf-8")) if m.group(1) == "python"]
    exec(compile(code, str(PAGE), "exec"), {})
    assert "CRITICAL KR001" in capsys.readouterr().out
