"""Catalogue benchmark: search latency at 100,000 entries, and crawl throughput, per engine.

For SQLite (the embedded default, WAL) and PostgreSQL (a throwaway local server), it

1. loads ``--entries`` catalogue entries (multilingual DSP datasets from 20 publishing
   participants) through the crawler's own storage path, and reports entries/s;
2. runs a fixed mix of searches (French and German inflected words, several words, facet
   filters, browsing by date, deep pages) ``--rounds`` times through the search service,
   facet counts included, and reports p50/p95/max latency;
3. crawls a live in-process peer publishing ``--crawl`` datasets: signed DSP catalog
   requests, verified signed answers, 50 datasets a page, entries stored and indexed;
   reports entries/s.

No peer runs here that does the same thing (federated DCAT/DSP search), so there is no ratio.
Usage: ``.venv/bin/python bench/catalogue.py [--entries N] [--crawl M] [--engines sqlite]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.support: servers, nodes

from rhenus.core.db import Database, utcnow
from rhenus.dataspace.catalogue import entries
from rhenus.dataspace.catalogue.federation_api import crawler_of
from rhenus.dataspace.catalogue.models import Dataset, Offer
from rhenus.dataspace.catalogue.schemas import SearchQuery
from rhenus.dataspace.catalogue.search import search
from rhenus.migrations import upgrade
from tests.support.federation import PARTICIPANTS, Federation, certify
from tests.support.postgres import PostgresServer, running_postgres

SUBJECTS = [
    ("Hôpitaux et lits", "Krankenhäuser und Betten", "Hospitals and beds", "HEAL"),
    ("Pharmacies de garde", "Apotheken im Notdienst", "Pharmacies on duty", "HEAL"),
    ("Écoles primaires", "Grundschulen", "Primary schools", "EDUC"),
    ("Bibliothèques publiques", "Öffentliche Bibliotheken", "Public libraries", "EDUC"),
    ("Population légale", "Amtliche Bevölkerung", "Legal population", "SOCI"),
    ("Logements sociaux", "Sozialwohnungen", "Social housing", "SOCI"),
    ("Budget primitif", "Haushaltsplan", "Adopted budget", "ECON"),
    ("Subventions aux associations", "Fördermittel für Vereine", "Grants to associations", "ECON"),
    ("Qualité de l'air", "Luftqualität", "Air quality", "ENVI"),
    ("Collecte des déchets", "Abfallentsorgung", "Waste collection", "ENVI"),
    ("Consommation d'énergie", "Energieverbrauch", "Energy consumption", "ENER"),
    ("Accidents de la route", "Verkehrsunfälle", "Road accidents", "TRAN"),
    ("Pistes cyclables", "Radwege", "Cycle paths", "TRAN"),
    ("Horaires des transports publics", "Fahrpläne des Nahverkehrs", "Public transport", "TRAN"),
    ("Résultats des élections", "Wahlergebnisse", "Election results", "GOVE"),
    ("Marchés publics attribués", "Vergebene öffentliche Aufträge", "Public contracts", "GOVE"),
    ("Délibérations du conseil", "Ratsbeschlüsse", "Council decisions", "GOVE"),
    ("Crèches et places d'accueil", "Kindertagesstätten", "Nurseries", "SOCI"),
    ("Eau potable", "Trinkwasserqualität", "Drinking water", "ENVI"),
    ("Délits enregistrés", "Erfasste Straftaten", "Recorded offences", "JUST"),
]
BREAKDOWNS = [
    ("par commune", "nach Gemeinde", "by municipality"),
    ("par département", "nach Landkreis", "by district"),
    ("par mois", "nach Monat", "by month"),
    ("par établissement", "nach Einrichtung", "by facility"),
    ("par tranche d'âge", "nach Altersgruppe", "by age group"),
]
PLACES = [
    "Paris", "Lyon", "Marseille", "Lille", "Strasbourg", "Bordeaux", "Nantes", "Toulouse",
    "Berlin", "Hamburg", "München", "Köln", "Frankfurt", "Stuttgart", "Leipzig", "Dresden",
    "Wien", "Graz", "Bruxelles", "Liège", "Luxembourg", "Amsterdam", "Rotterdam", "Milano",
    "Torino", "Madrid", "Barcelona", "Lisboa", "Porto", "Warszawa", "Kraków", "Praha",
]  # fmt: skip
MEDIA_TYPES = ["text/csv", "text/csv", "application/vnd.apache.parquet", "application/json",
               "application/pdf", ""]  # fmt: skip
LICENSES = ["etalab-2.0", "https://www.govdata.de/dl-de/by-2-0", "CC-BY-4.0", "ODbL-1.0"]
COUNTRIES = ["FR", "DE", "AT", "BE", "LU", "NL", "IT", "ES", "PT", "PL"]
QUERIES: list[dict[str, Any]] = [
    {"q": "hôpitaux"},
    {"q": "Krankenhaus"},
    {"q": "Krankenhäuser Berlin"},
    {"q": "écoles par commune"},
    {"q": "air quality Lyon"},
    {"q": "Luftqualität"},
    {"q": "logement social Marseille"},
    {"q": "budget"},
    {"q": "Radweg München"},
    {"q": "déchets"},
    {"q": "élection résultats 2021"},
    {"q": "Apotheke"},
    {"q": "hopitaux", "theme": ["HEAL"]},
    {"q": "Grundschulen", "country": ["DE"]},
    {"q": "transports", "format": ["CSV"], "sort": "date"},
    {"q": ""},
    {"q": "", "theme": ["ENVI"], "sort": "date"},
    {"q": "", "publisher": ["Ville de Lyon"], "page": 3},
    {"q": "population", "page": 20},
    {"q": "Trinkwasserqualität Wien 2019"},
]


def document(rng: random.Random, n: int, origin: int, now: datetime) -> dict[str, Any]:
    fr, de, en, theme = rng.choice(SUBJECTS)
    bfr, bde, ben = rng.choice(BREAKDOWNS)
    place, year = rng.choice(PLACES), rng.randint(2000, 2025)
    document: dict[str, Any] = {
        "@id": f"urn:bench:{origin}:{n}",
        "@type": "Dataset",
        "hasPolicy": [{"@id": f"urn:bench:offer:{n}", "@type": "Offer", "permission": []}],
        "dct:title": [
            {"@value": f"{fr} {bfr} — {place} {year}", "@language": "fr"},
            {"@value": f"{de} {bde} — {place} {year}", "@language": "de"},
            {"@value": f"{en} {ben} — {place} {year}", "@language": "en"},
        ],
        "dct:description": [
            {
                "@value": f"Données {fr.lower()} {bfr} pour {place}, mises à jour en {year}.",
                "@language": "fr",
            },
            {"@value": f"{de} {bde} für {place}, Stand {year}.", "@language": "de"},
        ],
        "dcat:keyword": [place, str(year), en.split()[0].lower()],
        "dcat:theme": f"{entries.THEME_PREFIX}{theme}",
        "dct:license": rng.choice(LICENSES),
        "dct:publisher": f"Ville de {place}" if rng.random() < 0.5 else f"Stadt {place}",
        "dct:modified": (now - timedelta(days=rng.randint(0, 3650))).isoformat(),
    }
    media_type = rng.choice(MEDIA_TYPES)
    if media_type:
        document["dcat:mediaType"] = media_type
    return document


async def load(url: str, count: int) -> float:
    """Store ``count`` entries as crawls of 20 origins would; returns entries/s."""
    rng, now = random.Random(42), utcnow()
    db = Database(url)
    per_origin = count // 20
    started = time.perf_counter()
    try:
        for origin in range(20):
            fields = [
                entries.entry_fields(
                    document(rng, n, origin, now),
                    origin=f"did:web:peer{origin}.example.eu",
                    country=COUNTRIES[origin % len(COUNTRIES)],
                    fetched_at=now,
                )
                for n in range(per_origin)
            ]
            async with db.transaction() as session:
                await entries.replace_origin(
                    session, origin=f"did:web:peer{origin}.example.eu", fields=fields
                )
        await entries.compact(db)  # as a crawl that changed this much does
    finally:
        await db.dispose()
    return per_origin * 20 / (time.perf_counter() - started)


async def search_latencies(url: str, rounds: int) -> dict[str, list[float]]:
    """Milliseconds of each search of the mix, per query, over ``rounds`` rounds."""
    db = Database(url)
    timings: dict[str, list[float]] = {json.dumps(q, ensure_ascii=False): [] for q in QUERIES}
    try:
        queries = [SearchQuery.model_validate(q) for q in QUERIES]
        for query in queries:  # warm the caches once
            await search(db, query)
        for _ in range(rounds):
            for key, query in zip(timings, queries, strict=True):
                started = time.perf_counter()
                result = await search(db, query)
                timings[key].append((time.perf_counter() - started) * 1000)
                assert result.total >= 0
    finally:
        await db.dispose()
    return timings


async def crawl_rate(root: Path, urls: tuple[str, str], count: int) -> float:
    """A live peer publishing ``count`` datasets, crawled once; returns entries/s."""
    federation = Federation(root)
    try:
        await federation.add("anchor", anchor=True)
        consumer = await federation.add("fr-mininterieur", db_url=urls[0])
        provider = await federation.add("de-berlin", db_url=urls[1])
        for member in (consumer, provider):
            await certify(member, **PARTICIPANTS[member.settings.node_name])
        rng, now = random.Random(7), utcnow()
        async with provider.node.db.transaction() as session:
            for n in range(count):
                fr, de, en, theme = rng.choice(SUBJECTS)
                dataset_id = f"urn:uuid:bench-{n:06d}"
                session.add(
                    Dataset(
                        id=dataset_id, kind="file", title={"fr": fr, "de": de, "en": en},
                        description={"de": f"{de} in {rng.choice(PLACES)}"}, keywords=[],
                        theme=theme, license="CC-BY-4.0", publisher="Land Berlin",
                        spatial="", temporal_start="", temporal_end="", media_type="text/csv",
                        byte_size=100, sha256="0" * 64, endpoint_url=None, access={},
                        version=1, status="published", created_at=now, updated_at=now,
                    )
                )  # fmt: skip
                session.add(
                    Offer(
                        id=f"urn:uuid:offer-{n:06d}",
                        dataset_id=dataset_id,
                        policy={"@id": f"urn:uuid:offer-{n:06d}", "permission": []},
                        created_at=now,
                    )
                )
        crawler = crawler_of(consumer.app)
        started = time.perf_counter()
        reports = await crawler.crawl_all()
        seconds = time.perf_counter() - started
        report = next(r for r in reports if r.did == provider.did)
        if report.status != "ok" or report.total != count:
            raise RuntimeError(f"the crawl went wrong: {report}")
        return count / seconds
    finally:
        await federation.close()


def database_urls(engine: str, stack: ExitStack, root: Path, names: list[str]) -> list[str]:
    if engine == "sqlite":
        return [f"sqlite+aiosqlite:///{root / name}.db" for name in names]
    server: PostgresServer = stack.enter_context(running_postgres())
    for name in names:
        server.psql(f"CREATE DATABASE {name}")
    return [server.url(name) for name in names]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--crawl", type=int, default=5_000)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--engines", default="sqlite,postgresql")
    args = parser.parse_args()
    console = Console(width=160)
    table = Table(
        "engine", "entries", "load (entries/s)", "search p50 (ms)", "p95 (ms)", "max (ms)",
        "searches", "crawl (datasets)", "crawl (entries/s)",
        title=f"Catalogue: {args.entries:,} entries, {len(QUERIES)} queries x {args.rounds}",
    )  # fmt: skip
    slowest: list[tuple[str, str, list[float]]] = []
    for engine in args.engines.split(","):
        with ExitStack() as stack:
            root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="rhenus-bench-")))
            search_url, consumer_url, provider_url = database_urls(
                engine, stack, root, ["search", "consumer", "provider"]
            )
            upgrade(search_url)
            console.print(f"[bold]{engine}[/]: loading {args.entries:,} entries…")
            load_rate = asyncio.run(load(search_url, args.entries))
            per_query = asyncio.run(search_latencies(search_url, args.rounds))
            slowest.extend((engine, q, t) for q, t in per_query.items())
            timings = [t for samples in per_query.values() for t in samples]
            console.print(f"[bold]{engine}[/]: crawling a peer of {args.crawl:,} datasets…")
            rate = asyncio.run(crawl_rate(root / "fed", (consumer_url, provider_url), args.crawl))
            cuts = statistics.quantiles(timings, n=100)
            table.add_row(
                engine, f"{args.entries:,}", f"{load_rate:,.0f}", f"{cuts[49]:.1f}",
                f"{cuts[94]:.1f}", f"{max(timings):.1f}", str(len(timings)),
                f"{args.crawl:,}", f"{rate:,.0f}",
            )  # fmt: skip
    console.print(table)
    by_query = Table("engine", "query", "p50 (ms)", "max (ms)", title="The slowest searches")
    slowest.sort(key=lambda item: -statistics.median(item[2]))
    for engine, query, samples in slowest[:8]:
        by_query.add_row(engine, query, f"{statistics.median(samples):.1f}", f"{max(samples):.1f}")
    console.print(by_query)


if __name__ == "__main__":
    main()
