"""Running a guarded query in a locked-down DuckDB: in memory, its one table ``data`` over the
decrypted dataset, then every door closed before the consumer's query (as the guard rewrote
it) runs — no file or network access, no extensions, a locked configuration, a memory limit
with nothing spilled to disk, few threads, and a timer that interrupts it.

A CSV file is loaded into memory and removed at once. A Parquet file is read in place, through
a view: loading it would decode every column of every row once more before the query decodes
what it needs (measured: 5 to 10 times raw DuckDB's time on 10 million rows), so it stays,
0600 in the blob store's spool, until the query ends — and that one file is then the only path
the connection may open (``allowed_paths``, with external access disabled).

Blocking: call it in a worker thread. The guard (:mod:`.sql_guard`) is the first line of
defence; this is the second, in case sqlglot and DuckDB ever read a query differently.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

# duckdb (~25 MiB resident) is imported by the first query, not when the node starts.
if TYPE_CHECKING:
    import duckdb

logger = logging.getLogger(__name__)


class QueryFailed(Exception):
    """The query could not run to its end; the message is safe to show the consumer (it never
    carries DuckDB's own text about values, which could quote a row)."""


@dataclass(frozen=True)
class Limits:
    max_rows: int
    seconds: float
    memory_mib: int
    threads: int


def _config(limits: Limits) -> dict[str, Any]:
    return {
        "threads": limits.threads,
        "memory_limit": f"{limits.memory_mib}MiB",
        # An in-memory database would otherwise spill to ./.tmp: plaintext rows on disk.
        "temp_directory": "",
        "autoload_known_extensions": False,
        "autoinstall_known_extensions": False,
        "allow_community_extensions": False,
        "allow_unsigned_extensions": False,
        # The file is already in memory (or the page cache): a second copy would only count
        # against memory_limit.
        "enable_external_file_cache": False,
    }


def is_parquet(head: bytes, media_type: str) -> bool:
    """Whether the dataset is Parquet (by its magic number, or its declared media type)."""
    return head[:4] == b"PAR1" or "parquet" in media_type.lower()


def run(path: Path, *, parquet: bool, sql: str, limits: Limits) -> list[tuple[Any, ...]]:
    """The rows of ``sql`` over the dataset at ``path`` as the table ``data``; the file is
    removed once loaded (CSV) or once the query has run (Parquet)."""
    started = time.monotonic()
    try:
        conn = connect(path, parquet=parquet, limits=limits, remove=True)
        try:
            # One time limit for loading and running, as the policy's maxSeconds says.
            return query(conn, sql, limits, seconds=limits.seconds - (time.monotonic() - started))
        finally:
            conn.close()
    finally:
        path.unlink(missing_ok=True)


def connect(
    path: Path, *, parquet: bool, limits: Limits, remove: bool = False
) -> duckdb.DuckDBPyConnection:
    """A locked-down connection whose one table ``data`` is the dataset at ``path`` (a CSV file
    loaded, and removed at once with ``remove``; a Parquet file as a view read in place), its
    rows counted against ``limits.max_rows``. Each :func:`query` on it is timed alone, so one
    connection may serve several queries under the same limits, one at a time."""
    import duckdb

    quoted = str(path).replace("'", "''")  # our own temporary file's name, quoted anyway
    conn = duckdb.connect(":memory:", config=_config(limits))
    interrupted = threading.Event()

    def stop() -> None:
        interrupted.set()
        conn.interrupt()

    timer = threading.Timer(limits.seconds, stop)
    timer.daemon = True
    timer.start()
    try:
        count = _view(conn, quoted) if parquet else _load(conn, path, quoted, limits, remove)
        if count is None or count[0] > limits.max_rows:
            raise QueryFailed(
                f"the dataset has more than {limits.max_rows} rows, the most a query under "
                "this agreement may scan"
            )
        # From here on the connection can reach nothing but its table (and, for Parquet, the
        # dataset's own file), and cannot be reopened.
        conn.execute("SET enable_external_access = false")
        conn.execute("SET lock_configuration = true")
        if interrupted.is_set():
            raise _late(limits)
    except BaseException:
        conn.close()
        raise
    finally:
        timer.cancel()
    return conn


def query(
    conn: duckdb.DuckDBPyConnection, sql: str, limits: Limits, *, seconds: float | None = None
) -> list[tuple[Any, ...]]:
    """The rows of ``sql`` on a connection from :func:`connect`, stopped after ``seconds``
    (default ``limits.seconds``); :class:`QueryFailed` (then do not use the connection again)."""
    import duckdb

    if seconds is not None and seconds <= 0:
        raise _late(limits)
    interrupted = threading.Event()

    def stop() -> None:
        interrupted.set()
        conn.interrupt()

    timer = threading.Timer(limits.seconds if seconds is None else seconds, stop)
    timer.daemon = True
    timer.start()
    try:
        rows = conn.execute(sql).fetchall()
    except duckdb.InterruptException as exc:
        raise _late(limits) from exc
    except duckdb.OutOfMemoryException as exc:
        raise QueryFailed(f"the query needs more than {limits.memory_mib} MiB") from exc
    except duckdb.BinderException as exc:
        # About names and types only (an unknown column, a sum of text): no row's value.
        first = str(exc).splitlines()[0][:300]
        raise QueryFailed(f"the query does not fit the dataset: {first}") from exc
    except duckdb.Error as exc:
        logger.info("a pool query failed: %s", exc)
        raise QueryFailed("the query failed while running") from exc
    finally:
        timer.cancel()
    if interrupted.is_set():
        # The timer fired as the query ended: its interrupt may still be pending.
        raise _late(limits)
    return rows


def _load(
    conn: duckdb.DuckDBPyConnection, path: Path, quoted: str, limits: Limits, remove: bool
) -> tuple[Any, ...] | None:
    """Load a CSV dataset into the table ``data`` (and remove its file); its row count."""
    import duckdb

    try:
        conn.execute(
            f"CREATE TABLE data AS SELECT * FROM read_csv('{quoted}') "  # noqa: S608
            f"LIMIT {limits.max_rows + 1}"
        )
        if remove:  # the plaintext now lives in this connection's memory only
            path.unlink(missing_ok=True)
        return conn.execute("SELECT count(*) FROM data").fetchone()
    except duckdb.OutOfMemoryException as exc:
        raise QueryFailed(
            f"the dataset does not fit in the query's {limits.memory_mib} MiB"
        ) from exc
    except duckdb.InterruptException as exc:
        raise _late(limits) from exc
    except duckdb.Error as exc:
        logger.warning("loading a pool dataset failed: %s", exc)
        raise QueryFailed("the dataset could not be read as CSV or Parquet") from exc


def _view(conn: duckdb.DuckDBPyConnection, quoted: str) -> tuple[Any, ...] | None:
    """The view ``data`` over a Parquet dataset, read in place; its row count (from the
    file's metadata: nothing is scanned)."""
    import duckdb

    try:
        # In this order: DuckDB accepts allowed_paths only while external access is enabled.
        conn.execute(f"SET allowed_paths = ['{quoted}']")
        conn.execute("SET enable_external_access = false")
        conn.execute(f"CREATE VIEW data AS SELECT * FROM read_parquet('{quoted}')")  # noqa: S608
        return conn.execute("SELECT count(*) FROM data").fetchone()
    except duckdb.Error as exc:
        logger.warning("opening a pool dataset failed: %s", exc)
        raise QueryFailed("the dataset could not be read as CSV or Parquet") from exc


def _late(limits: Limits) -> QueryFailed:
    return QueryFailed(f"the query took longer than {limits.seconds:g} s and was stopped")
