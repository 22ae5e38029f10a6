"""Blob store backend: a directory on a local (or mounted) filesystem.

Layout under the root::

    objects/ab/cd/<sha256>     complete objects (two fan-out levels keep directories small)
    tmp/<random>.part          writes in progress, and leftovers of crashed ones

A write becomes visible only by ``rename`` of its fsynced temporary file, followed by an fsync of
the directory, so after a crash at any point an object is either whole or absent. ``tmp/`` is
inside the root so that the rename never crosses filesystems.
"""

from __future__ import annotations

import os
from collections.abc import AsyncGenerator, AsyncIterator
from pathlib import Path
from typing import BinaryIO

import anyio.to_thread

from rhenus.core.blobs.errors import BlobNotFound
from rhenus.core.blobs.store import _ADDRESS, BlobStore
from rhenus.core.keys import Keyring

_READ = 1024 * 1024
_FANOUT = 2  # hex digits per directory level


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _make_dirs(path: Path) -> None:
    """``mkdir -p``, fsyncing each parent that gains an entry, so the path survives a crash."""
    if path.is_dir():
        return
    _make_dirs(path.parent)
    try:
        path.mkdir(mode=0o700)
    except FileExistsError:
        return
    _fsync_dir(path.parent)


def _subdirs(path: Path) -> list[Path]:
    try:
        entries = list(os.scandir(path))
    except FileNotFoundError:
        return []
    names = (e.name for e in entries if e.is_dir() and len(e.name) == _FANOUT)
    return [path / name for name in sorted(names)]


def _addresses(path: Path) -> list[str]:
    """The object files in a leaf directory, which also sit in the right one."""
    prefix = path.parent.name + path.name
    try:
        entries = list(os.scandir(path))
    except FileNotFoundError:
        return []
    return sorted(
        e.name
        for e in entries
        if _ADDRESS.fullmatch(e.name) and e.name.startswith(prefix) and e.is_file()
    )


class LocalBlobStore(BlobStore):
    """Objects as files under ``root``."""

    def __init__(self, root: Path, keyring: Keyring) -> None:
        super().__init__(keyring, root / "tmp")
        self.root = root
        self.objects = root / "objects"

    def _path(self, address: str) -> Path:
        return self.objects / address[:_FANOUT] / address[_FANOUT : 2 * _FANOUT] / address

    async def _publish(self, temp: Path, address: str, *, replace: bool) -> None:
        # ``replace`` is ignored: a rename costs nothing, and it repairs a damaged copy.
        final = self._path(address)

        def move() -> None:
            _make_dirs(final.parent)
            os.replace(temp, final)
            _fsync_dir(final.parent)

        await anyio.to_thread.run_sync(move)

    def _read(self, address: str) -> AsyncGenerator[bytes, None]:
        return self._stream(address, 0, None)

    def _read_range(self, address: str, offset: int, length: int) -> AsyncGenerator[bytes, None]:
        return self._stream(address, offset, length)

    async def _stream(
        self, address: str, offset: int, length: int | None
    ) -> AsyncGenerator[bytes, None]:
        """The stored bytes from ``offset`` on, ``length`` of them at most (None: all)."""

        def open_at() -> BinaryIO:
            file = self._path(address).open("rb")
            file.seek(offset)
            return file

        try:
            file = await anyio.to_thread.run_sync(open_at)
        except FileNotFoundError as exc:
            raise BlobNotFound(address) from exc
        left = length
        try:
            while left is None or left > 0:
                chunk = await anyio.to_thread.run_sync(
                    file.read, _READ if left is None else min(_READ, left)
                )
                if not chunk:
                    return
                if left is not None:
                    left -= len(chunk)
                yield chunk
        finally:
            file.close()

    def _open_file(self, address: str) -> BinaryIO:
        try:
            return self._path(address).open("rb", buffering=0)
        except FileNotFoundError as exc:
            raise BlobNotFound(address) from exc

    async def _read_head(self, address: str, length: int) -> bytes:
        def read() -> bytes:
            with self._path(address).open("rb") as file:
                return file.read(length)

        try:
            return await anyio.to_thread.run_sync(read)
        except FileNotFoundError as exc:
            raise BlobNotFound(address) from exc

    async def _exists(self, address: str) -> bool:
        return await anyio.to_thread.run_sync(self._path(address).is_file)

    async def _delete(self, address: str) -> None:
        await anyio.to_thread.run_sync(lambda: self._path(address).unlink(missing_ok=True))

    async def _list(self) -> AsyncIterator[str]:
        for first in await anyio.to_thread.run_sync(_subdirs, self.objects):
            for second in await anyio.to_thread.run_sync(_subdirs, first):
                for address in await anyio.to_thread.run_sync(_addresses, second):
                    yield address

    async def check_writable(self) -> None:
        await anyio.to_thread.run_sync(_make_dirs, self.objects)
        await self._check_temp_writable()
