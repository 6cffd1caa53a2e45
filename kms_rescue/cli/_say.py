"""What the CLI says on stderr besides the payload, by level: ``--quiet`` keeps only errors, ``--verbose`` adds
where each setting came from, ``--debug`` adds one line per AWS request (see docs/report.md, "Flags every command
takes").

The level is set once per run by :func:`kms_rescue.cli.app.main`; commands call :func:`note`, :func:`verbose` and
:func:`hint` instead of printing to stderr themselves.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import typer

QUIET, NORMAL, VERBOSE, DEBUG = 0, 1, 2, 3


@dataclass
class Level:
    value: int = NORMAL


LEVEL = Level()
_LOCK = threading.Lock()


def set_level(value: int) -> None:
    LEVEL.value = value


def _err(text: str) -> None:
    with _LOCK:  # request lines come from many threads at once: one line at a time
        typer.echo(text, err=True)


def note(text: str) -> None:
    """A progress note or a "wrote FILE" line (hidden by ``--quiet``)."""
    if LEVEL.value >= NORMAL:
        _err(text)


def hint(text: str) -> None:
    """A hint (``hint: …``), hidden by ``--quiet``."""
    if LEVEL.value >= NORMAL:
        _err(f"hint: {text}")


def verbose(text: str) -> None:
    """Detail shown with ``--verbose`` or ``--debug``."""
    if LEVEL.value >= VERBOSE:
        _err(f"kms-rescue: {text}")


def debug_line(text: str) -> None:
    """One ``--debug`` line (an AWS request)."""
    if LEVEL.value >= DEBUG:
        _err(text)


def is_quiet() -> bool:
    return LEVEL.value <= QUIET


def is_debug() -> bool:
    return LEVEL.value >= DEBUG
