"""The rich styles of the report's words, one table for the text report (:mod:`kms_rescue.render.text`) and the
rescue session (:mod:`kms_rescue.cli.rescue`): a verdict, a key-state notice's urgency, a call's outcome. Plain
strings: importing this imports nothing of rich."""

from __future__ import annotations

VERDICT_STYLES = {
    "manageable": "bold green",
    "recoverable": "bold yellow",
    "locked_out": "bold red",
    "undetermined": "bold magenta",
    "not_found": "bold cyan",
}
URGENCY_STYLES = {"critical": "bold red", "high": "bold yellow", "notice": "cyan"}
OUTCOME_STYLES = {
    "ok": "green",
    "yes": "bold green",
    "access_denied": "red",
    "no": "red",
    "not_found": "yellow",
    "wrong_region": "yellow",
    "key_disabled": "yellow",
    "pending_deletion": "yellow",
    "throttled": "magenta",
    "timeout": "magenta",
    "unknown": "yellow",
    "-": "dim",
}
#: An outcome the table does not name (a rarer error class) reads as a warning.
OTHER_OUTCOME_STYLE = "yellow"


def outcome_style(value: str) -> str:
    """The style of a cell of the identities × calls table: by its first word (``"no (denied by …)"`` is a no)."""
    return OUTCOME_STYLES.get(value.split(" ")[0] if value else value, OTHER_OUTCOME_STYLE)


__all__ = ["OTHER_OUTCOME_STYLE", "OUTCOME_STYLES", "URGENCY_STYLES", "VERDICT_STYLES", "outcome_style"]
