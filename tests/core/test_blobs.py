"""The blob store: encrypted, content-addressed, verified on read — on local disk and on S3."""

from __future__ import annotations

import asyncio
import hashlib
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rhenus.core.blobs import BlobCorrupt, BlobNotFound, BlobStore, BlobTooLarge
from rhenus.core.blobs.envelope import SEGMENT, TAG
from rhenus.core.keys import Keyring
from tests.core.conftest import make_store

MARKER = b"CONFIDENTIEL-Diffusion-restreinte"


def _content(size: int) -> bytes:
    seed = hashlib.sha256(str(size).encode()).digest()
    return (MARKER + seed * (size // 32 + 1))[:size]


async def _raw(store: BlobStore, address: str) -> bytearray:
    return bytearray(b"".join([c async for c in store.read_raw(address)]))


async def _replace_raw(store: BlobStore, address: str, data: bytes) -> None:
    async def one() -> Iterator[bytes]:  # type: ignore[misc]
        yield bytes(data)

    await store.delete(address)
    await store.write_raw(address, one())


@pytest.mark.parametrize("size", [0, 1, SEGMENT - 1, SEGMENT, SEGMENT + 1, 3 * SEGMENT + 17])
async def test_round_trip_keeps_every_byte(blob_store: BlobStore, size: int) -> None:
    data = _content(size)
    info = await blob_store.put([data[: size // 3], data[size // 3 :]])
    assert info.sha256 == hashlib.sha256(data).hexdigest()
    assert info.size == size
    assert await blob_store.read_bytes(info.sha256) == data
    assert await blob_store.size(info.sha256) == size


async def test_multi_megabyte_object_streams_in_pieces(blob_store: BlobStore) -> None:
    data = _content(5 * 1024 * 1024 + 3)
    info = await blob_store.put(data[i : i + 100_000] for i in range(0, len(data), 100_000))
    pieces = [chunk async for chunk in blob_store.open(info.sha256)]
    assert len(pieces) > 1
    assert b"".join(pieces) == data


async def test_same_content_is_stored_once(blob_store: BlobStore) -> None:
    first = await blob_store.put([b"identical report"])
    second = await blob_store.put([b"identical ", b"report"])
    assert first == second
    assert [a async for a in blob_store.list()] == [first.sha256]


async def test_stored_bytes_are_not_the_plaintext(blob_store: BlobStore) -> None:
    info = await blob_store.put([_content(200_000)])
    raw = await _raw(blob_store, info.sha256)
    assert MARKER not in raw
    assert len(raw) > 200_000  # header + one tag per segment


@pytest.mark.parametrize(
    "where", ["ciphertext", "header", "truncated", "dropped_last_segment", "reordered"]
)
async def test_tampering_is_detected_on_read_and_by_verify_all(
    blob_store: BlobStore, where: str
) -> None:
    data = _content(3 * SEGMENT + 100)
    info = await blob_store.put([data])
    raw = await _raw(blob_store, info.sha256)
    header = len(raw) - (3 * (SEGMENT + TAG) + 100 + TAG)
    seg = SEGMENT + TAG
    if where == "ciphertext":
        raw[header + seg + 5] ^= 0x01
    elif where == "header":
        raw[header - 3] ^= 0x80  # inside the wrapped data key
    elif where == "truncated":
        del raw[-10:]
    elif where == "dropped_last_segment":
        del raw[header + 3 * seg :]
    else:
        raw[header : header + 2 * seg] = (
            raw[header + seg : header + 2 * seg] + raw[header : header + seg]
        )
    await _replace_raw(blob_store, info.sha256, bytes(raw))
    with pytest.raises(BlobCorrupt):
        await blob_store.read_bytes(info.sha256)
    report = await blob_store.verify_all()
    assert report.corrupt == [info.sha256]


async def test_object_moved_to_another_address_is_detected(blob_store: BlobStore) -> None:
    a = await blob_store.put([b"budget 2027: 1.2 bn"])
    b = await blob_store.put([b"budget 2027: 9.9 bn"])
    raw_a = await _raw(blob_store, a.sha256)
    await _replace_raw(blob_store, b.sha256, bytes(raw_a))
    with pytest.raises(BlobCorrupt):
        await blob_store.read_bytes(b.sha256)
    assert (await blob_store.verify_all()).corrupt == [b.sha256]


async def test_unknown_and_invalid_addresses(blob_store: BlobStore) -> None:
    with pytest.raises(BlobNotFound):
        await blob_store.read_bytes("0" * 64)
    assert not await blob_store.exists("0" * 64)
    for bad in ("../../etc/passwd", "A" * 64, "0" * 63):
        with pytest.raises(ValueError, match="not a blob address"):
            await blob_store.exists(bad)


async def test_over_the_size_limit_nothing_is_left(blob_store: BlobStore) -> None:
    with pytest.raises(BlobTooLarge):
        await blob_store.put((b"x" * 10_000 for _ in range(100)), max_size=50_000)
    assert [a async for a in blob_store.list()] == []
    assert list(blob_store.temp_dir.glob("*.part")) == []


async def test_delete_is_idempotent(blob_store: BlobStore) -> None:
    info = await blob_store.put([b"to be deleted"])
    await blob_store.delete(info.sha256)
    await blob_store.delete(info.sha256)
    assert not await blob_store.exists(info.sha256)


async def test_objects_written_before_kek_rotation_still_open(
    blob_url: str, keyring: Keyring
) -> None:
    before = make_store(blob_url, keyring)
    old = await before.put([b"written under the first KEK"])
    keyring.rotate_kek()
    reloaded = Keyring.load(keyring.directory)
    after = make_store(blob_url, reloaded)
    new = await after.put([b"written under the second KEK"])
    assert await after.read_bytes(old.sha256) == b"written under the first KEK"
    assert await after.read_bytes(new.sha256) == b"written under the second KEK"
    assert len(reloaded.keks) == 2
    await before.close()
    await after.close()


async def test_raw_copy_between_stores_sharing_keys(
    blob_store: BlobStore, keyring: Keyring, tmp_path: Path
) -> None:
    info = await blob_store.put([_content(150_000)])
    target = make_store((tmp_path / "other").as_uri(), keyring)
    await target.write_raw(info.sha256, blob_store.read_raw(info.sha256))
    assert await target.read_bytes(info.sha256) == _content(150_000)


async def test_other_nodes_keys_cannot_open_an_object(
    blob_store: BlobStore, tmp_path: Path
) -> None:
    info = await blob_store.put([b"only for this node"])
    stranger = make_store((tmp_path / "stranger").as_uri(), Keyring.create(tmp_path / "k2"))
    await stranger.write_raw(info.sha256, blob_store.read_raw(info.sha256))
    with pytest.raises(BlobCorrupt, match="does not unwrap"):
        await stranger.read_bytes(info.sha256)


async def test_large_object_never_sits_whole_in_memory(blob_store: BlobStore) -> None:
    size, piece = 64 * 1024 * 1024, b"\x5a" * (256 * 1024)
    tracemalloc.start()
    try:
        info = await blob_store.put(piece for _ in range(size // len(piece)))
        seen = 0
        async for chunk in blob_store.open(info.sha256):
            seen += len(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert seen == size
    assert peak < 16 * 1024 * 1024


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.binary(max_size=3 * 1024), cut=st.integers(min_value=1, max_value=4096))
def test_any_bytes_round_trip_in_any_chunking(tmp_path: Path, data: bytes, cut: int) -> None:
    keyring = Keyring.load_or_create(tmp_path / "keys")
    store = make_store((tmp_path / "prop").as_uri(), keyring)

    async def run() -> bytes:
        info = await store.put(data[i : i + cut] for i in range(0, len(data), cut))
        return await store.read_bytes(info.sha256)

    assert asyncio.run(run()) == data
