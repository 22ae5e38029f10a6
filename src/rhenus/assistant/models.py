"""Tables of the assistant's documents: collections, their documents, and the indexed chunks.

A chunk carries its text, its embedding (little-endian float32 bytes) and ``search_terms``: the
stemmed, folded words of its text (``dataspace.catalogue.analysis``), on which migration 0013
builds the engine's full-text index — an external-content FTS5 table on SQLite, a stored
``search_vector`` tsvector with a GIN index on PostgreSQL (neither is mapped here).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from rhenus.core.db import Base

PRIVATE, SHARED = "private", "shared"
QUEUED, PROCESSING, DONE, FAILED = "queued", "processing", "done", "failed"


class Collection(Base):
    """A named set of documents, owned by a user: ``private`` (its owner only) or ``shared``
    (readable by every user of the node, i.e. of its organisation)."""

    __tablename__ = "assistant_collections"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str] = mapped_column(Text, default="")
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    visibility: Mapped[str] = mapped_column(String(16), default=PRIVATE)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Document(Base):
    """An uploaded file: its original in the blob store, and how far its indexing went.

    ``updated_at`` is also the ingest's heartbeat (refreshed after each embedded batch), so a
    retried job can tell a live ingest from one whose worker died.
    """

    __tablename__ = "assistant_documents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    collection_id: Mapped[int] = mapped_column(
        ForeignKey("assistant_collections.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(255))
    media_type: Mapped[str] = mapped_column(String(128))
    blob_sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default=QUEUED)
    error: Mapped[str] = mapped_column(Text, default="")
    chunk_count: Mapped[int] = mapped_column(Integer, default=0)
    page_count: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Chunk(Base):
    """A passage of a document, as searched and as cited: text, page, embedding, terms."""

    __tablename__ = "assistant_chunks"
    __table_args__ = (Index("ix_assistant_chunks_document", "document_id", "index"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    document_id: Mapped[int] = mapped_column(
        ForeignKey("assistant_documents.id", ondelete="CASCADE")
    )
    # Kept on the chunk so that a search reads one table, filtered by collection.
    collection_id: Mapped[int] = mapped_column(
        ForeignKey("assistant_collections.id", ondelete="CASCADE"), index=True
    )
    index: Mapped[int] = mapped_column(Integer)  # its position in the document, from 0
    page: Mapped[int | None] = mapped_column(Integer)  # from 1, where the format has pages
    text: Mapped[str] = mapped_column(Text)
    # ``metadata`` is the declarative base's own attribute: mapped under another name.
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSON)
    embedding: Mapped[bytes] = mapped_column(LargeBinary)
    search_terms: Mapped[str] = mapped_column(Text)
