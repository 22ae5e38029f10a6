"""Job runners of several workers (or processes) on one database never claim the same job."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from rhenus.core.db import Database, utcnow
from rhenus.core.jobs import Handler, Job, JobRunner, enqueue
from tests.support.postgres import PostgresServer


async def _nothing(payload: dict[str, Any]) -> None:
    return None


HANDLERS = {"test.work": Handler(run=_nothing)}


@pytest.fixture
async def databases(db_url: str) -> AsyncIterator[tuple[Database, Database, Database]]:
    """Two workers' databases (each with its runner) and a third that only enqueues."""
    opened = [Database(db_url) for _ in range(3)]
    try:
        yield opened[0], opened[1], opened[2]
    finally:
        for db in opened:
            await db.dispose()


async def _enqueue(db: Database, count: int) -> None:
    async with db.transaction() as session:
        for i in range(count):
            enqueue(session, kind="test.work", payload={"i": i})


async def test_two_runners_claiming_at_once_share_the_jobs_out(
    databases: tuple[Database, Database, Database],
) -> None:
    one, two, outside = databases
    await _enqueue(outside, 40)
    first, second = JobRunner(one, HANDLERS), JobRunner(two, HANDLERS)
    claims = await asyncio.gather(*(r._claim(15) for r in (first, second, first, second)))
    ids = [job.id for claim in claims for job in claim]
    assert len(ids) == len(set(ids)) == 40


@pytest.fixture
async def pg_database(
    postgres: PostgresServer, pg_template: str
) -> AsyncIterator[tuple[Database, Database]]:
    name = f"t_{uuid.uuid4().hex[:12]}"
    postgres.psql(f"CREATE DATABASE {name} TEMPLATE {pg_template}")
    one, two = Database(postgres.url(name)), Database(postgres.url(name))
    try:
        yield one, two
    finally:
        await one.dispose()
        await two.dispose()


async def test_on_postgresql_a_claim_skips_the_jobs_another_claim_is_taking(
    pg_database: tuple[Database, Database],
) -> None:
    """Without ``SKIP LOCKED`` the second claim would read the same unleased rows, then wait
    for the first transaction and lease them a second time."""
    one, two = pg_database
    await _enqueue(one, 10)
    first, second = JobRunner(one, HANDLERS), JobRunner(two, HANDLERS)
    async with one.transaction() as session:
        taking = (await session.scalars(first.claimable(utcnow(), 4))).all()
        others = await asyncio.wait_for(second._claim(50), 10)
    assert len(taking) == 4
    assert len(others) == 6
    assert {j.id for j in taking}.isdisjoint(j.id for j in others)
    async with two.session() as session:
        assert len((await session.scalars(Job.__table__.select())).all()) == 10
