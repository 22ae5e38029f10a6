"""The entries' facet, origin and date columns, kept in memory per process as arrays.

Counting facets in SQL means visiting every matching row of a wide table: at 100,000 entries a
broad word matches thousands, and those visits cost more than the full-text match itself. Search
engines keep such fields column-wise instead (Lucene's doc values); so does this module. Each
process holds, per database, the entry ids in ascending order and aligned arrays of integer
codes, one per facet plus the origin, and the rank of each entry by date. A search asks the
database only for the ids that match its words; filtering, counting and sorting by date are
array operations over those ids.

The arrays are reloaded when the catalogue's generation (bumped by every change to the entries,
see :func:`.entries.generation`) moves on: one read of six short columns per change, which at
100,000 entries takes a fraction of a second, once per crawl that changed something.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import column, select, table
from sqlalchemy.ext.asyncio import AsyncSession

from rhenus.core.db import Database
from rhenus.dataspace.catalogue import bm25, entries
from rhenus.dataspace.catalogue.models import CatalogueEntry
from rhenus.dataspace.catalogue.schemas import FACETS, FacetValue, SearchQuery

# numpy is imported where it is used: a node that never needs it is ~11 MiB smaller.
if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

FACET_SIZE = 20
FILTERS = (*FACETS, "origin")


@dataclass(frozen=True)
class EntryColumns:
    """One generation of the entries, column-wise; positions index every array."""

    generation: int
    ids: NDArray[np.int64]  # ascending
    codes: dict[str, NDArray[np.int32]]  # per filter column: index into values[name]
    values: dict[str, list[str]]
    newest_first: NDArray[np.intp]  # positions by modified desc, id desc
    date_rank: NDArray[np.intp]  # date_rank[position] = its index in newest_first
    # SQLite: each entry's length in full-text tokens, for :mod:`.bm25` (None on PostgreSQL)
    lengths: NDArray[np.float64] | None = None

    @property
    def mean_length(self) -> float:
        return float(self.lengths.mean()) if self.lengths is not None and self.size else 0.0

    @property
    def size(self) -> int:
        return len(self.ids)

    def locate(self, ids: NDArray[np.int64]) -> tuple[NDArray[np.intp], NDArray[np.bool_]]:
        """The positions of the ids this generation knows, and which of the ids those are."""
        import numpy as np

        found = np.searchsorted(self.ids, ids)
        known = found < self.size
        known[known] = self.ids[found[known]] == ids[known]
        return found[known].astype(np.intp), known

    def passing(self, query: SearchQuery, among: NDArray[np.intp]) -> NDArray[np.intp]:
        """Which of ``among`` pass the query's filters, as indexes into ``among``."""
        import numpy as np

        mask = self._mask(query, among)
        return np.arange(len(among), dtype=np.intp) if mask is None else np.flatnonzero(mask)

    def select(self, query: SearchQuery) -> NDArray[np.intp] | None:
        """The positions of the entries that pass the query's filters (None: all of them)."""
        import numpy as np

        mask = self._mask(query, None)
        return None if mask is None else np.flatnonzero(mask)

    def _mask(self, query: SearchQuery, among: NDArray[np.intp] | None) -> NDArray[np.bool_] | None:
        import numpy as np

        mask: NDArray[np.bool_] | None = None
        for name in FILTERS:
            wanted = set(getattr(query, name))
            if not wanted:
                continue
            codes = [i for i, v in enumerate(self.values[name]) if v in wanted]
            column = self.codes[name] if among is None else self.codes[name][among]
            passes = np.isin(column, codes)
            mask = passes if mask is None else mask & passes
        return mask

    def facets(self, chosen: NDArray[np.intp] | None) -> dict[str, list[FacetValue]]:
        """The most frequent values of each facet among the chosen positions (None: all)."""
        import numpy as np

        facets: dict[str, list[FacetValue]] = {}
        for name in FACETS:
            values, column = self.values[name], self.codes[name]
            counts = np.bincount(
                column if chosen is None else column[chosen], minlength=len(values)
            )
            top = sorted(
                ((int(c), values[code]) for code, c in enumerate(counts) if c and values[code]),
                key=lambda item: (-item[0], item[1]),
            )[:FACET_SIZE]
            facets[name] = [FacetValue(value=v, count=c) for c, v in top]
        return facets

    def newest(self, chosen: NDArray[np.intp] | None, start: int, stop: int) -> list[int]:
        """Ids of the chosen positions (or all) from ``start`` to ``stop``, newest first."""
        import numpy as np

        if chosen is None:
            return [int(i) for i in self.ids[self.newest_first[start:stop]]]
        if start >= len(chosen):
            return []
        ranks = self.date_rank[chosen]
        if stop < len(ranks):  # only the first ``stop`` need sorting
            ranks = ranks[np.argpartition(ranks, stop - 1)[:stop]]
        ranks.sort()
        return [int(i) for i in self.ids[self.newest_first[ranks[start:stop]]]]

    def best(
        self, chosen: NDArray[np.intp], scores: NDArray[np.float64], start: int, stop: int
    ) -> list[int]:
        """Ids of the chosen positions from ``start`` to ``stop`` by score (lower is better;
        ties: the most recently modified first)."""
        import numpy as np

        if start >= len(chosen):
            return []
        if stop < len(scores):  # only those scoring at most the stop-th best need sorting
            kth = np.partition(scores, stop - 1)[stop - 1]
            keep = scores <= kth
            chosen, scores = chosen[keep], scores[keep]
        order = np.lexsort((self.date_rank[chosen], scores))
        return [int(i) for i in self.ids[chosen[order[start:stop]]]]


# FTS5's record of each entry's size in tokens, per column (migration 0005's index).
_DOCSIZE = table("catalogue_entries_fts_docsize", column("id"), column("sz"))
_CACHE: dict[str, EntryColumns] = {}
_LOCKS: dict[str, asyncio.Lock] = {}


def cached(db: Database) -> EntryColumns | None:
    """The columns this process holds for the database, whatever their generation."""
    return _CACHE.get(str(db.engine.url))


async def current(session: AsyncSession, generation: int | None = None) -> EntryColumns:
    """The columns of the entries as this session sees them, loaded again if they changed
    (``generation``: the one already read, with the matches, saving a statement)."""
    key = str(session.get_bind().engine.url)
    if generation is None:
        generation = await entries.generation(session)
    cached = _CACHE.get(key)
    if cached is not None and cached.generation == generation:
        return cached
    async with _LOCKS.setdefault(key, asyncio.Lock()):
        cached = _CACHE.get(key)
        if cached is None or cached.generation != generation:
            # The generation is read before the rows: if a change lands in between, the rows
            # are newer than their label and the next search simply loads them again.
            cached = _CACHE[key] = await _load(session, generation)
    return cached


async def _load(session: AsyncSession, generation: int) -> EntryColumns:
    import numpy as np

    columns = [getattr(CatalogueEntry, name) for name in FILTERS]
    statement = select(CatalogueEntry.id, CatalogueEntry.modified, *columns)
    sqlite = session.get_bind().dialect.name == "sqlite"
    if sqlite:  # in the same statement, so the lengths are those of the same entries
        statement = statement.add_columns(_DOCSIZE.c.sz).outerjoin(
            _DOCSIZE, _DOCSIZE.c.id == CatalogueEntry.id
        )
    result = await session.execute(statement.order_by(CatalogueEntry.id))
    rows: Sequence[Any] = result.all()
    ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    modified = np.fromiter((r[1].timestamp() for r in rows), dtype=np.float64, count=len(rows))
    codes: dict[str, NDArray[np.int32]] = {}
    values: dict[str, list[str]] = {}
    for index, name in enumerate(FILTERS, start=2):
        seen: dict[str, int] = {}
        codes[name] = np.fromiter(
            (seen.setdefault(r[index], len(seen)) for r in rows), dtype=np.int32, count=len(rows)
        )
        values[name] = list(seen)
    newest_first = np.lexsort((-ids, -modified)).astype(np.intp)
    date_rank = np.empty_like(newest_first)
    date_rank[newest_first] = np.arange(len(rows), dtype=np.intp)
    lengths = bm25.token_counts([r[-1] for r in rows]) if sqlite else None
    return EntryColumns(generation, ids, codes, values, newest_first, date_rank, lengths)
