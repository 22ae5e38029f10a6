"""Blob store fixtures: a real S3 server (``rclone serve s3``) and a store of each backend."""

from __future__ import annotations

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
from rhenus.core.keys import Keyring
from tests.support.postgres import free_port

ACCESS, SECRET = "rhenus-test", "rhenus-test-secret-key"


@dataclass(frozen=True)
class S3Server:
    endpoint: str
    root: Path

    def url(self, bucket: str) -> str:
        return f"s3://{bucket}?endpoint={self.endpoint}&region=eu-central-1"


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """A real S3 server on loopback, serving a temporary directory."""
    root = tmp_path_factory.mktemp("s3")
    port = free_port()
    rclone = str(Path(sys.executable).parent / "rclone")
    process = subprocess.Popen(
        [
            rclone,
            "serve",
            "s3",
            "--addr",
            f"127.0.0.1:{port}",
            "--auth-key",
            f"{ACCESS},{SECRET}",
            "--vfs-cache-mode",
            "writes",
            "--cache-dir",
            str(root / ".cache"),
            str(root / "data"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    (root / "data").mkdir()
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        try:
            httpx.get(endpoint, timeout=1)
            break
        except httpx.TransportError:
            if time.monotonic() > deadline:
                process.kill()
                raise
            time.sleep(0.1)
    try:
        yield S3Server(endpoint, root / "data")
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def keyring(tmp_path: Path) -> Keyring:
    return Keyring.create(tmp_path / "keys")


def store_url(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if kind == "local":
        return (tmp_path / "blobs").as_uri()
    server: S3Server = request.getfixturevalue("s3_server")
    return server.url(f"b-{uuid.uuid4().hex[:12]}") + f"&spool={tmp_path / 'spool'}"


def make_store(url: str, keyring: Keyring) -> BlobStore:
    return open_blob_store(url, keyring, s3_access_key_id=ACCESS, s3_secret_access_key=SECRET)


@pytest.fixture(params=["local", "s3"])
def blob_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty store of each backend."""
    return store_url(request.param, tmp_path, request)


@pytest.fixture
async def blob_store(blob_url: str, keyring: Keyring) -> AsyncIterator[BlobStore]:
    store = make_store(blob_url, keyring)
    try:
        yield store
    finally:
        await store.close()
