"""The provider's memory of recently queried dataset versions: what queries decrypted of each,
and DuckDB connections open on it, kept between queries up to ``RHENUS_POOLS_CACHE_MIB``.

Each dataset version (keyed by its blob address, the SHA-256 of its plaintext: a new version
is another entry, never stale bytes) has one file of its plaintext, sparse — only what queries
read is decrypted (:mod:`.plaintext`). Where the system has them (Linux) the file is anonymous
memory (``memfd_create``, reached by DuckDB as ``/proc/self/fd/N``): the plaintext is never on a
disk, only in the provider's RAM (and its swap, if it has any). Elsewhere it is a 0600 file in
the blob store's spool, locked while in use, removed when the entry goes (swept at start after
a crash).

A query takes an entry (:meth:`PlaintextCache.use`), decrypts what its columns need and is not
there yet, and runs on an idle connection of that entry opened with the same limits, or a new
one (opening, counting and locking one down costs tens of milliseconds). Entries are evicted
least recently used first once their decrypted bytes together exceed the limit; one in use is
closed when its last query ends. With a limit of 0 nothing is kept: each query decrypts into a
file of its own, removed as soon as it has run.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread

from rhenus.core.blobs import BlobStore
from rhenus.core.blobs.spool import create
from rhenus.dataspace.pools import engine, plaintext

if TYPE_CHECKING:
    import duckdb  # imported by the first query (see engine)

_IDLE = 2  # idle connections kept per entry and limits


class Entry:
    """One dataset version's plaintext file, what of it is decrypted, and idle connections."""

    def __init__(self, sha256: str, spool: Path) -> None:
        self.sha256 = sha256
        self.layout: plaintext.Layout | None = None
        self.users = 0
        self.evicted = False
        self.lock = anyio.Lock()
        self.idle: dict[engine.Limits, list[duckdb.DuckDBPyConnection]] = {}
        self._spooled: Path | None = None
        if hasattr(os, "memfd_create"):
            self.fd = os.memfd_create("rhenus-pool", os.MFD_CLOEXEC)
            self.path = Path(f"/proc/self/fd/{self.fd}")
        else:  # pragma: no cover - Linux has memfd_create
            self._spooled, file = create(spool)
            self.fd, self.path = os.dup(file.fileno()), self._spooled
            file.close()

    @property
    def resident(self) -> int:
        return self.layout.resident if self.layout else 0

    def take(self, limits: engine.Limits) -> duckdb.DuckDBPyConnection | None:
        idle = self.idle.get(limits)
        return idle.pop() if idle else None

    def give_back(self, limits: engine.Limits, conn: duckdb.DuckDBPyConnection) -> None:
        idle = self.idle.setdefault(limits, [])
        if self.evicted or len(idle) >= _IDLE:
            conn.close()
        else:
            idle.append(conn)

    def close(self) -> None:
        """Close the connections, then the file: none may outlive it (its descriptor's number
        could name another file next)."""
        for idle in self.idle.values():
            for conn in idle:
                conn.close()
        self.idle.clear()
        if self._spooled is not None:
            self._spooled.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            os.close(self.fd)


class PlaintextCache:
    """Dataset versions' entries, least recently used first, up to ``limit`` decrypted bytes."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._entries: OrderedDict[str, Entry] = OrderedDict()

    @property
    def resident(self) -> int:
        """Decrypted bytes held."""
        return sum(entry.resident for entry in self._entries.values())

    def __len__(self) -> int:
        return len(self._entries)

    @asynccontextmanager
    async def use(
        self, blobs: BlobStore, sha256: str, *, media_type: str, columns: frozenset[str]
    ) -> AsyncIterator[Entry]:
        """The entry of ``sha256`` with what a query over ``columns`` reads decrypted; it stays
        open until the block ends. Raises the blob store's errors."""
        entry = self._entries.get(sha256)
        if entry is None or entry.evicted:
            entry = Entry(sha256, blobs.temp_dir)
            self._entries[sha256] = entry
        self._entries.move_to_end(sha256)
        entry.users += 1
        try:
            async with entry.lock:
                try:
                    entry.layout = await plaintext.materialise(
                        blobs, sha256, media_type=media_type, columns=columns,
                        path=entry.path, fd=entry.fd, layout=entry.layout,
                    )  # fmt: skip
                except BaseException:
                    self._drop(entry)  # whatever failed, the next query starts afresh
                    raise
            self._evict(keep=entry)
            yield entry
        finally:
            entry.users -= 1
            if entry.users == 0 and (entry.evicted or entry.resident > self.limit):
                self._drop(entry)

    def _evict(self, *, keep: Entry) -> None:
        """Drop the least recently used entries until the rest fit (``keep`` last of all)."""
        for entry in list(self._entries.values()):
            if self.resident <= self.limit:
                return
            if entry is not keep:
                self._drop(entry)
        if keep.resident > self.limit:
            keep.evicted = True  # too large to keep: closed when its query ends

    def _drop(self, entry: Entry) -> None:
        entry.evicted = True
        if self._entries.get(entry.sha256) is entry:
            del self._entries[entry.sha256]
        if entry.users == 0:
            entry.close()

    async def close(self) -> None:
        """Drop every entry (those in use when their queries end)."""
        for entry in list(self._entries.values()):
            self._drop(entry)


async def run_query(
    entry: Entry, *, parquet: bool, sql: str, limits: engine.Limits
) -> list[tuple[Any, ...]]:
    """The rows of ``sql`` over the entry's dataset, on an idle connection with the same
    limits or a new one, given back afterwards unless the query failed."""
    idle = entry.take(limits)

    def run() -> tuple[duckdb.DuckDBPyConnection, list[tuple[Any, ...]]]:
        started = time.monotonic()
        conn = idle or engine.connect(entry.path, parquet=parquet, limits=limits)
        try:
            # Opening (a CSV file's loading) and running share the one time limit.
            left = limits.seconds - (time.monotonic() - started)
            return conn, engine.query(conn, sql, limits, seconds=left)
        except BaseException:
            conn.close()
            raise

    conn, rows = await anyio.to_thread.run_sync(run)
    entry.give_back(limits, conn)
    return rows
