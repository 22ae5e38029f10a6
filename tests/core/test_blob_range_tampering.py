"""Ranged reads of damaged objects, each rule on a local directory and on a real S3 server.

A bad segment inside the range fails the read before any of its bytes is released; one outside
the range does not matter (a whole read or ``verify`` finds it). Truncation and appended bytes
count where the range meets them; the last segment must be sealed as last. An object replaced
by another copy of the same content while it is read is read from the new copy.
"""

from __future__ import annotations

import struct
from collections.abc import AsyncGenerator, Callable

import pytest

from rhenus.core.blobs import BlobCorrupt, BlobStore
from rhenus.core.blobs.envelope import SEGMENT, TAG, Header
from tests.core.conftest import (
    SIX,
    drain_range,
    header_of,
    plaintext,
    put_sealed,
    raw_of,
    read_range,
    seal,
)

S = SEGMENT
MIB = 1024 * 1024


# -- bad segments ----------------------------------------------------------------------------------
SMALL = 1024  # segments of 1 KiB: a 3 MiB object has 3072 of them, over several stored chunks


def _flip_ciphertext(raw: bytearray, header: Header, k: int) -> None:
    raw[header.segment_offset(k) + 5] ^= 0x01


def _flip_tag(raw: bytearray, header: Header, k: int) -> None:
    raw[header.segment_offset(k) + header.segment_length(k) - 1] ^= 0x01


def _swap_with_next(raw: bytearray, header: Header, k: int) -> None:
    a, b, c = (header.segment_offset(i) for i in (k, k + 1, k + 2))
    raw[a:c] = raw[b:c] + raw[a:b]


EDITS: dict[str, Callable[[bytearray, Header, int], None]] = {
    "ciphertext_byte": _flip_ciphertext,
    "segment_tag": _flip_tag,
    "reordered_segments": _swap_with_next,
}


@pytest.mark.parametrize("how", EDITS)
@pytest.mark.parametrize("k", [10, 11, 2000, 2998])
async def test_a_bad_segment_in_the_range_fails_before_any_of_its_bytes_is_released(
    blob_store: BlobStore, how: str, k: int
) -> None:
    data = plaintext(3 * MIB)
    address = await put_sealed(blob_store, data, SMALL)
    raw = await raw_of(blob_store, address)
    EDITS[how](raw, header_of(blob_store, raw, address), k)
    await blob_store.write_raw(address, [bytes(raw)])
    start, end = 10 * SMALL + 7, 3000 * SMALL  # segments 10 … 2999

    released: list[bytes] = []
    with pytest.raises(BlobCorrupt, match=f"segment {k} fails authentication"):
        await drain_range(blob_store, address, start, end, released)
    out = b"".join(released)
    assert data[start:end].startswith(out)
    assert len(out) <= max(k * SMALL - start, 0)  # nothing of segment k, nor after it


async def test_a_bad_segment_outside_the_range_does_not_matter(blob_store: BlobStore) -> None:
    data = plaintext(3 * MIB)
    address = await put_sealed(blob_store, data, SMALL)
    raw = await raw_of(blob_store, address)
    header = header_of(blob_store, raw, address)
    for k in (0, 9, 3000, 3071):
        _flip_ciphertext(raw, header, k)
    await blob_store.write_raw(address, [bytes(raw)])
    start, end = 10 * SMALL, 3000 * SMALL  # exactly segments 10 … 2999
    assert await read_range(blob_store, address, start, end) == data[start:end]
    with pytest.raises(BlobCorrupt):
        await blob_store.verify(address)  # the object as a whole is corrupt


async def test_a_truncated_object_fails_where_the_range_meets_the_cut(
    blob_store: BlobStore, six: tuple[str, bytes]
) -> None:
    address, data = six
    raw = await raw_of(blob_store, address)
    header = header_of(blob_store, raw, address)
    await blob_store.write_raw(address, [bytes(raw[:-10])])
    with pytest.raises(BlobCorrupt, match="truncated in segment 5"):
        await read_range(blob_store, address, 4 * S)
    # What is there is intact:
    assert await read_range(blob_store, address, 0, 5 * S) == data[: 5 * S]

    await blob_store.write_raw(address, [bytes(raw[: header.segment_offset(3) + 100])])
    with pytest.raises(BlobCorrupt, match="truncated in segment 4"):
        await read_range(blob_store, address, 4 * S + 1)  # starts past the stored end
    released: list[bytes] = []
    with pytest.raises(BlobCorrupt, match="truncated in segment 3"):
        await drain_range(blob_store, address, 2 * S, 4 * S, released)
    assert data[2 * S : 4 * S].startswith(b"".join(released))
    assert await read_range(blob_store, address, S, 2 * S) == data[S : 2 * S]


async def test_appended_bytes_fail_a_range_that_reaches_the_end(
    blob_store: BlobStore, six: tuple[str, bytes]
) -> None:
    address, data = six
    raw = await raw_of(blob_store, address)
    await blob_store.write_raw(address, [bytes(raw + bytes(TAG))])
    with pytest.raises(BlobCorrupt, match="bytes after the last segment"):
        await read_range(blob_store, address, SIX - 1)
    assert await read_range(blob_store, address, 0, 5 * S) == data[: 5 * S]


async def test_the_last_segment_must_be_sealed_as_last_and_only_it(
    blob_store: BlobStore, six: tuple[str, bytes]
) -> None:
    address, data = six
    raw = await raw_of(blob_store, address)
    h = header_of(blob_store, raw, address)

    def reseal(k: int, flag: int, aad: bytes) -> bytes:
        nonce = h.prefix + struct.pack(">IB", k, flag)  # prefix || counter || flag (format doc)
        sealed = h.aead.encrypt(nonce, data[k * S : (k + 1) * S], aad)
        start = h.segment_offset(k)
        return bytes(raw[:start] + sealed + raw[start + h.segment_length(k) :])

    await blob_store.write_raw(address, [reseal(5, 0, h.key_block)])  # as if more followed
    with pytest.raises(BlobCorrupt, match="segment 5 fails authentication"):
        await read_range(blob_store, address, 5 * S)
    assert await read_range(blob_store, address, 0, 5 * S) == data[: 5 * S]

    await blob_store.write_raw(address, [reseal(2, 1, h.header)])  # as if it ended there
    with pytest.raises(BlobCorrupt, match="segment 2 fails authentication"):
        await read_range(blob_store, address, 2 * S, 3 * S)
    assert await read_range(blob_store, address, 3 * S) == data[3 * S :]


# -- concurrent replacement ------------------------------------------------------------------------
def _replace_before_first_read(
    blob_store: BlobStore, monkeypatch: pytest.MonkeyPatch, copy: bytes
) -> list[int]:
    """Make the store replace the object with ``copy`` between header and segment reads.

    Returns the offsets of the segment reads, as they happen.
    """
    ranges, offsets = blob_store._read_range, list[int]()

    async def replacing(address: str, offset: int, length: int) -> AsyncGenerator[bytes, None]:
        offsets.append(offset)
        if len(offsets) == 1:
            await blob_store.write_raw(address, [copy])
        async for chunk in ranges(address, offset, length):
            yield chunk

    monkeypatch.setattr(blob_store, "_read_range", replacing)
    return offsets


async def test_an_object_replaced_during_the_read_is_read_from_its_new_copy(
    blob_store: BlobStore, six: tuple[str, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A put of the same content may rename a copy under a new data key over it (local)."""
    address, data = six
    again, copy = seal(blob_store.keyring, data, S)
    assert again == address
    offsets = _replace_before_first_read(blob_store, monkeypatch, copy)
    assert await read_range(blob_store, address, S + 1, 4 * S) == data[S + 1 : 4 * S]
    # The segments read under the old header failed; they were read again under the new one.
    assert len(offsets) == 2
    assert await raw_of(blob_store, address) == copy


async def test_a_corrupt_new_copy_is_still_corrupt(
    blob_store: BlobStore, six: tuple[str, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    address, data = six
    _, copy = seal(blob_store.keyring, data, S)
    damaged = bytearray(copy)
    _flip_ciphertext(damaged, header_of(blob_store, damaged, address), 2)
    _replace_before_first_read(blob_store, monkeypatch, bytes(damaged))
    with pytest.raises(BlobCorrupt, match="segment 2 fails authentication"):
        await read_range(blob_store, address, S + 1, 4 * S)
