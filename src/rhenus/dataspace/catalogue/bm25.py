"""FTS5's ``bm25()`` ranking, computed with numpy from which column of each match holds a phrase.

FTS5 spends about a microsecond ranking each match (its ``bm25`` reads the match's column sizes
from the index, row by row, and walks its position lists), which made a word found in 5 % of a
large catalogue cost most of its search. The formula needs much less: which matches hold each
phrase of the query in the title and in the rest, how many entries hold each phrase, and each
entry's length in tokens. The first two are the phrases' own doclists, which FTS5 reads ten
times faster than it ranks (``group_concat(rowid)`` of a column-filtered match); the lengths
are an in-memory column (:mod:`.columns`), read once from FTS5's ``docsize`` table.

The result is FTS5's own score (SQLite's ``fts5_aux.c``, ``fts5Bm25Function``), to rounding:

    score = - Σ_phrases idf(phrase) · f · (k1 + 1) / (f + k1 · (1 - b + b · D / avgD))

with ``f`` the phrase's frequency in the entry weighted by column (5 in the title, 1 in the
rest, as the migration configures ``bm25(5.0, 1.0)``), ``D`` the entry's length in tokens,
``avgD`` the mean length, and ``idf = ln((N - n + 0.5) / (n + 0.5))`` (at least 10⁻⁶) for ``n``
of the ``N`` entries holding the phrase. The index holds each term once per column (see
:func:`.analysis.index_terms`), so a phrase's frequency in a column is 0 or 1.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

# numpy is imported where it is used: a node that never needs it is ~11 MiB smaller.
if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray


K1 = 1.2
B = 0.75
TITLE_WEIGHT, BODY_WEIGHT = 5.0, 1.0  # as bm25(5.0, 1.0) in migration 0005


@dataclass(frozen=True)
class Phrase:
    """The ids (ascending) of the entries holding one phrase in their title and in the rest."""

    title: NDArray[np.int64]
    body: NDArray[np.int64]

    def entries(self) -> int:
        """How many entries hold the phrase in either column."""
        import numpy as np

        both = int(np.count_nonzero(_within(self.title, self.body)))
        return len(self.title) + len(self.body) - both


def scores(
    ids: NDArray[np.int64],
    lengths: NDArray[np.float64],
    phrases: Sequence[Phrase],
    *,
    count: int,
    mean_length: float,
) -> NDArray[np.float64]:
    """The bm25 score (lower is better, as FTS5's ``rank``) of the entries ``ids``, of
    ``lengths`` tokens each, among ``count`` entries of ``mean_length`` tokens on average;
    ``phrases`` are those of the query, in its order (a phrase twice counts twice, as in FTS5)."""
    import numpy as np

    norm = K1 * (1.0 - B + B * lengths / max(mean_length, 1e-9))
    total = np.zeros(len(ids), dtype=np.float64)
    for phrase in phrases:
        holding = phrase.entries()
        idf = math.log((count - holding + 0.5) / (holding + 0.5))
        idf = idf if idf > 0.0 else 1e-6
        frequency = TITLE_WEIGHT * _within(ids, phrase.title) + BODY_WEIGHT * _within(
            ids, phrase.body
        )
        total += idf * frequency * (K1 + 1.0) / (frequency + norm)
    return -total


def _within(values: NDArray[np.int64], ascending: NDArray[np.int64]) -> NDArray[np.bool_]:
    """Which of ``values`` are in ``ascending`` (sorted, distinct)."""
    import numpy as np

    if not len(ascending):
        return np.zeros(len(values), dtype=np.bool_)
    found = np.searchsorted(ascending, values)
    np.minimum(found, len(ascending) - 1, out=found)
    within: NDArray[np.bool_] = ascending[found] == values
    return within


def token_counts(sizes: Sequence[bytes | None]) -> NDArray[np.float64]:
    """Each entry's length in tokens, from its FTS5 ``docsize`` record (one SQLite varint per
    column: big-endian groups of 7 bits, the high bit set on all bytes but the last)."""
    import numpy as np

    counts = np.zeros(len(sizes), dtype=np.float64)
    present = [i for i, size in enumerate(sizes) if size]
    if not present:
        return counts
    records = [sizes[i] or b"" for i in present]
    data = np.frombuffer(b"".join(records), dtype=np.uint8)
    record_of_byte = np.repeat(np.arange(len(records)), [len(r) for r in records])
    last = data < 0x80  # the last byte of each varint
    varint_of_byte = np.concatenate(([0], np.cumsum(last)[:-1]))
    starts = np.flatnonzero(np.concatenate(([True], last[:-1])))
    widths = np.diff(np.append(starts, len(data)))
    place = widths[varint_of_byte] - 1 - (np.arange(len(data)) - starts[varint_of_byte])
    values = np.bincount(
        varint_of_byte, weights=(data & 0x7F).astype(np.float64) * np.exp2(7.0 * place)
    )
    counts[present] = np.bincount(record_of_byte[starts], weights=values, minlength=len(records))
    return counts
