"""Search over a catalogue of a few hundred entries, at the service: scoring split over two
connections gives the same answers as one; on SQLite, bm25 computed from the doclists gives
FTS5's own scores; pages tile the results; the in-memory columns follow changes made through
another connection pool (another worker process); compacting the index changes no answer."""

from __future__ import annotations

import random
import shutil
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rhenus.core.db import Database, utcnow
from rhenus.dataspace.catalogue import bm25, columns, entries, search
from rhenus.dataspace.catalogue.analysis import fts5_match, query_terms
from rhenus.dataspace.catalogue.schemas import SearchQuery, SearchResult

WORDS = {
    "HEAL": ("Hôpital", "Krankenhaus", "Apotheke", "pharmacie"),
    "ENVI": ("Luftqualität", "déchets", "Trinkwasser", "qualité de l'air"),
    "TRAN": ("Radwege", "accidents de la route", "Fahrplan", "transports"),
}
PEER = "did:web:peer.example.eu"
PUBLISHERS = ("Ville de Lyon", "Stadt Köln", "Land Berlin")


def catalogue(count: int, seed: int) -> list[dict[str, Any]]:
    rng, now = random.Random(seed), utcnow()
    rows = []
    for n in range(count):
        theme = rng.choice(list(WORDS))
        words = rng.sample(WORDS[theme], 2)
        document = {
            "@id": f"urn:test:{n}",
            "dct:title": [{"@value": f"{words[0]} {n % 7}", "@language": "fr"}],
            "dct:description": [{"@value": " ".join(words), "@language": "de"}],
            "dcat:theme": f"{entries.THEME_PREFIX}{theme}",
            "dct:publisher": rng.choice(PUBLISHERS),
            "dct:modified": (now - timedelta(days=rng.randint(0, 60))).isoformat(),
            "hasPolicy": [{"@id": f"urn:offer:{n}"}],
        }
        rows.append(
            entries.entry_fields(document, origin=PEER, country="DE",
                                 fetched_at=now)
        )  # fmt: skip
    return rows


@asynccontextmanager
async def loaded(db_url: str, count: int, seed: int) -> AsyncIterator[Database]:
    """A database holding ``count`` entries of one peer, as a crawl stores them."""
    db = Database(db_url)
    try:
        async with db.transaction() as session:
            await entries.replace_origin(session, origin=PEER, fields=catalogue(count, seed=seed))
        yield db
    finally:
        await db.dispose()


async def run(db: Database, **params: Any) -> SearchResult:
    return await search.search(db, SearchQuery.model_validate(params))


def ids(result: SearchResult) -> list[str]:
    return [hit.dataset_id for hit in result.hits]


QUERIES: list[dict[str, Any]] = [
    {"q": "hôpitaux"},
    {"q": "Krankenhäuser", "per_page": 50},
    {"q": "qualité air"},
    {"q": "déchet", "publisher": ["Stadt Köln"]},
    {"q": "transport", "sort": "date"},
    {"q": "Apotheke", "page": 2, "per_page": 10},
    {"q": "", "theme": ["ENVI"], "per_page": 100},
    {"q": "nothing-matches-this"},
]


async def test_two_connections_score_as_one_does(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with loaded(db_url, 400, seed=3) as db:
        single = [await run(db, **q) for q in QUERIES]
        monkeypatch.setattr(search, "SPLIT_FROM", 1)
        split = [await run(db, **q) for q in QUERIES]
    for query, one, two in zip(QUERIES, single, split, strict=True):
        assert (one.total, ids(one), one.facets) == (two.total, ids(two), two.facets), query
    assert single[0].total > 20
    assert len(single[0].hits) == 20
    assert all(hit.theme == "HEAL" for hit in single[0].hits)
    assert all(hit.publisher == "Stadt Köln" for hit in single[3].hits)
    assert sum(v.count for v in single[3].facets["publisher"]) == single[3].total
    dates = [hit.modified for hit in single[4].hits]
    assert dates == sorted(dates, reverse=True)
    assert single[-1].total == 0
    assert single[-1].hits == []


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    """A migrated SQLite database (the scoring below is FTS5's, which only SQLite has)."""
    target = tmp_path / "rhenus.db"
    shutil.copyfile(sqlite_template, target)
    return f"sqlite+aiosqlite:///{target}"


async def test_bm25_from_doclists_is_fts5s_own_score(sqlite_url: str) -> None:
    db_url = sqlite_url
    rows = catalogue(300, seed=13)
    # Long texts: FTS5 records sizes of 128 tokens and more in several bytes.
    rows[0]["search_body"] += " " + " ".join(f"krankenhaus{n}" for n in range(400))
    rows[1]["search_title"] += " " + " ".join(f"hopital{n}" for n in range(200))
    async with loaded(db_url, 0, seed=0) as db:
        async with db.transaction() as session:
            await entries.replace_origin(session, origin=PEER, fields=rows)
        async with db.session() as session:
            held = await columns.current(session)
        fts5 = sqlite3.connect(str(db.engine.url.database))
        try:
            for words in ("hôpitaux", "Krankenhäuser", "Apotheke", "qualité", "Lyon"):
                terms = query_terms(words)
                statement, parameters, parsed = search._sqlite_statement(terms, ranked=True)
                matches = parsed(fts5.execute(statement, parameters).fetchone())
                assert matches.phrases is not None, words  # one word: scored from doclists
                positions, _ = held.locate(matches.ids)
                assert held.lengths is not None
                ours = bm25.scores(
                    matches.ids,
                    held.lengths[positions],
                    matches.phrases,
                    count=held.size,
                    mean_length=held.mean_length,
                )
                joined_ids, joined_ranks = fts5.execute(
                    "SELECT group_concat(rowid), group_concat(rank) FROM catalogue_entries_fts "
                    "WHERE catalogue_entries_fts MATCH ?",
                    (fts5_match(terms),),
                ).fetchone()
                ids = np.fromstring(joined_ids, dtype=np.int64, sep=",")
                ranks = np.fromstring(joined_ranks, dtype=np.float64, sep=",")
                order = np.argsort(ids)
                assert np.array_equal(ids[order], matches.ids), words
                assert np.allclose(ours, ranks[order], rtol=1e-9, atol=0), words
        finally:
            fts5.close()


async def test_pages_tile_the_results_without_repeats(db_url: str) -> None:
    async with loaded(db_url, 300, seed=5) as db:
        for sort in ("relevance", "date"):
            everything = await run(db, q="Krankenhaus", sort=sort, per_page=100)
            pages = [
                hit
                for page in range(1, 12)
                for hit in (await run(db, q="Krankenhaus", sort=sort, per_page=7, page=page)).hits
            ]
            assert everything.total < 100
            assert [h.dataset_id for h in pages] == ids(everything), sort


async def test_columns_follow_changes_made_by_another_worker(db_url: str) -> None:
    reader, writer = Database(db_url), Database(db_url)
    try:
        rows = catalogue(60, seed=9)
        async with writer.transaction() as session:
            await entries.replace_origin(session, origin=PEER, fields=rows)
        before = await run(reader, theme=["HEAL"], per_page=100)
        assert before.total == sum(1 for r in rows if r["theme"] == "HEAL") > 0
        # The peer withdraws its health datasets; another process stores the crawl.
        kept = [r for r in rows if r["theme"] != "HEAL"]
        async with writer.transaction() as session:
            await entries.replace_origin(session, origin=PEER, fields=kept)
        after = await run(reader, theme=["HEAL"])
        assert (after.total, after.hits) == (0, [])
        assert (await run(reader)).total == len(kept)
        assert {v.value for v in (await run(reader)).facets["theme"]} == {"ENVI", "TRAN"}
    finally:
        await reader.dispose()
        await writer.dispose()


async def test_compacting_after_a_large_crawl_keeps_every_answer(db_url: str) -> None:
    async with loaded(db_url, 200, seed=11) as db:
        before = [await run(db, **q) for q in QUERIES]
        await entries.compact(db)
        after = [await run(db, **q) for q in QUERIES]
        if db.is_sqlite:  # the write-ahead log was moved into the database
            wal = Path(str(db.engine.url.database) + "-wal")
            assert not wal.exists() or wal.stat().st_size == 0
    assert [(r.total, ids(r), r.facets) for r in after] == [
        (r.total, ids(r), r.facets) for r in before
    ]
