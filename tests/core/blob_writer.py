"""Child process of the crash test: starts a large blob write and reports its progress.

Usage: python -m tests.core.blob_writer STORE_URL KEYS_DIR MARKER_FILE
Writes a marker file once 32 MiB went in, then keeps writing slowly until it is killed.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from rhenus.core.keys import Keyring
from tests.core.conftest import make_store


def chunks(marker: Path) -> Iterator[bytes]:
    piece = b"\x42" * (1024 * 1024)
    for i in range(100_000):
        if i == 32:
            marker.write_text("half-way")
        if i >= 32:
            time.sleep(0.05)  # the parent kills us meanwhile
        yield piece


async def main(url: str, keys: Path, marker: Path) -> None:
    store = make_store(url, Keyring.load(keys))
    await store.put(chunks(marker))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])))
