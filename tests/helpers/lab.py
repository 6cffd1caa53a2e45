"""Lab scenarios as documents: the built-in ones, changed copies of them, and a process environment that reaches
only the lab."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

from kms_rescue.lab import Lab, load_scenario
from kms_rescue.lab.scenario import builtin_text
from tests.helpers.paths import REPO

ACCOUNT = "111122223333"


def scenario_doc(name: str) -> dict[str, Any]:
    """A built-in scenario as the JSON document it was loaded from."""
    scenario = load_scenario(name)
    raw = getattr(scenario, "raw", None)
    if isinstance(raw, dict):
        return raw
    path = REPO / "kms_rescue" / "lab" / "scenarios" / f"{name}.json"
    return json.loads(path.read_text(encoding="utf-8"))


def scenario_with(name: str, **changes: Any) -> dict[str, Any]:
    """A built-in scenario as a dict, changed."""
    doc = copy.deepcopy(json.loads(builtin_text(name)))
    doc["name"] = f"{name}-variant"
    doc.update(changes)
    return doc


def stale_principal_scenario() -> dict[str, Any]:
    """AWS's default statement plus one naming role/OldAdmin, since deleted: KMS shows its unique id (AROA…) and
    refuses any policy that keeps it (AWS Knowledge Center, "kms-policy-error-invalid-principals")."""
    doc = scenario_with("healthy-default")
    doc["deleted"] = ["role/OldAdmin"]
    doc["keys"][0]["policy"] = {"Version": "2012-10-17", "Statement": [
        {"Sid": "Enable IAM User Permissions", "Effect": "Allow",
         "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "kms:*", "Resource": "*"},
        {"Sid": "OldAdmin", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:role/OldAdmin"},
         "Action": "kms:*", "Resource": "*"}]}
    doc["history"] = []
    return doc


def env_for(lab: Lab) -> dict[str, str]:
    """The environment of a subprocess that reaches only ``lab``: no AWS_* of the developer's, no credentials file,
    no instance metadata."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_CONFIG_FILE=str(lab.config_path), AWS_EC2_METADATA_DISABLED="true",
               AWS_SHARED_CREDENTIALS_FILE=str(Path(env.get("HOME", "/nonexistent")) / "no-credentials"))
    return env


def lab_stats(lab: Lab) -> dict[str, int]:
    """The lab's request counters."""
    stats = lab.admin.stats
    return dict(stats() if callable(stats) else stats)
