"""Blob store backend: a local directory.

Layout: ``objects/ab/cd/<sha256>`` for complete objects, ``tmp/<pid>-<uuid>.part`` for writes in
progress. A write becomes visible only by ``rename`` after ``fsync`` of the file, followed by an
``fsync`` of the directory, so a crash leaves either the whole object or nothing visible.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import anyio.to_thread

from rhenus.core.blobs import BlobNotFound, BlobStore, check_address
from rhenus.core.keys import Keyring

_READ = 1024 * 1024


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LocalBlobStore(BlobStore):
    """Objects as files under ``root``."""

    def __init__(self, root: Path, keyring: Keyring) -> None:
        super().__init__(keyring, root / "tmp")
        self.root = root
        self.objects = root / "objects"

    def _path(self, address: str) -> Path:
        check_address(address)
        return self.objects / address[:2] / address[2:4] / address

    async def _publish(self, temp: Path, address: str) -> None:
        final = self._path(address)

        def move() -> None:
            if final.exists():  # same content already stored: keep the one we have
                return
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(temp, final)
            _fsync_dir(final.parent)

        await anyio.to_thread.run_sync(move)

    async def read_raw(self, sha256: str) -> AsyncIterator[bytes]:
        path = self._path(sha256)
        try:
            handle = await anyio.to_thread.run_sync(path.open, "rb")
        except FileNotFoundError as exc:
            raise BlobNotFound(sha256) from exc
        try:
            while chunk := await anyio.to_thread.run_sync(handle.read, _READ):
                yield chunk
        finally:
            handle.close()

    async def _stored_size(self, address: str) -> int:
        try:
            return self._path(address).stat().st_size
        except FileNotFoundError as exc:
            raise BlobNotFound(address) from exc

    async def exists(self, sha256: str) -> bool:
        return self._path(sha256).is_file()

    async def delete(self, sha256: str) -> None:
        self._path(sha256).unlink(missing_ok=True)

    async def list(self) -> AsyncIterator[str]:
        def scan() -> list[str]:
            if not self.objects.is_dir():
                return []
            return sorted(p.name for p in self.objects.glob("??/??/*") if len(p.name) == 64)

        for address in await anyio.to_thread.run_sync(scan):
            yield address

    async def check_writable(self) -> None:
        def probe() -> None:
            self.temp_dir.mkdir(parents=True, exist_ok=True)
            path = self._temp_path()
            path.write_bytes(b"ready")
            path.unlink()

        await anyio.to_thread.run_sync(probe)
