"""Small I/O helpers shared by commands: reading input files and writing the payload."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import typer

from kms_rescue import files
from kms_rescue.errors import UsageError
from kms_rescue.policy.errors import PolicyInputError
from kms_rescue.policy.input_limits import DOCUMENT_MAX_BYTES, read_bounded_text


def read_text(
    path: str | os.PathLike[str], what: str = "file", *, max_bytes: int = DOCUMENT_MAX_BYTES, why: str | None = None
) -> str:
    """Read a UTF-8 regular file of at most ``max_bytes`` (docs/limits.md), or raise a one-line
    :class:`UsageError` naming ``what`` it is."""
    try:
        return read_bounded_text(os.fspath(path), max_bytes=max_bytes, why=why)
    except PolicyInputError as exc:
        raise UsageError(f"{what} {exc}") from None


def _exists_error(target: Path, option: str) -> UsageError:
    what = "a symlink" if target.is_symlink() else ("a directory" if target.is_dir() else "a file")
    return UsageError(
        f"{option} {target}: there is already {what} there and kms-rescue never overwrites one "
        f"(choose another name, remove it, or pass --force to replace it)"
    )


def check_output(output: str | None, *, force: bool = False, option: str = "--output") -> None:
    """Refuse an existing ``--output`` before any work is done (:func:`write_file` checks again, atomically)."""
    if not output or output == "-":
        return
    target = Path(output).expanduser()
    try:
        st = os.lstat(target)
    except FileNotFoundError:
        parent = target.parent
        if not parent.is_dir():
            raise UsageError(f"{option} {target}: the directory {parent} does not exist") from None
        return
    except OSError as exc:  # e.g. a file name too long, a path through a file
        raise UsageError(f"{option} {target}: {exc.strerror or exc}") from None
    if stat.S_ISDIR(st.st_mode):
        raise UsageError(f"{option} {target} is a directory: give a file name")
    if not force:
        raise _exists_error(target, option)


def write_file(data: str | bytes, output: str | os.PathLike[str], *, force: bool = False,
               option: str = "--output") -> Path:
    """Create ``output`` (mode 0600, symlinks not followed; :mod:`kms_rescue.files`). An existing path is refused
    with a one-line :class:`UsageError` unless ``force``, which replaces it (a symlink itself, not its target)."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    target = Path(output).expanduser()
    try:
        if force:
            return files.replace(target, raw)
        return files.create_new(target, raw)
    except FileExistsError:
        raise _exists_error(target, option) from None
    except OSError as exc:
        raise UsageError(f"cannot write {target}: {exc.strerror or exc}") from None


def write_payload(text: str, output: str | None, *, force: bool = False) -> None:
    """The payload goes to ``--output FILE`` when given (see :func:`write_file`), else to stdout."""
    if not text.endswith("\n"):
        text += "\n"
    if output and output != "-":
        write_file(text, output, force=force)
    else:
        typer.echo(text, nl=False)
