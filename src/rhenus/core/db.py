"""Database access: the declarative base, engine set-up for SQLite and PostgreSQL, units of work.

The same models and queries run on both engines. SQLite is tuned for a server (WAL, busy timeout,
foreign keys) and its write transactions start with ``BEGIN IMMEDIATE``: SQLite serialises writers
anyway, and taking the write lock up front makes a second writer wait (busy timeout) instead of
failing half-way with ``SQLITE_BUSY`` when it upgrades a read snapshot.
"""

from __future__ import annotations

import asyncio
import queue
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar

import aiosqlite
from sqlalchemy import DateTime, Dialect, MetaData, event, make_url, text
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every engine (SQLite has no time zones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base of every table of every domain."""

    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime()}


def insert_for(session: AsyncSession) -> Callable[..., Any]:
    """The ``insert`` of the session's dialect, for ``ON CONFLICT`` clauses (both engines have
    them). Imported on first use: a node on SQLite never loads the PostgreSQL dialect."""
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as postgresql_insert

        return postgresql_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert


def utcnow() -> datetime:
    return datetime.now(UTC)


T = TypeVar("T")


def _sqlite_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    # Let SQLAlchemy's "begin" event emit BEGIN itself (pysqlite's implicit BEGIN would not be
    # IMMEDIATE); SQLAlchemy docs, "Serializable isolation / Savepoints / Transactional DDL".
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    _tune(cursor)
    cursor.close()


_BUSY_SECONDS = 15


def _tune(cursor: Any) -> None:
    cursor.execute(f"PRAGMA busy_timeout={_BUSY_SECONDS * 1000}")
    # Read through the OS page cache (mmap) and keep more pages per connection: searches and
    # catalog pages read the same hot pages again and again. Limits, not allocations.
    cursor.execute("PRAGMA mmap_size=268435456")
    cursor.execute("PRAGMA cache_size=-32768")


def _sqlite_begin(conn: Any) -> None:
    immediate = conn.get_execution_options().get("rhenus_write", False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


class _InlineSQLite(aiosqlite.Connection):
    """An aiosqlite connection that runs most statements on the event loop's own thread.

    aiosqlite hands every call (cursor, execute, fetch, close: four per statement) to its
    worker thread and back; on the node's short indexed statements those hops cost more than
    SQLite's work (docs/operations.md, "SQLite"). A statement can only wait on a lock at
    ``BEGIN IMMEDIATE`` (WAL readers never wait; this process's writers already take turns on
    an asyncio lock) and only ``COMMIT`` may sync to disk, so those two still go through the
    thread and the event loop is never stalled by another process's write lock or an fsync.
    """

    async def _execute(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if not self._running or not self._connection:
            raise ValueError("Connection closed")
        waits = getattr(fn, "__name__", "") == "commit" or (
            bool(args) and isinstance(args[0], str) and args[0].startswith("BEGIN IMMEDIATE")
        )
        if waits:
            return await super()._execute(fn, *args, **kwargs)  # type: ignore[no-untyped-call]
        return fn(*args, **kwargs)


def _inline_creator(path: str) -> Callable[[], Any]:
    async def connect() -> aiosqlite.Connection:
        # Used from the event loop's thread and, for BEGIN IMMEDIATE and COMMIT, from the
        # worker: one at a time, never concurrently, which is what check_same_thread guards.
        connection = _InlineSQLite(
            lambda: sqlite3.connect(path, check_same_thread=False), iter_chunk_size=64
        )
        connection._thread.daemon = True
        return await connection

    return connect


class Database:
    """An engine plus two session factories: read sessions and write units of work."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        kwargs: dict[str, Any] = {"echo": echo}
        if not self.is_sqlite:
            kwargs.update(pool_size=10, max_overflow=10, pool_pre_ping=True)
        elif (path := make_url(url).database) and path != ":memory:":
            kwargs["async_creator"] = _inline_creator(path)
            # Opening a connection starts a thread and runs six pragmas; with the default pool
            # (5 kept) two dozen requests in flight opened and closed one every 1.5 requests.
            kwargs.update(pool_size=24, max_overflow=24)
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", _sqlite_connect)
            event.listen(self.engine.sync_engine, "begin", _sqlite_begin)
        writer = self.engine.execution_options(rhenus_write=True)
        self._reads = async_sessionmaker(self.engine, expire_on_commit=False)
        self._writes = async_sessionmaker(writer, expire_on_commit=False)
        self._readers: queue.SimpleQueue[sqlite3.Connection] = queue.SimpleQueue()
        self._write_lock = asyncio.Lock()

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session for reading; closing it ends its transaction without a commit.

        Objects loaded through it stay readable afterwards (closing detaches, it does not expire).
        """
        async with self._reads() as session:
            yield session

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A unit of work: commits when the block ends normally, rolls back on any exception.

        Callables appended to ``session.info["after_commit"]`` run once it has committed (never
        after a rollback): work that must only start when the unit of work is durable.
        """
        async with self._writer_turn(), self._writes() as session:
            session.info["database"] = self
            async with session.begin():
                yield session
            for callback in session.info.pop("after_commit", []):
                callback()

    @asynccontextmanager
    async def _writer_turn(self) -> AsyncIterator[None]:
        """On SQLite, this process's writers take turns on an asyncio lock before BEGIN
        IMMEDIATE: SQLite admits one writer anyway, and a writer that waits on the lock is
        woken the moment it is free, where SQLite's busy handler polls with sleeps of up to
        100 ms — under concurrent requests that sleeping, not the work, set the pace.
        (Other processes, e.g. the CLI, still meet at the database's busy timeout.)"""
        if not self.is_sqlite:
            yield
            return
        try:
            await asyncio.wait_for(self._write_lock.acquire(), timeout=_BUSY_SECONDS)
        except TimeoutError as exc:
            raise RuntimeError("no write turn within the busy timeout") from exc
        try:
            yield
        finally:
            self._write_lock.release()

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def read_in_thread(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work`` on a plain read-only sqlite3 connection in a worker thread (SQLite only).

        For the few reads whose cost is the engine's own work (full-text scoring): SQLite
        releases the GIL while it runs, so two such reads use two cores, and a plain
        connection skips the per-statement hops of the async driver. Connections are kept for
        reuse and closed by :meth:`dispose`.
        """
        if not self.is_sqlite or not self.engine.url.database:
            raise RuntimeError("read_in_thread needs a SQLite database file")
        return await asyncio.to_thread(self._read, work)

    def _read(self, work: Callable[[sqlite3.Connection], T]) -> T:
        try:
            connection = self._readers.get_nowait()
        except queue.Empty:
            path = str(self.engine.url.database)
            connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            _tune(connection)
            connection.execute("PRAGMA query_only=ON")
        try:
            return work(connection)
        finally:
            self._readers.put(connection)

    async def dispose(self) -> None:
        while not self._readers.empty():
            self._readers.get_nowait().close()
        await self.engine.dispose()
