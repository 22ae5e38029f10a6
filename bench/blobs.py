"""Blob store benchmark: decrypting read throughput, ``open()`` against ``open_range()``.

Stores one ``--mib`` MiB object (default 256) and reads it ``--rounds`` times each way: whole
with ``open()``, whole with ``open_range(a, 0)``, and all but its first and last byte with
``open_range(a, 1, size - 1)`` (so both edge segments are cut). Reports the best MiB/s of the
rounds. On a local directory always; on a real S3 server (``rclone serve s3`` on loopback) with
``--s3``.
Usage: ``.venv/bin/python bench/blobs.py [--mib N] [--rounds R] [--s3]``
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.support: free_port

from rhenus.core.blobs import BlobStore, open_blob_store
from rhenus.core.keys import Keyring
from tests.support.postgres import free_port

KEY, SECRET = "rhenus-bench", "rhenus-bench-secret-key"
MIB = 1024 * 1024


@contextmanager
def rclone_s3(root: Path) -> Iterator[str]:
    """An S3 endpoint serving ``root``, for as long as the block runs."""
    port = free_port()
    rclone = Path(sys.executable).parent / "rclone"
    command = [str(rclone), "serve", "s3", "--addr", f"127.0.0.1:{port}"]
    command += ["--auth-key", f"{KEY},{SECRET}", "--config", "", str(root)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(endpoint, timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("rclone serve s3 did not start") from None
                time.sleep(0.05)
        yield endpoint
    finally:
        process.terminate()
        process.wait(timeout=10)


async def mib_per_s(read: Callable[[], AsyncIterator[bytes]], expected: int, rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        began, seen = time.perf_counter(), 0
        async for piece in read():
            seen += len(piece)
        best = min(best, time.perf_counter() - began)
        assert seen == expected, (seen, expected)
    return expected / MIB / best


async def bench(name: str, store: BlobStore, mib: int, rounds: int) -> None:
    piece = bytes(range(256)) * 4096  # 1 MiB
    info = await store.put(piece for _ in range(mib))
    address, size = info.sha256, info.size
    try:
        whole = await mib_per_s(lambda: store.open(address), size, rounds)
        ranged = await mib_per_s(lambda: store.open_range(address, 0), size, rounds)
        inner = await mib_per_s(lambda: store.open_range(address, 1, size - 1), size - 2, rounds)
    finally:
        await store.delete(address)
        await store.close()
    print(
        f"{name:6} {mib} MiB  open() {whole:7.0f} MiB/s   open_range(0) {ranged:7.0f} MiB/s "
        f"({ranged / whole:.0%})   open_range(1, size-1) {inner:7.0f} MiB/s ({inner / whole:.0%})"
    )


async def main(mib: int, rounds: int, s3: bool) -> None:
    with tempfile.TemporaryDirectory(prefix="rhenus-bench-") as tmp:
        base = Path(tmp)
        keyring = Keyring.create(base / "keys")
        await bench("local", open_blob_store(str(base / "blobs"), keyring), mib, rounds)
        if s3:
            (base / "s3").mkdir()
            with rclone_s3(base / "s3") as endpoint:
                url = f"s3://rhenus-bench?endpoint={endpoint}&spool={base / 'spool'}"
                store = open_blob_store(
                    url, keyring, s3_access_key_id=KEY, s3_secret_access_key=SECRET
                )
                await bench("s3", store, mib, rounds)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--s3", action="store_true", help="also on rclone serve s3 (loopback)")
    args = parser.parse_args()
    asyncio.run(main(args.mib, args.rounds, args.s3))
