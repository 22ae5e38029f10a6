"""Blob store backend: any S3-compatible object store (AWS, MinIO, Ceph, Garage, rclone…).

Objects are ``<prefix>/objects/<sha256>``. The ciphertext is first spooled to a local temporary
file while the plaintext is hashed (the address is known only at the end), then uploaded under
its final key; S3 makes an object visible only once its upload completes, so a crash never
exposes a partial object. boto3 is synchronous: every call runs in a worker thread.
"""

from __future__ import annotations

import tempfile
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio.to_thread
import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from rhenus.core.blobs import BlobNotFound, BlobStore, check_address
from rhenus.core.keys import Keyring

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

_READ = 1024 * 1024


def _missing(exc: ClientError) -> bool:
    code = str(exc.response.get("Error", {}).get("Code", ""))
    return code in ("404", "NoSuchKey", "NotFound", "NoSuchBucket")


class S3BlobStore(BlobStore):
    """Objects in one bucket, path-style addressing."""

    def __init__(
        self,
        keyring: Keyring,
        *,
        bucket: str,
        endpoint: str | None,
        region: str,
        prefix: str = "",
        spool: Path | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
    ) -> None:
        super().__init__(keyring, spool or Path(tempfile.gettempdir()) / "rhenus-s3-spool")
        self.bucket = bucket
        self.prefix = f"{prefix}/objects/" if prefix else "objects/"
        self.client: S3Client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name=region,
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret_access_key,
            config=Config(
                s3={"addressing_style": "path"},
                connect_timeout=5,
                read_timeout=60,
                retries={"max_attempts": 3, "mode": "standard"},
            ),
        )
        self._bucket_ready = False
        self._lock = threading.Lock()

    def _key(self, address: str) -> str:
        return self.prefix + check_address(address)

    def _ensure_bucket(self) -> None:
        with self._lock:
            if self._bucket_ready:
                return
            try:
                self.client.head_bucket(Bucket=self.bucket)
            except ClientError as exc:
                if not _missing(exc):
                    raise
                self.client.create_bucket(Bucket=self.bucket)
            self._bucket_ready = True

    async def _call(self, fn: Any, /, **kwargs: Any) -> Any:
        def run() -> Any:
            self._ensure_bucket()
            return fn(**kwargs)

        return await anyio.to_thread.run_sync(run)

    async def _publish(self, temp: Path, address: str) -> None:
        if await self.exists(address):
            return
        key = self._key(address)
        await self._call(self.client.upload_file, Filename=str(temp), Bucket=self.bucket, Key=key)

    async def read_raw(self, sha256: str) -> AsyncIterator[bytes]:
        try:
            response = await self._call(
                self.client.get_object, Bucket=self.bucket, Key=self._key(sha256)
            )
        except ClientError as exc:
            if _missing(exc):
                raise BlobNotFound(sha256) from exc
            raise
        body = response["Body"]
        try:
            while chunk := await anyio.to_thread.run_sync(body.read, _READ):
                yield chunk
        finally:
            body.close()

    async def _stored_size(self, address: str) -> int:
        try:
            head = await self._call(
                self.client.head_object, Bucket=self.bucket, Key=self._key(address)
            )
        except ClientError as exc:
            if _missing(exc):
                raise BlobNotFound(address) from exc
            raise
        return int(head["ContentLength"])

    async def exists(self, sha256: str) -> bool:
        try:
            await self._stored_size(sha256)
        except BlobNotFound:
            return False
        return True

    async def delete(self, sha256: str) -> None:
        await self._call(self.client.delete_object, Bucket=self.bucket, Key=self._key(sha256))

    async def list(self) -> AsyncIterator[str]:
        def scan() -> list[str]:
            self._ensure_bucket()
            found: list[str] = []
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self.prefix
            )
            for page in pages:
                for item in page.get("Contents", []):
                    name = item["Key"].removeprefix(self.prefix)
                    if len(name) == 64:
                        found.append(name)
            return sorted(found)

        for address in await anyio.to_thread.run_sync(scan):
            yield address

    async def check_writable(self) -> None:
        await self._call(self.client.head_bucket, Bucket=self.bucket)

    async def close(self) -> None:
        self.client.close()
