"""Bulk ranged reads (``BlobStore.read_ranges``), each rule on a local directory (worker threads
reading the file) and on a real S3 server (the ranges one after the other through
``open_range``): the same plaintext as ``open_range`` gives, authenticated run by run."""

from __future__ import annotations

import threading

import pytest

from rhenus.core.blobs import BlobCorrupt, BlobNotFound, BlobRangeError, BlobStore
from rhenus.core.blobs.envelope import SEGMENT
from tests.core.conftest import SIX, header_of, plaintext, put_sealed, raw_of

S = SEGMENT
MIB = 1024 * 1024
SMALL = 1024


class Collected:
    """A sink gathering what it is handed into a buffer of the object's size, as pwritev would."""

    def __init__(self, size: int) -> None:
        self.buffer = bytearray(size)
        self.written = bytearray(size)  # 1 where a byte was handed over
        self.lock = threading.Lock()

    def __call__(self, start: int, pieces: list[bytes | memoryview]) -> None:
        data = b"".join(pieces)
        with self.lock:
            self.buffer[start : start + len(data)] = data
            self.written[start : start + len(data)] = b"\x01" * len(data)


@pytest.mark.parametrize("workers", [1, 3])
async def test_many_ranges_at_once_yield_what_open_range_yields(
    blob_store: BlobStore, workers: int
) -> None:
    data = plaintext(9 * MIB + 77)
    address = (await blob_store.put([data])).sha256
    ranges = [(0, 4), (S - 1, S + 1), (100_000, 5 * MIB + 3), (7 * MIB, 7 * MIB + 10),
              (9 * MIB, 10 * MIB)]  # fmt: skip
    sink = Collected(len(data))
    await blob_store.read_ranges(address, ranges, sink, workers=workers)
    expected = bytearray(len(data))
    wanted = bytearray(len(data))
    for start, end in ranges:
        end = min(end, len(data))  # past the object: to its end
        expected[start:end], wanted[start:end] = data[start:end], b"\x01" * (end - start)
    assert sink.buffer == expected
    assert sink.written == wanted  # exactly the ranges asked for, nothing more


async def test_the_whole_of_a_small_object_and_of_an_empty_one(blob_store: BlobStore) -> None:
    for size in (1, SIX):
        data = plaintext(size)
        address = (await blob_store.put([data])).sha256
        sink = Collected(size)
        await blob_store.read_ranges(address, [(0, size)], sink)
        assert bytes(sink.buffer) == data
    empty = (await blob_store.put([b""])).sha256
    await blob_store.read_ranges(empty, [(0, 10)], Collected(0))  # nothing to hand over


async def test_bad_ranges_a_start_past_the_end_and_a_missing_object_are_errors(
    blob_store: BlobStore, six: tuple[str, bytes]
) -> None:
    address, _ = six
    with pytest.raises(ValueError, match="not byte ranges"):
        await blob_store.read_ranges(address, [(10, 10)], Collected(SIX))
    with pytest.raises(ValueError, match="not byte ranges"):
        await blob_store.read_ranges(address, [(-1, 10)], Collected(SIX))
    with pytest.raises(BlobRangeError) as caught:
        await blob_store.read_ranges(address, [(0, 10), (SIX, SIX + 1)], Collected(SIX))
    assert caught.value.size == SIX
    with pytest.raises(BlobNotFound):
        await blob_store.read_ranges("0" * 64, [(0, 10)], Collected(SIX))


@pytest.mark.parametrize("workers", [1, 2])
async def test_a_bad_segment_fails_the_read_and_none_of_it_is_handed_over(
    blob_store: BlobStore, workers: int
) -> None:
    data = plaintext(9 * MIB)  # runs of 4 MiB: [0, 4), [4, 8), [8, 9) MiB
    address = await put_sealed(blob_store, data, SMALL)
    raw = await raw_of(blob_store, address)
    header = header_of(blob_store, raw, address)
    bad = 5000  # in the second run
    raw[header.segment_offset(bad) + 5] ^= 0x01
    await blob_store.write_raw(address, [bytes(raw)])
    sink = Collected(len(data))
    with pytest.raises(BlobCorrupt, match=f"segment {bad} fails authentication"):
        await blob_store.read_ranges(address, [(0, 9 * MIB)], sink, workers=workers)
    assert sink.written[bad * SMALL : (bad + 1) * SMALL].count(1) == 0
    for k in range(len(data) // SMALL):  # what was handed over is the object's, unaltered
        piece = slice(k * SMALL, (k + 1) * SMALL)
        if sink.written[piece].count(1):
            assert sink.buffer[piece] == data[piece], k


async def test_bytes_appended_to_an_object_fail_a_read_that_reaches_its_end(
    blob_store: BlobStore, six: tuple[str, bytes]
) -> None:
    address, data = six
    raw = await raw_of(blob_store, address)
    await blob_store.write_raw(address, [bytes(raw) + b"x"])
    sink = Collected(SIX)
    await blob_store.read_ranges(address, [(0, 10)], sink)  # not at the end: unaffected
    assert bytes(sink.buffer[:10]) == data[:10]
    with pytest.raises(BlobCorrupt, match="bytes after the last segment"):
        await blob_store.read_ranges(address, [(SIX - 5, SIX)], Collected(SIX))


async def test_what_the_sink_raises_is_raised(
    blob_store: BlobStore, six: tuple[str, bytes]
) -> None:
    address, _ = six

    def full(start: int, pieces: list[bytes | memoryview]) -> None:
        raise OSError("no space left on device")

    with pytest.raises(OSError, match="no space left"):
        await blob_store.read_ranges(address, [(0, SIX)], full)
