"""The replay guard records nonces that arrive together in one write unit, and still accepts
each nonce exactly once: within a batch, across batches, and across two processes' guards."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from rhenus.core.db import Database
from rhenus.trust.models import SeenNonce
from rhenus.trust.replay import ReplayGuard

WINDOW = timedelta(minutes=5)


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    database = Database(db_url)
    try:
        yield database
    finally:
        await database.dispose()


async def _recorded(db: Database) -> set[str]:
    async with db.session() as session:
        return set(await session.scalars(select(SeenNonce.nonce)))


async def test_nonces_arriving_together_are_each_fresh_once_and_all_recorded(db: Database) -> None:
    guard = ReplayGuard(db, WINDOW)
    nonces = [f"nonce-{i:04d}-abcdefghijkl" for i in range(40)]
    first = await asyncio.gather(*(guard.accept(n, "did:web:paris") for n in nonces))
    assert first == [True] * 40
    assert await _recorded(db) == set(nonces)
    again = await asyncio.gather(*(guard.accept(n, "did:web:paris") for n in nonces[:5]))
    assert again == [False] * 5


async def test_the_same_nonce_twice_in_one_batch_is_accepted_once(db: Database) -> None:
    guard = ReplayGuard(db, WINDOW)
    answers = await asyncio.gather(
        *(guard.accept("replayed-nonce-0123456789", "did:web:paris") for _ in range(6)),
        guard.accept("another-nonce-0123456789", "did:web:paris"),
    )
    assert answers.count(True) == 2
    assert answers[-1] is True


async def test_a_nonce_seen_by_another_processs_guard_is_a_replay_here(db: Database) -> None:
    # two guards on the same database: what two uvicorn workers of one node hold
    here, there = ReplayGuard(db, WINDOW), ReplayGuard(db, WINDOW)
    answers = await asyncio.gather(
        here.accept("shared-nonce-0123456789ab", "did:web:paris"),
        there.accept("shared-nonce-0123456789ab", "did:web:paris"),
    )
    assert sorted(answers) == [False, True]
    async with db.session() as session:
        count = await session.scalar(select(func.count()).select_from(SeenNonce))
    assert count == 1


async def test_a_waiter_that_gives_up_does_not_lose_the_others_answers(db: Database) -> None:
    guard = ReplayGuard(db, WINDOW)
    impatient = asyncio.ensure_future(guard.accept("impatient-nonce-01234567", "did:web:a"))
    patient = asyncio.ensure_future(guard.accept("patient-nonce-0123456789", "did:web:b"))
    await asyncio.sleep(0)
    impatient.cancel()
    assert await patient is True
    # the cancelled request's nonce was still recorded with its batch: it cannot be replayed
    assert "impatient-nonce-01234567" in await _recorded(db)
    assert await guard.accept("impatient-nonce-01234567", "did:web:a") is False
