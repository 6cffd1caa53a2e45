"""The kms-rescue command line: one typer app, one error boundary.

Each command lives in its own module under ``kms_rescue.cli`` and exposes ``register(app)``. Command modules import
nothing heavy at module level (no boto3, no moto): ``kms-rescue --help``, ``lint`` and ``explain`` stay fast.
"""

from __future__ import annotations

import importlib
import inspect
import sys
import traceback
from collections.abc import Sequence
from typing import Any

import typer
from typer.core import TyperGroup

from kms_rescue import __version__
from kms_rescue.errors import KmsRescueError

# Modules under kms_rescue.cli that provide a ``register(app)`` function, in --help order.
COMMAND_MODULES: tuple[str, ...] = ("explain", "lint", "report", "lab", "rescue", "fix", "ticket", "demo")

EXIT_INTERRUPTED = 130


class _RescueByDefault(TyperGroup):
    """``kms-rescue KEY`` means ``kms-rescue rescue KEY`` once the rescue command exists (and a bare
    ``kms-rescue`` at a terminal means ``kms-rescue rescue``: see :func:`main`)."""

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        if args and "rescue" in self.commands and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["rescue", *args]
        return super().resolve_command(ctx, args)


app = typer.Typer(
    name="kms-rescue",
    cls=_RescueByDefault,
    help="Get back into AWS KMS keys you are locked out of, and stop getting locked out again.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
    rich_markup_mode="rich",
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"kms-rescue {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Get back into AWS KMS keys you are locked out of, and stop getting locked out again.

    Add --debug anywhere to see the traceback of an unexpected error.
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
    typer.echo(message, err=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return its exit code (the console script exits with it)."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    args = [a for a in args if a != "--debug"]
    if not args and _on_a_terminal():
        args = ["rescue"]  # bare `kms-rescue` at a terminal: the session, which asks for the key
    command = typer.main.get_command(app)
    try:
        result = command.main(args=args, prog_name="kms-rescue", standalone_mode=False)
    except (typer.Abort, KeyboardInterrupt):  # typer turns EOF at a prompt into Abort
        _err("kms-rescue: interrupted")
        return EXIT_INTERRUPTED
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
    except BrokenPipeError:
        return 1
    except Exception as exc:
        if debug:
            traceback.print_exc()
        _err(
            f"kms-rescue: internal error: {type(exc).__name__}: {exc}"
            " (run again with --debug for the traceback, and please report it)"
        )
        return 1
    if result == EXIT_INTERRUPTED:  # typer turns Ctrl-C during a command into Exit(130)
        _err("kms-rescue: interrupted")
    return result if isinstance(result, int) else 0


def run() -> int:
    """The console script: :func:`main`, then an exit that skips the interpreter's final sweep of the heap."""
    code = main()
    from kms_rescue.cli._gc import skip_final_collection

    skip_final_collection()
    return code
