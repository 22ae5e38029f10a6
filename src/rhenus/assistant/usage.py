"""Reading usage records: one user's page of calls, totals of a user, of each user, of all."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from rhenus.accounts.models import User
from rhenus.assistant.usage_models import AssistantUsage
from rhenus.assistant.usage_schemas import UsageRecord, UsageTotals, UserTotals


@dataclass(frozen=True)
class UsageFilter:
    """Which records: of one user (None: all), one model, admitted in [start, end)."""

    user_id: int | None = None
    model: str | None = None
    start: datetime | None = None
    end: datetime | None = None

    def where(self) -> list[ColumnElement[bool]]:
        clauses: list[ColumnElement[bool]] = []
        if self.user_id is not None:
            clauses.append(AssistantUsage.user_id == self.user_id)
        if self.model is not None:
            clauses.append(AssistantUsage.model == self.model)
        if self.start is not None:
            clauses.append(AssistantUsage.created_at >= self.start)
        if self.end is not None:
            clauses.append(AssistantUsage.created_at < self.end)
        return clauses


def _record(row: AssistantUsage, username: str) -> UsageRecord:
    return UsageRecord(
        id=row.id,
        created=int(row.created_at.timestamp()),
        user=username,
        model=row.model,
        endpoint=row.endpoint,
        stream=row.stream,
        prompt_tokens=row.prompt_tokens,
        completion_tokens=row.completion_tokens,
        total_tokens=row.prompt_tokens + row.completion_tokens,
        duration_ms=row.duration_ms,
        time_to_first_token_ms=row.time_to_first_token_ms,
        status=row.status,
        http_status=row.http_status,
    )


async def page(
    session: AsyncSession, *, where: UsageFilter, after: int | None, limit: int
) -> tuple[list[UsageRecord], bool]:
    """Records newest first, those older than the record ``after`` (a cursor), and whether
    there are more."""
    query = (
        select(AssistantUsage, User.username)
        .join(User, User.id == AssistantUsage.user_id)
        .where(*where.where())
        .order_by(AssistantUsage.id.desc())
        .limit(limit + 1)
    )
    if after is not None:
        query = query.where(AssistantUsage.id < after)
    rows = (await session.execute(query)).tuples().all()
    return [_record(row, username) for row, username in rows[:limit]], len(rows) > limit


def _sums() -> Select[int, int, int]:
    return select(
        func.count(AssistantUsage.id),
        func.sum(AssistantUsage.prompt_tokens),
        func.sum(AssistantUsage.completion_tokens),
    )


def _totals(requests: int, prompt: int | None, completion: int | None) -> UsageTotals:
    return UsageTotals(
        requests=requests,
        prompt_tokens=prompt or 0,
        completion_tokens=completion or 0,
        total_tokens=(prompt or 0) + (completion or 0),
    )


async def totals(session: AsyncSession, *, where: UsageFilter) -> UsageTotals:
    """Calls and tokens of every record the filter matches."""
    count, prompt, completion = (await session.execute(_sums().where(*where.where()))).one()
    return _totals(count, prompt, completion)


async def totals_by_user(session: AsyncSession, *, where: UsageFilter) -> list[UserTotals]:
    """The same totals for each user who has records, by username."""
    query = (
        _sums()
        .add_columns(User.username)
        .join(User, User.id == AssistantUsage.user_id)
        .where(*where.where())
        .group_by(User.username)
        .order_by(User.username)
    )
    rows = (await session.execute(query)).tuples().all()
    return [
        UserTotals(user=username, **_totals(count, prompt, completion).model_dump())
        for count, prompt, completion, username in rows
    ]
