"""Tables of the trust domain."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from rhenus.core.db import Base


class SeenNonce(Base):
    """A signature nonce already accepted; kept for the signature window, to refuse replays."""

    __tablename__ = "trust_seen_nonces"

    nonce: Mapped[str] = mapped_column(String(128), primary_key=True)
    sender: Mapped[str] = mapped_column(String(255))
    seen_at: Mapped[datetime] = mapped_column(index=True)


class StoredCredential(Base):
    """A credential this node holds about itself: its self-description, its compliance proof."""

    __tablename__ = "trust_credentials"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), index=True)  # "participant" | "compliance"
    issuer: Mapped[str] = mapped_column(String(255))
    digest: Mapped[str] = mapped_column(String(80), unique=True)
    token: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]
    valid_until: Mapped[datetime | None]


class RegisteredParticipant(Base):
    """On a trust anchor: a participant it found compliant, and its revocation state."""

    __tablename__ = "trust_registry"

    did: Mapped[str] = mapped_column(String(255), primary_key=True)
    legal_name: Mapped[str] = mapped_column(String(255))
    country: Mapped[str] = mapped_column(String(2))
    labels: Mapped[list[str]] = mapped_column(JSON, default=list)
    credential_digests: Mapped[list[str]] = mapped_column(JSON, default=list)
    status_index: Mapped[int] = mapped_column(Integer, unique=True)
    issued_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
