"""Blob store fixtures: a real S3 server (``rclone serve s3``) and an empty store per backend.

``blob_store`` (and ``backend``, which says where it keeps its bytes) is parametrized over the
backends, so every blob test runs on a local directory and on S3 (ids ``[local]``, ``[s3]``).
The S3 server starts once per session on a free loopback port and serves a temporary
directory: a bucket is a subdirectory there, an object a file — so tests can look at the bytes
the way someone with access to the bucket's disks would.

For ranged reads: ``six`` is an object of six segments in ``blob_store``; :func:`put_sealed`
stores an object of any segment size, sealed by the envelope's own :class:`Sealer`.
"""

from __future__ import annotations

import random
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from rhenus.core.blobs import BlobStore, open_blob_store
from rhenus.core.blobs.envelope import MAX_HEADER, SEGMENT, Header, Sealer, read_header
from rhenus.core.keys import Keyring
from tests.support.postgres import free_port

ACCESS_KEY, SECRET_KEY = "rhenus-test", "rhenus-test-secret-key"
BACKENDS = ["local", "s3"]
SIX = 5 * SEGMENT + 123  # plaintext bytes of ``six``: six segments, the last one short


@dataclass(frozen=True)
class S3Server:
    endpoint: str
    root: Path  # the directory served: one subdirectory per bucket

    def url(self, bucket: str, spool: Path) -> str:
        return f"s3://{bucket}?endpoint={self.endpoint}&region=us-east-1&spool={spool}"


@dataclass(frozen=True)
class Backend:
    """An empty store's URL, and the directory where its stored bytes end up on disk."""

    name: str
    url: str
    disk: Path


def make_store(url: str, keyring: Keyring) -> BlobStore:
    return open_blob_store(
        url, keyring, s3_access_key_id=ACCESS_KEY, s3_secret_access_key=SECRET_KEY
    )


def stored_files(backend: Backend) -> list[Path]:
    """The files holding objects, as found on disk (temporary files aside)."""
    found = (p for p in backend.disk.rglob("*") if p.is_file())
    return sorted(p for p in found if p.relative_to(backend.disk).parts[0] != "tmp")


def temp_files(store: BlobStore) -> list[Path]:
    return sorted(store.temp_dir.iterdir()) if store.temp_dir.is_dir() else []


def _wait_until_serving(process: subprocess.Popen[bytes], endpoint: str, log: Path) -> None:
    deadline = time.monotonic() + 30
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"rclone serve s3 exited:\n{log.read_text()}")
        try:
            httpx.get(endpoint, timeout=1)  # any HTTP answer (403 without a signature) will do
            return
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"rclone serve s3 did not answer:\n{log.read_text()}") from None
            time.sleep(0.05)


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """A real S3 server on loopback, serving a temporary directory."""
    base = tmp_path_factory.mktemp("s3")
    root = base / "data"
    root.mkdir()
    log = base / "rclone.log"
    port = free_port()
    rclone = Path(sys.executable).parent / "rclone"
    command = [str(rclone), "serve", "s3", "--addr", f"127.0.0.1:{port}"]
    command += ["--auth-key", f"{ACCESS_KEY},{SECRET_KEY}", "--config", "", str(root)]
    # The log goes to a file: a pipe nobody reads would stall the server once full.
    with log.open("wb") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT)
    try:
        endpoint = f"http://127.0.0.1:{port}"
        _wait_until_serving(process, endpoint, log)
        yield S3Server(endpoint, root)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture
def keyring(tmp_path: Path) -> Keyring:
    return Keyring.create(tmp_path / "keys")


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    """A fresh store location of each backend: a directory, or a new bucket."""
    if request.param == "local":
        root = tmp_path / "blobs"
        return Backend("local", root.as_uri(), root)
    server: S3Server = request.getfixturevalue("s3_server")
    bucket = f"rhenus-{uuid.uuid4().hex[:12]}"
    return Backend("s3", server.url(bucket, tmp_path / "spool"), server.root / bucket)


@pytest.fixture
async def blob_store(backend: Backend, keyring: Keyring) -> AsyncIterator[BlobStore]:
    """An empty store of each backend (ids ``local`` and ``s3``)."""
    store = make_store(backend.url, keyring)
    try:
        yield store
    finally:
        await store.close()


# -- objects for ranged reads ----------------------------------------------------------------------
def plaintext(size: int, seed: int = 0) -> bytes:
    return random.Random(seed * 1_000_003 + size).randbytes(size)


def seal(keyring: Keyring, data: bytes, segment_size: int) -> tuple[str, bytes]:
    """Address and stored bytes of ``data``, as ``put`` writes them but with this segment size."""
    sealer = Sealer(keyring, segment_size)
    body = sealer.update(data)
    last, header = sealer.finish()
    return sealer.sha256, header + body + last


async def put_sealed(store: BlobStore, data: bytes, segment_size: int) -> str:
    """Store ``data`` in segments of ``segment_size``; the reader takes it from the header."""
    address, raw = seal(store.keyring, data, segment_size)
    await store.write_raw(address, [raw])
    return address


async def raw_of(store: BlobStore, address: str) -> bytearray:
    return bytearray(b"".join([chunk async for chunk in store.read_raw(address)]))


def header_of(store: BlobStore, raw: bytes | bytearray, address: str) -> Header:
    header = read_header(bytes(raw[:MAX_HEADER]), store.keyring, address)
    assert header is not None
    return header


async def read_range(store: BlobStore, address: str, start: int, end: int | None = None) -> bytes:
    return b"".join([piece async for piece in store.open_range(address, start, end)])


async def drain_range(
    store: BlobStore, address: str, start: int, end: int | None, into: list[bytes]
) -> None:
    """Collect the pieces into ``into`` as they come, so a caller sees what came before an error."""
    async for piece in store.open_range(address, start, end):
        into.append(piece)


@pytest.fixture
async def six(blob_store: BlobStore) -> tuple[str, bytes]:
    """An object of ``SIX`` bytes, six 64 KiB segments, stored by ``put``: address, plaintext."""
    data = plaintext(SIX)
    info = await blob_store.put([data])
    return info.sha256, data
