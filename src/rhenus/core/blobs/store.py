"""The blob store's interface, :class:`BlobStore`: encryption, atomic writes and verified reads,
whole or by byte range, over the storage primitives a backend (:mod:`.local`, :mod:`.s3`)
provides. :mod:`rhenus.core.blobs` re-exports it with the backend-picking
:func:`~rhenus.core.blobs.open_blob_store`."""

from __future__ import annotations

import os
import re
from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Iterable, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import anyio
import anyio.to_thread

from rhenus.core.blobs.envelope import (
    MAX_HEADER,
    EnvelopeError,
    Header,
    Opener,
    Sealer,
    read_header,
)
from rhenus.core.blobs.errors import BlobCorrupt, BlobNotFound, BlobRangeError, BlobTooLarge
from rhenus.core.blobs.ranges import RangeOpener, Shared, Sink, runs
from rhenus.core.blobs.spool import seal, seal_last, sweep, sync, temp_file
from rhenus.core.keys import Keyring

_ADDRESS = re.compile(r"[0-9a-f]{64}")
_BATCH = 1024 * 1024  # bytes handed to a worker thread at a time, both ways
_RUN = 4 * 1024 * 1024  # plaintext bytes of one run of read_ranges: one read, one sink call


@dataclass(frozen=True)
class BlobInfo:
    """A stored object: its address and its plaintext size."""

    sha256: str
    size: int


@dataclass
class VerifyReport:
    """What :meth:`BlobStore.verify_all` found: objects checked, addresses that fail."""

    checked: int = 0
    corrupt: list[str] = field(default_factory=list)


def check_address(address: str) -> str:
    """``address`` if it is 64 lowercase hex digits, else ValueError: never a path component."""
    if not isinstance(address, str) or not _ADDRESS.fullmatch(address):
        raise ValueError(f"not a blob address (64 lowercase hex digits): {address!r:.80}")
    return address


def _decrypt(opener: Opener | RangeOpener, data: bytes, address: str) -> bytes:
    try:
        return opener.update(data)
    except EnvelopeError as exc:
        raise BlobCorrupt(f"{address}: {exc}") from exc


def _finish(opener: Opener | RangeOpener, address: str) -> None:
    try:
        opener.finish()
    except EnvelopeError as exc:
        raise BlobCorrupt(f"{address}: {exc}") from exc


async def _batches(
    chunks: AsyncIterable[bytes] | Iterable[bytes], max_size: int | None = None
) -> AsyncGenerator[bytes, None]:
    """The chunks regrouped into pieces of about ``_BATCH`` bytes, with the size limit enforced.

    A sync iterable is consumed on the event loop: pass an async one for a blocking source.
    """
    if isinstance(chunks, bytes | bytearray | memoryview):
        raise TypeError("pass an iterable of byte chunks (e.g. [data]), not bytes")
    batch = bytearray()
    received = 0

    async def each() -> AsyncIterator[bytes]:
        if isinstance(chunks, AsyncIterable):
            async for chunk in chunks:
                yield chunk
        else:
            for chunk in chunks:
                yield chunk

    async for chunk in each():
        received += len(chunk)
        if max_size is not None and received > max_size:
            raise BlobTooLarge(f"more than the allowed {max_size} bytes")
        batch += chunk
        if len(batch) >= _BATCH:
            yield bytes(batch)
            batch.clear()
    yield bytes(batch)


class BlobStore(ABC):
    """The store's interface. Backends provide the ``_``-prefixed storage primitives."""

    def __init__(self, keyring: Keyring, temp_dir: Path) -> None:
        self.keyring = keyring
        self.temp_dir = temp_dir

    # -- what a backend provides (addresses are already checked) -------------------------------
    @abstractmethod
    async def _publish(self, temp: Path, address: str, *, replace: bool) -> None:
        """Make the complete, fsynced file ``temp`` the object at ``address``.

        With ``replace`` false an object already there may be kept: same address, same content.
        """

    @abstractmethod
    def _read(self, address: str) -> AsyncGenerator[bytes, None]:
        """The stored bytes; raises :class:`BlobNotFound` if there is no such object."""

    @abstractmethod
    def _read_range(self, address: str, offset: int, length: int) -> AsyncGenerator[bytes, None]:
        """Up to ``length`` stored bytes from ``offset`` on (fewer where the object ends, none
        if it ends before ``offset``), never more; raises :class:`BlobNotFound`."""

    @abstractmethod
    async def _read_head(self, address: str, length: int) -> bytes:
        """Up to ``length`` first stored bytes; raises :class:`BlobNotFound`."""

    def _open_file(self, address: str) -> BinaryIO | None:
        """The stored object as a file open for positioned reads (blocking, called in a worker
        thread), or None where the backend has no such thing; raises :class:`BlobNotFound`."""
        return None

    @abstractmethod
    async def _exists(self, address: str) -> bool: ...

    @abstractmethod
    async def _delete(self, address: str) -> None: ...

    @abstractmethod
    def _list(self) -> AsyncIterator[str]: ...

    @abstractmethod
    async def check_writable(self) -> None:
        """Raise unless an object could be written now (for ``/readyz``)."""

    async def close(self) -> None:
        """Release connections; the store is not used afterwards."""
        return None

    async def _check_temp_writable(self) -> None:
        async with temp_file(self.temp_dir) as (_, file):
            await anyio.to_thread.run_sync(file.write, b"ready")

    # -- writing -------------------------------------------------------------------------------
    async def put(
        self, chunks: AsyncIterable[bytes] | Iterable[bytes], *, max_size: int | None = None
    ) -> BlobInfo:
        """Encrypt and store a stream of chunks; returns its address and plaintext size.

        Raises :class:`BlobTooLarge` as soon as more than ``max_size`` bytes arrived; nothing
        is left behind then, nor on any other failure.
        """
        sealer = Sealer(self.keyring)
        async with temp_file(self.temp_dir) as (path, file):
            await anyio.to_thread.run_sync(file.seek, sealer.header_size)
            # The last batch goes separately: it closes the stream and writes the header.
            pending: bytes | None = None
            async with aclosing(_batches(chunks, max_size)) as batches:
                async for batch in batches:
                    if pending is not None:
                        await anyio.to_thread.run_sync(seal, file, sealer, pending)
                    pending = batch
            await anyio.to_thread.run_sync(seal_last, file, sealer, pending or b"")
            info = BlobInfo(sealer.sha256, sealer.size)
            await self._publish(path, info.sha256, replace=False)
        return info

    async def write_raw(self, sha256: str, chunks: AsyncIterable[bytes] | Iterable[bytes]) -> None:
        """Store bytes as :meth:`read_raw` gave them (a restore), atomically, replacing any."""
        check_address(sha256)
        async with temp_file(self.temp_dir) as (path, file):
            async with aclosing(_batches(chunks)) as batches:
                async for batch in batches:
                    await anyio.to_thread.run_sync(file.write, batch)
            await anyio.to_thread.run_sync(sync, file)
            await self._publish(path, sha256, replace=True)

    async def delete(self, sha256: str) -> None:
        """Remove an object; removing an absent one is not an error."""
        await self._delete(check_address(sha256))

    async def cleanup_temp(self) -> int:
        """Remove temporary files left by writers that died; returns how many."""
        return await anyio.to_thread.run_sync(sweep, self.temp_dir)

    # -- reading -------------------------------------------------------------------------------
    def open(self, sha256: str) -> AsyncIterator[bytes]:
        """The plaintext in pieces, each released only once authenticated.

        Raises :class:`BlobNotFound` if absent, :class:`BlobCorrupt` at the first bad byte.
        """
        return self._open(check_address(sha256))

    async def _open(self, address: str) -> AsyncIterator[bytes]:
        opener = Opener(self.keyring, address)
        async with aclosing(self._read(address)) as stored:
            async for chunk in stored:
                plain = await anyio.to_thread.run_sync(_decrypt, opener, chunk, address)
                if plain:
                    yield plain
        _finish(opener, address)

    def open_range(self, sha256: str, start: int, end: int | None = None) -> AsyncIterator[bytes]:
        """Plaintext bytes ``[start, end)`` in pieces, each released only once authenticated.

        ``end`` is exclusive; None, or past the object, means to its end (as RFC 9110 §14.1.2
        reads a last-pos past the end). Only the header and the segments covering the range
        are read from storage.

        Errors follow HTTP: a ``start`` at or past the end raises :class:`BlobRangeError` (416;
        its ``size`` is for ``Content-Range: bytes */size``) at the first iteration — except
        ``start = 0`` on an empty object, which yields nothing, as :meth:`open` does (RFC 9110
        calls ``bytes=0-`` unsatisfiable there: a caller that wants that 416 checks size 0).
        ValueError at the call for a bad address, ``start < 0`` or ``end < start``.
        :class:`BlobNotFound`, and :class:`BlobCorrupt` for the header or a segment in the
        range, as :meth:`open` raises them.
        """
        address = check_address(sha256)
        if start < 0 or (end is not None and end < start):
            raise ValueError(f"not a byte range: start {start}, end {end}")
        return self._open_range(address, start, end)

    async def _open_range(self, address: str, start: int, end: int | None) -> AsyncIterator[bytes]:
        header = await self._header(address)
        if start > header.size or start == header.size > 0:
            raise BlobRangeError(address, start, header.size)
        stop = header.size if end is None else min(end, header.size)
        if stop == start and header.size > 0:
            return
        position, replaced = start, False
        while True:
            opener = RangeOpener(header, position, stop)
            try:
                async with aclosing(self._read_range(address, opener.offset, opener.length)) as got:
                    async for chunk in got:
                        plain = await anyio.to_thread.run_sync(_decrypt, opener, chunk, address)
                        if plain:
                            position += len(plain)
                            yield plain
                _finish(opener, address)
                return
            except BlobCorrupt:
                # A put of the same content may have replaced the object since its header was
                # read (the local store renames over it): same plaintext, another data key.
                fresh = None if replaced else await self._header(address)
                if fresh is None or fresh.header == header.header or fresh.size != header.size:
                    raise
                header, replaced = fresh, True

    async def read_ranges(
        self, sha256: str, ranges: Sequence[tuple[int, int]], sink: Sink, *, workers: int = 2
    ) -> None:
        """Decrypt plaintext ``ranges`` (``[start, end)`` pairs, ``end`` past the object meaning
        its end) of one object, handing each authenticated run to ``sink(start, pieces)``.

        For many or large ranges at once (compute-to-data reads a Parquet file's column chunks
        this way): where the backend stores files, ``workers`` threads each read, decrypt and
        hand on runs of a few MiB with no hand-over to the event loop in between (AES-GCM
        releases the GIL), all from one open file, so an object replaced meanwhile is read
        whole from its old version. ``sink`` is called in those threads, for disjoint runs in
        any order, possibly at once: ``os.pwritev`` to one file descriptor is a fitting sink.
        Elsewhere the runs come from :meth:`open_range`, one after the other.

        Raises ValueError (bad address, ``start < 0``, ``end <= start``) at once, and as
        :meth:`open_range` does: :class:`BlobRangeError` for a ``start`` at or past the end,
        :class:`BlobNotFound`, :class:`BlobCorrupt`; and what ``sink`` raises. After an error,
        some runs may have reached ``sink``, none unauthenticated.
        """
        address = check_address(sha256)
        if any(start < 0 or end <= start for start, end in ranges):
            raise ValueError(f"not byte ranges: {list(ranges)[:5]}")
        file = await anyio.to_thread.run_sync(self._open_file, address)
        if file is None:
            for start, end in ranges:
                async for chunk in self.open_range(address, start, end):
                    piece: list[bytes | memoryview] = [chunk]
                    await anyio.to_thread.run_sync(sink, start, piece)
                    start += len(chunk)
            return
        try:
            fd = file.fileno()

            def pread(offset: int, length: int) -> bytes:
                return os.pread(fd, length, offset)

            header = self._parse_header(
                await anyio.to_thread.run_sync(pread, 0, MAX_HEADER), address
            )
            for start, _ in ranges:
                if start >= header.size and not start == header.size == 0:
                    raise BlobRangeError(address, start, header.size)
            shared = Shared(header, runs(header, ranges, _RUN))
            async with anyio.create_task_group() as group:
                for _ in range(max(1, workers)):
                    group.start_soon(anyio.to_thread.run_sync, shared.work, pread, sink)
        finally:
            await anyio.to_thread.run_sync(file.close)
        if shared.errors:
            error = shared.errors[0]
            if isinstance(error, EnvelopeError):
                raise BlobCorrupt(f"{address}: {error}") from error
            raise error

    async def read_bytes(self, sha256: str) -> bytes:
        """The whole plaintext, for small objects."""
        return b"".join([chunk async for chunk in self.open(sha256)])

    def read_raw(self, sha256: str) -> AsyncIterator[bytes]:
        """The stored, encrypted bytes (for backups); :class:`BlobNotFound` if absent."""
        return self._read(check_address(sha256))

    async def exists(self, sha256: str) -> bool:
        return await self._exists(check_address(sha256))

    async def size(self, sha256: str) -> int:
        """Plaintext size, from the object's authenticated header."""
        return (await self._header(check_address(sha256))).size

    async def _header(self, address: str) -> Header:
        return self._parse_header(await self._read_head(address, MAX_HEADER), address)

    def _parse_header(self, head: bytes, address: str) -> Header:
        try:
            header = read_header(head, self.keyring, address)
        except EnvelopeError as exc:
            raise BlobCorrupt(f"{address}: {exc}") from exc
        if header is None:
            raise BlobCorrupt(f"{address}: the object ends inside its header")
        return header

    def list(self) -> AsyncIterator[str]:
        """Addresses of every complete object, in order; writes in progress are not objects."""
        return self._list()

    async def verify(self, sha256: str) -> None:
        """Decrypt the whole object and check its hash; :class:`BlobCorrupt` if it fails."""
        async for _ in self.open(sha256):
            pass

    async def verify_all(self) -> VerifyReport:
        """Verify every object; a corrupt one is reported, not raised."""
        report = VerifyReport()
        async for address in self.list():
            try:
                await self.verify(address)
            except BlobNotFound:
                continue  # deleted since it was listed
            except BlobCorrupt:
                report.corrupt.append(address)
            report.checked += 1
        return report
