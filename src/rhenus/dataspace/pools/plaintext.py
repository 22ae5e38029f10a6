"""Putting a dataset next to DuckDB: what a query reads of it decrypted from the blob store
into a file of the query's (:mod:`.cache`: an anonymous in-memory file where the system has
them, else a 0600 temporary file in the store's spool).

A CSV file is decrypted whole. Of a Parquet file only what the query reads is: the footer
first (the schema and where each column chunk lies), then the chunks of the columns the guard
found in the query — the rest of the file stays a hole of zeros that DuckDB, reading only the
columns it projects, never touches. A query over one column of a wide table decrypts that
column alone; a later query over the same file decrypts only the columns not there yet
(:class:`Layout` says what is); ``bench/pools.py`` measures the difference.

Reads go through :meth:`~rhenus.core.blobs.BlobStore.read_ranges`: every 64 KiB segment is
authenticated (AES-GCM, bound to its position, the last one flagged as last), so what is read
is the stored object's, unaltered, and the whole-object SHA-256 that a full read checks on top
is not needed for it. Runs of a few MiB are read, decrypted and written (``pwritev``) in worker
threads, two at a time, with no hand-over to the event loop in between.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import anyio.to_thread

from rhenus.core.blobs import BlobStore
from rhenus.core.blobs.ranges import Sink
from rhenus.dataspace.pools import engine

if TYPE_CHECKING:
    import duckdb  # imported by the first query (see engine)

logger = logging.getLogger(__name__)
MAGIC = b"PAR1"
# Ranges closer than this are read as one: decrypting 256 KiB (AES-GCM: a few GB/s) costs less
# than one more read.
_GAP = 256 * 1024
_WORKERS = 2  # threads decrypting at once (AES-GCM releases the GIL)
_META_LOCK = threading.Lock()
_meta: duckdb.DuckDBPyConnection | None = None


@dataclass
class Layout:
    """What is known of one dataset's plaintext, and what of it has been decrypted."""

    size: int
    parquet: bool
    # Byte ranges of each top-level column's chunks (lowercase names), from the footer; None
    # where the file is decrypted whole (CSV, an unreadable footer).
    chunks: dict[str, list[tuple[int, int]]] | None = None
    done: list[tuple[int, int]] = field(default_factory=list)  # merged, decrypted

    @property
    def resident(self) -> int:
        """Plaintext bytes decrypted so far."""
        return sum(end - start for start, end in self.done)

    def wanted(self, columns: frozenset[str]) -> list[tuple[int, int]]:
        """The byte ranges a query over ``columns`` reads."""
        if self.chunks is None:
            return [(0, self.size)]
        return [r for name in columns & self.chunks.keys() for r in self.chunks[name]]


def _sink(fd: int) -> Sink:
    def write(start: int, pieces: list[bytes | memoryview]) -> None:
        total = sum(map(len, pieces))
        # A short write (rare: memory or the spool nearly full) goes on where it stopped.
        while (written := os.pwritev(fd, pieces, start)) < total:
            if written <= 0:
                raise OSError("no room for the dataset's plaintext")
            data = b"".join(pieces)[written:]
            start, total, pieces = start + written, total - written, [data]

    return write


async def _decrypt(
    blobs: BlobStore, sha256: str, fd: int, layout: Layout, ranges: list[tuple[int, int]]
) -> None:
    """Decrypt into ``fd`` what of ``ranges`` is not there yet, and note it in ``layout``."""
    todo = missing(merged(ranges, layout.size), layout.done)
    if todo:
        await blobs.read_ranges(sha256, todo, _sink(fd), workers=_WORKERS)
        layout.done = merged(layout.done + todo, layout.size, gap=0)


def missing(wanted: list[tuple[int, int]], done: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The parts of the sorted, disjoint ``wanted`` ranges outside the sorted, disjoint
    ``done``."""
    out = []
    for start, end in wanted:
        at = start
        for lo, hi in done:
            if hi <= at or lo >= end:
                continue
            if lo > at:
                out.append((at, lo))
            at = max(at, hi)
        if at < end:
            out.append((at, end))
    return out


def merged(ranges: list[tuple[int, int]], size: int, gap: int = _GAP) -> list[tuple[int, int]]:
    """The byte ranges sorted, clipped to the file and joined where they touch or nearly."""
    out: list[tuple[int, int]] = []
    for start, end in sorted((max(0, s), min(size, e)) for s, e in ranges if e > s):
        if start >= end:
            continue
        if out and start <= out[-1][1] + gap:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


def column_chunks(path: Path) -> dict[str, list[tuple[int, int]]]:
    """Where the chunks (dictionary and data pages, bloom filters, page indexes) of each
    top-level column lie in the Parquet file at ``path``, read from its footer alone."""
    import duckdb

    quoted = str(path).replace("'", "''")
    with _META_LOCK:
        global _meta
        if _meta is None:
            # One connection for footers, kept: opening one costs more than reading a footer.
            # Only this function's own SQL ever runs on it.
            _meta = duckdb.connect(
                ":memory:",
                config={"threads": 1, "temp_directory": "", "enable_external_file_cache": False},
            )
        rows = _meta.execute(
            "SELECT lower(path_in_schema), least(dictionary_page_offset, data_page_offset), "  # noqa: S608
            "total_compressed_size, bloom_filter_offset, bloom_filter_length, "
            "column_index_offset, column_index_length, offset_index_offset, offset_index_length "
            f"FROM parquet_metadata('{quoted}')"
        ).fetchall()
    chunks: dict[str, list[tuple[int, int]]] = {}
    for name, *pairs in rows:
        # A nested column's leaves are "top, leaf": it is read whole when its top is named.
        ranges = chunks.setdefault(name.split(", ")[0], [])
        for offset, length in zip(pairs[::2], pairs[1::2], strict=True):
            if offset is not None and length:
                ranges.append((int(offset), int(offset) + int(length)))
    return chunks


async def materialise(
    blobs: BlobStore,
    sha256: str,
    *,
    media_type: str,
    columns: frozenset[str],
    path: Path,
    fd: int,
    layout: Layout | None = None,
) -> Layout:
    """Decrypt into the file ``fd`` (at ``path``) what a query over ``columns`` reads of the
    dataset ``sha256`` and is not there yet (``layout``: what an earlier call on the same file
    returned); what is known and decrypted now. Raises the blob store's errors."""
    if layout is not None:
        await _decrypt(blobs, sha256, fd, layout, layout.wanted(columns))
        return layout
    size = await blobs.size(sha256)
    layout = Layout(size=size, parquet=False)
    # The magic number at both ends, and the footer's length before the last one.
    ends = [(0, len(MAGIC)), (size - 8, size)] if size >= 2 * len(MAGIC) + 4 else [(0, size)]
    await _decrypt(blobs, sha256, fd, layout, ends)
    head = os.pread(fd, len(MAGIC), 0)
    tail = os.pread(fd, 8, size - 8) if size >= 8 else b""
    layout.parquet = engine.is_parquet(head, media_type)
    footer = int.from_bytes(tail[:4], "little") if tail[4:] == MAGIC else -1
    if not (layout.parquet and head == MAGIC and 0 < footer <= size - 12):
        # CSV, or a file that does not look like Parquet: all of it (DuckDB says what it is).
        await _decrypt(blobs, sha256, fd, layout, [(0, size)])
        return layout
    await _decrypt(blobs, sha256, fd, layout, [(size - 8 - footer, size - 8)])
    import duckdb

    try:
        layout.chunks = await anyio.to_thread.run_sync(column_chunks, path)
    except duckdb.Error as exc:
        logger.info("a Parquet footer could not be read, decrypting it all: %s", exc)
    await _decrypt(blobs, sha256, fd, layout, layout.wanted(columns))
    return layout
