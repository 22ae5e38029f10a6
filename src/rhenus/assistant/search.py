"""Search over the chunks of collections: keyword, semantic, or both fused (no HTTP).

- **keyword**: the engine's full-text index over the chunks' stemmed terms (migration 0013;
  the catalogue's analysis, :mod:`rhenus.dataspace.catalogue.analysis`, so that French "délais"
  finds "délai" on both engines). Any word of the prompt may match (a question shares only some
  of its words with the passage that answers it); SQLite FTS5 scores with ``bm25`` (the score
  here is ``-bm25``, higher is better), PostgreSQL with ``ts_rank`` over the GIN-indexed
  tsvector.
- **semantic**: cosine similarity between the prompt's embedding and the chunks', computed
  with numpy over the collections' vectors held in memory (:mod:`.vectors`: exact, and fast
  enough up to about 100 000 chunks), or by pgvector's HNSW index on PostgreSQL
  (:mod:`.pgvector_index`), as ``assistant_vector_index`` says.
- **hybrid**: reciprocal rank fusion (Cormack et al., SIGIR 2009) of the two rankings,
  ``score = Σ 1 / (60 + rank)``.

``score_threshold`` is the least cosine similarity for ``semantic`` and ``hybrid`` (in hybrid,
a chunk found by its words must also pass it, so that a prompt sharing a stray word with a
passage finds nothing), and the least keyword score for ``keyword``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from rhenus.assistant import vectors
from rhenus.assistant.errors import SERVER_ERROR, OpenAIError
from rhenus.assistant.models import Chunk, Document
from rhenus.dataspace.catalogue.analysis import query_terms, stems, words

# numpy is imported where it is used: a node that never needs it is ~11 MiB smaller.
if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    from rhenus.assistant.service import Assistant
    from rhenus.config import Settings

Method = Literal["keyword", "semantic", "hybrid"]
# Quoted, as numpy is not imported at run time here.
Embedder: TypeAlias = "Callable[[list[str]], Awaitable[NDArray[np.float32]]]"
"""Texts -> their L2-normalised embeddings, one row each (the documents' embedding model)."""

RRF_K = 60
# Each ranking fused in hybrid search holds this many candidates at least.
_CANDIDATES = 50


@dataclass(frozen=True)
class SearchResult:
    """One retrieved chunk: where it comes from, its text and its score (higher is better)."""

    chunk_id: int
    document_id: int
    document_name: str
    collection_id: int
    index: int
    page: int | None
    text: str
    metadata: dict[str, Any]
    score: float
    method: Method


def embedder_for(assistant: Assistant, settings: Settings) -> Embedder:
    """The documents' embedder: ``assistant_documents_embedding_model``, else the first
    embeddings model configured; 503 if there is none."""
    alias = settings.assistant_documents_embedding_model or next(
        (m.alias for m in settings.assistant_models if m.type == "embeddings"), ""
    )

    async def embed(texts: list[str]) -> NDArray[np.float32]:
        if not alias:  # raised when called: a keyword search needs no model
            raise OpenAIError(
                503, "No embeddings model is configured for documents.", type=SERVER_ERROR
            )
        vectors, _ = await assistant.embed(alias, texts)
        return vectors

    return embed


def chunk_terms(content: str) -> str:
    """What the full-text index holds for a chunk: the stems of each word, in order (repeats
    kept: bm25 counts them)."""
    return " ".join(stem for word in words(content) for stem in stems(word))


async def search(
    session: AsyncSession,
    embedder: Embedder,
    *,
    collections: Sequence[int],
    prompt: str,
    k: int,
    method: Method,
    score_threshold: float | None = None,
    metadata: Mapping[str, Any] | None = None,
    vector_index: vectors.Mode = "auto",
) -> list[SearchResult]:
    """The ``k`` best chunks of ``collections`` for ``prompt``, best first.

    ``collections`` are taken as given: the caller checks that they may be read. ``metadata``
    keeps only chunks whose metadata (with ``document_id``, ``document_name`` and ``page``)
    has each of its keys at the given value. ``vector_index``: ``assistant_vector_index``.
    """
    import numpy as np

    if not collections or k <= 0 or not prompt.strip():
        return []
    allowed = await _allowed(session, collections, metadata) if metadata else None
    need = max(k, _CANDIDATES) if method == "hybrid" else k
    keyword: list[tuple[int, float]] = []
    semantic: list[tuple[int, float]] = []
    query = np.zeros(0, dtype=np.float32)
    index: vectors.VectorIndex = vectors.MEMORY
    if method in ("semantic", "hybrid"):
        [embedded] = await embedder([prompt])
        query = np.asarray(embedded, dtype=np.float32)
        index = await vectors.index_for(session, vector_index, len(query))
        semantic = await index.nearest(
            session, collections, query, k=need, threshold=score_threshold, allowed=allowed
        )
    if method in ("keyword", "hybrid"):
        keyword = await _keyword(session, collections, prompt, allowed, need)
        if method == "keyword" and score_threshold is not None:
            keyword = [(i, s) for i, s in keyword if s >= score_threshold]
        elif method == "hybrid" and score_threshold is not None:
            cosine = await index.similarities(session, collections, query, [i for i, _ in keyword])
            keyword = [(i, s) for i, s in keyword if cosine.get(i, -1.0) >= score_threshold]
    if method == "semantic":
        ranking = semantic[:k]
    elif method == "keyword":
        ranking = keyword[:k]
    else:
        ranking = fuse([keyword, semantic])[:k]
    return await _results(session, ranking, method)


def fuse(
    rankings: Sequence[Sequence[tuple[int, float]]], k: int = RRF_K
) -> list[tuple[int, float]]:
    """Reciprocal rank fusion of rankings of ids (best first): ``Σ 1/(k + rank)``, rank from 1.

    Ties keep the order in which ids were first met, the first ranking's first."""
    scores: dict[int, float] = {}
    for ranking in rankings:
        for rank, (chunk_id, _) in enumerate(ranking, start=1):
            scores[chunk_id] = scores.get(chunk_id, 0.0) + 1.0 / (k + rank)
    return sorted(scores.items(), key=lambda item: -item[1])


_SQLITE_KEYWORD = (
    "SELECT c.id, -bm25(assistant_chunks_fts) AS score FROM assistant_chunks_fts "
    "JOIN assistant_chunks AS c ON c.id = assistant_chunks_fts.rowid "
    "WHERE assistant_chunks_fts MATCH :match AND c.collection_id IN ({ids}) "
    "ORDER BY bm25(assistant_chunks_fts), c.id LIMIT :limit"
)
_POSTGRES_KEYWORD = (
    "SELECT id, ts_rank(search_vector, to_tsquery('simple', :match)) AS score "
    "FROM assistant_chunks WHERE collection_id IN ({ids}) "
    "AND search_vector @@ to_tsquery('simple', :match) ORDER BY score DESC, id LIMIT :limit"
)


async def _keyword(
    session: AsyncSession,
    collections: Sequence[int],
    prompt: str,
    allowed: set[int] | None,
    k: int,
) -> list[tuple[int, float]]:
    terms = query_terms(prompt)
    if not terms:
        return []
    sqlite = session.get_bind().dialect.name == "sqlite"
    # Every stem is made of word characters only (analysis.query_terms), safe in either syntax.
    alternatives = [stem for alts in terms for stem in alts]
    match = (
        " OR ".join(f'"{s}"' for s in alternatives)
        if sqlite
        else " | ".join(f"'{s}'" for s in alternatives)
    )
    ids = ", ".join(str(int(c)) for c in collections)  # integers only: no injection
    statement = (_SQLITE_KEYWORD if sqlite else _POSTGRES_KEYWORD).format(ids=ids)
    # A metadata filter applies after ranking: read more rows so that k pass it.
    limit = k if allowed is None else max(k * 20, 1000)
    rows = await session.execute(text(statement), {"match": match, "limit": limit})
    found = [(int(i), float(s)) for i, s in rows]
    if allowed is not None:
        found = [(i, s) for i, s in found if i in allowed]
    return found[:k]


async def _allowed(
    session: AsyncSession, collections: Sequence[int], metadata: Mapping[str, Any]
) -> set[int]:
    """Ids of the chunks of ``collections`` whose metadata matches every key of ``metadata``."""
    rows = await session.execute(
        select(Chunk.id, Chunk.meta, Chunk.page, Chunk.document_id, Document.name)
        .join(Document, Document.id == Chunk.document_id)
        .where(Chunk.collection_id.in_(collections))
    )
    allowed: set[int] = set()
    for chunk_id, meta, page, document_id, name in rows:
        fields = {**meta, "page": page, "document_id": document_id, "document_name": name}
        if all(fields.get(key) == value for key, value in metadata.items()):
            allowed.add(chunk_id)
    return allowed


async def _results(
    session: AsyncSession, ranking: list[tuple[int, float]], method: Method
) -> list[SearchResult]:
    if not ranking:
        return []
    rows = await session.execute(
        select(Chunk, Document.name)
        .join(Document, Document.id == Chunk.document_id)
        .where(Chunk.id.in_([chunk_id for chunk_id, _ in ranking]))
    )
    by_id = {chunk.id: (chunk, name) for chunk, name in rows}
    results = []
    for chunk_id, score in ranking:
        if chunk_id not in by_id:  # deleted since it was ranked
            continue
        chunk, name = by_id[chunk_id]
        results.append(
            SearchResult(
                chunk_id=chunk.id,
                document_id=chunk.document_id,
                document_name=name,
                collection_id=chunk.collection_id,
                index=chunk.index,
                page=chunk.page,
                text=chunk.text,
                metadata=dict(chunk.meta),
                score=score,
                method=method,
            )
        )
    return results
