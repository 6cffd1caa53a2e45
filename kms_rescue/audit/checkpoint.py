"""The audit's checkpoint: an append-only JSON-lines file, one line per finished key and per finished target
(an account in a Region), so that an interrupted audit (Ctrl-C, SIGTERM, ``kill -9``, a lost machine) resumes
where it stopped (docs/audit.md, "Speed and resuming").

The file's first line marks it as an audit checkpoint; each further line is one of

- ``{"target": [ACCOUNT, REGION], "item": {...}}``: a key's result or an error row (:func:`kms_rescue.audit.model.
  to_json`), written as it arrives;
- ``{"done": [ACCOUNT, REGION]}``: every key of that target has been written.

Each line goes to the file in one ``write(2)`` of an ``O_APPEND`` descriptor, so it is in the file (the kernel's)
as soon as the call returns, whatever happens to the process afterwards; a ``done`` line is also ``fsync``-ed.
A line cut short by a crash is ignored on resume (its target has no ``done`` line, so it is audited again).

``--checkpoint FILE`` creates a new file (:func:`kms_rescue.files.create_new`: never overwriting, never through a
symlink, mode 0600); ``--resume FILE`` reads an existing checkpoint, replays the results of its finished targets,
and appends to it what the resumed audit adds. A file without the marker is refused: it is not ours to append to.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from kms_rescue.audit.model import AuditItem, from_json, to_json
from kms_rescue.errors import UsageError
from kms_rescue.files import create_new

#: The first line's key (its value is the format's version).
MARKER = "kms_rescue_audit_checkpoint"
VERSION = 1

#: A target's key in the file: (account or "", Region).
TargetKey = tuple[str, str]
_APPEND = os.O_WRONLY | os.O_APPEND | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


def target_key(account: str | None, region: str) -> TargetKey:
    return (account or "", region)


def _line(obj: dict[str, Any]) -> bytes:
    return (json.dumps(obj, separators=(",", ":"), ensure_ascii=True) + "\n").encode("ascii")


class Checkpoint:
    """An open checkpoint: :meth:`record` each result, :meth:`finish` each target. Use :func:`create` or
    :func:`resume`; :meth:`close` when the audit ends."""

    def __init__(self, path: Path, fd: int, done: frozenset[TargetKey] = frozenset(),
                 encode: Callable[[AuditItem], dict[str, Any]] = to_json) -> None:
        self.path = path
        self._fd: int | None = fd
        self.done = done
        self._encode = encode

    def _write(self, data: bytes) -> None:
        if self._fd is None:
            raise ValueError("the checkpoint is closed")
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view):]

    def record(self, key: TargetKey, item: AuditItem) -> None:
        self._write(_line({"target": list(key), "item": self._encode(item)}))

    def finish(self, key: TargetKey) -> None:
        self._write(_line({"done": list(key)}))
        if self._fd is not None:
            os.fsync(self._fd)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> Checkpoint:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def create(path: str | os.PathLike[str]) -> Checkpoint:
    """A new checkpoint at ``path``; :class:`UsageError` when anything is there (never overwritten)."""
    target = Path(path)
    header = _line({MARKER: VERSION})
    try:
        create_new(target, header)
        fd = os.open(target, _APPEND)
    except FileExistsError:
        raise UsageError(f"--checkpoint {target}: the file exists (use --resume {target} to continue that audit, "
                         "or name a new file)") from None
    except OSError as exc:
        raise UsageError(f"--checkpoint {target}: {exc.strerror or exc}") from None
    return Checkpoint(target, fd)


def _lines(path: Path) -> Iterator[dict[str, Any]]:
    """The checkpoint's well-formed lines after the marker (a line cut short by a crash is skipped)."""
    with open(path, "rb") as fh:
        fh.readline()
        for raw in fh:
            if not raw.endswith(b"\n"):
                return  # the last line, cut short
            try:
                obj = json.loads(raw)
            except ValueError:
                continue
            if isinstance(obj, dict):
                yield obj


def _check(path: Path) -> None:
    try:
        if path.is_symlink():
            raise UsageError(f"--resume {path}: is a symlink, not a checkpoint")
        with open(path, "rb") as fh:
            first = fh.readline(4096)
    except FileNotFoundError:
        raise UsageError(f"--resume {path}: no such file") from None
    except IsADirectoryError:
        raise UsageError(f"--resume {path}: is a directory") from None
    except OSError as exc:
        raise UsageError(f"--resume {path}: {exc.strerror or exc}") from None
    try:
        head = json.loads(first)
    except ValueError:
        head = None
    if not isinstance(head, dict) or head.get(MARKER) != VERSION:
        raise UsageError(f"--resume {path}: not a kms-rescue audit checkpoint (made with --checkpoint)")


def finished(path: str | os.PathLike[str]) -> frozenset[TargetKey]:
    """The targets the checkpoint at ``path`` marks done."""
    done: set[TargetKey] = set()
    for obj in _lines(Path(path)):
        key = obj.get("done")
        if isinstance(key, list) and len(key) == 2 and all(isinstance(k, str) for k in key):
            done.add((key[0], key[1]))
    return frozenset(done)


def replay(path: str | os.PathLike[str], done: frozenset[TargetKey],
           decode: Callable[[dict[str, Any]], AuditItem] = from_json) -> Iterator[tuple[TargetKey, AuditItem]]:
    """The recorded results of the ``done`` targets, in the file's order, read one line at a time."""
    for obj in _lines(Path(path)):
        key = obj.get("target")
        item = obj.get("item")
        if not (isinstance(key, list) and len(key) == 2 and isinstance(item, dict)):
            continue
        tkey = (str(key[0]), str(key[1]))
        if tkey in done:
            try:
                yield tkey, decode(item)
            except (KeyError, TypeError, ValueError):
                continue


def resume(path: str | os.PathLike[str]) -> Checkpoint:
    """The checkpoint at ``path``, opened to append (what it marks done is in ``.done``)."""
    target = Path(path)
    _check(target)
    done = finished(target)
    try:
        fd = os.open(target, _APPEND)
    except OSError as exc:
        raise UsageError(f"--resume {target}: {exc.strerror or exc}") from None
    # A line cut short by a crash: end it, so the next line starts on a line of its own.
    with open(target, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        if fh.tell() > 0:
            fh.seek(-1, os.SEEK_END)
            if fh.read(1) != b"\n":
                os.write(fd, b"\n")
    return Checkpoint(target, fd, done)


__all__ = ["MARKER", "VERSION", "Checkpoint", "TargetKey", "create", "finished", "replay", "resume", "target_key"]
