"""Wire formats of document collections, search and retrieval-augmented chat, after the
Albert API (etalab-ia/albert-api, now OpenGateLLM): ``/v1/collections``, ``/v1/documents``,
``/v1/search``, and ``search`` / ``search_args`` on ``/v1/chat/completions``.

Differences from Albert: a collection's visibility is ``private`` or ``shared`` (with every
user of the node), keyword search is called ``keyword`` (Albert: ``lexical``), and results
carry the page of the chunk. See docs/assistant.md ("Documents and search").
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from rhenus.assistant.models import Collection as CollectionRow
from rhenus.assistant.models import Document as DocumentRow
from rhenus.assistant.search import Method, SearchResult

StrictScalar = str | int | float | bool


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CollectionRequest(_Request):
    """POST /v1/collections."""

    name: Annotated[str, Field(min_length=1, max_length=255)]
    description: Annotated[str, Field(max_length=10_000)] = ""
    visibility: Literal["private", "shared"] = "private"


class Collection(BaseModel):
    object: Literal["collection"] = "collection"
    id: int
    name: str
    description: str
    owner: str  # the owner's username
    visibility: Literal["private", "shared"]
    documents: int
    created_at: int  # Unix seconds, as OpenAI's objects
    updated_at: int

    @classmethod
    def of(cls, row: CollectionRow, owner: str, documents: int) -> Collection:
        return cls(
            id=row.id,
            name=row.name,
            description=row.description,
            owner=owner,
            visibility="shared" if row.visibility == "shared" else "private",
            documents=documents,
            created_at=int(row.created_at.timestamp()),
            updated_at=int(row.updated_at.timestamp()),
        )


class Collections(BaseModel):
    object: Literal["list"] = "list"
    data: list[Collection]


class Document(BaseModel):
    """A document and how far its indexing went (``status``, ``error``, ``chunks``)."""

    object: Literal["document"] = "document"
    id: int
    name: str
    collection_id: int
    media_type: str
    bytes: int
    status: Literal["queued", "processing", "done", "failed"]
    error: str | None
    chunks: int
    pages: int | None
    created_at: int
    updated_at: int

    @classmethod
    def of(cls, row: DocumentRow) -> Document:
        return cls(
            id=row.id,
            name=row.name,
            collection_id=row.collection_id,
            media_type=row.media_type,
            bytes=row.size,
            status=row.status,
            error=row.error or None,
            chunks=row.chunk_count,
            pages=row.page_count,
            created_at=int(row.created_at.timestamp()),
            updated_at=int(row.updated_at.timestamp()),
        )


class Documents(BaseModel):
    object: Literal["list"] = "list"
    data: list[Document]


class SearchArgs(_Request):
    """Where and how to search: ``search_args`` of a chat completion, the body of a search."""

    collections: Annotated[list[int], Field(min_length=1, max_length=100)]
    k: Annotated[int, Field(ge=1, le=100)] = 4
    method: Method = "hybrid"
    # semantic, hybrid: least cosine similarity; keyword: least keyword score.
    score_threshold: Annotated[float, Field(ge=-1)] | None = None
    metadata: dict[str, StrictScalar] | None = None


class SearchRequest(SearchArgs):
    """POST /v1/search."""

    prompt: Annotated[str, Field(min_length=1, max_length=10_000)]
    k: Annotated[int, Field(ge=1, le=100)] = 6


class ChunkOut(BaseModel):
    object: Literal["chunk"] = "chunk"
    id: int
    index: int
    page: int | None
    content: str
    metadata: dict[str, Any]


class DocumentRef(BaseModel):
    id: int
    name: str
    collection_id: int


class Hit(BaseModel):
    """One search result: the chunk, its document and its score (higher is better)."""

    object: Literal["search.result"] = "search.result"
    method: Method
    score: float
    chunk: ChunkOut
    document: DocumentRef

    @classmethod
    def of(cls, result: SearchResult) -> Hit:
        return cls(
            method=result.method,
            score=result.score,
            chunk=ChunkOut(
                id=result.chunk_id,
                index=result.index,
                page=result.page,
                content=result.text,
                metadata=result.metadata,
            ),
            document=DocumentRef(
                id=result.document_id,
                name=result.document_name,
                collection_id=result.collection_id,
            ),
        )


class Hits(BaseModel):
    object: Literal["list"] = "list"
    data: list[Hit]
