"""Tables of the catalogue."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from rhenus.core.db import Base


class Dataset(Base):
    """A dataset (file in the blob store) or a service (HTTP endpoint) this node offers."""

    __tablename__ = "catalogue_datasets"

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
