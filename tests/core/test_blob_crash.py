"""A writer killed (SIGKILL) in the middle of a large put leaves the store consistent.

No partial object becomes visible, objects stored before stay intact, the leftover temporary
file is removed by ``cleanup_temp``, and the same content can be stored afterwards.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import anyio

from rhenus.core.blobs import BlobStore, VerifyReport
from rhenus.core.keys import Keyring
from tests.core.blob_writer import HALF, PIECE, TOTAL, pieces
from tests.core.conftest import ACCESS_KEY, SECRET_KEY, Backend, stored_files, temp_files

WRITER = Path(__file__).with_name("blob_writer.py")


async def kill_writer_half_way(backend: Backend, keyring: Keyring, tmp_path: Path) -> None:
    """Start the writer, SIGKILL it once it signals that HALF is written."""
    marker, log = tmp_path / "half-way", tmp_path / "writer.log"
    env = {
        **os.environ,
        "RHENUS_S3_ACCESS_KEY_ID": ACCESS_KEY,
        "RHENUS_S3_SECRET_ACCESS_KEY": SECRET_KEY,
    }
    command = [sys.executable, str(WRITER), backend.url, str(keyring.directory), str(marker)]
    with log.open("wb") as sink:
        child = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, env=env)
    try:
        with anyio.fail_after(60):
            while not marker.exists():
                assert child.poll() is None, f"the writer died early:\n{log.read_text()}"
                await anyio.sleep(0.02)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(timeout=10)
    assert child.returncode == -signal.SIGKILL


async def test_writer_killed_mid_put_leaves_no_partial_object(
    blob_store: BlobStore, backend: Backend, keyring: Keyring, tmp_path: Path
) -> None:
    before = await blob_store.put([b"written before the crash"])
    digest = hashlib.sha256()
    for piece in pieces():
        digest.update(piece)
    address = digest.hexdigest()

    await kill_writer_half_way(backend, keyring, tmp_path)

    leftovers = temp_files(blob_store)
    assert len(leftovers) == 1, "the killed write leaves its temporary file"
    assert leftovers[0].stat().st_size >= HALF - 2 * PIECE  # it really was half-way
    assert not await blob_store.exists(address)
    assert [a async for a in blob_store.list()] == [before.sha256]
    assert len(stored_files(backend)) == 1
    assert await blob_store.verify_all() == VerifyReport(checked=1, corrupt=[])
    assert await blob_store.read_bytes(before.sha256) == b"written before the crash"

    assert await blob_store.cleanup_temp() == 1
    assert temp_files(blob_store) == []

    again = await blob_store.put(pieces())
    assert (again.sha256, again.size) == (address, TOTAL)
    await blob_store.verify(address)
    await blob_store.delete(address)  # spare the disk: pytest keeps recent temp dirs
