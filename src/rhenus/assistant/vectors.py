"""The chunks' embeddings as in-memory matrices, one per collection, scored by brute force.

Exact cosine similarity (the embeddings are L2-normalised: a matrix-vector product) over every
chunk of the searched collections. It needs no index to build or tune and is fast enough up to
about 100 000 chunks (512 float32 each, 200 MB; a search is one pass over them). Beyond that,
PostgreSQL's pgvector (:mod:`.pgvector_index`, an HNSW index) takes its place: both are a
:class:`VectorIndex`, and :func:`index_for` picks one by ``assistant_vector_index``.

Each process keeps the matrices of the collections it searched, and checks on every search
that they are current: the documents of a collection that are indexed, with the time each was
last changed, are the matrix's key (re-indexing or deleting a document changes it).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Literal, Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from rhenus.assistant.models import DONE, Chunk, Document

# numpy is imported where it is used: a node that never needs it is ~11 MiB smaller.
if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

# Collections whose matrices a process keeps (least recently searched dropped first).
MAX_CACHED = 32

Key = tuple[tuple[int, datetime], ...]


@dataclass(frozen=True)
class NumpyIndex:
    """Chunk ids and their embeddings (one row each), scored exactly."""

    ids: NDArray[np.int64]
    matrix: NDArray[np.float32]

    def scores(self, query: NDArray[np.float32]) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
        """Every chunk's cosine similarity to ``query`` (an L2-normalised vector)."""
        import numpy as np

        if not len(self.ids):
            return self.ids, np.zeros(0, dtype=np.float32)
        return self.ids, self.matrix @ query


Mode = Literal["auto", "memory", "pgvector"]


class VectorIndex(Protocol):
    """Nearest chunks of collections to a query embedding, by cosine similarity."""

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
        """The ``k`` most similar chunks (id, similarity), best first, ties by id; only those
        at ``threshold`` or more and, if given, in ``allowed``."""
        ...

    async def similarities(
        self,
        session: AsyncSession,
        collections: Sequence[int],
        query: NDArray[np.float32],
        ids: Sequence[int],
    ) -> dict[int, float]:
        """The similarity to ``query`` of each of ``ids`` that is an indexed chunk."""
        ...


class MemoryIndex:
    """:class:`VectorIndex` over the per-process matrices of :func:`collections_index`."""

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
        ids, sims = (await collections_index(session, collections)).scores(query)
        return ranked(ids, sims, allowed, threshold, k)

    async def similarities(
        self,
        session: AsyncSession,
        collections: Sequence[int],
        query: NDArray[np.float32],
        ids: Sequence[int],
    ) -> dict[int, float]:
        all_ids, sims = (await collections_index(session, collections)).scores(query)
        wanted = set(ids)
        return {i: s for i, s in zip(all_ids.tolist(), sims.tolist(), strict=True) if i in wanted}


MEMORY = MemoryIndex()


async def index_for(session: AsyncSession, mode: Mode, dimensions: int) -> VectorIndex:
    """The index that ``assistant_vector_index`` (``mode``) names for embeddings of
    ``dimensions``: ``auto`` is pgvector where the database has its table (migration 0015)."""
    if mode == "memory":
        return MEMORY
    from rhenus.assistant import pgvector_index  # only PostgreSQL needs it

    if mode == "auto":
        usable = await pgvector_index.available(session) and (
            dimensions == pgvector_index.DIMENSIONS
        )
        return pgvector_index.PGVECTOR if usable else MEMORY
    await pgvector_index.require(session, dimensions)
    return pgvector_index.PGVECTOR


def ranked(
    ids: NDArray[np.int64],
    sims: NDArray[np.float32],
    allowed: set[int] | None,
    threshold: float | None,
    k: int,
) -> list[tuple[int, float]]:
    """The ``k`` best of ``ids`` by ``sims`` (best first, ties by id), filtered."""
    import numpy as np

    keep = np.ones(len(ids), dtype=bool)
    if threshold is not None:
        keep &= sims >= threshold
    if allowed is not None:
        keep &= np.isin(ids, np.fromiter(allowed, dtype=np.int64, count=len(allowed)))
    ids, sims = ids[keep], sims[keep]
    if len(ids) > k:
        top = np.argpartition(-sims, k - 1)[:k]
        ids, sims = ids[top], sims[top]
    order = np.lexsort((ids, -sims))  # best first; ties by id, for a stable answer
    return list(zip(ids[order].tolist(), sims[order].astype(float).tolist(), strict=True))


_CACHE: OrderedDict[int, tuple[Key, NumpyIndex]] = OrderedDict()
_LOCK = threading.Lock()


async def collections_index(session: AsyncSession, collections: Sequence[int]) -> NumpyIndex:
    """The index over every indexed chunk of ``collections``."""
    import numpy as np

    parts = [await _collection(session, c) for c in dict.fromkeys(collections)]
    parts = [p for p in parts if len(p.ids)]
    if len(parts) == 1:
        return parts[0]
    if not parts:
        return NumpyIndex(np.zeros(0, dtype=np.int64), np.zeros((0, 0), dtype=np.float32))
    return NumpyIndex(
        np.concatenate([p.ids for p in parts]), np.concatenate([p.matrix for p in parts])
    )


async def _collection(session: AsyncSession, collection_id: int) -> NumpyIndex:
    rows = await session.execute(
        select(Document.id, Document.updated_at)
        .where(Document.collection_id == collection_id, Document.status == DONE)
        .order_by(Document.id)
    )
    key: Key = tuple((i, t) for i, t in rows)
    with _LOCK:
        cached = _CACHE.get(collection_id)
        if cached is not None and cached[0] == key:
            _CACHE.move_to_end(collection_id)
            return cached[1]
    chunks = await session.execute(
        select(Chunk.id, Chunk.embedding)
        .join(Document, Document.id == Chunk.document_id)
        .where(Chunk.collection_id == collection_id, Document.status == DONE)
        .order_by(Chunk.id)
    )
    ids: list[int] = []
    vectors: list[bytes] = []
    for chunk_id, embedding in chunks:
        ids.append(chunk_id)
        vectors.append(embedding)
    index = _index(ids, vectors)
    with _LOCK:
        _CACHE[collection_id] = (key, index)
        _CACHE.move_to_end(collection_id)
        while len(_CACHE) > MAX_CACHED:
            _CACHE.popitem(last=False)
    return index


def _index(ids: list[int], vectors: list[bytes]) -> NumpyIndex:
    import numpy as np

    if not ids:
        return NumpyIndex(np.zeros(0, dtype=np.int64), np.zeros((0, 0), dtype=np.float32))
    # All of one collection come from one model, so they have one length.
    matrix = np.frombuffer(b"".join(vectors), dtype="<f4").reshape(len(ids), -1)
    return NumpyIndex(np.asarray(ids, dtype=np.int64), matrix.astype(np.float32, copy=False))


def to_bytes(vector: NDArray[np.float32]) -> bytes:
    """An embedding as stored: little-endian float32."""
    import numpy as np

    return np.asarray(vector, dtype="<f4").tobytes()
