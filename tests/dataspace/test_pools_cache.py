"""The provider's memory of dataset versions between queries (``RHENUS_POOLS_CACHE_MIB``): what
one query decrypted serves the next, only that version's, in anonymous memory, within the
limit; connections are reused under the same limits only."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import duckdb
import pytest

from rhenus.core.blobs import BlobNotFound, BlobStore, open_blob_store
from rhenus.core.keys import Keyring
from rhenus.dataspace.pools import engine
from rhenus.dataspace.pools.cache import Entry, PlaintextCache, run_query
from rhenus.dataspace.pools.sql_guard import plan

LIMITS = engine.Limits(max_rows=1_000_000, seconds=30, memory_mib=256, threads=1)
ALLOWED = frozenset({"count", "sum", "avg"})
PARQUET = "application/vnd.apache.parquet"
MIB = 1024 * 1024


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[BlobStore]:
    blobs = open_blob_store(f"file://{tmp_path / 'blobs'}", Keyring.create(tmp_path / "keys"))
    yield blobs
    await blobs.close()


def parquet_file(path: Path, seed: int) -> Path:
    conn = duckdb.connect()
    conn.execute(
        f"COPY (SELECT ['A', 'B', 'C'][1 + ((i + {seed}) % 3)::INTEGER] AS region, "
        f"((i * {seed + 7}) % 90)::INTEGER AS age, (i * 7 % 1000) / 10.0 AS income "
        f"FROM range(300000) t(i)) TO '{path}' "
        "(FORMAT parquet, ROW_GROUP_SIZE 100000, COMPRESSION uncompressed)"
    )
    conn.close()
    return path


def whole(path: Path, sql: str) -> list:  # type: ignore[type-arg]
    found = plan(sql, min_group_size=5, allowed=ALLOWED)
    copy = path.with_suffix(".copy")
    copy.write_bytes(path.read_bytes())
    return sorted(engine.run(copy, parquet=True, sql=found.sql, limits=LIMITS))


async def ask(
    cache: PlaintextCache, store: BlobStore, sha256: str, sql: str, limits: engine.Limits = LIMITS
) -> tuple[list, Entry]:  # type: ignore[type-arg]
    found = plan(sql, min_group_size=5, allowed=ALLOWED)
    async with cache.use(store, sha256, media_type=PARQUET, columns=found.columns) as entry:
        assert entry.layout is not None
        rows = await run_query(entry, parquet=True, sql=found.sql, limits=limits)
    return sorted(rows), entry


def is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


BY_REGION = "SELECT region, count(*) AS n FROM data GROUP BY region"
INCOME = "SELECT region, avg(income) AS mean FROM data GROUP BY region"


async def test_a_later_query_over_the_same_columns_reads_nothing_from_the_store(
    store: BlobStore, tmp_path: Path
) -> None:
    source = parquet_file(tmp_path / "a.parquet", 0)
    sha = (await store.put([source.read_bytes()])).sha256
    cache = PlaintextCache(64 * MIB)
    rows, entry = await ask(cache, store, sha, BY_REGION)
    assert rows == whole(source, BY_REGION)
    assert 0 < entry.resident < source.stat().st_size  # the region column and the footer
    await store.delete(sha)
    again, same = await ask(cache, store, sha, BY_REGION)  # from memory: the object is gone
    assert (again, same) == (rows, entry)
    with pytest.raises(BlobNotFound):  # a column no query read before must come from the store
        await ask(cache, store, sha, INCOME)
    assert len(cache) == 0  # and a failed read leaves nothing behind
    assert not is_open(entry.fd)


async def test_the_plaintext_is_in_anonymous_memory_never_in_the_spool(
    store: BlobStore, tmp_path: Path
) -> None:
    source = parquet_file(tmp_path / "a.parquet", 0)
    sha = (await store.put([source.read_bytes()])).sha256
    cache = PlaintextCache(64 * MIB)
    _, entry = await ask(cache, store, sha, INCOME)
    assert str(entry.path).startswith("/proc/self/fd/")
    assert not os.path.exists(os.readlink(entry.path).removesuffix(" (deleted)"))
    assert list(store.temp_dir.glob("*")) == []


async def test_each_version_is_its_own_entry_and_the_least_recently_used_goes_first(
    store: BlobStore, tmp_path: Path
) -> None:
    one, two = parquet_file(tmp_path / "1.parquet", 1), parquet_file(tmp_path / "2.parquet", 2)
    sha1 = (await store.put([one.read_bytes()])).sha256
    sha2 = (await store.put([two.read_bytes()])).sha256
    sql = "SELECT region, sum(age) AS total FROM data GROUP BY region"
    probe = PlaintextCache(64 * MIB)
    _, sized = await ask(probe, store, sha1, sql)
    cache = PlaintextCache(sized.resident + sized.resident // 2)  # room for one entry only
    first, entry1 = await ask(cache, store, sha1, sql)
    second, entry2 = await ask(cache, store, sha2, sql)
    assert (first, second) == (whole(one, sql), whole(two, sql))
    assert first != second
    assert len(cache) == 1
    assert cache.resident <= cache.limit
    assert not is_open(entry1.fd)
    assert is_open(entry2.fd)
    assert (await ask(cache, store, sha1, sql))[0] == first  # decrypted afresh


async def test_with_no_room_nothing_is_kept(store: BlobStore, tmp_path: Path) -> None:
    source = parquet_file(tmp_path / "a.parquet", 0)
    sha = (await store.put([source.read_bytes()])).sha256
    cache = PlaintextCache(0)
    rows, entry = await ask(cache, store, sha, BY_REGION)
    assert rows == whole(source, BY_REGION)
    assert len(cache) == 0
    assert not is_open(entry.fd)
    assert entry.idle == {}


async def test_a_connection_is_reused_under_the_same_limits_and_dropped_after_a_failure(
    store: BlobStore, tmp_path: Path
) -> None:
    source = parquet_file(tmp_path / "a.parquet", 0)
    sha = (await store.put([source.read_bytes()])).sha256
    cache = PlaintextCache(64 * MIB)
    _, entry = await ask(cache, store, sha, BY_REGION)
    (conn,) = entry.idle[LIMITS]
    await ask(cache, store, sha, INCOME)
    assert entry.idle[LIMITS] == [conn]  # the same one, given back
    other = engine.Limits(max_rows=10, seconds=30, memory_mib=256, threads=1)
    with pytest.raises(engine.QueryFailed, match="more than 10 rows"):
        await ask(cache, store, sha, BY_REGION, other)  # its own connection, its own count
    assert other not in entry.idle or entry.idle[other] == []
    # Locked down as a fresh one is: the configuration cannot change, files cannot be read.
    with pytest.raises(duckdb.Error):
        conn.execute("SET threads = 4")
    with pytest.raises(duckdb.Error):
        conn.execute(f"SELECT * FROM read_parquet('{source}')")
