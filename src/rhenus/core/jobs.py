"""Durable background jobs: a table of work to do later, and the runner that does it.

Protocols whose replies are asynchronous (the Dataspace Protocol's negotiation and transfer
messages) decide in one transaction and act later: the decision and the job that carries it out
(send the agreement, the verification, …) commit together — the transactional outbox pattern —
so a crash between the two loses nothing and sends nothing twice on its own. The runner leases
each job before running it, so several workers (or processes) never run the same job at once,
retries with exponential backoff, and after the last attempt hands the job to its kind's
``give_up`` so the domain can record the failure (e.g. terminate the negotiation).

Domains register handlers by ``kind``; the core knows no domain.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import (
    JSON,
    Integer,
    Select,
    String,
    Table,
    Text,
    bindparam,
    event,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, Session, mapped_column

from rhenus.core.db import Base, Database, utcnow

log = logging.getLogger("rhenus.jobs")

LEASE = timedelta(seconds=60)
MAX_ATTEMPTS = 8


class Job(Base):
    """One piece of work to run after its transaction committed."""

    __tablename__ = "core_jobs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    due_at: Mapped[datetime] = mapped_column(index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_until: Mapped[datetime | None]
    last_error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime]


# The runner of each open database, for jobs started as soon as their transaction commits.
_RUNNERS: weakref.WeakKeyDictionary[Database, JobRunner] = weakref.WeakKeyDictionary()


def enqueue(
    session: AsyncSession, *, kind: str, payload: Mapping[str, Any], delay: float = 0
) -> Job:
    """Add a job inside the caller's transaction: it exists only if the transaction commits.

    A job due at once, of a kind this process runs, is leased to this process already and
    started right after the commit — no claim, no poll; if the process dies first, the lease
    runs out and any runner takes it up.
    """
    now = utcnow()
    database = session.info.get("database")
    runner = _RUNNERS.get(database) if database is not None else None
    inline = runner is not None and delay <= 0 and kind in runner.handlers
    job = Job(
        kind=kind,
        payload=dict(payload),
        due_at=now + timedelta(seconds=delay),
        attempts=1 if inline else 0,
        lease_until=now + LEASE if inline else None,
        last_error="",
        created_at=now,
    )
    session.add(job)
    if inline and runner is not None:
        session.info.setdefault("after_commit", []).append(lambda: runner.start(job))
    return job


async def renew_lease(session: AsyncSession, job_id: int) -> None:
    """Keep a running job leased for another :data:`LEASE`: a job that works longer than that
    (indexing a large document) would otherwise be claimed again while it runs."""
    await session.execute(update(Job).where(Job.id == job_id).values(lease_until=utcnow() + LEASE))


@dataclass
class _Running:
    """The job the current task runs, and whether a transaction of its handler ended it."""

    job_id: int
    finished: bool = False


_RUNNING: ContextVar[_Running | None] = ContextVar("rhenus_running_job", default=None)


def finish(session: AsyncSession) -> None:
    """End the job this task runs inside the caller's transaction: its effects and its removal
    commit together, so a crash between them cannot run them twice, and the runner saves the
    write unit it would spend removing the job afterwards. Outside a job, nothing happens."""
    running = _RUNNING.get()
    if running is None or running.finished:
        return
    ending: set[int] = session.info.setdefault("finish_jobs", set())
    if running.job_id not in ending:
        ending.add(running.job_id)
        session.info.setdefault("after_commit", []).append(lambda: _mark(running))


def _mark(running: _Running) -> None:
    running.finished = True


# Core, on the transaction's connection: the ORM's bulk DELETE would first flush the session
# and evaluate the criteria against every object it holds (the commit flushes anyway).
_jobs = cast(Table, Job.__table__)
_DELETE_JOBS = _jobs.delete().where(_jobs.c.id.in_(bindparam("ids", expanding=True)))


@event.listens_for(Session, "before_commit")
def _remove_finished(session: Session) -> None:
    ending = session.info.pop("finish_jobs", None)
    if ending:
        session.connection().execute(_DELETE_JOBS, {"ids": sorted(ending)})


@dataclass(frozen=True)
class Handler:
    """What to do for a kind of job, and what to do when it keeps failing."""

    run: Callable[[dict[str, Any]], Awaitable[None]]
    give_up: Callable[[dict[str, Any], str], Awaitable[None]] | None = None


def backoff(attempts: int) -> float:
    """Seconds before the next attempt: 0.5 s, 1 s, 2 s, … capped at 5 minutes."""
    return float(min(300.0, 0.5 * 2 ** max(0, attempts - 1)))


class JobRunner:
    """Runs due jobs of the registered kinds; :meth:`wake` after committing new ones."""

    def __init__(self, db: Database, handlers: Mapping[str, Handler], *, poll: float = 1.0):
        self.db, self.handlers, self.poll = db, dict(handlers), poll
        self._wake = asyncio.Event()
        self._inflight: set[asyncio.Task[None]] = set()
        self._done: set[int] = set()  # done jobs waiting for their removal
        self._removing = False
        _RUNNERS[db] = self

    def start(self, job: Job) -> None:
        """Run a job this process leased at creation, now, in the background."""
        task = asyncio.get_running_loop().create_task(self._run(job))
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)

    def wake(self) -> None:
        self._wake.set()

    def claimable(self, now: datetime, limit: int) -> Select[Job]:
        """The due, unleased jobs of our kinds, locked for the claiming transaction.

        On PostgreSQL the rows are locked (``FOR UPDATE SKIP LOCKED``): two workers claiming at
        once get different jobs — without it both would read the same unleased rows and both
        lease them. SQLite needs no lock (a write transaction holds the database's write lock
        from its start, ``core.db``) and ignores the clause.
        """
        return (
            select(Job)
            .where(Job.due_at <= now, Job.kind.in_(list(self.handlers)))
            .where(or_(Job.lease_until.is_(None), Job.lease_until < now))
            .order_by(Job.due_at, Job.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )

    async def _claim(self, limit: int) -> list[Job]:
        now = utcnow()
        async with self.db.transaction() as session:
            due = (await session.scalars(self.claimable(now, limit))).all()
            for job in due:
                job.lease_until = now + LEASE
                job.attempts += 1
            return list(due)

    async def _run(self, job: Job) -> None:
        handler = self.handlers[job.kind]
        running = _Running(job.id)
        token = _RUNNING.set(running)
        try:
            await handler.run(job.payload)
        except Exception as exc:  # any failure is retried, then given up on
            error = f"{type(exc).__name__}: {exc}"[:2000]
            log.warning("job %s %s failed (attempt %d): %s", job.kind, job.id, job.attempts, error)
            if job.attempts >= MAX_ATTEMPTS:
                await self._delete(job.id)
                if handler.give_up is not None:
                    await handler.give_up(job.payload, error)
                return
            async with self.db.transaction() as session:
                await session.execute(
                    update(Job)
                    .where(Job.id == job.id)
                    .values(
                        lease_until=None,
                        last_error=error,
                        due_at=utcnow() + timedelta(seconds=backoff(job.attempts)),
                    )
                )
            return
        finally:
            _RUNNING.reset(token)
        if not running.finished:
            await self._delete(job.id)

    async def _delete(self, job_id: int) -> None:
        """Remove a job that is done. Jobs done while a removal waits for its write turn go in
        that removal's statement, so that under load one write unit ends many jobs; a done job
        stays leased until removed, so no runner takes it up meanwhile."""
        self._done.add(job_id)
        if self._removing:
            return  # the removal under way takes this one too
        self._removing = True
        try:
            while self._done:
                ids = self._done
                try:
                    async with self.db.transaction() as session:
                        ids, self._done = self._done, set()
                        await session.execute(_DELETE_JOBS, {"ids": sorted(ids)})
                except Exception:
                    self._done |= ids  # the next removal tries them again
                    raise
        finally:
            self._removing = False

    async def run_due(self, limit: int = 50) -> int:
        """Wait for the jobs started at commit, then run the jobs due now (concurrently); how
        many ran."""
        started = list(self._inflight)
        if started:
            await asyncio.gather(*started, return_exceptions=True)
        jobs = await self._claim(limit)
        if jobs:
            await asyncio.gather(*(self._run(job) for job in jobs))
        return len(jobs) + len(started)

    async def drain(self, *, rounds: int = 200) -> None:
        """Run jobs until none is due (tests and one-shot commands)."""
        for _ in range(rounds):
            if not await self.run_due():
                return

    async def _until_next(self) -> float:
        """Seconds until the next job of ours falls due (at most ``poll``): delayed jobs run
        on time, not at the next poll."""
        now = utcnow()
        async with self.db.session() as session:
            due = await session.scalar(
                select(func.min(Job.due_at))
                .where(Job.kind.in_(list(self.handlers)))
                .where(or_(Job.lease_until.is_(None), Job.lease_until < now))
            )
        if due is None:
            return self.poll
        # Never a busy loop: a job due "now" that another worker just claimed waits a moment.
        return min(self.poll, max(0.02, (due - now).total_seconds()))

    async def loop(self) -> None:
        while True:
            wait = self.poll
            try:
                while await self.run_due():
                    pass
                wait = await self._until_next()
            except Exception:  # the runner must outlive a bad round (database hiccup)
                log.exception("job round failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=wait)
            self._wake.clear()

    async def idle(self) -> None:
        """Wait until the jobs started at commit (and those they start) have finished."""
        while self._inflight:
            await asyncio.gather(*list(self._inflight), return_exceptions=True)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Run :meth:`loop` in the background for the block's duration; at the end, jobs still
        running are cancelled (their lease runs out and the next start takes them up)."""
        task = asyncio.create_task(self.loop())
        try:
            yield
        finally:
            for job in [task, *self._inflight]:
                job.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await asyncio.gather(*list(self._inflight), return_exceptions=True)
