"""Tables of the assistant's metering: one usage record per call, and per-user limits.

A record is written ``pending`` when a call is admitted and completed when it ends, so that
the calls of the last minute — in flight included — are what the quotas count, whichever
worker process took them (see ``quotas.py``).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from rhenus.core.db import Base

PENDING = "pending"
OK = "ok"
CANCELLED = "cancelled"  # the client went away before the answer ended
ALL_MODELS = "*"


class AssistantUsage(Base):
    """One call of a ``/v1`` model route by one user."""

    __tablename__ = "assistant_usage"
    __table_args__ = (
        # The quota window (user, model, last minute) and a user's records, newest first.
        Index("ix_assistant_usage_window", "user_id", "model", "created_at"),
        Index("ix_assistant_usage_created", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    model: Mapped[str] = mapped_column(String(128))  # the alias asked for
    endpoint: Mapped[str] = mapped_column(String(32))  # chat/completions | embeddings
    stream: Mapped[bool] = mapped_column(default=False)
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    completion_tokens: Mapped[int] = mapped_column(Integer, default=0)
    duration_ms: Mapped[int | None] = mapped_column(Integer)
    time_to_first_token_ms: Mapped[int | None] = mapped_column(Integer)  # streams only
    # pending | ok | cancelled | the OpenAI error code (or type) the call ended with
    status: Mapped[str] = mapped_column(String(48))
    http_status: Mapped[int | None] = mapped_column(Integer)  # 499: the client went away
    created_at: Mapped[datetime]


class AssistantLimit(Base):
    """An administrator's limits for one user on one alias (or ``*``: every alias).

    ``None`` in a column keeps the next level: the user's ``*`` row, then the model's
    ``rpm``/``tpm``, then the node-wide ``assistant_rpm``/``assistant_tpm``; 0 is no limit.
    """

    __tablename__ = "assistant_limits"
    __table_args__ = (UniqueConstraint("user_id", "model", name="uq_assistant_limits_user_model"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    model: Mapped[str] = mapped_column(String(128))
    rpm: Mapped[int | None] = mapped_column(Integer)
    tpm: Mapped[int | None] = mapped_column(Integer)
    updated_at: Mapped[datetime]
