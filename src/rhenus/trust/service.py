"""Trust logic that needs the database: the replay guard for signed requests."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from rhenus.core.db import utcnow
from rhenus.trust.models import SeenNonce


async def accept_nonce(
    session: AsyncSession, *, nonce: str, sender: str, window: timedelta
) -> bool:
    """Record a nonce; False if it was already used (a replay).

    Nonces older than the signature window are forgotten: a request that old is refused for its
    age before its nonce is looked at.
    """
    now = utcnow()
    await session.execute(delete(SeenNonce).where(SeenNonce.seen_at < now - window * 2))
    if await session.scalar(select(SeenNonce.nonce).where(SeenNonce.nonce == nonce)):
        return False
    session.add(SeenNonce(nonce=nonce, sender=sender[:255], seen_at=now))
    await session.flush()
    return True
