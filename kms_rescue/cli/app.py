"""The kms-rescue command line: one typer app, one error boundary.

Each command lives in its own module under ``kms_rescue.cli`` and exposes ``register(app)``. Command modules import
nothing heavy at module level (no boto3, no moto): ``kms-rescue --help``, ``lint`` and ``explain`` stay fast.
"""

from __future__ import annotations

import contextlib
import difflib
import importlib
import inspect
import os
import re
import signal
import sys
import traceback
from collections.abc import Iterator, Sequence
from typing import Any

import typer
from typer.core import TyperGroup

from kms_rescue import __version__
from kms_rescue.aws.redact import redact
from kms_rescue.cli import _say
from kms_rescue.cli._exit import exit_now_if_abandoned
from kms_rescue.errors import KmsRescueError, UsageError
from kms_rescue.keyids import KEY_ID_RE
from kms_rescue.status import ExitStatus, signal_status

# Modules under kms_rescue.cli that provide a ``register(app)`` function, in --help order.
COMMAND_MODULES: tuple[str, ...] = ("explain", "lint", "report", "audit", "lab", "rescue", "fix", "ticket", "demo")

#: Flags every command takes, anywhere on the line (as the AWS CLI takes --debug): the level of stderr output.
LEVEL_FLAGS = {"--quiet": _say.QUIET, "-q": _say.QUIET, "--verbose": _say.VERBOSE, "-v": _say.VERBOSE,
               "--debug": _say.DEBUG}
#: A bare word that can only be a misspelt command: letters and dashes. No key reference looks like one (a key ARN
#: starts with arn:, an alias with alias/, a key id is a UUID or mrk- and 32 hex digits: see docs/report.md).
_WORD_RE = re.compile(r"[A-Za-z][A-Za-z-]{0,31}")


class _RescueByDefault(TyperGroup):
    """``kms-rescue KEY`` means ``kms-rescue rescue KEY`` once the rescue command exists (and a bare
    ``kms-rescue`` at a terminal means ``kms-rescue rescue``: see :func:`main`)."""

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            _refuse_misspelt_command(args[0], sorted(self.commands))
            if "rescue" in self.commands:
                args = ["rescue", *args]
        return super().resolve_command(ctx, args)


def _refuse_misspelt_command(word: str, commands: Sequence[str]) -> None:
    """A bare word that is no command and cannot be a key (see ``_WORD_RE``) is a usage error, with the closest
    command when one is close ("did you mean lint?")."""
    if not _WORD_RE.fullmatch(word) or KEY_ID_RE.match(word):
        return
    close = difflib.get_close_matches(word.lower(), commands, n=1, cutoff=0.6)
    if close:
        raise UsageError(f"no command {word!r}: did you mean {close[0]}?")
    raise UsageError(f"no command {word!r} (commands: {', '.join(commands)}); a key is its ARN, an alias ARN, "
                     "alias/NAME or a key id")


app = typer.Typer(
    name="kms-rescue",
    cls=_RescueByDefault,
    help="Get back into AWS KMS keys you are locked out of, and stop getting locked out again.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_show_locals=False,
    rich_markup_mode="rich",
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"kms-rescue {__version__}")
        raise typer.Exit(ExitStatus.OK)


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only errors on stderr (anywhere on the line)."),
    verbose: bool = typer.Option(
        False, "--verbose", "-v", help="Also say where each setting came from (anywhere on the line)."
    ),
    debug: bool = typer.Option(
        False, "--debug",
        help="Log each AWS request to stderr and show the traceback of an unexpected error (anywhere on the line).",
    ),
) -> None:
    """Get back into AWS KMS keys you are locked out of, and stop getting locked out again.

    --quiet, --verbose and --debug work anywhere on the line, as the AWS CLI's --debug does.
    """


for _name in COMMAND_MODULES:
    importlib.import_module(f"kms_rescue.cli.{_name}").register(app)


def _unwrapped(text: str) -> str:
    """A docstring's paragraphs, each on one line: typer keeps a paragraph's line breaks, which then wrap raggedly
    in a terminal narrower than the source."""
    paragraphs = inspect.cleandoc(text).split("\n\n")
    return "\n\n".join(" ".join(line.strip() for line in p.splitlines()) for p in paragraphs)


for _info in app.registered_commands:
    _doc = _info.help or (_info.callback.__doc__ if _info.callback else None)
    if _doc:
        _info.help = _unwrapped(_doc)


def _on_a_terminal() -> bool:
    """Both stdin and stdout are terminals (someone is there to answer); otherwise bare `kms-rescue` prints help."""
    try:
        return sys.stdin.isatty() and sys.stdout.isatty()
    except (AttributeError, ValueError):
        return False


def _err(message: str) -> None:
    typer.echo(redact(message), err=True)  # exception text may quote what a config file or a process said


def _fd_identity(fd: int) -> tuple[int, int] | None:
    """What file descriptor ``fd`` is open on (device, inode), or None."""
    try:
        info = os.fstat(fd)
    except OSError:
        return None
    return info.st_dev, info.st_ino


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return its exit code (the console script exits with it)."""
    try:
        return _main(list(sys.argv[1:] if argv is None else argv))
    finally:
        _say.set_level(_say.NORMAL)  # the level is this run's (tests and callers run main() many times)


def _main(args: list[str]) -> int:
    try:
        level, args = _level(args)
    except UsageError as exc:
        _err(f"kms-rescue: error: {exc}")
        return exc.exit_code
    _say.set_level(level)
    debug = level >= _say.DEBUG
    if not args and _on_a_terminal():
        args = ["rescue"]  # bare `kms-rescue` at a terminal: the session, which asks for the key
    command = typer.main.get_command(app)
    stdout, stdout_file = sys.stdout, _fd_identity(1)
    try:
        with _request_log(debug):
            result = command.main(args=args, prog_name="kms-rescue", standalone_mode=False)
    except SystemExit as exc:
        # A closed output pipe (EPIPE) met while typer or rich writes ends in exit 1, which reads as an internal
        # error: typer puts a wrapper in place of sys.stdout, rich (Console.on_broken_pipe, documented) points
        # file descriptor 1 at os.devnull. Either way, exit as a process ended by SIGPIPE would instead.
        if exc.code == 1 and (sys.stdout is not stdout or _fd_identity(1) != stdout_file):
            return signal_status(signal.SIGPIPE)
        raise
    except (typer.Abort, KeyboardInterrupt):  # typer turns EOF at a prompt into Abort
        _err("kms-rescue: interrupted")
        return ExitStatus.INTERRUPTED
    except typer.TyperException as exc:  # usage errors from option parsing (typer's vendored click)
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        else:
            _err(f"kms-rescue: error: {exc.format_message()}")
        return exc.exit_code
    except KmsRescueError as exc:
        if debug:
            traceback.print_exc()
        _err(f"kms-rescue: error: {exc}")
        if exc.hint:
            _err(f"hint: {exc.hint}")
        return exc.exit_code
    except BrokenPipeError:  # the reader went away (`| head`): exit as a process ended by SIGPIPE would
        return signal_status(signal.SIGPIPE)
    except Exception as exc:
        if debug:
            traceback.print_exc()
        _err(
            f"kms-rescue: internal error: {type(exc).__name__}: {exc}"
            " (run again with --debug for the traceback, and please report it)"
        )
        return ExitStatus.INTERNAL_ERROR
    if result == ExitStatus.INTERRUPTED:  # typer turns Ctrl-C during a command into Exit(130)
        _err("kms-rescue: interrupted")
    return result if isinstance(result, int) else ExitStatus.OK


def _level(args: list[str]) -> tuple[int, list[str]]:
    """The output level the flags ask for, and the arguments without them (up to a ``--``)."""
    end = args.index("--") if "--" in args else len(args)
    found = {LEVEL_FLAGS[a] for a in args[:end] if a in LEVEL_FLAGS}
    if _say.QUIET in found and len(found) > 1:
        raise UsageError("--quiet cannot be combined with --verbose or --debug")
    rest = [a for a in args[:end] if a not in LEVEL_FLAGS] + args[end:]
    return (max(found) if found else _say.NORMAL), rest


@contextlib.contextmanager
def _request_log(debug: bool) -> Iterator[None]:
    """With --debug, one stderr line per AWS request (kms_rescue.aws.request_log)."""
    if not debug:
        yield
        return
    from kms_rescue.cli._runtime import debug_requests  # deferred: imports botocore (only with --debug)

    with debug_requests(_say.debug_line):
        yield


def run() -> int:
    """The console script: :func:`main`, then an exit that does not wait for calls abandoned at the overall
    deadline."""
    code = main()
    exit_now_if_abandoned(code)  # calls abandoned at the overall deadline are not waited for
    return code
