"""What a query decrypts of its dataset: a CSV file whole; of a Parquet file, its footer and the
column chunks the query reads, nothing else — and DuckDB answers over that sparse file exactly
as over the whole one."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import duckdb
import pytest

from rhenus.core.blobs import BlobStore, open_blob_store
from rhenus.core.blobs.spool import temp_file
from rhenus.core.keys import Keyring
from rhenus.dataspace.pools import engine, plaintext
from rhenus.dataspace.pools.sql_guard import plan

LIMITS = engine.Limits(max_rows=1_000_000, seconds=30, memory_mib=256, threads=1)
ALLOWED = frozenset({"count", "sum", "avg"})
SECRET = "confidential-note-"


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[BlobStore]:
    blobs = open_blob_store(f"file://{tmp_path / 'blobs'}", Keyring.create(tmp_path / "keys"))
    yield blobs
    await blobs.close()


def parquet_file(path: Path) -> bytes:
    """60 000 rows: region, age, income and a wide text column no query below reads
    (uncompressed, so that its values can be looked for in the bytes)."""
    conn = duckdb.connect()
    conn.execute(
        f"COPY (SELECT ['A', 'B', 'C'][1 + (i % 3)::INTEGER] AS region, (i % 90)::INTEGER AS age, "
        f"(i * 7 % 1000) / 10.0 AS income, '{SECRET}' || i AS note FROM range(60000) t(i)) "
        f"TO '{path}' (FORMAT parquet, ROW_GROUP_SIZE 20000, COMPRESSION uncompressed)"
    )
    conn.close()
    return path.read_bytes()


async def decrypted(store: BlobStore, sha256: str, sql: str, media: str) -> tuple[bytes, list]:  # type: ignore[type-arg]
    """What the query decrypts of the object, and its rows run over that."""
    found = plan(sql, min_group_size=5, allowed=ALLOWED)
    async with temp_file(store.temp_dir) as (path, file):
        layout = await plaintext.materialise(
            store, sha256, media_type=media, columns=found.columns, path=path, fd=file.fileno()
        )
        content = path.read_bytes()
        rows = engine.run(path, parquet=layout.parquet, sql=found.sql, limits=LIMITS)
        assert not path.exists()
    return content, sorted(rows)


def whole(path: Path, sql: str) -> list:  # type: ignore[type-arg]
    found = plan(sql, min_group_size=5, allowed=ALLOWED)
    return sorted(engine.run(path, parquet=True, sql=found.sql, limits=LIMITS))


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT region, count(*) AS n FROM data GROUP BY region",
        "SELECT region, avg(income) AS mean FROM data WHERE age = 42 GROUP BY region",
        "SELECT count(*) AS n FROM data",
    ],
)
async def test_of_a_parquet_file_only_the_columns_a_query_reads_are_decrypted(
    store: BlobStore, tmp_path: Path, sql: str
) -> None:
    content = parquet_file(tmp_path / "source.parquet")
    info = await store.put([content])
    got, rows = await decrypted(store, info.sha256, sql, "application/vnd.apache.parquet")
    assert len(got) == len(content)
    # One row's note (not a row group's min or max, which the footer's statistics hold).
    note = f"{SECRET}31337".encode()
    assert note in content
    assert note not in got  # the note column stayed encrypted: zeros here
    assert got.count(0) > len(content) // 2
    (tmp_path / "copy.parquet").write_bytes(content)
    assert rows == whole(tmp_path / "copy.parquet", sql)
    assert rows


async def test_a_csv_file_and_an_unreadable_parquet_footer_are_decrypted_whole(
    store: BlobStore,
) -> None:
    csv = b"region,age\n" + b"A,30\n" * 10
    info = await store.put([csv])
    got, rows = await decrypted(store, info.sha256, "SELECT count(*) FROM data", "text/csv")
    assert (got, [r[0] for r in rows]) == (csv, [10])
    # Declared Parquet, but not: all of it is decrypted, and DuckDB says it cannot read it.
    info = await store.put([b"PAR1 not really" + b"x" * 100])
    with pytest.raises(engine.QueryFailed, match="could not be read as CSV or Parquet"):
        await decrypted(store, info.sha256, "SELECT count(*) FROM data", "application/parquet")


def test_ranges_are_merged_when_they_touch_and_clipped_to_the_file() -> None:
    assert plaintext.merged([(500, 900), (0, 10), (20, 30), (10**6, 10**6 + 5)], 10**6 + 2) == [
        (0, 900),
        (10**6, 10**6 + 2),
    ]
