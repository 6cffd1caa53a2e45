"""Creating the files kms-rescue writes: never overwriting, never following a symlink, mode 0600.

Every file the tool writes (a report or ticket ``--output``, a ticket draft, a key policy backup, the lab's AWS
config) is created with ``O_CREAT | O_EXCL | O_NOFOLLOW``: the call fails when anything exists at the path, a
symlink (even a dangling one) included, so the tool can neither replace a user's file nor be steered through a
link into writing somewhere else. The mode is 0600 whatever the umask (these files name an account's principals,
or hold credentials). Three ways to deal with an existing path, chosen per command (docs/report.md, "Files"):

- :func:`create_new`: refuse (the caller turns ``FileExistsError`` into a one-line error);
- :func:`create_numbered`: the first free ``NAME-2.EXT``, ``NAME-3.EXT``, …;
- :func:`replace`: an explicit ``--force``: a new file is created beside it and renamed over the path, which
  replaces a symlink itself rather than the file it points to.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import BinaryIO

FILE_MODE = 0o600
_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
MAX_NUMBERED = 1000


def create_new(path: str | os.PathLike[str], data: bytes) -> Path:
    """Create ``path`` with ``data`` (mode 0600). Raises ``FileExistsError`` when anything is there, ``OSError``
    otherwise; a file left half-written by a failed write is removed."""
    target = Path(path)
    fd = os.open(target, _FLAGS, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)  # whatever the umask
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
    except BaseException:
        os.close(fd)
        try:
            os.unlink(target)
        except OSError:
            pass
        raise
    os.close(fd)
    return target


def open_new(path: str | os.PathLike[str]) -> BinaryIO:
    """Create ``path`` (mode 0600, as :func:`create_new`) and return it open for writing, for output written as it
    is produced. Raises ``FileExistsError`` when anything is there, ``OSError`` otherwise."""
    fd = os.open(Path(path), _FLAGS, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)  # whatever the umask
        return os.fdopen(fd, "wb")
    except BaseException:
        os.close(fd)
        raise


def numbered(path: Path, n: int) -> Path:
    """``NAME.EXT`` for 1, else ``NAME-N.EXT`` (``.tar.gz``-style double suffixes are not special)."""
    if n == 1:
        return path
    return path.with_name(f"{path.stem}-{n}{path.suffix}")


def create_numbered(path: str | os.PathLike[str], data: bytes) -> Path:
    """Create ``path``, or the first free ``NAME-2.EXT``, ``NAME-3.EXT``, … beside it."""
    base = Path(path)
    for n in range(1, MAX_NUMBERED + 1):
        try:
            return create_new(numbered(base, n), data)
        except FileExistsError:
            continue
    raise FileExistsError(f"no free file name like {base} (tried {MAX_NUMBERED})")


def replace(path: str | os.PathLike[str], data: bytes) -> Path:
    """Put ``data`` at ``path`` whatever is there (not a directory): a new 0600 file created beside it, then
    renamed over it. A symlink at ``path`` is replaced, not followed."""
    target = Path(path)
    if target.is_dir() and not target.is_symlink():
        raise IsADirectoryError(21, "Is a directory", str(target))
    tmp = target.with_name(f".{target.name}.{secrets.token_hex(6)}.tmp")
    create_new(tmp, data)
    try:
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return target


__all__ = ["FILE_MODE", "create_new", "create_numbered", "numbered", "replace"]
