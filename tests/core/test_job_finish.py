"""A job that hands its work on ends in the same transaction as that work (``jobs.finish``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import func, select

from rhenus.core.db import Database
from rhenus.core.jobs import Handler, Job, JobRunner, enqueue, finish


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    database = Database(db_url)
    try:
        yield database
    finally:
        await database.dispose()


async def _jobs(db: Database, kind: str) -> int:
    async with db.session() as session:
        return int(
            await session.scalar(select(func.count()).select_from(Job).where(Job.kind == kind)) or 0
        )


async def test_a_finished_job_is_gone_with_its_work_and_a_later_failure_does_not_rerun_it(
    db: Database,
) -> None:
    runs: list[int] = []

    async def step(payload: dict[str, Any]) -> None:
        runs.append(payload["n"])
        async with db.transaction() as session:
            enqueue(session, kind="test.next", payload={"after": payload["n"]})
            finish(session)
        raise RuntimeError("fails after its work committed")

    async def rolled_back(payload: dict[str, Any]) -> None:
        runs.append(payload["n"])
        try:
            async with db.transaction() as session:
                enqueue(session, kind="test.next", payload={"after": payload["n"]})
                finish(session)
                raise ValueError("the unit of work is rolled back")
        except ValueError:
            pass

    runner = JobRunner(db, {"test.step": Handler(step), "test.undone": Handler(rolled_back)})
    async with db.transaction() as session:
        enqueue(session, kind="test.step", payload={"n": 1})
        enqueue(session, kind="test.undone", payload={"n": 2})
    await runner.drain()
    # The committed step ended its job with its work: the failure after it changes nothing.
    assert await _jobs(db, "test.step") == 0
    assert await _jobs(db, "test.next") == 1
    # The rolled-back one neither handed work on nor ended: the runner removed it once it
    # returned normally, as it does for every job that does not finish itself.
    assert await _jobs(db, "test.undone") == 0
    assert sorted(runs) == [1, 2]


async def test_finish_outside_a_job_changes_nothing(db: Database) -> None:
    async with db.transaction() as session:
        enqueue(session, kind="test.kept", payload={})
    async with db.transaction() as session:
        finish(session)
    assert await _jobs(db, "test.kept") == 1


async def test_jobs_done_together_are_all_removed(db: Database) -> None:
    gate = asyncio.Event()
    done: list[int] = []

    async def work(payload: dict[str, Any]) -> None:
        await gate.wait()  # all finish at once: their removals meet at the write turn
        done.append(payload["n"])

    runner = JobRunner(db, {"test.many": Handler(work)})
    async with db.transaction() as session:
        for n in range(30):
            enqueue(session, kind="test.many", payload={"n": n})
    draining = asyncio.create_task(runner.drain())
    await asyncio.sleep(0.05)
    gate.set()
    await draining
    assert sorted(done) == list(range(30))
    assert await _jobs(db, "test.many") == 0
