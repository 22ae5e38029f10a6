"""Per-user quotas of the assistant: requests and tokens per minute, per model alias.

A sliding window of 60 s over the usage records in the database. Every worker process of the
node writes its calls there, so the window is the same whichever worker takes a request; the
count and the new call's ``pending`` record are one write transaction, serialised per user
(SQLite: ``BEGIN IMMEDIATE``, one writer at a time; PostgreSQL: an advisory transaction lock
on the user), so that concurrent calls cannot all slip under a limit. Why not Redis:
docs/assistant.md, "Quotas and usage".

Which limit applies to (user, alias), each of ``rpm`` and ``tpm`` on its own, first set of:
the user's row for the alias, the user's ``*`` row, the model's ``rpm``/``tpm``, the node's
``assistant_rpm``/``assistant_tpm``. 0 is no limit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from rhenus.accounts.models import User
from rhenus.assistant.errors import OpenAIError
from rhenus.assistant.usage_models import ALL_MODELS, AssistantLimit, AssistantUsage
from rhenus.config import AssistantModel, Settings
from rhenus.core.audit import AuditLog
from rhenus.core.db import utcnow
from rhenus.core.errors import NotFound

WINDOW = timedelta(seconds=60)
RATE_LIMITED = "rate_limit_exceeded"
# Namespace of the per-user advisory locks (pg_advisory_xact_lock(int, int)).
_PG_QUOTA_LOCK = 0x7268_7175  # "rhqu"


Source = Literal["user", "user:*", "model", "node"]


@dataclass(frozen=True)
class Limits:
    """Requests and tokens per minute; 0: no limit. ``source`` says where each came from."""

    rpm: int
    tpm: int
    rpm_source: Source = "node"
    tpm_source: Source = "node"


def _pick(candidates: Sequence[tuple[int | None, Source]]) -> tuple[int, Source]:
    for value, source in candidates:
        if value is not None:
            return value, source
    raise AssertionError("the node-wide default is never None")


async def effective_limits(
    session: AsyncSession, *, settings: Settings, user_id: int, model: AssistantModel
) -> Limits:
    """The limits of one user on one alias."""
    rows = (
        await session.scalars(
            select(AssistantLimit).where(
                AssistantLimit.user_id == user_id,
                AssistantLimit.model.in_([model.alias, ALL_MODELS]),
            )
        )
    ).all()
    own = next((r for r in rows if r.model == model.alias), None)
    every = next((r for r in rows if r.model == ALL_MODELS), None)
    rpm, rpm_source = _pick(
        [
            (own.rpm if own else None, "user"),
            (every.rpm if every else None, "user:*"),
            (model.rpm, "model"),
            (settings.assistant_rpm, "node"),
        ]
    )
    tpm, tpm_source = _pick(
        [
            (own.tpm if own else None, "user"),
            (every.tpm if every else None, "user:*"),
            (model.tpm, "model"),
            (settings.assistant_tpm, "node"),
        ]
    )
    return Limits(rpm, tpm, rpm_source, tpm_source)


async def lock_user(session: AsyncSession, user_id: int) -> None:
    """Serialise the admissions of one user until the transaction ends (PostgreSQL; SQLite
    write transactions are serialised already)."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(
            text("SELECT pg_advisory_xact_lock(:ns, :user)"),
            {"ns": _PG_QUOTA_LOCK, "user": user_id},
        )


def rate_limited(
    alias: str, kind: str, limit: int, used: int, now: datetime, frees_at: datetime
) -> OpenAIError:
    """OpenAI's 429: ``type`` ``requests`` or ``tokens``, ``code`` ``rate_limit_exceeded``."""
    wait = max(1, math.ceil((frees_at - now).total_seconds()))
    unit = "requests per min (RPM)" if kind == "requests" else "tokens per min (TPM)"
    error = OpenAIError(
        429,
        f"Rate limit reached for {alias} on {unit}: Limit {limit}, Used {used}. "
        f"Please try again in {wait}s.",
        type=kind,
        code=RATE_LIMITED,
    )
    error.headers["Retry-After"] = str(wait)
    # OpenAI's rate-limit headers (x-ratelimit-*-requests / -tokens), for the limit hit.
    error.headers[f"x-ratelimit-limit-{kind}"] = str(limit)
    error.headers[f"x-ratelimit-remaining-{kind}"] = "0"
    error.headers[f"x-ratelimit-reset-{kind}"] = f"{wait}s"
    return error


async def admit(
    session: AsyncSession, *, user_id: int, alias: str, limits: Limits, now: datetime
) -> None:
    """Raise a 429 if one more call now would exceed a limit, counting the last 60 s."""
    if not limits.rpm and not limits.tpm:
        return
    rows = (
        await session.execute(
            select(
                AssistantUsage.created_at,
                AssistantUsage.prompt_tokens + AssistantUsage.completion_tokens,
            )
            .where(
                AssistantUsage.user_id == user_id,
                AssistantUsage.model == alias,
                AssistantUsage.created_at > now - WINDOW,
            )
            .order_by(AssistantUsage.created_at)
        )
    ).all()
    if limits.rpm and len(rows) >= limits.rpm:
        # Room for one more once the oldest len - rpm + 1 calls have left the window.
        frees_at = rows[len(rows) - limits.rpm][0] + WINDOW
        raise rate_limited(alias, "requests", limits.rpm, len(rows), now, frees_at)
    if limits.tpm:
        used = sum(tokens for _, tokens in rows)
        if used >= limits.tpm:
            left = used
            frees_at = now + WINDOW
            for created, tokens in rows:
                left -= tokens
                if left < limits.tpm:
                    frees_at = created + WINDOW
                    break
            raise rate_limited(alias, "tokens", limits.tpm, used, now, frees_at)


# Administration of the per-user rows.


async def _user(session: AsyncSession, username: str) -> User:
    user = await session.scalar(select(User).where(User.username == username))
    if user is None:
        raise NotFound(f"no user {username!r}")
    return user


async def list_limits(session: AsyncSession) -> list[tuple[AssistantLimit, str]]:
    """Every per-user row, with its username."""
    rows = await session.execute(
        select(AssistantLimit, User.username)
        .join(User, User.id == AssistantLimit.user_id)
        .order_by(User.username, AssistantLimit.model)
    )
    return [(limit, username) for limit, username in rows.tuples()]


async def set_limit(
    session: AsyncSession,
    *,
    audit: AuditLog,
    actor: str,
    username: str,
    model: str,
    rpm: int | None,
    tpm: int | None,
) -> AssistantLimit:
    """Create or replace the row of (user, model)."""
    user = await _user(session, username)
    row = await session.scalar(
        select(AssistantLimit).where(
            AssistantLimit.user_id == user.id, AssistantLimit.model == model
        )
    )
    if row is None:
        row = AssistantLimit(user_id=user.id, model=model)
        session.add(row)
    row.rpm, row.tpm, row.updated_at = rpm, tpm, utcnow()
    await session.flush()
    await audit.record(
        session,
        actor=actor,
        action="assistant.limit.set",
        object_type="user",
        object_id=username,
        details={"model": model, "rpm": rpm, "tpm": tpm},
    )
    return row


async def delete_limit(
    session: AsyncSession, *, audit: AuditLog, actor: str, username: str, model: str
) -> None:
    """Remove the row of (user, model); the next level applies again."""
    user = await _user(session, username)
    row = await session.scalar(
        select(AssistantLimit).where(
            AssistantLimit.user_id == user.id, AssistantLimit.model == model
        )
    )
    if row is None:
        raise NotFound(f"no limits of {username!r} on {model!r}")
    await session.delete(row)
    await audit.record(
        session,
        actor=actor,
        action="assistant.limit.deleted",
        object_type="user",
        object_id=username,
        details={"model": model},
    )


async def user_id_of(session: AsyncSession, username: str) -> int:
    """The id of an account; 404 if there is none."""
    return (await _user(session, username)).id
