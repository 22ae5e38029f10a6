"""A writer killed (SIGKILL) in the middle of a large write leaves no visible partial object."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from rhenus.core.blobs import BlobStore
from rhenus.core.keys import Keyring

ROOT = Path(__file__).resolve().parents[2]


async def test_sigkill_mid_write_leaves_store_consistent(
    blob_store: BlobStore, blob_url: str, keyring: Keyring, tmp_path: Path
) -> None:
    before = await blob_store.put([b"written before the crash"])
    marker = tmp_path / "marker"
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.core.blob_writer",
            blob_url,
            str(keyring.directory),
            str(marker),
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert child.poll() is None, child.stderr.read() if child.stderr else ""
            assert time.monotonic() < deadline, "the writer never got half-way"
            time.sleep(0.05)
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=10)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == -signal.SIGKILL

    leftovers = list(blob_store.temp_dir.glob("*.part"))
    assert leftovers, "the killed write should have left its temporary file"
    assert [a async for a in blob_store.list()] == [before.sha256]
    report = await blob_store.verify_all()
    assert (report.checked, report.corrupt) == (1, [])
    assert await blob_store.read_bytes(before.sha256) == b"written before the crash"

    assert await blob_store.cleanup_temp() == len(leftovers)
    assert list(blob_store.temp_dir.glob("*.part")) == []
    again = await blob_store.put([b"life goes on"])
    assert await blob_store.read_bytes(again.sha256) == b"life goes on"
