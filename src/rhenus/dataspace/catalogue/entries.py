"""The search entries: our published datasets and those peers showed us, in one table.

Entries are built from DSP ``Dataset`` JSON-LD (ours is rendered by :mod:`.dsp` first), so
what a partner finds here is exactly what the publishing catalog said. A peer's answer is
untrusted input: every field is read defensively and cut to the column's size.
"""

from __future__ import annotations

import asyncio
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from rhenus.core.db import Database, insert_for
from rhenus.dataspace.catalogue.analysis import index_terms
from rhenus.dataspace.catalogue.models import CatalogueEntry, CatalogueState

THEME_PREFIX = "http://publications.europa.eu/resource/authority/data-theme/"
# The format facet names files as portals do (data.gouv.fr, GovData); services are "API".
FORMATS = {
    "text/csv": "CSV",
    "application/vnd.apache.parquet": "Parquet",
    "application/x-parquet": "Parquet",
    "application/json": "JSON",
    "application/ld+json": "JSON-LD",
    "application/geo+json": "GeoJSON",
    "application/pdf": "PDF",
    "application/xml": "XML",
    "text/xml": "XML",
    "application/zip": "ZIP",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "XLSX",
    "application/vnd.oasis.opendocument.spreadsheet": "ODS",
    "text/plain": "TXT",
}


class MalformedDataset(ValueError):
    """A peer's Dataset lacks what an entry needs (an @id and a title)."""


def _texts(value: Any) -> dict[str, str]:
    """``[{"@value": …, "@language": …}]`` (or a plain string) → ``{language: text}``."""
    items = value if isinstance(value, list) else [value]
    texts: dict[str, str] = {}
    for item in items:
        if isinstance(item, str):
            texts.setdefault("en", item[:2000])
        elif isinstance(item, dict) and isinstance(item.get("@value"), str):
            lang = str(item.get("@language") or "en")[:8]
            texts.setdefault(lang, item["@value"][:2000])
    return texts


def _text(value: Any, size: int) -> str:
    if isinstance(value, dict):
        value = value.get("@id") or value.get("@value") or ""
    return value[:size] if isinstance(value, str) else ""


def _date(value: Any, default: datetime) -> datetime:
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        return default
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def format_of(document: dict[str, Any]) -> str:
    media_type = _text(document.get("dcat:mediaType"), 128).split(";")[0].strip().lower()
    if not media_type:
        return "API"
    return FORMATS.get(media_type, media_type.rpartition("/")[2].upper()[:32] or "Other")


def entry_fields(
    document: dict[str, Any], *, origin: str, country: str, fetched_at: datetime
) -> dict[str, Any]:
    """The columns of the entry for one DSP Dataset; :class:`MalformedDataset` if unusable."""
    dataset_id = document.get("@id")
    title = _texts(document.get("dct:title"))
    if not isinstance(dataset_id, str) or not dataset_id or len(dataset_id) > 255 or not title:
        raise MalformedDataset("a dataset needs an @id (at most 255 characters) and a title")
    description = _texts(document.get("dct:description", []))
    raw_keywords = document.get("dcat:keyword", [])
    keywords = [k[:200] for k in raw_keywords if isinstance(k, str)][:50]
    theme = _text(document.get("dcat:theme"), 500).removeprefix(THEME_PREFIX)[:16]
    publisher = _text(document.get("dct:publisher"), 255)
    offers = document.get("hasPolicy", [])
    return {
        "origin": origin,
        "dataset_id": dataset_id,
        "title": title,
        "description": description,
        "keywords": keywords,
        "publisher": publisher,
        "country": country[:2],
        "theme": theme,
        "license": _text(document.get("dct:license"), 500),
        "format": format_of(document),
        "offers": len(offers) if isinstance(offers, list) else 1,
        "modified": _date(document.get("dct:modified"), fetched_at),
        "fetched_at": fetched_at,
        "document": document,
        "search_title": index_terms(title.values()),
        "search_body": index_terms([*description.values(), *keywords, publisher]),
    }


@dataclass(frozen=True)
class Replaced:
    """What a crawl changed for one origin."""

    added: int
    updated: int
    removed: int
    total: int


async def replace_origin(
    session: AsyncSession, *, origin: str, fields: list[dict[str, Any]]
) -> Replaced:
    """Make the entries of ``origin`` exactly ``fields``: new ones added, changed ones
    updated, missing ones (withdrawn, or no longer visible to us) removed."""
    rows = await session.execute(
        select(CatalogueEntry.id, CatalogueEntry.dataset_id, CatalogueEntry.document).where(
            CatalogueEntry.origin == origin
        )
    )
    known = {dataset_id: (row_id, document) for row_id, dataset_id, document in rows.all()}
    wanted = {f["dataset_id"]: f for f in fields}
    gone = [known[d][0] for d in known.keys() - wanted.keys()]
    for start in range(0, len(gone), 500):
        await session.execute(
            delete(CatalogueEntry).where(CatalogueEntry.id.in_(gone[start : start + 500]))
        )
    new = [f for d, f in wanted.items() if d not in known]
    for start in range(0, len(new), 1000):
        await session.execute(insert(CatalogueEntry), new[start : start + 1000])
    changed = [
        {"id": known[d][0], **f}
        for d, f in wanted.items()
        if d in known and known[d][1] != f["document"]
    ]
    for row in changed:
        row_id = row.pop("id")
        await session.execute(
            update(CatalogueEntry).where(CatalogueEntry.id == row_id).values(**row)
        )
    fresh = [known[d][0] for d in wanted.keys() & known.keys()]
    now = fields[0]["fetched_at"] if fields else None
    for start in range(0, len(fresh), 500):
        await session.execute(
            update(CatalogueEntry)
            .where(CatalogueEntry.id.in_(fresh[start : start + 500]))
            .values(fetched_at=now)
        )
    if new or changed or gone:
        await _bump_generation(session)
    return Replaced(len(new), len(changed), len(gone), len(wanted))


async def put_entry(session: AsyncSession, fields: dict[str, Any]) -> None:
    """Add or replace one entry (our own dataset, when it is published or changes)."""
    await remove_entry(session, origin=fields["origin"], dataset_id=fields["dataset_id"])
    await session.execute(insert(CatalogueEntry), [fields])
    await _bump_generation(session)


async def find_entry(
    session: AsyncSession, *, origin: str, dataset_id: str
) -> CatalogueEntry | None:
    """The entry of one dataset of one participant (its page in the web app), if known."""
    found: CatalogueEntry | None = await session.scalar(
        select(CatalogueEntry).where(
            CatalogueEntry.origin == origin, CatalogueEntry.dataset_id == dataset_id
        )
    )
    return found


async def remove_entry(session: AsyncSession, *, origin: str, dataset_id: str) -> None:
    await session.execute(
        delete(CatalogueEntry).where(
            CatalogueEntry.origin == origin, CatalogueEntry.dataset_id == dataset_id
        )
    )
    await _bump_generation(session)


async def remove_origin(session: AsyncSession, *, origin: str) -> None:
    await session.execute(delete(CatalogueEntry).where(CatalogueEntry.origin == origin))
    await _bump_generation(session)


async def generation(session: AsyncSession) -> int:
    """The number of changes the entries have seen; search reloads its columns when it moves."""
    return int(await session.scalar(select(CatalogueState.generation)) or 0)


async def _bump_generation(session: AsyncSession) -> None:
    # Last statement of the writer's transaction: on PostgreSQL the row lock it takes is held
    # only until the commit that follows, so concurrent crawls do not queue behind each other.
    # The row is created by the first change (a row seeded by a migration would make a
    # restore, which needs empty tables, fail).
    await session.execute(
        insert_for(session)(CatalogueState)
        .values(id=1, generation=1)
        .on_conflict_do_update(
            index_elements=[CatalogueState.id],
            set_={"generation": CatalogueState.generation + 1},
        )
    )


# Changes after which a crawl compacts the full-text index (SQLite).
COMPACT_AFTER = 1_000


async def compact(db: Database) -> None:
    """After many changes on SQLite, merge the FTS5 index into one segment and move the
    write-ahead log into the database, so searches read fewer, closer pages (FTS5's
    'optimize'; about a second at 100,000 entries). PostgreSQL's autovacuum does its own."""
    if not db.is_sqlite:
        return
    async with db.transaction() as session:
        await session.execute(
            text("INSERT INTO catalogue_entries_fts(catalogue_entries_fts) VALUES ('optimize')")
        )
    path = db.engine.url.database
    if path:  # outside any transaction, which the session's connections always open
        await asyncio.to_thread(_checkpoint, path)


def _checkpoint(path: str) -> None:
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        connection.execute("PRAGMA busy_timeout=15000")
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        connection.close()
