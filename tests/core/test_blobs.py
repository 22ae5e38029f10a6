"""The blob store's rules, each checked on a local directory and on a real S3 server.

Content-addressed, encrypted per object, verified on read, streaming, bounded, and copyable as
raw bytes (backup and restore). The stored format is in ``rhenus.core.blobs.envelope``.
"""

from __future__ import annotations

import hashlib
import re
import tracemalloc
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import timedelta
from pathlib import Path

import anyio
import pytest
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rhenus.core.blobs import (
    BlobCorrupt,
    BlobNotFound,
    BlobStore,
    BlobTooLarge,
    VerifyReport,
    open_blob_store,
)
from rhenus.core.blobs.envelope import SEGMENT, TAG, segment_count
from rhenus.core.blobs.s3 import S3BlobStore
from rhenus.core.keys import Keyring
from tests.core.conftest import Backend, S3Server, make_store, stored_files, temp_files

MARKER = b"VERTRAULICH-nur-fuer-den-Dienstgebrauch"
SEG = SEGMENT + TAG  # stored bytes of a full segment


def content(size: int, seed: bytes = b"") -> bytes:
    """Deterministic bytes with the marker every 72 bytes, so any plaintext piece shows it."""
    unit = MARKER + hashlib.sha256(seed + str(size).encode()).digest()[:33]
    return (unit * (size // len(unit) + 1))[:size]


async def raw_of(store: BlobStore, address: str) -> bytearray:
    return bytearray(b"".join([chunk async for chunk in store.read_raw(address)]))


def header_length(raw: bytes | bytearray, size: int) -> int:
    """Bytes before the first segment: the stored size minus the segments (format doc)."""
    return len(raw) - size - TAG * segment_count(size)


async def drain(store: BlobStore, address: str, into: list[bytes]) -> None:
    async for piece in store.open(address):
        into.append(piece)


# -- round trips -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "size", [0, 1, SEGMENT - 1, SEGMENT, SEGMENT + 1, 3 * SEGMENT, 5 * 1024 * 1024 + 3]
)
async def test_round_trip_keeps_every_byte(blob_store: BlobStore, size: int) -> None:
    data = content(size)
    info = await blob_store.put(data[i : i + 40_000] for i in range(0, size, 40_000))
    assert info.sha256 == hashlib.sha256(data).hexdigest()
    assert info.size == size
    assert await blob_store.size(info.sha256) == size
    pieces = [piece async for piece in blob_store.open(info.sha256)]
    assert b"".join(pieces) == data
    assert max(map(len, pieces), default=0) <= 2 * 1024 * 1024  # streamed, not read whole


async def test_put_accepts_async_iterables(blob_store: BlobStore) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for i in range(3):
            yield b"part %d;" % i

    info = await blob_store.put(chunks())
    assert await blob_store.read_bytes(info.sha256) == b"part 0;part 1;part 2;"


async def test_same_content_is_stored_once(blob_store: BlobStore, backend: Backend) -> None:
    first = await blob_store.put([b"identical report"])
    second = await blob_store.put([b"identical ", b"report"])
    async with anyio.create_task_group() as tg:  # and concurrently
        for _ in range(3):
            tg.start_soon(blob_store.put, [b"identical report"])
    assert first == second
    assert [a async for a in blob_store.list()] == [first.sha256]
    assert len(stored_files(backend)) == 1


async def test_stored_bytes_never_contain_the_plaintext(
    blob_store: BlobStore, backend: Backend
) -> None:
    await blob_store.put([content(300_000)])
    await blob_store.put([MARKER])
    files = stored_files(backend)
    assert len(files) == 2
    for path in files:
        assert MARKER not in path.read_bytes()
    assert temp_files(blob_store) == []  # no plaintext-bearing leftovers either


# -- tampering -------------------------------------------------------------------------------------
SIZE = 3 * SEGMENT + 100  # four segments, the last one short


def _flip(offset: Callable[[int], int]) -> Callable[[bytearray, int], None]:
    def edit(raw: bytearray, header: int) -> None:
        raw[offset(header)] ^= 0x01

    return edit


def _swap_segments(raw: bytearray, header: int) -> None:
    first, second = raw[header : header + SEG], raw[header + SEG : header + 2 * SEG]
    raw[header : header + 2 * SEG] = second + first


TAMPERING: dict[str, Callable[[bytearray, int], None]] = {
    "segment_size_field": _flip(lambda h: 7),
    "wrapped_data_key": _flip(lambda h: h - TAG - 32 - 8 - 1),
    "plaintext_size_field": _flip(lambda h: h - TAG - 32 - 1),
    "address_field": _flip(lambda h: h - TAG - 1),
    "header_tag": _flip(lambda h: h - 1),
    "ciphertext_byte": _flip(lambda h: h + SEG + 5),
    "segment_tag": _flip(lambda h: h + 2 * SEG - 1),
    "truncated_last_segment": lambda raw, h: raw.__delitem__(slice(-10, None)),
    "dropped_last_segment": lambda raw, h: raw.__delitem__(slice(h + 3 * SEG, None)),
    "reordered_segments": _swap_segments,
    "appended_bytes": lambda raw, h: raw.extend(bytes(TAG)),
    "emptied_file": lambda raw, h: raw.clear(),
}
HEADER_EDITS = {"segment_size_field", "wrapped_data_key", "plaintext_size_field"}
HEADER_EDITS |= {"address_field", "header_tag", "emptied_file"}


@pytest.mark.parametrize("how", TAMPERING)
async def test_tampering_is_detected_on_read_and_by_verify_all(
    blob_store: BlobStore, how: str
) -> None:
    data = content(SIZE)
    info = await blob_store.put([data])
    raw = await raw_of(blob_store, info.sha256)
    TAMPERING[how](raw, header_length(raw, SIZE))
    await blob_store.write_raw(info.sha256, [bytes(raw)])

    released: list[bytes] = []
    with pytest.raises(BlobCorrupt):
        await drain(blob_store, info.sha256, released)
    assert data.startswith(b"".join(released))  # what came out before the failure is authentic
    with pytest.raises(BlobCorrupt):
        await blob_store.verify(info.sha256)
    assert await blob_store.verify_all() == VerifyReport(checked=1, corrupt=[info.sha256])
    if how in HEADER_EDITS:
        with pytest.raises(BlobCorrupt):
            await blob_store.size(info.sha256)


async def test_swapped_objects_are_both_reported(blob_store: BlobStore) -> None:
    a = await blob_store.put([b"budget 2027: 1.2 bn"])
    b = await blob_store.put([b"budget 2027: 9.9 bn"])
    raw_a, raw_b = await raw_of(blob_store, a.sha256), await raw_of(blob_store, b.sha256)
    await blob_store.write_raw(a.sha256, [bytes(raw_b)])
    await blob_store.write_raw(b.sha256, [bytes(raw_a)])
    for address in (a.sha256, b.sha256):
        with pytest.raises(BlobCorrupt, match="another address"):
            await blob_store.read_bytes(address)
    report = await blob_store.verify_all()
    assert sorted(report.corrupt) == sorted([a.sha256, b.sha256])


async def test_segment_spliced_from_another_object_is_detected(blob_store: BlobStore) -> None:
    a = await blob_store.put([content(SIZE, b"a")])
    b = await blob_store.put([content(SIZE, b"b")])
    raw_a, raw_b = await raw_of(blob_store, a.sha256), await raw_of(blob_store, b.sha256)
    ha, hb = header_length(raw_a, SIZE), header_length(raw_b, SIZE)
    raw_a[ha + SEG : ha + 2 * SEG] = raw_b[hb + SEG : hb + 2 * SEG]
    await blob_store.write_raw(a.sha256, [bytes(raw_a)])
    with pytest.raises(BlobCorrupt, match="segment 1"):
        await blob_store.read_bytes(a.sha256)


# -- addresses, limits, leftovers ------------------------------------------------------------------
async def test_unknown_address_is_not_found(blob_store: BlobStore) -> None:
    unknown = "0" * 64
    assert not await blob_store.exists(unknown)
    for call in (blob_store.read_bytes, blob_store.size, blob_store.verify):
        with pytest.raises(BlobNotFound):
            await call(unknown)
    with pytest.raises(BlobNotFound):
        await anext(blob_store.read_raw(unknown))
    await blob_store.delete(unknown)  # deleting what is absent is fine


@pytest.mark.parametrize("bad", ["../../etc/passwd", "A" * 64, "0" * 63, "0" * 64 + "\n", ""])
async def test_invalid_address_is_refused_before_touching_storage(
    blob_store: BlobStore, bad: str
) -> None:
    for call in (blob_store.exists, blob_store.size, blob_store.delete, blob_store.read_bytes):
        with pytest.raises(ValueError, match="not a blob address"):
            await call(bad)
    with pytest.raises(ValueError, match="not a blob address"):
        blob_store.open(bad)  # at the call, not at the first iteration
    with pytest.raises(ValueError, match="not a blob address"):
        await blob_store.write_raw(bad, [b"x"])
    assert temp_files(blob_store) == []


async def test_over_the_size_limit_fails_early_and_leaves_nothing(
    blob_store: BlobStore, backend: Backend
) -> None:
    consumed = 0

    def chunks() -> Iterator[bytes]:
        nonlocal consumed
        for _ in range(1000):
            consumed += 1
            yield b"x" * 10_000

    with pytest.raises(BlobTooLarge):
        await blob_store.put(chunks(), max_size=50_000)
    assert consumed == 6  # stopped at the first byte over the limit
    assert [a async for a in blob_store.list()] == []
    assert temp_files(blob_store) == []
    assert stored_files(backend) == []
    exact = await blob_store.put([b"x" * 50_000], max_size=50_000)
    assert exact.size == 50_000


async def test_delete_removes_the_object_and_is_idempotent(blob_store: BlobStore) -> None:
    keep, drop = await blob_store.put([b"keep"]), await blob_store.put([b"drop"])
    await blob_store.delete(drop.sha256)
    await blob_store.delete(drop.sha256)
    assert not await blob_store.exists(drop.sha256)
    assert [a async for a in blob_store.list()] == [keep.sha256]


async def test_stale_temp_files_are_invisible_and_cleaned_up(blob_store: BlobStore) -> None:
    info = await blob_store.put([b"a real object"])
    blob_store.temp_dir.mkdir(parents=True, exist_ok=True)
    (blob_store.temp_dir / f"{'e' * 32}.part").write_bytes(b"half an object")
    assert [a async for a in blob_store.list()] == [info.sha256]
    assert await blob_store.verify_all() == VerifyReport(checked=1, corrupt=[])
    assert await blob_store.cleanup_temp() == 1
    assert temp_files(blob_store) == []


async def test_cleanup_spares_writes_in_progress(blob_store: BlobStore) -> None:
    go_on = anyio.Event()

    async def slow() -> AsyncIterator[bytes]:
        yield content(3 * 1024 * 1024)  # enough to reach the temporary file
        await go_on.wait()
        yield b"the end"

    async with anyio.create_task_group() as tg:
        tg.start_soon(blob_store.put, slow())
        with anyio.fail_after(10):
            while not temp_files(blob_store):
                await anyio.sleep(0.01)
        assert await blob_store.cleanup_temp() == 0
        assert len(temp_files(blob_store)) == 1
        go_on.set()
    expected = hashlib.sha256(content(3 * 1024 * 1024) + b"the end").hexdigest()
    await blob_store.verify(expected)


async def test_check_writable_passes_on_a_usable_store(blob_store: BlobStore) -> None:
    await blob_store.check_writable()
    assert [a async for a in blob_store.list()] == []


async def test_check_writable_fails_on_an_unusable_store(
    backend: Backend, keyring: Keyring, tmp_path: Path
) -> None:
    if backend.name == "local":
        (tmp_path / "a-file").write_bytes(b"")
        store = make_store((tmp_path / "a-file").as_uri(), keyring)
    else:
        store = open_blob_store(
            backend.url, keyring, s3_access_key_id="nobody", s3_secret_access_key="wrong-secret"
        )
    with pytest.raises((OSError, ClientError)):
        await store.check_writable()
    await store.close()


# -- keys, backups, memory -------------------------------------------------------------------------
async def test_objects_written_before_kek_rotation_still_open(
    backend: Backend, keyring: Keyring
) -> None:
    before = make_store(backend.url, keyring)
    old = await before.put([b"sealed under the first KEK"])
    await before.close()
    first_kek = keyring.current_kek
    keyring.rotate_kek()
    reloaded = Keyring.load(keyring.directory)
    assert reloaded.current_kek != first_kek
    after = make_store(backend.url, reloaded)
    new = await after.put([b"sealed under the second KEK"])
    assert await after.read_bytes(old.sha256) == b"sealed under the first KEK"
    assert await after.read_bytes(new.sha256) == b"sealed under the second KEK"
    assert reloaded.current_kek.encode() in await raw_of(after, new.sha256)
    await after.close()


async def test_raw_copy_to_a_store_sharing_the_keys_restores_every_object(
    blob_store: BlobStore, keyring: Keyring, tmp_path: Path
) -> None:
    sizes = [0, 10, 3 * SEGMENT + 1]
    infos = [await blob_store.put([content(size)]) for size in sizes]
    target = make_store((tmp_path / "restored").as_uri(), Keyring.load(keyring.directory))
    async for address in blob_store.list():
        await target.write_raw(address, blob_store.read_raw(address))
    for info, size in zip(infos, sizes, strict=True):
        assert await target.read_bytes(info.sha256) == content(size)
        assert await raw_of(target, info.sha256) == await raw_of(blob_store, info.sha256)
    assert await target.verify_all() == VerifyReport(checked=3, corrupt=[])


async def test_another_nodes_keys_cannot_open_an_object(
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
    assert (info.size, seen) == (size, size)
    assert peak < 16 * 1024 * 1024
    await blob_store.delete(info.sha256)  # spare the disk: pytest keeps recent temp dirs


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    data=st.binary(max_size=300)
    | st.builds(lambda unit, n: unit * n, st.binary(min_size=1, max_size=64), st.integers(0, 5000)),
    cut=st.integers(min_value=1, max_value=100_000),
)
async def test_any_bytes_round_trip_in_any_chunking(
    blob_store: BlobStore, data: bytes, cut: int
) -> None:
    info = await blob_store.put(data[i : i + cut] for i in range(0, len(data), cut))
    assert info.sha256 == hashlib.sha256(data).hexdigest()
    assert await blob_store.read_bytes(info.sha256) == data


# -- URLs and S3 specifics -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("blobs/relative", "must be absolute"),
        ("file://fileserver/share", "local directory"),
        ("file:///srv/blobs?mode=fast", "no query"),
        ("ftp://host/blobs", "unsupported blob store URL scheme 'ftp'"),
        ("s3://", "invalid S3 bucket name ''"),
        ("s3://My_Bucket", "invalid S3 bucket name 'My_Bucket'"),
        ("s3://user:secret@bucket", "must not carry credentials"),
        ("s3://bucket/some/path", "no path"),
        ("s3://bucket?endpoint=ftp://host", "endpoint must be http"),
        ("s3://bucket?endpiont=http://host", "unknown s3 URL option 'endpiont'"),
        ("s3://bucket?region=a&region=b", "'region' given twice"),
        ("s3://bucket?region=EU%20West", "invalid s3 region"),
        ("s3://bucket?spool=tmp", "spool directory must be an absolute path"),
    ],
)
def test_bad_store_url_is_refused_naming_the_problem(url: str, problem: str) -> None:
    with pytest.raises(ValueError, match=re.escape(problem)):
        make_store(url, Keyring(directory=Path("/nonexistent")))


def test_s3_credentials_come_in_pairs(keyring: Keyring) -> None:
    with pytest.raises(ValueError, match="both"):
        open_blob_store("s3://bucket", keyring, s3_access_key_id="only-the-id")


async def test_file_url_and_bare_path_name_the_same_store(tmp_path: Path, keyring: Keyring) -> None:
    info = await open_blob_store(str(tmp_path / "b"), keyring).put([b"same place"])
    by_url = open_blob_store((tmp_path / "b").as_uri(), keyring)
    assert await by_url.read_bytes(info.sha256) == b"same place"


async def test_s3_prefixes_keep_stores_apart(
    s3_server: S3Server, keyring: Keyring, tmp_path: Path
) -> None:
    url = s3_server.url("rhenus-shared", tmp_path / "spool")
    one, two = (
        make_store(f"{url}&prefix=node-a", keyring),
        make_store(f"{url}&prefix=node-b", keyring),
    )
    info = await one.put([b"node a's"])
    assert [a async for a in one.list()] == [info.sha256]
    assert [a async for a in two.list()] == []
    assert not await two.exists(info.sha256)
    assert (s3_server.root / "rhenus-shared" / "node-a" / "objects" / info.sha256).is_file()
    await one.close()
    await two.close()


async def test_s3_cleanup_aborts_abandoned_multipart_uploads(
    s3_server: S3Server, keyring: Keyring, tmp_path: Path
) -> None:
    store = make_store(s3_server.url("rhenus-multipart", tmp_path / "spool"), keyring)
    assert isinstance(store, S3BlobStore)
    await store.check_writable()  # creates the bucket
    key = f"{store.prefix}{'f' * 64}"
    store.client.create_multipart_upload(Bucket=store.bucket, Key=key)  # as a crash leaves it
    assert await store.cleanup_temp() == 0  # too young: it may be someone's upload in progress
    store.stale_upload_age = timedelta(0)
    assert await store.cleanup_temp() == 1
    assert store.client.list_multipart_uploads(Bucket=store.bucket).get("Uploads", []) == []
    await store.close()
