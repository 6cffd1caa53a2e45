"""The shell examples of docs/report.md run as written against the lab, and exit as their comments say."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest

from kms_rescue.lab import Lab
from tests.helpers.paths import DOCS, SCRIPT
from tests.helpers.schema import validate_report

pytest.importorskip("moto")

DOC = DOCS / "report.md"


def documented_commands() -> list[tuple[str, int]]:
    """``kms-rescue report …   # exit N`` lines of the doc's shell blocks."""
    text = DOC.read_text(encoding="utf-8")
    found = []
    for block in re.findall(r"```shell\n(.*?)```", text, re.S):
        for line in block.splitlines():
            m = re.match(r"^(kms-rescue report .*?)\s+# exit (\d+)$", line.strip())
            if m:
                found.append((m.group(1), int(m.group(2))))
    return found


def test_the_doc_has_examples():
    assert len(documented_commands()) >= 3


def test_documented_examples_run_against_the_lab(tmp_path: Path):
    with Lab("sole-admin-deleted", config_path=tmp_path / "lab.ini") as lab:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update({"HOME": str(tmp_path), "AWS_CONFIG_FILE": "lab.ini", "NO_COLOR": "1"})
        for command, expected in documented_commands():
            args = shlex.split(command)
            proc = subprocess.run([str(SCRIPT), *args[1:]], cwd=tmp_path, env=env, capture_output=True, text=True,
                                  timeout=120, stdin=subprocess.DEVNULL)
            assert proc.returncode == expected, f"{command}: {proc.stderr[-500:]}"
        assert lab.running
    document = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    validate_report(document)
    assert document["verdict"] == "locked_out"
