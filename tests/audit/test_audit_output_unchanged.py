"""The audit's verdicts and findings do not change when its work is reorganised for speed (docs/audit.md,
"Measured"): the JSON of ``kms-rescue audit --organization`` (the installed CLI) over the generated 200-key
scenario (seed 1: 4 Regions, 3 accounts, every risk) is the golden file's, apart from timestamps and the
unique ids the lab draws.

The golden file was written by the audit before its per-account reuse (lint findings and policy parses shared by
every key with the same policy) was added. To renew it after an intended change of the output, run this module
with ``KMS_RESCUE_RENEW_GOLDEN=1`` and review the diff.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("moto")

from kms_rescue.lab import Lab
from kms_rescue.lab.generate import generate_scenario
from tests.helpers.paths import GOLDEN, SCRIPT

GOLDEN_FILE = GOLDEN / "audit" / "generated-200-seed1.json"
#: An ISO 8601 instant (the lab's deletion dates are set from the clock when it starts).
INSTANT = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)?")
#: An IAM unique id (IAM User Guide, "IAM identifiers", "Unique identifiers": AROA a role, AIDA a user, ...): the
#: lab draws new ones each time it starts.
UNIQUE_ID = re.compile(r"\b(AROA|AIDA|AGPA|ANPA|ANVA|ASIA|AKIA)[A-Z0-9]{12,}\b")


def normalised(doc: dict[str, Any]) -> dict[str, Any]:
    """The audit without its timestamps, unique ids and version, keys in ARN order (rows come as they finish)."""
    text = UNIQUE_ID.sub("<unique-id>", INSTANT.sub("<instant>", json.dumps(doc, sort_keys=True)))
    out = json.loads(text)
    out.pop("tool_version", None)
    out["keys"] = sorted(out["keys"], key=lambda k: k["key_arn"])
    out["errors"] = sorted(out["errors"], key=lambda e: json.dumps(e, sort_keys=True))
    return out


def test_the_200_key_audit_is_the_golden_one(lab_cli_env: Any, tmp_path: Path) -> None:
    out = tmp_path / "audit.json"
    with Lab(generate_scenario(200, seed=1).scenario) as lab:
        done = subprocess.run([str(SCRIPT), "audit", "--profile", "auditor", "--organization", "--format", "json",
                               "--fail-on", "none", "--output", str(out)], capture_output=True, text=True,
                              timeout=300, env=lab_cli_env(lab), stdin=subprocess.DEVNULL)
    assert done.returncode == 4, done.stderr  # the scenario has locked-out keys
    got = normalised(json.loads(out.read_text(encoding="utf-8")))
    assert got["summary"]["keys"] == 200 and got["errors"] == []
    if os.environ.get("KMS_RESCUE_RENEW_GOLDEN") == "1":
        GOLDEN_FILE.write_text(json.dumps(got, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    want = json.loads(GOLDEN_FILE.read_text(encoding="utf-8"))
    assert got["summary"] == want["summary"]
    assert [k["key_arn"] for k in got["keys"]] == [k["key_arn"] for k in want["keys"]]
    for mine, golden in zip(got["keys"], want["keys"], strict=True):
        assert mine == golden, mine["key_arn"]
    assert got == want
