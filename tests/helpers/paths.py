"""Where things are, wherever a test module lives in ``tests/``."""

from __future__ import annotations

import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
REPO = TESTS.parent
DOCS = REPO / "docs"
#: Input files the tests read (``tests/fixtures/``): lint inputs, limits, lab scenarios.
FIXTURES = TESTS / "fixtures"
#: Expected outputs compared byte for byte (``tests/golden/``).
GOLDEN = TESTS / "golden"
#: The installed console script, beside the interpreter running the tests.
SCRIPT = Path(sys.executable).with_name("kms-rescue")
