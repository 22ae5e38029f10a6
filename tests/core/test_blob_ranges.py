"""Ranged reads (``BlobStore.open_range``), each rule on a local directory and on a real S3 server.

The plaintext bytes ``[start, end)``, read from the header and the covering segments only; RFC
9110 416 semantics for a start at or past the end. Objects with small segments are sealed with
the envelope's own :class:`Sealer` (``put_sealed``): the reader takes the segment size from the
header. What a damaged object does to a ranged read is in ``test_blob_range_tampering``.
"""

from __future__ import annotations

import tracemalloc
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rhenus.core.blobs import BlobError, BlobNotFound, BlobRangeError, BlobStore
from rhenus.core.blobs.envelope import MAX_HEADER, SEGMENT, TAG
from rhenus.core.blobs.s3 import S3BlobStore
from rhenus.core.keys import Keyring
from tests.core.conftest import (
    SIX,
    S3Server,
    header_of,
    make_store,
    plaintext,
    put_sealed,
    raw_of,
    read_range,
)

S = SEGMENT
MIB = 1024 * 1024


# -- what comes out --------------------------------------------------------------------------------
@pytest.mark.parametrize("size", [0, 1, S - 1, S, S + 1, SIX, 2 * MIB + 3])
async def test_the_whole_range_yields_what_open_yields(blob_store: BlobStore, size: int) -> None:
    data = plaintext(size)
    address = (await blob_store.put([data])).sha256
    whole = await blob_store.read_bytes(address)
    assert whole == data
    for end in (None, size, size + 10):
        assert await read_range(blob_store, address, 0, end) == whole


async def test_ranges_on_segment_boundaries(blob_store: BlobStore, six: tuple[str, bytes]) -> None:
    address, data = six
    for start, end in [
        (0, S), (S, 2 * S), (S, 3 * S), (S - 1, S), (S, S + 1), (2 * S - 1, 2 * S + 1),
        (4 * S, 5 * S), (5 * S - 1, None), (5 * S, None), (0, 5 * S),
    ]:  # fmt: skip
        assert await read_range(blob_store, address, start, end) == data[start:end], (start, end)


async def test_ranges_inside_one_segment(blob_store: BlobStore, six: tuple[str, bytes]) -> None:
    address, data = six
    for start, end in [(0, 1), (10, 20), (S + 1, 2 * S - 1), (3 * S + 100, 3 * S + 101)]:
        assert await read_range(blob_store, address, start, end) == data[start:end], (start, end)


async def test_ranges_across_many_segments_stream_in_pieces(blob_store: BlobStore) -> None:
    data = plaintext(3 * MIB + 5)
    address = (await blob_store.put([data])).sha256
    for start, end in [(1000, 3 * MIB), (7 * S + 3, None), (S // 2, 2 * MIB + S // 2)]:
        pieces = [piece async for piece in blob_store.open_range(address, start, end)]
        assert b"".join(pieces) == data[start:end]
        assert len(pieces) > 1
        assert max(map(len, pieces)) <= 2 * MIB


@pytest.mark.parametrize("size", [1, SIX, 2 * S])
async def test_the_last_byte(blob_store: BlobStore, size: int) -> None:
    data = plaintext(size)
    address = (await blob_store.put([data])).sha256
    for end in (None, size, size + 5):
        assert await read_range(blob_store, address, size - 1, end) == data[-1:]


async def test_suffix_ranges(blob_store: BlobStore, six: tuple[str, bytes]) -> None:
    """``bytes=-n`` is ``start = size - n``, or the whole object if n exceeds it."""
    address, data = six
    size = await blob_store.size(address)
    for n in [1, 123, 124, S, S + 1, SIX, SIX + 1000]:
        assert await read_range(blob_store, address, max(size - n, 0)) == data[-n:], n


async def test_an_end_past_the_object_is_clipped(
    blob_store: BlobStore, six: tuple[str, bytes]
) -> None:
    address, data = six
    assert await read_range(blob_store, address, S + 7, 10 * SIX) == data[S + 7 :]


async def test_an_empty_range_inside_the_object_yields_nothing(
    blob_store: BlobStore, six: tuple[str, bytes]
) -> None:
    address, _ = six
    assert await read_range(blob_store, address, 7, 7) == b""
    assert await read_range(blob_store, address, SIX - 1, SIX - 1) == b""


async def test_the_empty_object_has_only_the_empty_range(blob_store: BlobStore) -> None:
    address = (await blob_store.put([])).sha256
    for end in (None, 0, 10):
        assert await read_range(blob_store, address, 0, end) == b""
    with pytest.raises(BlobRangeError) as caught:
        await read_range(blob_store, address, 1)
    assert caught.value.size == 0


async def test_a_start_at_or_past_the_end_is_a_range_error(
    blob_store: BlobStore, six: tuple[str, bytes]
) -> None:
    address, _ = six
    for start in (SIX, SIX + 1, 10**12):
        with pytest.raises(BlobRangeError, match=f"starts at byte {start}") as caught:
            await read_range(blob_store, address, start)
        assert (caught.value.start, caught.value.size) == (start, SIX)
        assert isinstance(caught.value, BlobError)


async def test_bad_arguments_are_refused_at_the_call(blob_store: BlobStore) -> None:
    with pytest.raises(ValueError, match="not a blob address"):
        blob_store.open_range("../../etc/passwd", 0)
    with pytest.raises(ValueError, match="not a byte range"):
        blob_store.open_range("0" * 64, -1)
    with pytest.raises(ValueError, match="not a byte range"):
        blob_store.open_range("0" * 64, 10, 9)


async def test_an_unknown_address_is_not_found(blob_store: BlobStore) -> None:
    with pytest.raises(BlobNotFound):
        await read_range(blob_store, "0" * 64, 0)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(draw=st.data())
async def test_any_range_of_any_object_is_that_slice_of_its_plaintext(
    blob_store: BlobStore, draw: st.DataObject
) -> None:
    segment = draw.draw(st.sampled_from([1, 17]) | st.integers(64, 8192) | st.just(S), "segment")
    size = draw.draw(st.integers(0, 300 * 1024 if segment >= 64 else 4096), "size")
    data = plaintext(size, draw.draw(st.integers(0, 2**16), "seed"))
    address = await put_sealed(blob_store, data, segment)

    def near(low: int) -> st.SearchStrategy[int]:  # anywhere, or around a segment boundary
        around = st.builds(lambda k, d: k * segment + d, st.integers(0, size // segment + 1),
                           st.integers(-1, 1))  # fmt: skip
        return (st.integers(low, max(low, size + 2)) | around).filter(lambda n: n >= low)

    for _ in range(4):
        start = draw.draw(near(0), "start")
        end = draw.draw(st.none() | near(start), "end")
        if start > size or start == size > 0:
            with pytest.raises(BlobRangeError):
                await read_range(blob_store, address, start, end)
        else:
            assert await read_range(blob_store, address, start, end) == data[start:end]


# -- what is read ----------------------------------------------------------------------------------
async def test_only_the_header_and_the_covering_segments_are_read(
    blob_store: BlobStore, six: tuple[str, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    address, data = six
    header = header_of(blob_store, await raw_of(blob_store, address), address)
    calls: list[tuple[str, int, int]] = []
    heads, ranges = blob_store._read_head, blob_store._read_range

    async def spy_head(address: str, length: int) -> bytes:
        calls.append(("head", 0, length))
        return await heads(address, length)

    def spy_range(address: str, offset: int, length: int) -> AsyncGenerator[bytes, None]:
        calls.append(("range", offset, length))
        return ranges(address, offset, length)

    def whole(address: str) -> AsyncGenerator[bytes, None]:
        raise AssertionError("a ranged read must not read the whole object")

    monkeypatch.setattr(blob_store, "_read_head", spy_head)
    monkeypatch.setattr(blob_store, "_read_range", spy_range)
    monkeypatch.setattr(blob_store, "_read", whole)
    h, seg = header.length, S + TAG
    assert header.segment_offset(3) == h + 3 * seg  # H + 16 + i*(S+16), H + 16 the header's end

    start, end = 2 * S + 5, 4 * S - 5
    assert await read_range(blob_store, address, start, end) == data[start:end]
    assert calls == [("head", 0, MAX_HEADER), ("range", h + 2 * seg, 2 * seg)]
    calls.clear()
    # Reaching the end, one byte more is asked for: any there would have been appended.
    assert await read_range(blob_store, address, 5 * S + 1) == data[5 * S + 1 :]
    assert calls == [("head", 0, MAX_HEADER), ("range", h + 5 * seg, 123 + TAG + 1)]


async def test_the_backend_reads_a_stored_range(
    blob_store: BlobStore, six: tuple[str, bytes]
) -> None:
    address, _ = six
    raw = bytes(await raw_of(blob_store, address))
    n = len(raw)
    for offset, length in [(0, 10), (5, n - 5), (n - 3, 10), (n, 5), (n + 100, 5), (3, 0)]:
        got = b"".join([c async for c in blob_store._read_range(address, offset, length)])
        assert got == raw[offset : offset + length], (offset, length)
    with pytest.raises(BlobNotFound):
        await anext(blob_store._read_range("0" * 64, 0, 10))


async def test_an_s3_store_that_ignores_range_fails_the_read(
    s3_server: S3Server, keyring: Keyring, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It would answer with the object from byte 0: an error, not misplaced bytes."""
    blob_store = make_store(s3_server.url("rhenus-no-ranges", tmp_path / "spool"), keyring)
    assert isinstance(blob_store, S3BlobStore)
    address = (await blob_store.put([plaintext(SIX)])).sha256
    get = blob_store.client.get_object

    def without_range(**kwargs: Any) -> Any:
        kwargs.pop("Range", None)
        return get(**kwargs)

    monkeypatch.setattr(blob_store.client, "get_object", without_range)
    for start in (0, 2 * S):  # segments start after the header: never at stored byte 0
        with pytest.raises(OSError, match="ignored Range"):
            await read_range(blob_store, address, start)
    await blob_store.close()


async def test_ranged_reads_stay_in_bounded_memory(blob_store: BlobStore) -> None:
    size, piece = 32 * MIB, b"\xa5" * (256 * 1024)
    info = await blob_store.put(piece for _ in range(size // len(piece)))
    tracemalloc.start()
    try:
        seen = 0
        async for chunk in blob_store.open_range(info.sha256, 1, size - 1):
            seen += len(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert seen == size - 2
    assert peak < 16 * MIB
    await blob_store.delete(info.sha256)
