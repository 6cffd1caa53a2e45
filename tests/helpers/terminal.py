"""For sessions in a real pseudo-terminal (pexpect): what to strip from a transcript before reading it."""

from __future__ import annotations

import re

#: Terminal control sequences (colours, cursor moves) and carriage returns, as a pexpect transcript holds them.
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\r")
