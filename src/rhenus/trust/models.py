"""Tables of the trust domain."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from rhenus.core.db import Base


class SeenNonce(Base):
    """A signature nonce already accepted; kept for the signature window, to refuse replays."""

    __tablename__ = "trust_seen_nonces"

    nonce: Mapped[str] = mapped_column(String(128), primary_key=True)
    sender: Mapped[str] = mapped_column(String(255))
    seen_at: Mapped[datetime] = mapped_column(index=True)
