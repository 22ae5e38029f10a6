"""Tables of transfer processes (both roles) and of the receipts that close them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from rhenus.core.db import Base


class Transfer(Base):
    """One transfer process as this node sees it; ``id`` is our own pid."""

    __tablename__ = "transfer_processes"
    __table_args__ = (
        UniqueConstraint("role", "counterparty", "consumer_pid"),
        Index("ix_transfer_processes_updated", "updated_at"),
    )

    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))  # provider | consumer
    provider_pid: Mapped[str] = mapped_column(String(255), default="")
    consumer_pid: Mapped[str] = mapped_column(String(255), default="")
    counterparty: Mapped[str] = mapped_column(String(255))
    counterparty_address: Mapped[str] = mapped_column(Text, default="")
    agreement_id: Mapped[str] = mapped_column(String(255), index=True)
    dataset_id: Mapped[str] = mapped_column(String(255), default="")
    format: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16), index=True)
    reason: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Provider: sha-256 of the data-plane token it handed out, and when that token expires.
    token_sha256: Mapped[str | None] = mapped_column(String(64), unique=True)
    token_expires_at: Mapped[datetime | None]
    # Consumer: the data address the provider sent in its TransferStartMessage.
    data_address: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # Provider: bytes the data plane sent. Consumer: bytes received, and their sha-256.
    bytes_served: Mapped[int] = mapped_column(BigInteger, default=0)
    sha256: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Receipt(Base):
    """What a completed transfer delivered, signed by the provider and countersigned by the
    consumer (compact JWS, Ed25519 keys of their did:web documents). Both sides keep it."""

    __tablename__ = "transfer_receipts"

    transfer_id: Mapped[str] = mapped_column(String(255), primary_key=True)  # our pid
    role: Mapped[str] = mapped_column(String(16))
    claims: Mapped[dict[str, Any]] = mapped_column(JSON)
    provider_signature: Mapped[str] = mapped_column(Text)  # JWS over the claims
    consumer_signature: Mapped[str] = mapped_column(Text, default="")  # JWS over the above
    created_at: Mapped[datetime]
