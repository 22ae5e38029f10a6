"""Search over the catalogue entries: full text, facets, sort and pages, on either engine.

SQLite matches with FTS5 and ranks with its ``rank`` column, configured by the migration as
``bm25(5.0, 1.0)`` (title terms weigh five times the rest); PostgreSQL matches the GIN-indexed
weighted tsvector and ranks with ``ts_rank_cd``. Both see the same stemmed terms
(:mod:`.analysis`), so a query finds the same entries on both.

Every statement starts from the full-text match (or from the whole table when there are no
words), so the count, the page and each facet cost what the matches cost, not the catalogue.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from sqlalchemy import ColumnElement, Select, column, func, literal_column, select, table
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import FromClause

from rhenus.dataspace.catalogue.analysis import fts5_match, query_terms, tsquery
from rhenus.dataspace.catalogue.models import CatalogueEntry
from rhenus.dataspace.catalogue.schemas import FACETS, FacetValue, Hit, SearchQuery, SearchResult

FACET_SIZE = 20
_FTS = table("catalogue_entries_fts", column("rowid"), column("rank"))
_TSVECTOR: ColumnElement[Any] = literal_column(
    "(setweight(to_tsvector('simple'::regconfig, catalogue_entries.search_title), 'A') || "
    "setweight(to_tsvector('simple'::regconfig, catalogue_entries.search_body), 'B'))"
)
_ENTRIES: FromClause = CatalogueEntry.__table__


class _Plan:
    """Where the matches come from, what filters them, and how relevant each one is."""

    def __init__(self, session: AsyncSession, query: SearchQuery) -> None:
        terms = query_terms(query.q)
        self.where: list[ColumnElement[bool]] = []
        self.source: FromClause = _ENTRIES
        self.rank: ColumnElement[Any] | None = None
        if terms and session.get_bind().dialect.name == "sqlite":
            # FTS5's rank is lower for better matches.
            self.source = _FTS.join(_ENTRIES, CatalogueEntry.id == _FTS.c.rowid)
            match = literal_column("catalogue_entries_fts").op("MATCH")(fts5_match(terms))
            self.where.append(match)
            self.rank = -_FTS.c.rank
        elif terms:
            tsq = func.to_tsquery(literal_column("'simple'::regconfig"), tsquery(terms))
            self.where.append(_TSVECTOR.op("@@")(tsq))
            self.rank = func.ts_rank_cd(_TSVECTOR, tsq)
        for name in (*FACETS, "origin"):
            values = getattr(query, name)
            if values:
                self.where.append(getattr(CatalogueEntry, name).in_(values))

    def select(self, *columns: Any) -> Select[Any]:
        return select(*columns).select_from(self.source).where(*self.where)


async def search(session: AsyncSession, query: SearchQuery) -> SearchResult:
    """One page of entries matching the words and filters, with the facet counts of all."""
    plan = _Plan(session, query)
    if plan.rank is None or query.sort == "date":
        order: list[ColumnElement[Any]] = [
            CatalogueEntry.modified.desc(),
            CatalogueEntry.id.desc(),
        ]
    else:
        order = [plan.rank.desc(), CatalogueEntry.modified.desc(), CatalogueEntry.id.desc()]
    # Rank and sort narrow rows first, then read the page's entries: sorting whole rows
    # (documents included) costs ten times more.
    page_ids = list(
        (
            await session.scalars(
                plan.select(CatalogueEntry.id)
                .order_by(*order)
                .offset((query.page - 1) * query.per_page)
                .limit(query.per_page)
            )
        ).all()
    )
    found = await session.scalars(select(CatalogueEntry).where(CatalogueEntry.id.in_(page_ids)))
    by_id = {e.id: e for e in found.all()}
    hits = [_hit(by_id[i]) for i in page_ids if i in by_id]
    if plan.rank is None:
        total, facets = await _browse_facets(session, plan, unfiltered=not plan.where)
    else:
        total, facets = await _facets(session, plan)
    return SearchResult(
        total=total, page=query.page, per_page=query.per_page, hits=hits, facets=facets
    )


async def _facets(session: AsyncSession, plan: _Plan) -> tuple[int, dict[str, list[FacetValue]]]:
    """The number of matches and the facet counts, from one pass over the matches: one
    statement grouped by all facet columns at once, summed per facet here."""
    columns = [getattr(CatalogueEntry, name) for name in FACETS]
    rows = await session.execute(plan.select(*columns, func.count()).group_by(*columns))
    counters: dict[str, Counter[str]] = {name: Counter() for name in FACETS}
    total = 0
    for *values, count in rows.all():
        total += count
        for name, value in zip(FACETS, values, strict=True):
            if value:
                counters[name][value] += count
    facets = {
        name: [
            FacetValue(value=v, count=c)
            for v, c in sorted(counter.items(), key=lambda item: (-item[1], item[0]))[:FACET_SIZE]
        ]
        for name, counter in counters.items()
    }
    return total, facets


_BROWSE_CACHE: dict[tuple[Any, ...], tuple[int, dict[str, list[FacetValue]]]] = {}


async def _browse_facets(
    session: AsyncSession, plan: _Plan, *, unfiltered: bool
) -> tuple[int, dict[str, list[FacetValue]]]:
    """Facets without words: one GROUP BY per facet, each read from that facet's index.

    The unfiltered landing view is the same for everyone until an entry changes, so it is
    kept per process and checked against (count, highest id, latest change) of the entries.
    """
    key: tuple[Any, ...] = ()
    if unfiltered:
        signature = await session.execute(
            select(func.count(), func.max(CatalogueEntry.id), func.max(CatalogueEntry.modified))
        )
        key = (str(session.get_bind().engine.url), *signature.one())
        if key in _BROWSE_CACHE:
            return _BROWSE_CACHE[key]
    total = int(await session.scalar(plan.select(func.count())) or 0)
    facets: dict[str, list[FacetValue]] = {}
    for name in FACETS:
        facet = getattr(CatalogueEntry, name)
        counts = await session.execute(
            plan.select(facet, func.count())
            .group_by(facet)
            .order_by(func.count().desc(), facet)
            .limit(FACET_SIZE)
        )
        facets[name] = [FacetValue(value=v, count=c) for v, c in counts.all() if v]
    if unfiltered:
        _BROWSE_CACHE.clear()  # one landing view per process is enough
        _BROWSE_CACHE[key] = (total, facets)
    return total, facets


def _hit(entry: CatalogueEntry) -> Hit:
    offers = entry.document.get("hasPolicy", [])
    return Hit(
        origin=entry.origin,
        dataset_id=entry.dataset_id,
        title=entry.title,
        description=entry.description,
        keywords=entry.keywords,
        publisher=entry.publisher,
        country=entry.country,
        theme=entry.theme,
        license=entry.license,
        format=entry.format,
        modified=entry.modified.isoformat(),
        fetched_at=entry.fetched_at.isoformat(),
        offers=len(offers) if isinstance(offers, list) else 1,
    )
