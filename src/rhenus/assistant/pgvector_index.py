"""Semantic search in PostgreSQL with pgvector: an HNSW index over the chunks' embeddings.

The vectors live in ``assistant_chunk_vectors`` (chunk id, collection id, ``vector(512)``), a
side table that migration 0015 creates with its HNSW index (``vector_cosine_ops``) when the
server has the ``vector`` extension; a chunk's row goes with the chunk (``ON DELETE CASCADE``).
The chunks themselves stay as they are on both engines (their embedding as float32 bytes), so
the same database serves either index and a switch of ``assistant_vector_index`` needs no
re-ingest.

The ingest fills a document's rows (:func:`fill`, in the transaction that marks it done), so
every chunk written while pgvector serves has its row. Only chunks from before that (ingested
before migration 0015, or while ``memory`` was chosen: a switch takes a restart) can lack one,
so the first search of each process catches up the whole database once (:func:`catch_up`,
one statement) and later searches go straight to the index.

HNSW is approximate: ``hnsw.ef_search`` is raised to 100, or twice the chunks asked for, and
pgvector ≥ 0.8's ``hnsw.iterative_scan = strict_order`` keeps scanning when filters (the
collections, a metadata filter, a threshold) leave fewer than asked, in exact distance order.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import TextClause, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from rhenus.assistant.errors import SERVER_ERROR, OpenAIError
from rhenus.assistant.models import DONE, Document

# numpy is imported where it is used: a node that never needs it is ~11 MiB smaller.
if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

DIMENSIONS = 512  # the column's: the default embedding model's (USE multilingual v3)
# Candidates HNSW keeps while searching (pgvector's default: 40): recall against speed.
EF_SEARCH = 100
_BATCH = 500

_FILLED: dict[tuple[str, int], tuple[tuple[int, datetime], ...]] = {}
_AVAILABLE: dict[str, bool] = {}
_LOCK = threading.Lock()
_CAUGHT_UP: set[str] = set()  # the databases this process has caught up
# One per event loop: an asyncio.Lock may only be waited on in the loop it first waited in.
_CATCH_UP_LOCKS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
    weakref.WeakKeyDictionary()
)

_VECTOR = "CAST(CAST(:query AS real[]) AS vector(512))"
# No join to the chunks or documents: it would keep the planner from the HNSW index. Rows
# exist only for chunks of indexed documents (``fill``), and go with them.
_NEAREST = (
    "SELECT v.chunk_id, 1 - (v.embedding <=> {vector}) AS score "
    "FROM assistant_chunk_vectors AS v WHERE v.collection_id = ANY(:collections) {filters} "
    "ORDER BY v.embedding <=> {vector} LIMIT :k"
)
_SIMILARITIES = text(
    "SELECT chunk_id, 1 - (embedding <=> CAST(CAST(:query AS real[]) AS vector(512))) "
    "FROM assistant_chunk_vectors WHERE chunk_id = ANY(:ids)"
)
_MISSING = (
    "SELECT c.id, c.embedding FROM assistant_chunks AS c "
    "JOIN assistant_documents AS d ON d.id = c.document_id "
    "WHERE {collection} d.status = 'done' AND NOT EXISTS "
    "(SELECT 1 FROM assistant_chunk_vectors AS v WHERE v.chunk_id = c.id) ORDER BY c.id"
)
_MISSING_IN = text(_MISSING.format(collection="c.collection_id = :collection AND"))
_MISSING_ANYWHERE = text(_MISSING.format(collection=""))
_INSERT = text(
    "INSERT INTO assistant_chunk_vectors (chunk_id, collection_id, embedding) "
    "SELECT c.id, c.collection_id, CAST(CAST(:embedding AS real[]) AS vector(512)) "
    "FROM assistant_chunks AS c WHERE c.id = :chunk_id ON CONFLICT (chunk_id) DO NOTHING"
)


def _url(session: AsyncSession) -> str:
    return str(session.get_bind().engine.url)


async def available(session: AsyncSession) -> bool:
    """Whether the database is PostgreSQL with the side table (so with the extension)."""
    if session.get_bind().dialect.name != "postgresql":
        return False
    url = _url(session)
    if url not in _AVAILABLE:
        found = await session.scalar(
            text("SELECT to_regclass(:name) IS NOT NULL"), {"name": "assistant_chunk_vectors"}
        )
        _AVAILABLE[url] = bool(found)
    return _AVAILABLE[url]


async def require(session: AsyncSession, dimensions: int) -> None:
    """503 unless pgvector can serve embeddings of ``dimensions`` (``assistant_vector_index``
    is ``pgvector``: no silent fallback to memory)."""
    if not await available(session):
        raise OpenAIError(
            503,
            "assistant_vector_index is pgvector but the database has no assistant_chunk_vectors "
            "table: install pgvector, then run migration 0015 again (docs/assistant.md).",
            type=SERVER_ERROR,
        )
    if dimensions != DIMENSIONS:
        raise OpenAIError(
            503,
            f"pgvector's column holds {DIMENSIONS}-dimension embeddings; the documents' "
            f"embedding model gives {dimensions}.",
            type=SERVER_ERROR,
        )


class PgVectorIndex:
    """:class:`~rhenus.assistant.vectors.VectorIndex` on pgvector."""

    async def nearest(
        self,
        session: AsyncSession,
        collections: Sequence[int],
        query: NDArray[np.float32],
        *,
        k: int,
        threshold: float | None,
        allowed: set[int] | None,
    ) -> list[tuple[int, float]]:
        await catch_up(session)
        filters, params = "", {"collections": list(collections), "query": _floats(query), "k": k}
        if threshold is not None:
            filters += f" AND 1 - (v.embedding <=> {_VECTOR}) >= :threshold"
            params["threshold"] = threshold
        if allowed is not None:
            filters += " AND v.chunk_id = ANY(:allowed)"
            params["allowed"] = sorted(allowed)
        await session.execute(
            text("SELECT set_config('hnsw.ef_search', :ef, true)"),
            {"ef": str(max(EF_SEARCH, 2 * k))},
        )
        await session.execute(
            text("SELECT set_config('hnsw.iterative_scan', 'strict_order', true)")
        )
        statement = _NEAREST.format(vector=_VECTOR, filters=filters)  # our constants only
        rows = await session.execute(text(statement), params)
        found = [(int(i), float(s)) for i, s in rows]
        # The index orders by distance alone; ties by id as the memory index does.
        return sorted(found, key=lambda item: (-item[1], item[0]))

    async def similarities(
        self,
        session: AsyncSession,
        collections: Sequence[int],
        query: NDArray[np.float32],
        ids: Sequence[int],
    ) -> dict[int, float]:
        if not ids:
            return {}
        await catch_up(session)
        rows = await session.execute(_SIMILARITIES, {"ids": list(ids), "query": _floats(query)})
        return {int(i): float(s) for i, s in rows}


PGVECTOR = PgVectorIndex()


async def fill(session: AsyncSession, collections: Sequence[int]) -> int:
    """Give every indexed chunk of ``collections`` its vector row; returns how many were added.

    Written in the caller's transaction, or committed here when the session has none of its
    own (a search's read-only session)."""
    url = _url(session)
    added = 0
    for collection_id in dict.fromkeys(collections):
        rows = await session.execute(
            select(Document.id, Document.updated_at)
            .where(Document.collection_id == collection_id, Document.status == DONE)
            .order_by(Document.id)
        )
        key = tuple((i, t) for i, t in rows)
        with _LOCK:
            if _FILLED.get((url, collection_id)) == key:
                continue
        added += await _add_missing(session, _MISSING_IN, {"collection": collection_id})
        with _LOCK:
            _FILLED[(url, collection_id)] = key
    if added and "database" not in session.info:  # a read session: nobody else commits it
        await session.commit()
    return added


async def catch_up(session: AsyncSession) -> int:
    """Once per process and database, give every indexed chunk without a vector row its row;
    returns how many were added (0 on every later call).

    Committed here when the session has no transaction of its own, as :func:`fill` does."""
    url = _url(session)
    if url in _CAUGHT_UP:
        return 0
    lock = _CATCH_UP_LOCKS.setdefault(asyncio.get_running_loop(), asyncio.Lock())
    async with lock:  # concurrent first searches: one catches up, the others wait for it
        if url in _CAUGHT_UP:
            return 0
        added = await _add_missing(session, _MISSING_ANYWHERE, {})
        if added and "database" not in session.info:
            await session.commit()
        _CAUGHT_UP.add(url)
    return added


async def _add_missing(session: AsyncSession, missing: TextClause, params: dict[str, int]) -> int:
    import numpy as np

    rows = await session.execute(missing, params)
    values = [
        {"chunk_id": int(chunk_id), "embedding": _floats(np.frombuffer(blob, dtype="<f4"))}
        for chunk_id, blob in rows
        if len(blob) == 4 * DIMENSIONS  # another model's vectors: not for this column
    ]
    for start in range(0, len(values), _BATCH):
        await session.execute(_INSERT, values[start : start + _BATCH])
    return len(values)


def _floats(vector: NDArray[np.float32]) -> list[float]:
    import numpy as np

    floats: list[float] = np.asarray(vector, dtype=np.float32).astype(float).tolist()
    return floats
