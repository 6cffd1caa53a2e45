"""Map a Terraform plan's resources back to the ``.tf`` files beside it, so findings point at the resource block.

A plan (``terraform show -json``) has no file names or line numbers, but its ``configuration`` block names each
module call's ``source``. When the plan file sits in the configuration's root directory, the block of
``module.logs.aws_kms_key.logs`` is ``resource "aws_kms_key" "logs" {`` in a ``.tf`` file of the local module
directory ``module_calls.logs.source`` (``./modules/logs``). Within the block, a statement is found by its Sid
(``Sid = "Admins"`` in ``jsonencode``, ``"Sid": "Admins"`` in a heredoc, or ``sid = "Admins"`` in the
``aws_iam_policy_document`` data source the ``policy`` refers to). Registry and remote modules are not on disk
beside the plan: their findings stay on the plan's line.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_INDEX_RE = re.compile(r"\[[^\]]*\]$")
_DOCUMENT_REF_RE = re.compile(r"data\.aws_iam_policy_document\.([A-Za-z0-9_-]+)\.json")
_MAX_TF_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class BlockLocation:
    path: Path  # the .tf file
    line: int  # the resource block's first line, 1-based
    policy_line: int | None = None  # the ``policy =`` line inside it
    sid_lines: dict[str, int] = field(default_factory=dict)  # Sid -> line of its statement


def _parts(address: str) -> tuple[list[str], str, str] | None:
    """(module names, resource type, resource name) of an address such as ``module.a[0].aws_kms_key.k["x"]``."""
    tokens = re.findall(r'(?:[^.\["]+|\[[^\]]*\])+', address)
    tokens = [_INDEX_RE.sub("", token) for token in tokens]
    modules: list[str] = []
    while len(tokens) >= 2 and tokens[0] == "module":
        modules.append(tokens[1])
        tokens = tokens[2:]
    if len(tokens) != 2:
        return None
    return modules, tokens[0], tokens[1]


def module_directory(configuration: Any, root: Path, modules: list[str]) -> Path | None:
    """The directory of the module at ``modules`` (names from the root), when every call's source is local."""
    directory = root
    module = configuration.get("root_module") if isinstance(configuration, dict) else None
    for name in modules:
        calls = module.get("module_calls") if isinstance(module, dict) else None
        call = calls.get(name) if isinstance(calls, dict) else None
        source = call.get("source") if isinstance(call, dict) else None
        if not isinstance(source, str) or not source.startswith(("./", "../")):
            return None
        directory = Path(os.path.normpath(directory / source))
        module = call.get("module") if isinstance(call, dict) else None
    return directory


def locate(plan: dict[str, Any], plan_path: str, address: str) -> BlockLocation | None:
    """Where the resource at ``address`` is written, or None when its block is not beside the plan."""
    parts = _parts(address)
    if parts is None:
        return None
    modules, kind, name = parts
    directory = module_directory(plan.get("configuration"), Path(plan_path).parent, modules)
    if directory is None or not directory.is_dir():
        return None
    header = re.compile(rf'^[ \t]*resource[ \t]+"{re.escape(kind)}"[ \t]+"{re.escape(name)}"[ \t]*\{{', re.MULTILINE)
    for tf in sorted(directory.glob("*.tf")):
        text = _read(tf)
        if text is None:
            continue
        match = header.search(text)
        if match is None:
            continue
        start = text.count("\n", 0, match.start()) + 1
        body = _block(text, match.end() - 1)
        policy_line: int | None = None
        policy = re.search(r"^[ \t]*policy[ \t]*=", body, re.MULTILINE)
        if policy is not None:
            policy_line = start + body.count("\n", 0, policy.start())
        sids = _sid_lines(body, start)
        reference = _DOCUMENT_REF_RE.search(body)
        if reference is not None:
            sids = {**_data_document_sids(tf, reference.group(1)), **sids}
        return BlockLocation(tf, start, policy_line, sids)
    return None


def _read(path: Path) -> str | None:
    try:
        if path.stat().st_size > _MAX_TF_BYTES:
            return None
        return path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError):
        return None


def _block(text: str, open_brace: int) -> str:
    """The text from ``open_brace`` to its matching ``}`` (braces in strings and heredocs are balanced in
    practice: JSON and ``${...}`` interpolations)."""
    depth = 0
    for index in range(open_brace, len(text)):
        char = text[index]
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return text[open_brace:index + 1]
    return text[open_brace:]


def _sid_lines(body: str, first_line: int) -> dict[str, int]:
    out: dict[str, int] = {}
    for match in re.finditer(r'(?:"Sid"|\bSid|\bsid)[ \t]*[:=][ \t]*"((?:[^"\\]|\\.)*)"', body):
        out.setdefault(match.group(1), first_line + body.count("\n", 0, match.start()))
    return out


def _data_document_sids(tf: Path, name: str) -> dict[str, int]:
    """Sid lines of the ``aws_iam_policy_document`` data source ``name`` when it is in the same file ``tf``."""
    header = re.compile(rf'^[ \t]*data[ \t]+"aws_iam_policy_document"[ \t]+"{re.escape(name)}"[ \t]*\{{', re.MULTILINE)
    text = _read(tf)
    match = header.search(text) if text is not None else None
    if text is None or match is None:
        return {}
    start = text.count("\n", 0, match.start()) + 1
    return _sid_lines(_block(text, match.end() - 1), start)
