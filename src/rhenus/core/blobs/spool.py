"""Temporary files of writes in progress: private, locked while their writer lives, swept after.

A write seals its object into such a file, syncs it, and publishes it whole (rename or upload).

A writer holds an exclusive flock on its temporary file until the file is published or removed.
The kernel drops the lock when the process dies, however it dies, so :func:`sweep` can tell a
crashed write from one in progress — in this process, another worker, or another container
sharing the volume — which a pid in the name cannot.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import BinaryIO

import anyio
import anyio.to_thread

from rhenus.core.blobs.envelope import Sealer

TEMP_SUFFIX = ".part"


def create(directory: Path) -> tuple[Path, BinaryIO]:
    """A new private (0600) temporary file in ``directory``, opened and locked."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    while True:
        path = directory / f"{secrets.token_hex(16)}{TEMP_SUFFIX}"
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            ours = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            ours = False
        if ours:
            return path, os.fdopen(fd, "r+b")
        # A sweep removed the file between its creation and our lock: take another name.
        os.close(fd)


def discard(path: Path, file: BinaryIO) -> None:
    """Remove the file (if it was not published meanwhile) and close it."""
    # Unlink while still holding the lock; after a rename into place there is nothing to unlink.
    path.unlink(missing_ok=True)
    # A flush failing (disk full) on a file that no longer exists changes nothing.
    with contextlib.suppress(OSError):
        file.close()


def sweep(directory: Path) -> int:
    """Remove the temporary files in ``directory`` that no live writer holds; returns how many."""
    removed = 0
    for path in sorted(directory.glob(f"*{TEMP_SUFFIX}")):
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            continue
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # a writer is at work
            try:
                same = os.stat(path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                continue  # published or discarded meanwhile
            if same:
                path.unlink()
                removed += 1
        finally:
            os.close(fd)
    return removed


@asynccontextmanager
async def temp_file(directory: Path) -> AsyncIterator[tuple[Path, BinaryIO]]:
    """A new locked temporary file in ``directory``, removed on exit unless published."""
    path, file = await anyio.to_thread.run_sync(create, directory)
    try:
        yield path, file
    finally:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(discard, path, file)


def seal(file: BinaryIO, sealer: Sealer, data: bytes) -> None:
    """Append the segments that ``data`` completes."""
    file.write(sealer.update(data))


def seal_last(file: BinaryIO, sealer: Sealer, data: bytes) -> None:
    """Append the rest and the last segment, write the header over its placeholder, and sync."""
    file.write(sealer.update(data))
    last, header = sealer.finish()
    file.write(last)
    file.seek(0)  # over the placeholder: the header holds the size and hash, known only now
    file.write(header)
    sync(file)


def sync(file: BinaryIO) -> None:
    """Flush and fsync ``file``."""
    file.flush()
    os.fsync(file.fileno())
