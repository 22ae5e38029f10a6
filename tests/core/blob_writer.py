"""Child process of the crash test: puts a large object into a store, and waits to be killed.

    python tests/core/blob_writer.py STORE_URL KEYS_DIR MARKER_FILE

S3 credentials come from ``RHENUS_S3_ACCESS_KEY_ID`` and ``RHENUS_S3_SECRET_ACCESS_KEY``, as
for a node. The content is :func:`pieces`, deterministic, so the parent knows its address. Once
``HALF`` of it has gone into the store, the writer creates MARKER_FILE and pauses (at most
``PAUSE`` seconds) for the parent to kill it; if nobody does, it finishes the write.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from rhenus.core.blobs import open_blob_store
from rhenus.core.keys import Keyring

PIECE = 1024 * 1024
TOTAL = 256 * PIECE
HALF = 96 * PIECE
PAUSE = 30.0


def pieces(marker: Path | None = None) -> Iterator[bytes]:
    """TOTAL bytes in 1 MiB pieces, each one different; signals ``marker`` at HALF."""
    for index in range(TOTAL // PIECE):
        if marker is not None and index * PIECE == HALF:
            marker.write_text(f"{HALF} bytes handed to put()\n")
            time.sleep(PAUSE)  # nothing else runs in this process: blocking is fine
        yield index.to_bytes(8, "big") * (PIECE // 8)


async def main(url: str, keys: Path, marker: Path) -> None:
    store = open_blob_store(
        url,
        Keyring.load(keys),
        s3_access_key_id=os.environ.get("RHENUS_S3_ACCESS_KEY_ID"),
        s3_secret_access_key=os.environ.get("RHENUS_S3_SECRET_ACCESS_KEY"),
    )
    try:
        await store.put(pieces(marker))
    finally:
        await store.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])))
