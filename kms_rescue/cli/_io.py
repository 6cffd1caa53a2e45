"""Small I/O helpers shared by commands: reading input files and writing the payload."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from kms_rescue.errors import UsageError


def read_text(path: str | os.PathLike[str], what: str = "file") -> str:
    """Read a UTF-8 text file, or raise a one-line :class:`UsageError`."""
    p = Path(path)
    try:
        return p.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise UsageError(f"{what} not found: {p}") from None
    except IsADirectoryError:
        raise UsageError(f"{what} is a directory, not a file: {p}") from None
    except PermissionError:
        raise UsageError(f"cannot read {what} {p}: permission denied") from None
    except UnicodeDecodeError as exc:
        raise UsageError(f"{what} {p} is not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise UsageError(f"cannot read {what} {p}: {exc.strerror}") from None


def write_payload(text: str, output: str | None) -> None:
    """The payload goes to ``--output FILE`` when given, else to stdout."""
    if not text.endswith("\n"):
        text += "\n"
    if output and output != "-":
        try:
            Path(output).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"cannot write {output}: {exc.strerror}") from None
    else:
        typer.echo(text, nl=False)


def write_new_file(path: str | os.PathLike[str], data: str | bytes, *, mode: int = 0o600) -> Path:
    """Create ``path`` with ``data`` and return where it went: never overwriting (``name-2.ext``, ``name-3.ext`` …
    when it exists) and never through a symlink (O_EXCL | O_NOFOLLOW), mode 0600. Every file the rescue writes
    goes through here. Raises a one-line :class:`UsageError`."""
    target = Path(path).expanduser()
    payload = data.encode("utf-8") if isinstance(data, str) else data
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create the directory {target.parent}: {exc.strerror}") from None
    stem, suffix = target.stem, target.suffix
    if target.name.endswith(".restore.sh"):
        stem, suffix = target.name.removesuffix(".restore.sh"), ".restore.sh"
    for n in range(1, 1000):
        candidate = target if n == 1 else target.with_name(f"{stem}-{n}{suffix}")
        try:
            fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), mode)
        except FileExistsError:
            continue
        except OSError as exc:
            raise UsageError(f"cannot write {candidate}: {exc.strerror}") from None
        try:
            os.fchmod(fd, mode)
            with os.fdopen(fd, "wb") as fh:
                fh.write(payload)
        except OSError as exc:
            raise UsageError(f"cannot write {candidate}: {exc.strerror}") from None
        return candidate
    raise UsageError(f"cannot find a free file name for {target}")
