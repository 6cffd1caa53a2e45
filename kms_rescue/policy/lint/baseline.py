"""Baselines: the findings a repository has accepted for now, so that CI reports only new ones.

A baseline is a JSON file written by ``kms-rescue lint --write-baseline FILE`` (format in ``docs/lint.md``). Each
finding is identified by a fingerprint that does not change when lines move: the file's path relative to the
repository root, the policy's name, the rule, the statement and the message. The same fingerprint is SARIF's
``partialFingerprints`` value, so code scanning and the baseline agree on what "the same finding" is.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from kms_rescue.policy.errors import PolicyInputError
from kms_rescue.policy.lint.findings import Finding

BASELINE_TOOL = "kms-rescue lint baseline"
BASELINE_VERSION = 1
#: The name standard input gets in reports, SARIF and baselines unless ``--stdin-name`` says otherwise.
STDIN_NAME = "stdin"


def artifact_uri(path: str, base: str | os.PathLike[str] | None = None) -> str:
    """The path relative to ``base`` (the current directory by default) with forward slashes; a path outside it
    becomes an absolute ``file://`` URI."""
    if path == STDIN_NAME and not Path(path).exists():
        return STDIN_NAME
    base_path = Path(base) if base is not None else Path.cwd()
    absolute = Path(path).resolve()
    try:
        return absolute.relative_to(base_path.resolve()).as_posix()
    except ValueError:
        return absolute.as_uri()


def fingerprint(uri: str, policy_name: str, finding: Finding) -> str:
    """A stable id of a finding: independent of its line, dependent on where and what it is."""
    stable = "\0".join((uri, policy_name, finding.rule_id, finding.statement_label or "", finding.message))
    return hashlib.sha256(stable.encode("utf-8")).hexdigest()[:32]


def baseline_document(entries: Iterable[tuple[str, str, Finding]]) -> dict[str, Any]:
    """The baseline for ``(uri, policy name, finding)`` triples, sorted so that it diffs well."""
    rows = [
        {
            "fingerprint": fingerprint(uri, name, f),
            "file": uri,
            "policy": name,
            "rule_id": f.rule_id,
            "statement": f.statement_label,
            "message": f.message,
        }
        for uri, name, f in entries
    ]
    rows.sort(key=lambda r: (r["file"] or "", r["policy"] or "", r["rule_id"], r["fingerprint"]))
    return {"tool": BASELINE_TOOL, "version": BASELINE_VERSION, "findings": rows}


def is_baseline(data: Any) -> bool:
    return isinstance(data, dict) and data.get("tool") == BASELINE_TOOL


def read_baseline(path: str) -> frozenset[str]:
    """The fingerprints in the baseline file at ``path``. :class:`PolicyInputError` when it is not one."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise PolicyInputError(f"--baseline {path}: no such file (write one with --write-baseline)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyInputError(f"--baseline {path}: cannot read: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PolicyInputError(f"--baseline {path}:{exc.lineno}:{exc.colno}: invalid JSON: {exc.msg}") from None
    if not is_baseline(data) or data.get("version") != BASELINE_VERSION or not isinstance(data.get("findings"), list):
        raise PolicyInputError(
            f"--baseline {path}: not a kms-rescue lint baseline (version {BASELINE_VERSION}); "
            "write one with --write-baseline"
        )
    prints = [row.get("fingerprint") for row in data["findings"] if isinstance(row, dict)]
    if not all(isinstance(p, str) for p in prints):
        raise PolicyInputError(f"--baseline {path}: every finding needs a fingerprint string")
    return frozenset(p for p in prints if isinstance(p, str))
