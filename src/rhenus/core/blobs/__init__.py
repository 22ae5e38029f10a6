"""Content-addressed, encrypted, streaming blob storage (datasets, media, documents).

An object's address is the sha-256 of its plaintext. Objects are encrypted per object
(:mod:`.envelope`), written atomically (a temporary file, fsynced, then renamed or uploaded
whole) and verified on every read. Backends: a local directory (:mod:`.local`) and any
S3-compatible store (:mod:`.s3`); :func:`open_blob_store` picks one from a URL.
"""

from __future__ import annotations

import os
import re
import uuid
from abc import ABC, abstractmethod
from collections.abc import AsyncIterable, AsyncIterator, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import anyio.to_thread

from rhenus.core.blobs.envelope import EnvelopeError, Opener, Sealer, header_size, plaintext_size
from rhenus.core.keys import Keyring

_ADDRESS = re.compile(r"^[0-9a-f]{64}$")
_WRITE_BATCH = 1024 * 1024


class BlobError(Exception):
    """Base of the blob store's errors."""


class BlobNotFound(BlobError):
    """No object has that address."""


class BlobCorrupt(BlobError):
    """The stored object fails authentication or does not hash to its address."""


class BlobTooLarge(BlobError):
    """More bytes arrived than the caller allowed; nothing was stored."""


@dataclass(frozen=True)
class BlobInfo:
    sha256: str
    size: int


@dataclass
class VerifyReport:
    checked: int = 0
    corrupt: list[str] = field(default_factory=list)


def check_address(address: str) -> str:
    """The address if it is 64 lowercase hex digits; ValueError otherwise (never a path)."""
    if not _ADDRESS.match(address):
        raise ValueError(f"not a blob address: {address[:80]!r}")
    return address


async def _iterate(chunks: AsyncIterable[bytes] | Iterable[bytes]) -> AsyncIterator[bytes]:
    if isinstance(chunks, AsyncIterable):
        async for chunk in chunks:
            yield chunk
    else:
        for chunk in chunks:
            yield chunk


class BlobStore(ABC):
    """The store's interface; backends provide storage of finished temporary files."""

    def __init__(self, keyring: Keyring, temp_dir: Path) -> None:
        self.keyring = keyring
        self.temp_dir = temp_dir

    # -- what a backend provides ---------------------------------------------------------------
    @abstractmethod
    async def _publish(self, temp: Path, address: str) -> None:
        """Make a complete, fsynced temporary file visible at ``address`` (consumes it)."""

    @abstractmethod
    def read_raw(self, sha256: str) -> AsyncIterator[bytes]:
        """The stored (encrypted) bytes of an object; :class:`BlobNotFound` if absent."""

    @abstractmethod
    async def _stored_size(self, address: str) -> int: ...

    @abstractmethod
    async def exists(self, sha256: str) -> bool: ...

    @abstractmethod
    async def delete(self, sha256: str) -> None:
        """Remove an object; removing an absent one is not an error."""

    @abstractmethod
    def list(self) -> AsyncIterator[str]:
        """Addresses of every complete object."""

    @abstractmethod
    async def check_writable(self) -> None: ...

    async def close(self) -> None:
        return None

    # -- writing -------------------------------------------------------------------------------
    def _temp_path(self) -> Path:
        # The writer's pid in the name lets cleanup_temp tell a crashed write from a running one.
        return self.temp_dir / f"{os.getpid()}-{uuid.uuid4().hex}.part"

    async def _spool(
        self, chunks: AsyncIterable[bytes], transform: Sealer | None, max_size: int | None
    ) -> tuple[Path, str]:
        """Write chunks (sealed by ``transform`` if given) to a fsynced temporary file."""
        self.temp_dir.mkdir(parents=True, exist_ok=True)
        temp = self._temp_path()
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        received, batch, digest = 0, bytearray(), ""
        try:
            if transform is not None:
                batch += transform.header
            async for chunk in chunks:
                received += len(chunk)
                if max_size is not None and received > max_size:
                    raise BlobTooLarge(f"more than {max_size} bytes")
                batch += transform.update(chunk) if transform else chunk
                if len(batch) >= _WRITE_BATCH:
                    await anyio.to_thread.run_sync(os.write, fd, bytes(batch))
                    batch.clear()
            if transform is not None:
                tail, digest = transform.finish()
                batch += tail
            await anyio.to_thread.run_sync(os.write, fd, bytes(batch))
            await anyio.to_thread.run_sync(os.fsync, fd)
        except BaseException:
            os.close(fd)
            temp.unlink(missing_ok=True)
            raise
        os.close(fd)
        return temp, digest

    async def put(
        self, chunks: AsyncIterable[bytes] | Iterable[bytes], *, max_size: int | None = None
    ) -> BlobInfo:
        """Encrypt and store a stream; returns its address and plaintext size."""
        sealer = Sealer(self.keyring)
        temp, address = await self._spool(_iterate(chunks), sealer, max_size)
        try:
            await self._publish(temp, address)
        finally:
            temp.unlink(missing_ok=True)
        return BlobInfo(address, sealer.size)

    async def write_raw(self, sha256: str, chunks: AsyncIterable[bytes]) -> None:
        """Store bytes read by :meth:`read_raw` (a restore); atomic like :meth:`put`."""
        temp, _ = await self._spool(chunks, None, None)
        try:
            await self._publish(temp, check_address(sha256))
        finally:
            temp.unlink(missing_ok=True)

    async def cleanup_temp(self) -> int:
        """Remove temporary files left by writers that died; returns how many."""

        def sweep() -> int:
            removed = 0
            for path in self.temp_dir.glob("*.part") if self.temp_dir.is_dir() else ():
                pid = path.name.split("-", 1)[0]
                if pid.isdigit() and _alive(int(pid)):
                    continue
                path.unlink(missing_ok=True)
                removed += 1
            return removed

        return await anyio.to_thread.run_sync(sweep)

    # -- reading -------------------------------------------------------------------------------
    async def open(self, sha256: str) -> AsyncIterator[bytes]:
        """The plaintext, each piece released only after it is authenticated."""
        opener = Opener(self.keyring, check_address(sha256))
        try:
            async for chunk in self.read_raw(sha256):
                plain = opener.update(chunk)
                if plain:
                    yield plain
            last = opener.finish()
        except EnvelopeError as exc:
            raise BlobCorrupt(f"{sha256}: {exc}") from exc
        if last:
            yield last

    async def read_bytes(self, sha256: str) -> bytes:
        """The whole plaintext (for small objects)."""
        return b"".join([chunk async for chunk in self.open(sha256)])

    async def size(self, sha256: str) -> int:
        """Plaintext size of an object."""
        head = b""
        async for chunk in self.read_raw(sha256):
            head += chunk
            if len(head) >= 512:
                break
        try:
            return plaintext_size(await self._stored_size(sha256), header_size(head))
        except EnvelopeError as exc:
            raise BlobCorrupt(f"{sha256}: {exc}") from exc

    async def verify(self, sha256: str) -> None:
        """Decrypt the whole object and check its hash; :class:`BlobCorrupt` if it fails."""
        async for _ in self.open(sha256):
            pass

    async def verify_all(self) -> VerifyReport:
        report = VerifyReport()
        async for address in self.list():
            report.checked += 1
            try:
                await self.verify(address)
            except BlobCorrupt:
                report.corrupt.append(address)
        return report


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def open_blob_store(
    url: str,
    keyring: Keyring,
    *,
    s3_access_key_id: str | None = None,
    s3_secret_access_key: str | None = None,
) -> BlobStore:
    """A store for ``file:///dir``, ``/dir`` or ``s3://bucket?endpoint=…&region=…``."""
    parts = urlsplit(url)
    if parts.scheme in ("file", ""):
        path = Path(unquote(parts.path))
        if not path.is_absolute():
            raise ValueError(f"blob store path must be absolute: {url!r}")
        from rhenus.core.blobs.local import LocalBlobStore

        return LocalBlobStore(path, keyring)
    if parts.scheme == "s3":
        if not parts.netloc:
            raise ValueError(f"s3 URL needs a bucket: {url!r}")
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        from rhenus.core.blobs.s3 import S3BlobStore

        return S3BlobStore(
            keyring,
            bucket=parts.netloc,
            endpoint=query.get("endpoint"),
            region=query.get("region", "us-east-1"),
            prefix=query.get("prefix", "").strip("/"),
            spool=Path(query["spool"]) if "spool" in query else None,
            access_key_id=s3_access_key_id,
            secret_access_key=s3_secret_access_key,
        )
    raise ValueError(f"unsupported blob store URL scheme {parts.scheme!r} in {url!r}")
