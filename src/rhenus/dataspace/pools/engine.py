"""Running a guarded query in a locked-down DuckDB: in memory, its one table ``data`` loaded from
the decrypted dataset, then every door closed before the consumer's query (as the guard
rewrote it) runs — no file or network access, no extensions, a locked configuration, a memory
limit with nothing spilled to disk, few threads, and a timer that interrupts it.

Blocking: call it in a worker thread. The guard (:mod:`.sql_guard`) is the first line of
defence; this is the second, in case sqlglot and DuckDB ever read a query differently.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
    }


def _reader(path: Path, parquet: bool) -> str:
    quoted = str(path).replace("'", "''")  # our own temporary file's name, quoted anyway
    return f"read_parquet('{quoted}')" if parquet else f"read_csv('{quoted}')"


def is_parquet(head: bytes, media_type: str) -> bool:
    """Whether the dataset is Parquet (by its magic number, or its declared media type)."""
    return head[:4] == b"PAR1" or "parquet" in media_type.lower()


def run(path: Path, *, parquet: bool, sql: str, limits: Limits) -> list[tuple[Any, ...]]:
    """The rows of ``sql`` over the dataset at ``path`` loaded as the table ``data`` (the file
    is removed once loaded)."""
    conn = duckdb.connect(":memory:", config=_config(limits))
    interrupted = threading.Event()

    def stop() -> None:
        interrupted.set()
        conn.interrupt()

    timer = threading.Timer(limits.seconds, stop)
    timer.daemon = True
    timer.start()
    try:
        try:
            conn.execute(
                f"CREATE TABLE data AS SELECT * FROM {_reader(path, parquet)} "  # noqa: S608
                f"LIMIT {limits.max_rows + 1}"
            )
            # The plaintext now lives in this connection's memory only.
            path.unlink(missing_ok=True)
            count = conn.execute("SELECT count(*) FROM data").fetchone()
        except duckdb.OutOfMemoryException as exc:
            raise QueryFailed(
                f"the dataset does not fit in the query's {limits.memory_mib} MiB"
            ) from exc
        except duckdb.InterruptException as exc:
            raise _late(limits) from exc
        except duckdb.Error as exc:
            logger.warning("loading a pool dataset failed: %s", exc)
            raise QueryFailed("the dataset could not be read as CSV or Parquet") from exc
        if count is None or count[0] > limits.max_rows:
            raise QueryFailed(
                f"the dataset has more than {limits.max_rows} rows, the most a query under "
                "this agreement may scan"
            )
        # From here on the connection can reach nothing but its table, and cannot be reopened.
        conn.execute("SET enable_external_access = false")
        conn.execute("SET lock_configuration = true")
        if interrupted.is_set():
            raise _late(limits)
        try:
            return conn.execute(sql).fetchall()
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
        conn.close()


def _late(limits: Limits) -> QueryFailed:
    return QueryFailed(f"the query took longer than {limits.seconds:g} s and was stopped")
