"""IAM wildcard matching without regular expressions: ``*`` matches any run of characters (none included), ``?``
exactly one (IAM User Guide, "IAM JSON policy elements: Condition operators", String and ARN operators; "IAM
JSON policy elements: Action").

Policy text is untrusted input (``lint`` runs on pull requests), so a pattern must never cost more than its size
times the value's size. A backtracking regex built from ``a*a*a*a*b`` does not have that bound; this matcher does.
A pattern is split at its ``*`` into chunks. The first chunk must match at the start of the value, the last at its
end, and every chunk in between is placed at its leftmost position after the previous one (``str.find``). Leftmost
placement never loses a match, because any later placement leaves less room for the chunks that follow. Each
chunk is searched once, so a match costs at most O(len(value) × len(pattern)) and usually much less.

A chunk may contain ``?``: it is then a sequence of literal pieces at fixed offsets. A literal ``*`` or ``?``
(from a policy variable's value, or ``${*}``) is given as literal text, never as a wildcard.

This module is pure and imports nothing from the project: ``conditions``, ``evaluate`` and ``actions`` build on it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache

__all__ = ["ONE", "STAR", "WildcardPattern", "compile_pattern", "compile_text", "fold", "wildcard_match"]

#: Tokens of a pattern besides literal text: a ``*`` and a ``?`` wildcard.
STAR = 0
ONE = 1

Token = str | int


def fold(text: str) -> str:
    """Lower-case ``text`` without changing its length (a ``?`` must still be one character): characters whose
    lower case is longer than one character (``İ``) are kept as they are."""
    low = text.lower()
    if len(low) == len(text):
        return low
    return "".join(c.lower() if len(c.lower()) == 1 else c for c in text)


@dataclass(frozen=True)
class _Chunk:
    """The text between two ``*``: ``length`` characters, literal ``pieces`` at offsets, ``?`` in the gaps.
    ``text`` is the whole chunk when it has no ``?`` (matched with ``str.startswith``/``str.find``)."""

    length: int
    pieces: tuple[tuple[int, str], ...]
    text: str | None
    # The Shift-And table of a chunk with ?: character -> the positions it may take.
    masks: Mapping[str, int] = field(default_factory=dict, compare=False)
    wild: int = field(default=0, compare=False)  # the positions of the ? in the chunk

    def at(self, value: str, pos: int) -> bool:
        if self.text is not None:
            return value.startswith(self.text, pos)
        if pos + self.length > len(value):
            return False
        return all(value.startswith(lit, pos + off) for off, lit in self.pieces)

    def find(self, value: str, start: int, end: int) -> int:
        """The leftmost position p, start <= p <= end - length, where the chunk matches; -1 when none."""
        if self.text is not None:
            return value.find(self.text, start, end)
        if start > end - self.length:
            return -1
        if not self.pieces:
            return start
        for off, lit in self.pieces:  # a piece that does not occur rules the chunk out (one C-level scan each)
            if value.find(lit, start + off, end - self.length + off + len(lit)) < 0:
                return -1
        # Shift-And over the characters: bit i of ``state`` says the chunk's first i + 1 characters end here.
        # One pass, whatever the value: no candidate position is tried twice.
        masks, wild = self.masks, self.wild
        goal = 1 << (self.length - 1)
        state = 0
        first = max(start, value.find(self.pieces[0][1], start + self.pieces[0][0], end) - self.pieces[0][0])
        for i in range(first, end):
            state = ((state << 1) | 1) & masks.get(value[i], wild)
            if state & goal:
                return i - self.length + 1
        return -1


@dataclass(frozen=True)
class WildcardPattern:
    """A compiled pattern. ``chunks`` are the parts between stars (one chunk: no star at all)."""

    chunks: tuple[_Chunk, ...]
    min_length: int
    ignore_case: bool

    def matches(self, value: str) -> bool:
        if self.ignore_case:
            value = fold(value)
        chunks = self.chunks
        n = len(value)
        if len(chunks) == 1:
            only = chunks[0]
            return n == only.length and only.at(value, 0)
        if n < self.min_length:
            return False
        first, last = chunks[0], chunks[-1]
        tail = n - last.length
        if not first.at(value, 0) or not last.at(value, tail):
            return False
        pos = first.length
        for chunk in chunks[1:-1]:
            hit = chunk.find(value, pos, tail)
            if hit < 0:
                return False
            pos = hit + chunk.length
        return True


def _chunk(tokens: list[Token]) -> _Chunk:
    pieces: list[tuple[int, str]] = []
    offset = 0
    buf: list[str] = []
    start = 0
    for tok in tokens:
        if not isinstance(tok, str):  # ONE
            if buf:
                pieces.append((start, "".join(buf)))
                buf.clear()
            offset += 1
        else:
            if not buf:
                start = offset
            buf.append(tok)
            offset += len(tok)
    if buf:
        pieces.append((start, "".join(buf)))
    if all(isinstance(tok, str) for tok in tokens):
        return _Chunk(offset, tuple(pieces), "".join(lit for _, lit in pieces))
    wild = (1 << offset) - 1
    for off, lit in pieces:
        for i in range(off, off + len(lit)):
            wild &= ~(1 << i)
    masks: dict[str, int] = {}
    for off, lit in pieces:
        for i, ch in enumerate(lit, off):
            masks[ch] = masks.get(ch, wild) | (1 << i)
    return _Chunk(offset, tuple(pieces), None, masks, wild)


def compile_pattern(tokens: Iterable[Token], *, ignore_case: bool = False) -> WildcardPattern:
    """Compile a pattern given as tokens: literal strings (matched as they are, ``*`` and ``?`` included),
    :data:`STAR` and :data:`ONE`."""
    chunks: list[_Chunk] = []
    current: list[Token] = []
    for tok in tokens:
        if isinstance(tok, str):
            if tok:
                current.append(fold(tok) if ignore_case else tok)
        elif tok == STAR:
            chunks.append(_chunk(current))
            current = []
        elif tok == ONE:
            current.append(ONE)
        else:  # pragma: no cover - a programming error
            raise ValueError(f"not a wildcard token: {tok!r}")
    chunks.append(_chunk(current))
    return WildcardPattern(tuple(chunks), sum(c.length for c in chunks), ignore_case)


def _text_tokens(pattern: str) -> list[Token]:
    out: list[Token] = []
    buf: list[str] = []
    for ch in pattern:
        if ch == "*" or ch == "?":
            if buf:
                out.append("".join(buf))
                buf.clear()
            out.append(STAR if ch == "*" else ONE)
        else:
            buf.append(ch)
    if buf:
        out.append("".join(buf))
    return out


@lru_cache(maxsize=8192)
def compile_text(pattern: str, ignore_case: bool = False) -> WildcardPattern:
    """Compile a pattern in which every ``*`` and ``?`` is a wildcard (no policy variables): Action values."""
    return compile_pattern(_text_tokens(pattern), ignore_case=ignore_case)


def wildcard_match(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    """Whether ``value`` matches ``pattern`` (every ``*`` and ``?`` in it a wildcard)."""
    return compile_text(pattern, ignore_case).matches(value)
