"""Tables of the catalogue."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from rhenus.core.db import Base


class Dataset(Base):
    """A dataset (file in the blob store) or a service (HTTP endpoint) this node offers."""

    __tablename__ = "catalogue_datasets"
    # The catalog pages through published datasets in this order.
    __table_args__ = (Index("ix_catalogue_datasets_listing", "status", "created_at", "id"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # urn:uuid:…
    kind: Mapped[str] = mapped_column(String(16))  # "file" | "service"
    title: Mapped[dict[str, str]] = mapped_column(JSON)  # language -> text
    description: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    keywords: Mapped[list[str]] = mapped_column(JSON, default=list)
    theme: Mapped[str] = mapped_column(String(8))  # EU data theme code, e.g. GOVE, HEAL
    license: Mapped[str] = mapped_column(String(500))
    publisher: Mapped[str] = mapped_column(String(255))
    spatial: Mapped[str] = mapped_column(String(255), default="")
    temporal_start: Mapped[str] = mapped_column(String(10), default="")
    temporal_end: Mapped[str] = mapped_column(String(10), default="")
    media_type: Mapped[str] = mapped_column(String(128), default="")
    byte_size: Mapped[int | None] = mapped_column(BigInteger)
    sha256: Mapped[str | None] = mapped_column(String(64))
    endpoint_url: Mapped[str | None] = mapped_column(Text)
    access: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # who may see it
    version: Mapped[int] = mapped_column(Integer, default=1)
    status: Mapped[str] = mapped_column(String(16), default="draft", index=True)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Offer(Base):
    """An ODRL offer of a dataset (its usage policy), stored as given."""

    __tablename__ = "catalogue_offers"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # urn:uuid:…
    dataset_id: Mapped[str] = mapped_column(
        ForeignKey("catalogue_datasets.id", ondelete="CASCADE"), index=True
    )
    policy: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime]


class CataloguePeer(Base):
    """Another participant whose DSP catalog this node crawls."""

    __tablename__ = "catalogue_peers"

    did: Mapped[str] = mapped_column(String(255), primary_key=True)
    url: Mapped[str] = mapped_column(String(500))  # its public URL; the catalog is at {url}/dsp
    source: Mapped[str] = mapped_column(String(16))  # "admin" | "registry"
    added_at: Mapped[datetime]
    crawled_at: Mapped[datetime | None]
    crawl_status: Mapped[str] = mapped_column(String(16), default="never")  # ok | error | never
    crawl_error: Mapped[str] = mapped_column(Text, default="")
    entry_count: Mapped[int] = mapped_column(Integer, default=0)
    # A crawl takes the peer for a while so that two workers never crawl it at once.
    lease_until: Mapped[datetime | None]


class CatalogueEntry(Base):
    """A dataset findable by search: one of ours, or one a peer showed us at its last crawl.

    ``search_title`` and ``search_body`` hold the stemmed terms (see :mod:`.analysis`); the
    database's full-text index (FTS5 on SQLite, a GIN tsvector index on PostgreSQL) is built on
    them by the migration (on PostgreSQL, over a stored ``search_vector`` column the model does
    not map).
    """

    __tablename__ = "catalogue_entries"
    __table_args__ = (UniqueConstraint("origin", "dataset_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # The unique (origin, dataset_id) index serves lookups by origin; search filters and
    # sorts in memory (see .columns), so the facet columns need no index of their own.
    origin: Mapped[str] = mapped_column(String(255))  # publishing participant DID
    dataset_id: Mapped[str] = mapped_column(String(255))
    title: Mapped[dict[str, str]] = mapped_column(JSON)
    description: Mapped[dict[str, str]] = mapped_column(JSON)
    keywords: Mapped[list[str]] = mapped_column(JSON)
    publisher: Mapped[str] = mapped_column(String(255))
    country: Mapped[str] = mapped_column(String(2))
    theme: Mapped[str] = mapped_column(String(16))
    license: Mapped[str] = mapped_column(String(500))
    format: Mapped[str] = mapped_column(String(32))
    offers: Mapped[int] = mapped_column(Integer)  # how many offers the dataset carries
    modified: Mapped[datetime]
    fetched_at: Mapped[datetime]
    document: Mapped[dict[str, Any]] = mapped_column(JSON)  # the DSP Dataset as received
    search_title: Mapped[str] = mapped_column(Text)
    search_body: Mapped[str] = mapped_column(Text)


class CatalogueState(Base):
    """One row: the generation of the entries, bumped by every change to them, so that each
    process knows when the facet columns it keeps in memory are stale."""

    __tablename__ = "catalogue_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)  # always 1
    generation: Mapped[int] = mapped_column(BigInteger, default=0)
