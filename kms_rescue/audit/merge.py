"""``audit --merge PATH…``: the JSON lines the audit past one machine wrote (one file per account), read back into
one stream of :class:`~kms_rescue.audit.model.KeyAudit` and :class:`~kms_rescue.audit.model.AuditError` for the
same renderers and exit rules as a live audit (docs/audit.md, "Past one machine").

A path is a ``.jsonl`` file, a directory (its ``*.jsonl`` files, depth first, in name order), or
``s3://BUCKET/PREFIX`` (the ``*.jsonl`` objects under it, in S3's order). Each line is parsed with the bounded JSON
reader (``policy/input_limits``), validated against the audit's JSON Schema (``kms_rescue/audit.schema.json``:
a key or an error) and turned back into the model with ``from_json``. A line that fails is not a traceback: it is
an :class:`AuditError` with stage ``merge`` whose message starts with ``FILE:LINE:``, and :class:`MergeStats`
counts it. A key seen twice (two runs merged) is kept once. Limits (docs/limits.md): a line at most
:data:`MAX_LINE_BYTES`, a file at most :data:`MAX_FILE_BYTES`, at most :data:`MAX_FILES` files.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any

import jsonschema

from kms_rescue.audit.model import AuditError, AuditItem, KeyAudit, from_json
from kms_rescue.aws import s3_jsonl
from kms_rescue.errors import UsageError
from kms_rescue.policy.errors import PolicyInputError
from kms_rescue.policy.input_limits import loads_json

__all__ = ["MAX_FILES", "MAX_FILE_BYTES", "MAX_LINE_BYTES", "MergeStats", "merge", "parse_line", "parse_s3_url",
           "sources"]

MAX_LINE_BYTES = 1024 * 1024  # one key's audit is a few KB; a line of a megabyte is not one
MAX_FILE_BYTES = 1024 * 1024 * 1024  # one account's file: about 10,000 keys take 20 MB
MAX_FILES = 100_000  # an organization has at most a few thousand accounts
SUFFIX = ".jsonl"
STAGE = "merge"


@dataclass
class MergeStats:
    """What the merge read: files, lines, the malformed ones and the duplicate keys skipped."""

    files: int = 0
    lines: int = 0
    malformed: int = 0
    duplicates: int = 0
    seen: set[str] = field(default_factory=set, repr=False)


def parse_s3_url(url: str) -> tuple[str, str]:
    """``s3://BUCKET/PREFIX`` -> (bucket, prefix); a one-line error for anything else."""
    rest = url[len("s3://"):]
    bucket, _, prefix = rest.partition("/")
    if not bucket or any(c in bucket for c in " \t\n"):
        raise UsageError(f"--merge {url[:80]!r}: expected s3://BUCKET/PREFIX")
    return bucket, prefix


# --- where the lines come from ----------------------------------------------------------------------------------

Lines = Callable[[], Iterator[bytes]]


def _local_lines(path: str) -> Iterator[bytes]:
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror or exc}") from None
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(f.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise UsageError(f"{path}: not a regular file")
        if info.st_size > MAX_FILE_BYTES:
            raise UsageError(f"{path}: {info.st_size:,} bytes; the limit is {MAX_FILE_BYTES:,} bytes")
        read = 0
        while True:
            line = f.readline(MAX_LINE_BYTES + 2)
            if not line:
                return
            read += len(line)
            if read > MAX_FILE_BYTES:
                raise UsageError(f"{path}: more than {MAX_FILE_BYTES:,} bytes; the limit is {MAX_FILE_BYTES:,}")
            if len(line) > MAX_LINE_BYTES + 1 and not line.endswith(b"\n"):
                # an over-long line: report it, and skip the rest of it
                yield line
                while line and not line.endswith(b"\n"):
                    line = f.readline(MAX_LINE_BYTES + 2)
                    read += len(line)
                continue
            yield line.rstrip(b"\r\n")


def _walk(directory: str) -> Iterator[str]:
    entries: list[tuple[str, bool]] = []
    try:
        with os.scandir(directory) as it:
            for e in it:
                if e.is_dir(follow_symlinks=False):
                    entries.append((e.path, True))
                elif e.name.endswith(SUFFIX) and e.is_file(follow_symlinks=False):
                    entries.append((e.path, False))
    except OSError as exc:
        raise UsageError(f"{directory}: cannot list: {exc.strerror or exc}") from None
    for path, is_dir in sorted(entries):
        if is_dir:
            yield from _walk(path)
        else:
            yield path


def _s3_lines(client: Any, bucket: str, key: str) -> Lines:
    return lambda: s3_jsonl.iter_object_lines(client, bucket, key, max_bytes=MAX_FILE_BYTES)


def sources(paths: Iterable[str], *, s3_client: Any = None) -> Iterator[tuple[str, Lines]]:
    """(name shown in messages, a function yielding the raw lines) for every file the paths stand for."""
    count = 0

    def counted(name: str, lines: Lines) -> tuple[str, Lines]:
        nonlocal count
        count += 1
        if count > MAX_FILES:
            raise UsageError(f"--merge: more than {MAX_FILES:,} files; merge fewer at a time")
        return name, lines

    for path in paths:
        if path.startswith("s3://"):
            bucket, prefix = parse_s3_url(path)
            client = s3_client if s3_client is not None else s3_jsonl.s3_client()
            try:
                keys = list(s3_jsonl.list_keys(client, bucket, prefix, suffix=SUFFIX))
            except s3_jsonl.S3Error as exc:
                raise UsageError(f"--merge {path}: {exc}") from None
            if not keys:
                raise UsageError(f"--merge {path}: no {SUFFIX} objects under it")
            for key in keys:
                yield counted(f"s3://{bucket}/{key}", _s3_lines(client, bucket, key))
        elif os.path.isdir(path):
            found = False
            for name in _walk(path):
                found = True
                yield counted(name, lambda n=name: _local_lines(n))  # type: ignore[misc]
            if not found:
                raise UsageError(f"--merge {path}: no {SUFFIX} files in this directory")
        elif os.path.lexists(path):
            yield counted(path, lambda p=path: _local_lines(p))  # type: ignore[misc]
        else:
            raise UsageError(f"--merge {path}: no such file or directory")


# --- the lines --------------------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _validators() -> dict[str, Any]:
    schema = json.loads(resources.files("kms_rescue").joinpath("audit.schema.json").read_text(encoding="utf-8"))
    defs = schema["$defs"]
    dialect = schema.get("$schema", "https://json-schema.org/draft/2020-12/schema")
    cls = jsonschema.validators.validator_for(schema)
    return {name: cls({"$schema": dialect, "$defs": defs, "$ref": f"#/$defs/{name}"}) for name in ("key", "error")}


def _bad(where: str, why: str) -> AuditError:
    return AuditError(None, None, STAGE, "malformed", f"{where}: {' '.join(why.split())}")


def parse_line(raw: bytes, where: str) -> AuditItem:
    """One line, as the merge reads it: the key or error it holds, or an error row (stage ``merge``) saying why
    not, its message starting with ``where`` (``FILE:LINE``)."""
    if len(raw) > MAX_LINE_BYTES:
        return _bad(where, f"a line of more than {MAX_LINE_BYTES:,} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return _bad(where, f"not UTF-8 ({exc.reason} at byte {exc.start})")
    try:
        document = loads_json(text, where)
    except PolicyInputError as exc:
        return _bad(where, str(exc).removeprefix(f"{where}:").strip())
    if not isinstance(document, dict):
        return _bad(where, "not a JSON object")
    kind = "key" if "key_arn" in document else "error" if "stage" in document else None
    if kind is None:
        return _bad(where, "neither a key (no key_arn) nor an error (no stage)")
    problem = jsonschema.exceptions.best_match(_validators()[kind].iter_errors(document))
    if problem is not None:
        at = "".join(f"[{p!r}]" if isinstance(p, int) else f".{p}" for p in problem.absolute_path)
        return _bad(where, f"does not match the audit schema's {kind}: ${at}: {problem.message[:200]}")
    try:
        return from_json(document)
    except (KeyError, TypeError, ValueError) as exc:
        return _bad(where, f"not an audit {kind}: {exc}")


def merge(paths: Iterable[str], *, stats: MergeStats | None = None, s3_client: Any = None) -> Iterator[AuditItem]:
    """Every key and error in the files ``paths`` stand for, streamed one line at a time (see the module's doc).
    Empty lines are skipped. A path that cannot be read at all is a :class:`UsageError` (exit 2)."""
    stats = stats if stats is not None else MergeStats()
    for name, lines in sources(paths, s3_client=s3_client):
        stats.files += 1
        try:
            for number, raw in enumerate(lines(), start=1):
                if not raw.strip():
                    continue
                stats.lines += 1
                item = parse_line(raw, f"{name}:{number}")
                if isinstance(item, AuditError) and item.stage == STAGE:
                    stats.malformed += 1
                elif isinstance(item, KeyAudit):
                    if item.key_arn in stats.seen:
                        stats.duplicates += 1
                        continue
                    stats.seen.add(item.key_arn)
                yield item
        except s3_jsonl.S3Error as exc:
            raise UsageError(f"--merge {name}: {exc}") from None
