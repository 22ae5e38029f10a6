"""Search over the catalogue entries: full text, facets, sort and pages, on either engine.

The database finds and scores the words; filters, facet counts, the date order and the page
are worked out on the in-memory columns of :mod:`.columns`. Both engines see the same stemmed
terms (:mod:`.analysis`), so a query finds the same entries on both.

**SQLite** matches with FTS5, and scores with bm25 (title terms weigh five times the rest):

- a query of one word (with its stems as alternatives) is scored by :mod:`.bm25` in numpy,
  from the doclists of its phrases in each column, which FTS5 reads far faster than its own
  ``bm25()`` ranks the matches (each doclist is part of the matches, at most all of them);
- a query of several words matches the intersection of their doclists, usually much smaller
  than any of them, and is scored by FTS5's ``rank`` column, configured by migration 0005 as
  ``bm25(5.0, 1.0)``: the same score.

One statement reads the matches, what scores them and the catalogue's generation, from one
snapshot, on a plain connection in a worker thread (SQLite releases the GIL while it reads);
when the columns this process holds are of that generation, the same worker also works out the
page and reads its entries, so a search costs one hop to a thread.

**PostgreSQL** matches the GIN-indexed stored tsvector and scores with ``ts_rank_cd``. Scoring
every match is most of the cost of a broad search, so on a large catalogue the two halves of the
ids are scored at once on two connections; each half reads its own snapshot, so a crawl that
commits in between can make the page and the counts differ by what it changed.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, Result, func, literal, literal_column, select
from sqlalchemy.ext.asyncio import AsyncSession

from rhenus.core.db import Database
from rhenus.dataspace.catalogue import bm25, columns
from rhenus.dataspace.catalogue.analysis import fts5_match, query_terms, tsquery
from rhenus.dataspace.catalogue.models import CatalogueEntry, CatalogueState
from rhenus.dataspace.catalogue.schemas import FacetValue, Hit, SearchQuery, SearchResult

# numpy is imported where it is used: a node that never needs it is ~11 MiB smaller.
if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

_VECTOR: ColumnElement[Any] = literal_column("catalogue_entries.search_vector")
# PostgreSQL: below this many entries one connection scores them all faster than two can.
SPLIT_FROM = 5_000

Terms = list[tuple[str, ...]]


@dataclass(frozen=True)
class Matches:
    """The entries matching a query's words, as read from one snapshot (or two halves)."""

    generation: int  # of the entries they were read from
    ids: NDArray[np.int64]
    ranks: NDArray[np.float64] | None = None  # aligned with ids, lower is better
    phrases: list[bm25.Phrase] | None = None  # or what scores them (:func:`.bm25.scores`)


async def search(db: Database, query: SearchQuery) -> SearchResult:
    """One page of entries matching the words and filters, with the facet counts of all."""
    terms = query_terms(query.q)
    if db.is_sqlite and db.engine.url.database:
        return await _sqlite_search(db, query, terms)
    async with db.session() as session:
        matches = await _matched(db, session, terms, query.sort == "relevance") if terms else None
        generation = None if matches is None else matches.generation
        entry_columns = await columns.current(session, generation)
        total, page_ids, chosen = _page(query, entry_columns, matches)
        hits = await _hits(session, page_ids)
    return _result(query, total, hits, entry_columns.facets(chosen))


def _page(
    query: SearchQuery, entry_columns: columns.EntryColumns, matches: Matches | None
) -> tuple[int, list[int], NDArray[np.intp] | None]:
    """The number of entries passing the query, the ids of its page, and their positions in
    the columns (None: all entries)."""
    start, stop = (query.page - 1) * query.per_page, query.page * query.per_page
    if matches is None:
        everything = entry_columns.select(query)
        total = entry_columns.size if everything is None else len(everything)
        return total, entry_columns.newest(everything, start, stop), everything
    chosen, known = entry_columns.locate(matches.ids)
    passing = entry_columns.passing(query, chosen)
    chosen = chosen[passing]
    if query.sort == "date":
        return len(chosen), entry_columns.newest(chosen, start, stop), chosen
    if matches.phrases is not None:
        assert entry_columns.lengths is not None  # loaded wherever phrases are read (SQLite)
        scores = bm25.scores(
            entry_columns.ids[chosen],
            entry_columns.lengths[chosen],
            matches.phrases,
            count=entry_columns.size,
            mean_length=entry_columns.mean_length,
        )
    else:
        assert matches.ranks is not None
        scores = matches.ranks[known][passing]
    return len(chosen), entry_columns.best(chosen, scores, start, stop), chosen


def _result(
    query: SearchQuery, total: int, hits: list[Hit], facets: dict[str, list[FacetValue]]
) -> SearchResult:
    return SearchResult(
        total=total, page=query.page, per_page=query.per_page, hits=hits, facets=facets
    )


async def _matched(db: Database, session: AsyncSession, terms: Terms, ranked: bool) -> Matches:
    if db.is_sqlite:  # an in-memory database: on the session's own connection
        statement, parameters, parsed = _sqlite_statement(terms, ranked)
        connection = await session.connection()
        result = await connection.exec_driver_sql(statement, tuple(parameters))
        return parsed(result.one())
    return await _scored(db, session, terms, ranked=ranked)


# -- SQLite ---------------------------------------------------------------------------------
async def _sqlite_search(db: Database, query: SearchQuery, terms: Terms) -> SearchResult:
    """:func:`search` on a SQLite file: the whole search in one worker thread when the
    columns held are current; else the columns are loaded, and the page read, after."""
    held = columns.cached(db)
    work = partial(_sqlite_answer, query, terms, held)
    answer: SearchResult | Matches | None = await db.read_in_thread(work)
    if isinstance(answer, SearchResult):
        return answer
    async with db.session() as session:
        generation = None if answer is None else answer.generation
        entry_columns = await columns.current(session, generation)
    return await db.read_in_thread(partial(_sqlite_page, query, entry_columns, answer))


# The generation, alone (no words) or with what the words matched; read in one statement.
_GENERATION = "SELECT coalesce((SELECT generation FROM catalogue_state), 0)"
_DOCLIST = (
    "(SELECT group_concat(rowid) FROM catalogue_entries_fts WHERE catalogue_entries_fts MATCH ?)"
)
_RANKED = (
    "SELECT coalesce((SELECT generation FROM catalogue_state), 0), group_concat(rowid), "
    "group_concat(rank) FROM catalogue_entries_fts WHERE catalogue_entries_fts MATCH ?"
)
_FTS_COLUMNS = ("search_title", "search_body")


def _sqlite_answer(
    query: SearchQuery,
    terms: Terms,
    held: columns.EntryColumns | None,
    connection: sqlite3.Connection,
) -> SearchResult | Matches | None:
    """In a worker thread: what the words match, and the whole answer if ``held`` is of the
    generation read with them; else only the matches (None: no words), for the page later."""
    matches: Matches | None = None
    if terms:
        statement, parameters, parsed = _sqlite_statement(terms, query.sort == "relevance")
        matches = parsed(connection.execute(statement, parameters).fetchone())
        generation = matches.generation
    else:
        generation = int(connection.execute(_GENERATION).fetchone()[0])
    if held is None or held.generation != generation:
        return matches
    return _sqlite_page(query, held, matches, connection)


def _sqlite_page(
    query: SearchQuery,
    entry_columns: columns.EntryColumns,
    matches: Matches | None,
    connection: sqlite3.Connection,
) -> SearchResult:
    total, page_ids, chosen = _page(query, entry_columns, matches)
    hits = _sqlite_hits(page_ids, connection)
    return _result(query, total, hits, entry_columns.facets(chosen))


def _sqlite_statement(
    terms: Terms, ranked: bool
) -> tuple[str, list[str], Callable[[Sequence[Any]], Matches]]:
    """The statement reading the generation and what the words match, its parameters (the
    words are never part of its text), and what makes :class:`Matches` of its row.

    By date, the matching ids suffice. One word: also the doclist of each of its phrases in
    each column, scored by :mod:`.bm25`. Several words: the matches scored by FTS5."""
    match = fts5_match(terms)
    if ranked and len(terms) > 1:
        return _RANKED, [match], _ranked
    phrases = [phrase for alternatives in terms for phrase in alternatives] if ranked else []
    distinct = list(dict.fromkeys(phrases))
    parameters = [match, *(f'{name} : "{p}"' for p in distinct for name in _FTS_COLUMNS)]
    statement = f"{_GENERATION}, {', '.join([_DOCLIST] * len(parameters))}"

    def parsed(row: Sequence[Any]) -> Matches:
        generation, joined, *doclists = row
        arrays = [_ids(text) for text in doclists]
        by_phrase = {
            p: bm25.Phrase(arrays[2 * i], arrays[2 * i + 1]) for i, p in enumerate(distinct)
        }
        return Matches(
            int(generation),
            _ids(joined),
            phrases=[by_phrase[p] for p in phrases] if ranked else None,
        )

    return statement, parameters, parsed


def _ranked(row: Sequence[Any]) -> Matches:
    import numpy as np

    generation, joined_ids, joined_ranks = row
    if not joined_ids:
        return Matches(int(generation), np.empty(0, dtype=np.int64), np.empty(0))
    ids = np.fromstring(joined_ids, dtype=np.int64, sep=",")
    return Matches(int(generation), ids, np.fromstring(joined_ranks, dtype=np.float64, sep=","))


def _ids(joined: str | None) -> NDArray[np.int64]:
    """``group_concat(rowid)``, ascending (FTS5 reads doclists so; group_concat promises no
    order)."""
    import numpy as np

    if not joined:
        return np.empty(0, dtype=np.int64)
    ids = np.fromstring(joined, dtype=np.int64, sep=",")
    ids.sort()
    return ids


# Each hit as the JSON of its wire format, built by SQLite from the columns as the models store
# them there (JSON as text, UTC datetimes without a zone) and validated by pydantic in one go.
_HIT_JSON = ", ".join(
    f"'{name}', "
    + {
        "title": "json(title)",
        "description": "json(description)",
        "keywords": "json(keywords)",
    }.get(name, f"{name} || 'Z'" if name in ("modified", "fetched_at") else name)
    for name in Hit.model_fields
)


def _sqlite_hits(ids: list[int], connection: sqlite3.Connection) -> list[Hit]:
    """:func:`_hits` on a plain SQLite connection (in a worker thread)."""
    if not ids:
        return []
    rows = connection.execute(
        f"SELECT id, json_object({_HIT_JSON}) FROM catalogue_entries "  # noqa: S608 (fixed names)
        f"WHERE id IN ({', '.join('?' * len(ids))})",
        ids,
    ).fetchall()
    by_id: dict[int, str] = dict(rows)
    return [Hit.model_validate_json(by_id[i]) for i in ids if i in by_id]


# -- PostgreSQL -----------------------------------------------------------------------------
async def _scored(
    db: Database, session: AsyncSession, terms: Terms, *, ranked: bool = True
) -> Matches:
    """The id and score of every match, and the generation of the entries they were read from.

    Scoring is most of a search's cost (``ts_rank_cd`` reads each match's vector), so a large
    catalogue is scored in two halves by id, at once, split where the columns this process
    holds put the middle: any split covers every id, including ids added since."""
    import numpy as np

    known = columns.cached(db)
    if not ranked or known is None or known.size < SPLIT_FROM:
        parts = [await _score(session, terms, None, None, ranked=ranked)]
    else:
        middle = int(known.ids[known.size // 2])
        async with db.session() as other:
            # Both connections are ready before either starts scoring: a small statement
            # queued behind two busy cores would otherwise hold the second half back.
            await other.connection()
            parts = list(
                await asyncio.gather(
                    _score(session, terms, None, middle), _score(other, terms, middle, None)
                )
            )
    return Matches(
        parts[0].generation,
        np.concatenate([part.ids for part in parts]),
        np.concatenate([part.ranks for part in parts if part.ranks is not None]),
    )


async def _score(
    session: AsyncSession,
    terms: Terms,
    above: int | None,
    upto: int | None,
    *,
    ranked: bool = True,
) -> Matches:
    """The matches with ``above < id <= upto``, scored (lower is better; all zero unless
    ``ranked``). Every id and score come in two aggregated text values: handing thousands of
    two-column rows over, one Python object each, costs more than scoring them."""
    import numpy as np

    tsq = func.to_tsquery(literal_column("'simple'::regconfig"), tsquery(terms))
    score = func.array_agg(-func.ts_rank_cd(_VECTOR, tsq)) if ranked else literal("")
    query = select(
        func.coalesce(select(CatalogueState.generation).scalar_subquery(), 0),
        func.array_to_string(func.array_agg(CatalogueEntry.id), ","),
        func.array_to_string(score, ",") if ranked else score,
    ).where(_VECTOR.op("@@")(tsq))
    if above is not None:
        query = query.where(CatalogueEntry.id > above)
    if upto is not None:
        query = query.where(CatalogueEntry.id <= upto)
    result: Result[Any] = await session.execute(query)
    row: Sequence[Any] = result.one()
    if ranked:
        return _ranked(row)
    generation, joined_ids, _ = row
    ids = _ids(joined_ids)
    return Matches(int(generation), ids, np.zeros(len(ids)))


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
