"""Search over the catalogue entries: full text, facets, sort and pages, on either engine.

The database matches words and ranks by relevance; everything else is done on the in-memory
columns of :mod:`.columns`. SQLite matches with FTS5 and ranks with its ``rank`` column,
configured by the migration as ``bm25(5.0, 1.0)`` (title terms weigh five times the rest);
PostgreSQL matches the GIN-indexed stored tsvector and ranks with ``ts_rank_cd``. Both see the
same stemmed terms (:mod:`.analysis`), so a query finds the same entries on both.

A search by relevance runs two statements at once on two connections (SQLite serves concurrent
readers under WAL, and releases the GIL while it works): the ids of every match, for the count
and the facets, and the ranked page. Each reads its own snapshot, so a crawl that commits between
them can make the page and the counts differ by what that crawl changed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import ColumnElement, Result, column, func, literal, literal_column, select, table
from sqlalchemy.ext.asyncio import AsyncSession

from rhenus.core.db import Database
from rhenus.dataspace.catalogue import columns
from rhenus.dataspace.catalogue.analysis import fts5_match, query_terms, tsquery
from rhenus.dataspace.catalogue.models import CatalogueEntry, CatalogueState
from rhenus.dataspace.catalogue.schemas import Hit, SearchQuery, SearchResult

_FTS = table("catalogue_entries_fts", column("rowid"), column("rank"))
_VECTOR: ColumnElement[Any] = literal_column("catalogue_entries.search_vector")
# Below this many entries one connection scores them all faster than two can.
SPLIT_FROM = 5_000


async def search(db: Database, query: SearchQuery) -> SearchResult:
    """One page of entries matching the words and filters, with the facet counts of all."""
    terms = query_terms(query.q)
    start, stop = (query.page - 1) * query.per_page, query.page * query.per_page
    chosen: NDArray[np.intp] | None
    async with db.session() as session:
        if terms:
            ranked = query.sort == "relevance"  # by date, no scores: one connection finds all
            entry_columns, (ids, scores) = await _scored(db, session, terms, ranked=ranked)
            chosen, known = entry_columns.locate(ids)
            passing = entry_columns.passing(query, chosen)
            chosen, scores = chosen[passing], scores[known][passing]
            if query.sort == "date":
                page_ids = entry_columns.newest(chosen, start, stop)
            else:
                page_ids = entry_columns.best(chosen, scores, start, stop)
            total = len(chosen)
        else:
            entry_columns = await columns.current(session)
            chosen = entry_columns.select(query)
            page_ids = entry_columns.newest(chosen, start, stop)
            total = entry_columns.size if chosen is None else len(chosen)
        hits = await _hits(session, page_ids)
    return SearchResult(
        total=total,
        page=query.page,
        per_page=query.per_page,
        hits=hits,
        facets=entry_columns.facets(chosen),
    )


_Scores = tuple[NDArray[np.int64], NDArray[np.float64]]


async def _scored(
    db: Database, session: AsyncSession, terms: list[tuple[str, ...]], *, ranked: bool = True
) -> tuple[columns.EntryColumns, _Scores]:
    """The current columns, and the id and score (lower is better) of every match.

    Scoring is most of a search's cost (FTS5's bm25 reads each match's column sizes), so a
    large catalogue is scored in two halves by id, at once, on two connections, split where
    the columns this process holds put the middle: any split covers every id, including ids
    added since. The scoring statement also reads the catalogue's generation, which says
    whether those columns are still current."""
    known = columns.cached(session)
    if not ranked or known is None or known.size < SPLIT_FROM:
        ids, scores, generation = await _score(session, terms, None, None, ranked=ranked)
        return await columns.current(session, generation), (ids, scores)
    middle = int(known.ids[known.size // 2])
    async with db.session() as other:
        # Both connections are ready before either starts scoring: a small statement queued
        # behind two busy cores would otherwise hold the second half back.
        await other.connection()
        (low_ids, low_scores, generation), (high_ids, high_scores, _) = await asyncio.gather(
            _score(session, terms, None, middle), _score(other, terms, middle, None)
        )
    ids = np.concatenate((low_ids, high_ids))
    return await columns.current(session, generation), (
        ids,
        np.concatenate((low_scores, high_scores)),
    )


# Every id and score in two aggregated text values: handing thousands of two-column rows over,
# one Python object each, costs more than scoring them.
_SQLITE_SCORES = (
    "SELECT group_concat(rowid), {scores}, (SELECT generation FROM catalogue_state) "
    "FROM catalogue_entries_fts WHERE catalogue_entries_fts MATCH ? AND rowid > ? AND rowid <= ?"
)
_LAST_ID = 2**63 - 1


async def _score(
    session: AsyncSession,
    terms: list[tuple[str, ...]],
    above: int | None,
    upto: int | None,
    *,
    ranked: bool = True,
) -> tuple[NDArray[np.int64], NDArray[np.float64], int]:
    """Ids and scores (lower is better; all zero unless ``ranked``) of the matches with
    ``above < id <= upto``, and the generation of the entries they were read from."""
    if session.get_bind().dialect.name == "sqlite":
        bounds = (-1 if above is None else above, _LAST_ID if upto is None else upto)
        # FTS5's rank is bm25 as the migration configured it, lower for better matches.
        connection = await session.connection()
        statement = _SQLITE_SCORES.format(scores="group_concat(rank)" if ranked else "''")
        result: Result[Any] = await connection.exec_driver_sql(
            statement, (fts5_match(terms), *bounds)
        )
    else:
        tsq = func.to_tsquery(literal_column("'simple'::regconfig"), tsquery(terms))
        score = func.array_agg(-func.ts_rank_cd(_VECTOR, tsq)) if ranked else literal("")
        query = select(
            func.array_to_string(func.array_agg(CatalogueEntry.id), ","),
            func.array_to_string(score, ",") if ranked else score,
            select(CatalogueState.generation).scalar_subquery(),
        ).where(_VECTOR.op("@@")(tsq))
        if above is not None:
            query = query.where(CatalogueEntry.id > above)
        if upto is not None:
            query = query.where(CatalogueEntry.id <= upto)
        result = await session.execute(query)
    row: Sequence[Any] = result.one()
    joined_ids, joined_scores, generation = row
    if not joined_ids:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64), int(generation)
    ids = np.fromstring(joined_ids, dtype=np.int64, sep=",")
    if not ranked:
        return ids, np.zeros(len(ids), dtype=np.float64), int(generation)
    return ids, np.fromstring(joined_scores, dtype=np.float64, sep=","), int(generation)


_HIT_COLUMNS = [getattr(CatalogueEntry, name) for name in Hit.model_fields]


async def _hits(session: AsyncSession, ids: list[int]) -> list[Hit]:
    """The page's entries in the given order, read column by column (documents stay put)."""
    if not ids:
        return []
    rows = await session.execute(
        select(CatalogueEntry.id, *_HIT_COLUMNS).where(CatalogueEntry.id.in_(ids))
    )
    by_id = {row[0]: row for row in rows.all()}
    names = list(Hit.model_fields)
    return [
        Hit.model_validate(dict(zip(names, by_id[i][1:], strict=True))) for i in ids if i in by_id
    ]
