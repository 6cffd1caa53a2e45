"""Optional extras: a command that needs one says, in one line, which extra to install (exit 2), before it imports
anything from it (docs/lab.md, "Installing the lab").

The ``lab`` extra (``pip install 'kms-rescue[lab]'``) brings moto's server (moto, its werkzeug and flask) and
jsonschema for the scenario files; ``kms-rescue lab`` and ``kms-rescue demo`` need it, nothing else does.
"""

from __future__ import annotations

import importlib.util

from kms_rescue.errors import UsageError

#: The top-level modules the ``lab`` extra installs that the lab imports.
LAB_MODULES = ("moto", "werkzeug", "flask", "jsonschema")


def _missing(modules: tuple[str, ...]) -> list[str]:
    missing = []
    for name in modules:
        try:
            found = importlib.util.find_spec(name)  # locates the module without importing it
        except (ImportError, ValueError):
            found = None
        if found is None:
            missing.append(name)
    return missing


def require_lab_extra(command: str) -> None:
    """Raise :class:`UsageError` naming the extra when a module of the ``lab`` extra is not installed."""
    missing = _missing(LAB_MODULES)
    if missing:
        raise UsageError(
            f"`kms-rescue {command}` needs the lab extra ({', '.join(missing)} not installed): "
            "pip install 'kms-rescue[lab]' (or pipx install 'kms-rescue[lab]')"
        )
