"""Small I/O helpers shared by commands: reading input files and writing the payload."""

from __future__ import annotations

import os
from pathlib import Path

import typer

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
