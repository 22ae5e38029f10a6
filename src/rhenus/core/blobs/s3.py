"""Blob store backend: any S3-compatible object store (AWS, MinIO, Ceph, Garage, rclone…).

Objects are ``[<prefix>/]objects/<sha256>`` in one bucket, reached with path-style addressing
(what MinIO and rclone expect). The address is known only once the whole plaintext has been
hashed, so the ciphertext is first spooled to a local temporary file, then uploaded under its
final key (multipart for large files). S3 makes an object visible only once its upload
completes, so a crash never exposes a partial object; a crashed writer leaves a spool file,
which :meth:`~rhenus.core.blobs.BlobStore.cleanup_temp` removes. boto3 is synchronous: every
call runs in a worker thread.
"""

from __future__ import annotations

import functools
import re
import secrets
import tempfile
import threading
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import aclosing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import parse_qsl, urlsplit

import anyio.to_thread
import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import ClientError

from rhenus.core.blobs.errors import BlobNotFound
from rhenus.core.blobs.store import _ADDRESS, BlobStore
from rhenus.core.keys import Keyring

if TYPE_CHECKING:
    from botocore.response import StreamingBody
    from mypy_boto3_s3 import S3Client

_READ = 1024 * 1024
_MIB = 1024 * 1024
# Parts go up in order with little concurrency: stores that stream multipart uploads (rclone)
# buffer out-of-order parts, and 4 x 16 MiB in flight is plenty for a node's uplink.
_TRANSFER = TransferConfig(
    multipart_threshold=16 * _MIB, multipart_chunksize=16 * _MIB, max_concurrency=4
)
_MISSING = {"404", "NoSuchKey", "NotFound", "NoSuchBucket"}
_OPTIONS = ("endpoint", "prefix", "region", "spool")
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_REGION = re.compile(r"[a-z0-9-]{1,32}")
T = TypeVar("T")


def _options(query: str) -> dict[str, str]:
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError as exc:
        raise ValueError(f"malformed s3 URL query {query!r}") from exc
    options: dict[str, str] = {}
    for name, value in pairs:
        if name not in _OPTIONS:
            raise ValueError(f"unknown s3 URL option {name!r}; known: {', '.join(_OPTIONS)}")
        if name in options:
            raise ValueError(f"s3 URL option {name!r} given twice")
        options[name] = value
    return options


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


async def _stream(body: StreamingBody, length: int | None) -> AsyncGenerator[bytes, None]:
    """A GetObject body in chunks, ``length`` bytes at most (None: all); closed at the end."""
    left = length
    try:
        while left is None or left > 0:
            chunk = await anyio.to_thread.run_sync(
                body.read, _READ if left is None else min(_READ, left)
            )
            if not chunk:
                return
            if left is not None:
                left -= len(chunk)
            yield chunk
    finally:
        body.close()


class S3BlobStore(BlobStore):
    """Objects in one bucket of an S3-compatible store; the bucket is created if missing."""

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
        # The default spool is a directory of our own in the system temp dir, so that
        # cleanup_temp only ever looks at our files.
        super().__init__(keyring, spool or Path(tempfile.gettempdir()) / "rhenus-blob-spool")
        self.bucket = bucket
        self.region = region
        self.base = f"{prefix}/" if prefix else ""
        self.prefix = f"{self.base}objects/"
        self.client: S3Client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name=region,
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret_access_key,
            config=Config(
                s3={"addressing_style": "path"},
                connect_timeout=10,
                read_timeout=60,
                retries={"max_attempts": 5, "mode": "standard"},
                # No response checksums unless asked: the envelope authenticates every byte, and
                # some stores (rclone) send the whole object's CRC with a ranged GET, which
                # botocore then rejects. Uploads still carry checksums.
                response_checksum_validation="when_required",
            ),
        )
        self.stale_upload_age = timedelta(days=1)
        self._bucket_ready = False
        self._lock = threading.Lock()

    @classmethod
    def from_url(
        cls,
        url: str,
        keyring: Keyring,
        *,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
    ) -> S3BlobStore:
        """The store ``s3://bucket?endpoint=…&region=…&prefix=…&spool=…`` names.

        Raises ValueError naming what is wrong. Credentials are never part of the URL (it is
        logged and shown); without them boto3 looks in its usual places.
        """
        if (access_key_id is None) != (secret_access_key is None):
            raise ValueError("give both s3_access_key_id and s3_secret_access_key, or neither")
        parts = urlsplit(url)
        if "@" in parts.netloc:
            raise ValueError("s3 URL must not carry credentials: pass them as settings")
        if not _BUCKET.fullmatch(parts.netloc):
            raise ValueError(
                f"invalid S3 bucket name {parts.netloc!r}: 3-63 lowercase letters, digits, "
                "dots or hyphens"
            )
        if parts.path not in ("", "/") or parts.fragment:
            raise ValueError("s3 URL takes no path or fragment: set a key prefix with ?prefix=…")
        options = _options(parts.query)
        endpoint = options.get("endpoint")
        if endpoint is not None:
            e = urlsplit(endpoint)
            if e.scheme not in ("http", "https") or not e.netloc or e.path not in ("", "/"):
                raise ValueError(f"s3 endpoint must be http(s)://host[:port], got {endpoint!r}")
        region = options.get("region", "us-east-1")
        if not _REGION.fullmatch(region):
            raise ValueError(f"invalid s3 region {region!r}")
        spool = options.get("spool")
        if spool is not None and not spool.startswith("/"):
            raise ValueError(f"s3 spool directory must be an absolute path, got {spool!r}")
        return cls(
            keyring,
            bucket=parts.netloc,
            endpoint=endpoint,
            region=region,
            prefix=options.get("prefix", "").strip("/"),
            spool=Path(spool) if spool else None,
            access_key_id=access_key_id,
            secret_access_key=secret_access_key,
        )

    def _key(self, address: str) -> str:
        return self.prefix + address

    def _ensure_bucket(self) -> None:
        with self._lock:
            if self._bucket_ready:
                return
            try:
                self.client.head_bucket(Bucket=self.bucket)
            except ClientError as exc:
                if _code(exc) not in _MISSING:
                    raise
                self._create_bucket()
            self._bucket_ready = True

    def _create_bucket(self) -> None:
        try:
            if self.region == "us-east-1":  # AWS rejects an explicit us-east-1 constraint
                self.client.create_bucket(Bucket=self.bucket)
            else:
                self.client.create_bucket(
                    Bucket=self.bucket,
                    CreateBucketConfiguration={"LocationConstraint": self.region},  # type: ignore[typeddict-item]
                )
        except ClientError as exc:
            # Another process was quicker (rclone and MinIO answer the second way).
            if _code(exc) not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise

    async def _call(self, fn: Callable[[], T]) -> T:
        """``fn`` in a worker thread, once the bucket exists."""

        def run() -> T:
            self._ensure_bucket()
            return fn()

        return await anyio.to_thread.run_sync(run)

    def _head(self, address: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(address))
        except ClientError as exc:
            if _code(exc) in _MISSING:
                return False
            raise
        return True

    async def _publish(self, temp: Path, address: str, *, replace: bool) -> None:
        def upload() -> None:
            if not replace and self._head(address):
                return  # same address, same content: spare the upload
            self.client.upload_file(str(temp), self.bucket, self._key(address), Config=_TRANSFER)

        await self._call(upload)

    async def _read(self, address: str) -> AsyncGenerator[bytes, None]:
        key = self._key(address)
        try:
            response = await self._call(lambda: self.client.get_object(Bucket=self.bucket, Key=key))
        except ClientError as exc:
            if _code(exc) in _MISSING:
                raise BlobNotFound(address) from exc
            raise
        async with aclosing(_stream(response["Body"], None)) as chunks:
            async for chunk in chunks:
                yield chunk

    async def _read_range(
        self, address: str, offset: int, length: int
    ) -> AsyncGenerator[bytes, None]:
        if length <= 0:
            return
        key, wanted = self._key(address), f"bytes={offset}-{offset + length - 1}"
        try:
            response = await self._call(
                lambda: self.client.get_object(Bucket=self.bucket, Key=key, Range=wanted)
            )
        except ClientError as exc:
            if _code(exc) in _MISSING:
                raise BlobNotFound(address) from exc
            if _code(exc) == "InvalidRange":  # the object ends before offset (RFC 9110 416)
                return
            raise
        # A store that ignores Range answers 200 with the whole object: its bytes from 0.
        if offset and not response.get("ContentRange", "").startswith(f"bytes {offset}-"):
            response["Body"].close()
            raise OSError(
                f"the S3 store ignored Range: {wanted} (got {response.get('ContentRange')!r})"
            )
        async with aclosing(_stream(response["Body"], length)) as chunks:
            async for chunk in chunks:
                yield chunk

    async def _read_head(self, address: str, length: int) -> bytes:
        def read() -> bytes:
            response = self.client.get_object(
                Bucket=self.bucket, Key=self._key(address), Range=f"bytes=0-{length - 1}"
            )
            with response["Body"] as body:
                return body.read()

        try:
            return await self._call(read)
        except ClientError as exc:
            if _code(exc) in _MISSING:
                raise BlobNotFound(address) from exc
            if _code(exc) == "InvalidRange":  # an empty object: no header at all
                return b""
            raise

    async def _exists(self, address: str) -> bool:
        return await self._call(lambda: self._head(address))

    async def _delete(self, address: str) -> None:
        key = self._key(address)
        await self._call(lambda: self.client.delete_object(Bucket=self.bucket, Key=key))

    def _page(self, token: str) -> tuple[list[str], str]:
        """One page of keys under the objects prefix, and the token of the next ("" if none)."""
        if token:
            response = self.client.list_objects_v2(
                Bucket=self.bucket, Prefix=self.prefix, ContinuationToken=token
            )
        else:
            response = self.client.list_objects_v2(Bucket=self.bucket, Prefix=self.prefix)
        keys = [item["Key"] for item in response.get("Contents", [])]
        more = response.get("IsTruncated", False)
        return keys, response.get("NextContinuationToken", "") if more else ""

    async def _list(self) -> AsyncIterator[str]:
        token = ""
        while True:
            keys, token = await self._call(functools.partial(self._page, token))
            for key in keys:
                name = key.removeprefix(self.prefix)
                if _ADDRESS.fullmatch(name):
                    yield name
            if not token:
                return

    async def check_writable(self) -> None:
        """Write and remove a probe object, and a spool file."""
        key = f"{self.base}probes/{secrets.token_hex(8)}"

        def probe() -> None:
            self.client.put_object(Bucket=self.bucket, Key=key, Body=b"ready")
            self.client.delete_object(Bucket=self.bucket, Key=key)

        await self._call(probe)
        await self._check_temp_writable()

    async def cleanup_temp(self) -> int:
        """Remove spool files of dead writers, and abort abandoned multipart uploads.

        An upload cut short by a crash stays invisible but keeps its parts (billed, on AWS).
        S3 cannot tell a dead upload from a slow one, so only those older than
        ``stale_upload_age`` are aborted.
        """
        removed = await super().cleanup_temp()
        return removed + await self._call(self._abort_stale_uploads)

    def _abort_stale_uploads(self) -> int:
        cutoff = datetime.now(UTC) - self.stale_upload_age
        aborted = 0
        try:
            pages = self.client.get_paginator("list_multipart_uploads").paginate(
                Bucket=self.bucket, Prefix=self.prefix
            )
            for page in pages:
                for upload in page.get("Uploads", []):
                    if upload["Initiated"] < cutoff:
                        self.client.abort_multipart_upload(
                            Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                        )
                        aborted += 1
        except ClientError as exc:
            # Some S3-compatible stores lack the listing; rclone answers NoSuchUpload to "none".
            if _code(exc) not in ("NotImplemented", "NoSuchUpload"):
                raise
        return aborted

    async def close(self) -> None:
        self.client.close()
