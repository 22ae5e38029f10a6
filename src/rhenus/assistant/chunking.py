"""A document's blocks cut into chunks along its structure, each about ``size`` characters.

A chunk gathers whole paragraphs of one section on one page: a heading, or a new page, starts
a new chunk (so every chunk cites one page and sits under one heading). A section longer than
``size`` is cut between paragraphs, and a paragraph longer than ``size`` at sentence ends (at
spaces, for a sentence longer still); each chunk cut so inside a section repeats the last
``overlap`` characters of the one before, so that a sentence cut by the boundary is still whole
in one of them. The heading is kept in the chunk's metadata, not in its text.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from rhenus.assistant.parsers import Block

_SENTENCE_END = re.compile(r"(?<=[.!?…;:])\s+")


@dataclass
class Piece:
    """A chunk before it is embedded: its text, page and the headings above it."""

    text: str
    page: int | None
    headings: list[str] = field(default_factory=list)


def chunks(blocks: list[Block], *, size: int = 1000, overlap: int = 200) -> list[Piece]:
    """The chunks of a document's blocks, in order."""
    overlap = max(0, min(overlap, size // 2))
    out: list[Piece] = []
    headings: list[str] = []
    levels: list[int] = []
    current: list[str] = []
    page: int | None = None

    def flush(carry: bool) -> None:
        nonlocal current
        text = "\n\n".join(current).strip()
        if text:
            out.append(Piece(text, page, list(headings)))
        current = [_tail(text, overlap)] if carry and overlap and text else []

    for block in blocks:
        if block.page != page:
            flush(carry=False)
            page = block.page
        if block.heading:
            flush(carry=False)
            while levels and levels[-1] >= block.level:
                levels.pop()
                headings.pop()
            levels.append(block.level)
            headings.append(block.text)
            continue
        for part in _split(block.text, size):
            if current and _length(current) + len(part) + 2 > size:
                flush(carry=True)
            current.append(part)
    flush(carry=False)
    return out


def _length(parts: list[str]) -> int:
    return sum(len(p) for p in parts) + 2 * max(0, len(parts) - 1)


def _split(text: str, size: int) -> Iterator[str]:
    """``text`` as parts of at most ``size`` characters, cut at sentence ends, else spaces."""
    if len(text) <= size:
        yield text
        return
    part = ""
    for sentence in _SENTENCE_END.split(text):
        for piece in _by_words(sentence, size):
            if part and len(part) + 1 + len(piece) > size:
                yield part
                part = piece
            else:
                part = f"{part} {piece}" if part else piece
    if part:
        yield part


def _by_words(sentence: str, size: int) -> Iterator[str]:
    if len(sentence) <= size:
        yield sentence
        return
    line = ""
    for word in sentence.split():
        while len(word) > size:  # no space to cut at (a URL, a hash): cut it where it is
            if line:
                yield line
                line = ""
            yield word[:size]
            word = word[size:]
        if line and len(line) + 1 + len(word) > size:
            yield line
            line = word
        else:
            line = f"{line} {word}" if line else word
    if line:
        yield line


def _tail(text: str, length: int) -> str:
    """The last ``length`` characters of ``text``, from a word's start."""
    if len(text) <= length:
        return text
    tail = text[-length:]
    space = tail.find(" ")
    return tail[space + 1 :] if 0 <= space < len(tail) - 1 else tail
