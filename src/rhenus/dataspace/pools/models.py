"""Tables of compute-to-data: the queries run (provider) or sent (consumer) under agreements,
and the differential-privacy budget each agreement has spent (provider side)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from rhenus.core.db import Base


class PoolQuery(Base):
    """One aggregate query under an agreement, as this node saw it (provider or consumer).

    The provider keeps the query, what it decided and the digest of what it released; the
    consumer keeps the released result too, with the provider's signature checked."""

    __tablename__ = "pool_queries"
    __table_args__ = (Index("ix_pool_queries_agreement", "agreement_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # urn:uuid:… (the provider's)
    role: Mapped[str] = mapped_column(String(16))  # provider | consumer
    agreement_id: Mapped[str] = mapped_column(String(255))
    counterparty: Mapped[str] = mapped_column(String(255))  # its DID
    dataset_id: Mapped[str] = mapped_column(String(255), default="")
    sql: Mapped[str] = mapped_column(Text)
    epsilon_micro: Mapped[int | None] = mapped_column(BigInteger)  # ε this query cost
    # running (provider, between acceptance and answer) | answered | refused | failed
    state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text, default="")
    result_sha256: Mapped[str] = mapped_column(String(64), default="")
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # consumer side: what came back
    epsilon_left_micro: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]


class PoolBudget(Base):
    """The ε an agreement's queries have spent (provider side), debited in the transaction that
    accepts each query, so that two queries at once can never spend more than the budget."""

    __tablename__ = "pool_budgets"

    agreement_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    epsilon_spent_micro: Mapped[int] = mapped_column(BigInteger, default=0)
    queries: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime]
