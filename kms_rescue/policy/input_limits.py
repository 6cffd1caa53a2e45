"""Bounded reading of untrusted input: every file, stream and document a command reads goes through here.

``lint`` runs on pull requests, so what it reads is untrusted by definition; so is a policy given to ``explain`` or
a scenario given to the lab. Each function below turns what could hang, exhaust memory or crash the interpreter
into a one-line :class:`PolicyInputError` (exit 2). The limits, and why, are in docs/limits.md:

* a key policy is at most :data:`KEY_POLICY_MAX_BYTES` (32 KB, KMS API reference, PutKeyPolicy: the ``Policy``
  parameter's maximum length is 32768); a plan, template or scenario file at most :data:`DOCUMENT_MAX_BYTES`;
* the size is checked with ``fstat`` before reading, and never more than the limit (plus one byte) is read;
* only regular files are read: a directory, FIFO, socket or device (``/dev/zero``) is refused without reading,
  and a FIFO is opened without blocking;
* file names longer than the system allows are an input error, not an ``OSError``;
* JSON numbers have at most :data:`NUMBER_MAX_DIGITS` characters, ``NaN`` and ``Infinity`` (not JSON) are
  refused, and documents nest at most :data:`MAX_DEPTH` levels;
* YAML aliases (``*name``) are refused before any YAML is parsed (:func:`refuse_yaml_aliases`): a few hundred
  bytes of aliases expand to gigabytes once a template is resolved.

Pure: no boto3 or botocore. PyYAML is imported only when YAML is checked.
"""

from __future__ import annotations

import errno
import json
import os
import stat
from collections.abc import Callable
from typing import IO, Any

from kms_rescue.policy.errors import PolicyInputError

__all__ = [
    "DOCUMENT_MAX_BYTES",
    "KEY_POLICY_MAX_BYTES",
    "MAX_DEPTH",
    "NUMBER_MAX_DIGITS",
    "check_depth",
    "decode_text",
    "loads_json",
    "read_bounded_text",
    "read_stream",
    "refuse_yaml_aliases",
]

#: KMS API reference, PutKeyPolicy and CreateKey: ``Policy`` has a maximum length of 32768.
KEY_POLICY_MAX_BYTES = 32 * 1024
#: A Terraform plan, CloudFormation template or lab scenario: generous (a plan of a large estate is a few MB).
DOCUMENT_MAX_BYTES = 32 * 1024 * 1024
#: No policy, plan or template nests deeper than this; the resolvers recurse, so the bound keeps them safe.
MAX_DEPTH = 128
#: A JSON number longer than this is not a value any policy uses (Python refuses ints over 4,300 digits).
NUMBER_MAX_DIGITS = 100

_NAME_SHOWN = 80  # characters of an over-long file name shown in a message


def _shown(path: str) -> str:
    return path if len(path) <= _NAME_SHOWN else f"{path[:_NAME_SHOWN]}… ({len(path)} characters)"


def _too_large(source: str, size: int, max_bytes: int, why: str | None, *, exact: bool) -> PolicyInputError:
    reason = f" ({why})" if why else ""
    more = "" if exact else " or more"
    return PolicyInputError(f"{source}: {size:,} bytes{more}; the limit is {max_bytes:,} bytes{reason}")


def _kind_of(mode: int) -> str | None:
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def _open_error(path: str, exc: OSError) -> PolicyInputError:
    shown = _shown(path)
    if exc.errno == errno.ENOENT:
        return PolicyInputError(f"{shown}: no such file")
    if exc.errno == errno.ENAMETOOLONG:
        return PolicyInputError(f"{shown}: file name too long")
    if exc.errno in (errno.EACCES, errno.EPERM):
        return PolicyInputError(f"{shown}: cannot read: permission denied")
    if exc.errno == errno.EISDIR:
        return PolicyInputError(f"{shown}: is a directory, not a file")
    if exc.errno == errno.ENXIO:  # a socket, or a FIFO with no writer
        return PolicyInputError(f"{shown}: not a regular file (a socket or device); give a file")
    return PolicyInputError(f"{shown}: cannot read: {exc.strerror or exc}")


def read_bounded_bytes(path: str, *, max_bytes: int, why: str | None = None) -> bytes:
    """The bytes of the regular file at ``path``, at most ``max_bytes`` of them. ``why`` explains the limit in
    the message (e.g. KMS's own limit on key policies)."""
    if "\0" in path:
        raise PolicyInputError(f"{_shown(path)!r}: a file name cannot contain a NUL character")
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused below without reading.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    except OSError as exc:
        raise _open_error(path, exc) from None
    try:
        info = os.fstat(fd)
        kind = _kind_of(info.st_mode)
        if kind == "a directory":
            raise PolicyInputError(f"{_shown(path)}: is a directory, not a file")
        if kind is not None:
            raise PolicyInputError(f"{_shown(path)}: is {kind}, not a regular file; give a regular file")
        if info.st_size > max_bytes:
            raise _too_large(_shown(path), info.st_size, max_bytes, why, exact=True)
        chunks: list[bytes] = []
        total = 0
        while total <= max_bytes:  # the file may grow while it is read: never read past the limit
            chunk = os.read(fd, min(1 << 20, max_bytes + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        if total > max_bytes:
            raise _too_large(_shown(path), total, max_bytes, why, exact=False)
        return b"".join(chunks)
    except OSError as exc:
        raise _open_error(path, exc) from None
    finally:
        os.close(fd)


def decode_text(data: bytes, source: str) -> str:
    """UTF-8 text (a byte-order mark is dropped), or a one-line error naming the byte."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise PolicyInputError(f"{source}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def read_bounded_text(path: str, *, max_bytes: int = DOCUMENT_MAX_BYTES, why: str | None = None) -> str:
    """The UTF-8 text of the regular file at ``path`` (see :func:`read_bounded_bytes`): path -> bounded text."""
    return decode_text(read_bounded_bytes(path, max_bytes=max_bytes, why=why), _shown(path))


def read_stream(stream: IO[Any], source: str, *, max_bytes: int = DOCUMENT_MAX_BYTES) -> str:
    """At most ``max_bytes`` of a text or binary stream (standard input), as text."""
    binary = getattr(stream, "buffer", None)
    if binary is not None:
        data = binary.read(max_bytes + 1)
        if len(data) > max_bytes:
            raise _too_large(source, len(data), max_bytes, None, exact=False)
        return decode_text(data, source)
    text = stream.read(max_bytes + 1)
    if isinstance(text, bytes):
        text = decode_text(text, source)
    if len(text) > max_bytes or len(text.encode("utf-8")) > max_bytes:
        raise _too_large(source, len(text.encode("utf-8")), max_bytes, None, exact=False)
    return str(text)


# --- documents --------------------------------------------------------------------------------------------------


def _bounded_number(source: str, convert: Callable[[str], Any]) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        if len(text) > NUMBER_MAX_DIGITS:
            raise PolicyInputError(
                f"{source}: a JSON number of {len(text):,} characters; numbers have at most {NUMBER_MAX_DIGITS}"
            )
        return convert(text)

    return parse


def _no_constant(source: str) -> Callable[[str], Any]:
    def refuse(name: str) -> Any:
        raise PolicyInputError(f"{source}: invalid JSON: {name} is not a JSON value")

    return refuse


def check_depth(document: Any, source: str, *, max_depth: int = MAX_DEPTH, shared: bool = True) -> Any:
    """``document`` when it nests at most ``max_depth`` objects and lists deep, else a one-line error. Iterative,
    so it is safe on any depth. With ``shared`` (YAML anchors), a value reached twice is visited once; JSON has no
    shared values, so its check skips that bookkeeping."""
    if not isinstance(document, (dict, list)):
        return document
    stack: list[tuple[Any, int]] = [(document, 1)]  # containers only
    seen: set[int] = set()
    while stack:
        value, depth = stack.pop()
        if depth > max_depth:
            raise PolicyInputError(f"{source}: nested more than {max_depth} levels deep")
        if shared:
            if id(value) in seen:
                continue
            seen.add(id(value))
        children = value.values() if isinstance(value, dict) else value
        stack.extend([(child, depth + 1) for child in children if isinstance(child, (dict, list))])
    return document


def loads_json(text: str, source: str) -> Any:
    """``json.loads`` with bounded numbers and depth; every error is one line with the line and column."""
    try:
        document = json.loads(
            text,
            parse_int=_bounded_number(source, int),
            parse_float=_bounded_number(source, float),
            parse_constant=_no_constant(source),
        )
    except json.JSONDecodeError as exc:
        raise PolicyInputError(f"{source}:{exc.lineno}:{exc.colno}: invalid JSON: {exc.msg}") from None
    except RecursionError:
        raise PolicyInputError(f"{source}: invalid JSON: nested more than {MAX_DEPTH} levels deep") from None
    return check_depth(document, source, shared=False)


def refuse_yaml_aliases(text: str, source: str) -> None:
    """Raise a one-line error when YAML ``text`` uses an alias (``*name``). Call it before any YAML parse: the
    scan reads tokens only, so it is linear and builds nothing. Syntax errors are left to the parser."""
    if "*" not in text:
        return
    import yaml  # deferred: only YAML input needs PyYAML, and lint of JSON starts faster without it

    try:
        for token in yaml.scan(text, Loader=yaml.SafeLoader):
            if isinstance(token, yaml.AliasToken):
                mark = token.start_mark
                raise PolicyInputError(
                    f"{source}:{mark.line + 1}:{mark.column + 1}: YAML aliases (*{token.value}) are not accepted; "
                    "write the value out in full"
                )
    except yaml.YAMLError:
        return  # malformed: the parser reports it, with its position
    except RecursionError:
        raise PolicyInputError(f"{source}: invalid YAML: nested more than {MAX_DEPTH} levels deep") from None
