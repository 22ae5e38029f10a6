"""Agreements, both roles: the contracts negotiations produce, looked up by transfers and the
data plane, with the count of accesses made under each (provider side)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from rhenus.core.db import utcnow
from rhenus.dataspace.contracts.models import Agreement, Negotiation
from rhenus.dataspace.machine import Role


async def list_agreements(session: AsyncSession, *, limit: int = 200) -> list[Agreement]:
    query = select(Agreement).order_by(Agreement.signed_at.desc()).limit(limit)
    return list((await session.scalars(query)).all())


async def find_agreement(session: AsyncSession, *, agreement_id: str) -> Agreement | None:
    return await session.get(Agreement, agreement_id)


async def seed_agreement(
    session: AsyncSession,
    *,
    agreement_id: str,
    role: Role,
    dataset_id: str,
    provider: str,
    consumer: str,
    provider_address: str,
) -> bool:
    """An agreement made outside any negotiation (conformance fixtures); False if it exists."""
    if await session.get(Agreement, agreement_id) is not None:
        return False
    now = utcnow()
    session.add(
        Agreement(
            id=agreement_id, negotiation_id=None, role=role.value, dataset_id=dataset_id,
            provider=provider, consumer=consumer, provider_address=provider_address,
            policy={"@id": agreement_id, "@type": "Agreement", "target": dataset_id,
                    "assigner": provider, "assignee": consumer,
                    "timestamp": now.isoformat(timespec="seconds").replace("+00:00", "Z"),
                    "permission": [{"action": "use"}]},
            purpose="", signed_at=now, access_count=0,
        )
    )  # fmt: skip
    return True


async def consumer_country(session: AsyncSession, *, agreement: Agreement) -> str | None:
    """The headquarters country the consumer of an agreement was certified with."""
    if agreement.negotiation_id is None:
        return None
    neg = await session.get(Negotiation, agreement.negotiation_id)
    return (neg.counterparty_country or None) if neg is not None else None


async def lock_agreement(session: AsyncSession, *, agreement_id: str) -> Agreement | None:
    """The agreement, locked until the end of the transaction (PostgreSQL ``FOR UPDATE``;
    SQLite write transactions are serialised anyway), so that decisions counting its uses or
    spending its budget are taken one at a time."""
    query = select(Agreement).where(Agreement.id == agreement_id).with_for_update()
    return (await session.scalars(query)).one_or_none()


async def count_access(session: AsyncSession, *, agreement_id: str) -> int:
    """Count one more access under an agreement (provider side); the count before it."""
    agreement = (
        await session.scalars(
            select(Agreement).where(Agreement.id == agreement_id).with_for_update()
        )
    ).one()
    before = agreement.access_count
    agreement.access_count = before + 1
    return before
