"""The files ``kms-rescue lint`` reads: directories walked, and in them each file's kind sniffed from its content.

A file named on the command line is always read (its kind is detected from its content by
:mod:`kms_rescue.policy.sources`). Under a directory (walked recursively, in name order, skipping hidden
directories such as ``.git`` and ``.terraform``, and ``node_modules``) a file is read when its content can be a
key policy, a Terraform plan or a CloudFormation template: text (no NUL byte) that is a JSON object, or YAML (by
extension, or by a top-level ``AWSTemplateFormatVersion:``, ``Resources:`` or ``Statement:``) that mentions
``Statement``, ``Resources`` or ``KeyPolicy``. Other files are not considered (counted, not reported one by one).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

#: Directory names never descended into.
SKIPPED_DIRECTORIES = frozenset({"node_modules", "__pycache__"})
YAML_SUFFIXES = frozenset({".yaml", ".yml", ".template", ".cfn"})
_HEAD_BYTES = 64 * 1024
_YAML_TOP = re.compile(rb"^(?:AWSTemplateFormatVersion|Resources|Statement)\s*:", re.MULTILINE)
_RELEVANT = re.compile(rb"Statement|Resources|KeyPolicy")


@dataclass(frozen=True)
class Expanded:
    files: list[str]  # in the order they are linted
    errors: list[str] = field(default_factory=list)  # one line each: a path that does not exist
    not_considered: int = 0  # files under directories that cannot hold a policy


def expand_paths(paths: list[str], *, stdin_token: str = "-") -> Expanded:
    """Files named as given; directories replaced by the candidate files under them."""
    files: list[str] = []
    errors: list[str] = []
    ignored = 0
    for path in paths:
        if path == stdin_token:
            files.append(path)
            continue
        p = Path(path)
        if p.is_dir():
            found, skipped = _walk(p)
            files.extend(found)
            ignored += skipped
        elif p.exists():
            files.append(path)
        else:
            errors.append(f"{path}: no such file or directory")
    return Expanded(files, errors, ignored)


def _walk(root: Path) -> tuple[list[str], int]:
    found: list[str] = []
    skipped = 0
    for directory, subdirs, names in os.walk(root):
        subdirs[:] = sorted(d for d in subdirs if not d.startswith(".") and d not in SKIPPED_DIRECTORIES)
        for name in sorted(names):
            path = Path(directory) / name
            if path.is_file() and may_hold_policy(path):
                found.append(str(path))
            else:
                skipped += 1
    return found, skipped


def may_hold_policy(path: Path) -> bool:
    """Whether the file's first bytes can start a key policy, a Terraform plan or a CloudFormation template."""
    try:
        with path.open("rb") as handle:
            head = handle.read(_HEAD_BYTES)
    except OSError:
        return True  # let the reader report why it cannot be read
    if b"\0" in head:
        return False
    body = head.removeprefix(b"\xef\xbb\xbf").lstrip()
    if body[:1] == b"{":
        return True  # JSON: parsed, and skipped with a note if it holds no policy (package.json)
    if not _RELEVANT.search(head):
        return False
    return path.suffix.lower() in YAML_SUFFIXES or bool(_YAML_TOP.search(head))
