"""One style table (kms_rescue.render.styles) for the text report and the rescue session."""

from __future__ import annotations

from typing import get_args

import pytest

from kms_rescue.contract import VERDICTS
from kms_rescue.observations import Outcome
from kms_rescue.render.styles import (
    OTHER_OUTCOME_STYLE,
    OUTCOME_STYLES,
    URGENCY_STYLES,
    VERDICT_STYLES,
    outcome_style,
)
from kms_rescue.verdict.key_state import Urgency


def test_every_verdict_and_urgency_has_a_style() -> None:
    assert set(VERDICT_STYLES) == set(VERDICTS)
    assert set(URGENCY_STYLES) == set(get_args(Urgency))


def test_every_named_outcome_is_an_outcome_or_a_cell_word() -> None:
    cell_words = {"yes", "no", "unknown", "-"}  # the "can manage" column's words
    assert set(OUTCOME_STYLES) - set(get_args(Outcome)) <= cell_words


@pytest.mark.parametrize(
    ("cell", "style"),
    [
        ("ok", "green"),
        ("yes", "bold green"),
        ("no (denied by key policy statement \"Deny\")", "red"),
        ("access_denied", "red"),
        ("throttled", "magenta"),
        ("-", "dim"),
        ("", OTHER_OUTCOME_STYLE),
        ("sso_expired", OTHER_OUTCOME_STYLE),
    ],
)
def test_a_cell_is_styled_by_its_first_word(cell: str, style: str) -> None:
    assert outcome_style(cell) == style
