"""Search over the catalogue entries: full text, facets, sort and pages, on either engine.

The database finds and scores the words; filters, facet counts, the date order and the page are
worked out on the in-memory columns of :mod:`.columns`. SQLite matches with FTS5 and scores
with its ``rank`` column, configured by the migration as ``bm25(5.0, 1.0)`` (title terms weigh
five times the rest); PostgreSQL matches the GIN-indexed stored tsvector and scores with
``ts_rank_cd``. Both see the same stemmed terms (:mod:`.analysis`), so a query finds the same
entries on both.

Scoring every match is most of the cost of a broad search, so on a large catalogue the two
halves of the ids are scored at once on two connections; on SQLite, on plain connections in
two threads (SQLite releases the GIL while it works). Each half reads its own snapshot, so a
crawl that commits in between can make the page and the counts differ by what it changed.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import partial
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
        if db.is_sqlite and db.engine.url.database:
            hits = await db.read_in_thread(partial(_sqlite_hits, page_ids))
        else:
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
    large catalogue is scored in two halves by id, at once, split where the columns this
    process holds put the middle: any split covers every id, including ids added since. The
    scoring statement also reads the catalogue's generation, which says whether those columns
    are still current. On SQLite the halves run on plain connections in two threads."""
    known = columns.cached(session)
    halves: list[tuple[int | None, int | None]] = [(None, None)]
    if ranked and known is not None and known.size >= SPLIT_FROM:
        middle = int(known.ids[known.size // 2])
        halves = [(None, middle), (middle, None)]
    if db.is_sqlite and db.engine.url.database:
        match = fts5_match(terms)
        parts = await asyncio.gather(
            *(
                db.read_in_thread(partial(_sqlite_scores, match, above, upto, ranked))
                for above, upto in halves
            )
        )
    elif len(halves) == 1:
        parts = [await _score(session, terms, None, None, ranked=ranked)]
    else:
        async with db.session() as other:
            # Both connections are ready before either starts scoring: a small statement
            # queued behind two busy cores would otherwise hold the second half back.
            await other.connection()
            parts = list(
                await asyncio.gather(
                    _score(session, terms, *halves[0]), _score(other, terms, *halves[1])
                )
            )
    generation = parts[0][2]
    return await columns.current(session, generation), (
        np.concatenate([part[0] for part in parts]),
        np.concatenate([part[1] for part in parts]),
    )


# Every id and score in two aggregated text values: handing thousands of two-column rows over,
# one Python object each, costs more than scoring them.
_SQLITE_SCORES = (
    "SELECT group_concat(rowid), {scores}, "
    "coalesce((SELECT generation FROM catalogue_state), 0) FROM catalogue_entries_fts "
    "WHERE catalogue_entries_fts MATCH ? AND rowid > ? AND rowid <= ?"
)
_LAST_ID = 2**63 - 1


_Scored = tuple[NDArray[np.int64], NDArray[np.float64], int]


def _sqlite_scores(
    match: str, above: int | None, upto: int | None, ranked: bool, connection: sqlite3.Connection
) -> _Scored:
    """Ids and scores of the FTS5 matches with ``above < id <= upto`` (in a worker thread)."""
    bounds = (-1 if above is None else above, _LAST_ID if upto is None else upto)
    statement = _SQLITE_SCORES.format(scores="group_concat(rank)" if ranked else "''")
    joined_ids, joined_scores, generation = connection.execute(
        statement, (match, *bounds)
    ).fetchone()
    return _parsed(joined_ids, joined_scores, generation, ranked)


async def _score(
    session: AsyncSession,
    terms: list[tuple[str, ...]],
    above: int | None,
    upto: int | None,
    *,
    ranked: bool = True,
) -> _Scored:
    """Ids and scores (lower is better; all zero unless ``ranked``) of the matches with
    ``above < id <= upto``, and the generation of the entries they were read from."""
    if session.get_bind().dialect.name == "sqlite":  # an in-memory database: no threads
        connection = await session.connection()
        statement = _SQLITE_SCORES.format(scores="group_concat(rank)" if ranked else "''")
        bounds = (-1 if above is None else above, _LAST_ID if upto is None else upto)
        result: Result[Any] = await connection.exec_driver_sql(
            statement, (fts5_match(terms), *bounds)
        )
    else:
        tsq = func.to_tsquery(literal_column("'simple'::regconfig"), tsquery(terms))
        score = func.array_agg(-func.ts_rank_cd(_VECTOR, tsq)) if ranked else literal("")
        query = select(
            func.array_to_string(func.array_agg(CatalogueEntry.id), ","),
            func.array_to_string(score, ",") if ranked else score,
            func.coalesce(select(CatalogueState.generation).scalar_subquery(), 0),
        ).where(_VECTOR.op("@@")(tsq))
        if above is not None:
            query = query.where(CatalogueEntry.id > above)
        if upto is not None:
            query = query.where(CatalogueEntry.id <= upto)
        result = await session.execute(query)
    row: Sequence[Any] = result.one()
    joined_ids, joined_scores, generation = row
    return _parsed(joined_ids, joined_scores, generation, ranked)


def _parsed(
    joined_ids: str | None, joined_scores: str | None, generation: int, ranked: bool
) -> _Scored:
    if not joined_ids:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64), int(generation)
    ids = np.fromstring(joined_ids, dtype=np.int64, sep=",")
    if not ranked or not joined_scores:
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


_HIT_NAMES = list(Hit.model_fields)
_JSON_FIELDS = {"title", "description", "keywords"}
_DATE_FIELDS = {"modified", "fetched_at"}


def _sqlite_hits(ids: list[int], connection: sqlite3.Connection) -> list[Hit]:
    """:func:`_hits` on a plain SQLite connection (in a worker thread): the columns as the
    models store them there, JSON as text and UTC datetimes without a zone."""
    if not ids:
        return []
    rows = connection.execute(
        f"SELECT id, {', '.join(_HIT_NAMES)} FROM catalogue_entries "  # noqa: S608 (fixed names)
        f"WHERE id IN ({', '.join('?' * len(ids))})",
        ids,
    ).fetchall()
    by_id = {row[0]: row[1:] for row in rows}
    hits = []
    for i in ids:
        if i not in by_id:
            continue
        fields: dict[str, Any] = dict(zip(_HIT_NAMES, by_id[i], strict=True))
        for name in _JSON_FIELDS:
            fields[name] = json.loads(fields[name])
        for name in _DATE_FIELDS:
            fields[name] = datetime.fromisoformat(fields[name]).replace(tzinfo=UTC)
        hits.append(Hit.model_validate(fields))
    return hits
