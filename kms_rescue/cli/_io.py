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
