"""Tables of contract negotiations and the agreements they produce (both roles)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from rhenus.core.db import Base


class Negotiation(Base):
    """One contract negotiation as this node sees it, as provider or as consumer.

    ``id`` is this node's own process id (``providerPid`` when we provide, ``consumerPid`` when
    we consume); the counterparty's pid is learned from its first message or answer.
    """

    __tablename__ = "contract_negotiations"
    __table_args__ = (
        # A retried initial request (same consumer, same consumerPid) finds its negotiation.
        UniqueConstraint("role", "counterparty", "consumer_pid"),
        Index("ix_contract_negotiations_updated", "updated_at"),
    )

    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))  # provider | consumer
    provider_pid: Mapped[str] = mapped_column(String(255), default="")
    consumer_pid: Mapped[str] = mapped_column(String(255), default="")
    counterparty: Mapped[str] = mapped_column(String(255))  # its participant id (a DID)
    counterparty_country: Mapped[str] = mapped_column(String(2), default="")  # as certified
    # Where its DSP endpoints are: the consumer's callbackAddress, or the provider's DSP base.
    counterparty_address: Mapped[str] = mapped_column(Text, default="")
    dataset_id: Mapped[str] = mapped_column(String(255))
    offer_id: Mapped[str] = mapped_column(String(255))
    offer: Mapped[dict[str, Any]] = mapped_column(JSON)  # the offer on the table, as sent
    # Consumer side: the offer we asked for; a counter-offer on the same terms is accepted.
    requested: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    purpose: Mapped[str] = mapped_column(String(255), default="")
    agreement_id: Mapped[str | None] = mapped_column(String(255))
    state: Mapped[str] = mapped_column(String(16), index=True)
    reason: Mapped[list[str]] = mapped_column(JSON, default=list)  # why it was terminated
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Agreement(Base):
    """A contract agreement: the policy both parties agreed for one dataset.

    Kept by both sides; the provider checks it again (with the accesses made under it) at every
    access to the data.
    """

    __tablename__ = "contract_agreements"

    id: Mapped[str] = mapped_column(String(255), primary_key=True)  # the odrl:Agreement @id
    negotiation_id: Mapped[str | None] = mapped_column(String(255), index=True)
    role: Mapped[str] = mapped_column(String(16))  # our role: provider | consumer
    dataset_id: Mapped[str] = mapped_column(String(255))
    provider: Mapped[str] = mapped_column(String(255))  # assigner DID
    consumer: Mapped[str] = mapped_column(String(255), index=True)  # assignee DID
    # The provider's DSP base (consumer side: where to start transfers under this agreement).
    provider_address: Mapped[str] = mapped_column(Text, default="")
    policy: Mapped[dict[str, Any]] = mapped_column(JSON)
    purpose: Mapped[str] = mapped_column(String(255), default="")
    signed_at: Mapped[datetime]
    access_count: Mapped[int] = mapped_column(Integer, default=0)
