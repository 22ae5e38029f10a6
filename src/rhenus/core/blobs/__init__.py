"""Content-addressed, encrypted, streaming blob storage: datasets, media, documents.

An object's address is the lowercase hex sha-256 of its plaintext, so the same content is stored
once. Each object is encrypted with its own data key (the format is in :mod:`.envelope`), written
atomically — spooled to a locked temporary file (:mod:`.spool`), fsynced, then renamed or
uploaded whole — and verified on every read, whole or of a byte range (:mod:`.ranges`).
Backends: a local directory (:mod:`.local`) and any S3-compatible store (:mod:`.s3`).
:func:`open_blob_store` picks one from a URL::

    file:///var/lib/rhenus/blobs        or the bare path /var/lib/rhenus/blobs
    s3://bucket?endpoint=https://s3.example.eu&region=eu-central-1&prefix=node-a&spool=/var/tmp
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

from rhenus.core.blobs.errors import (
    BlobCorrupt,
    BlobError,
    BlobNotFound,
    BlobRangeError,
    BlobTooLarge,
)
from rhenus.core.blobs.store import BlobInfo, BlobStore, VerifyReport, check_address
from rhenus.core.keys import Keyring

__all__ = [
    "BlobCorrupt",
    "BlobError",
    "BlobInfo",
    "BlobNotFound",
    "BlobRangeError",
    "BlobStore",
    "BlobTooLarge",
    "VerifyReport",
    "check_address",
    "open_blob_store",
]


# -- URLs ----------------------------------------------------------------------------------------
def open_blob_store(
    url: str,
    keyring: Keyring,
    *,
    s3_access_key_id: str | None = None,
    s3_secret_access_key: str | None = None,
) -> BlobStore:
    """The store ``url`` names: ``file:///dir`` or ``/dir``, or ``s3://bucket?endpoint=…``.

    Raises ValueError naming what is wrong with a URL. S3 credentials come as arguments (or,
    if absent, from boto3's usual sources), never in the URL.
    """
    parts = urlsplit(url)
    if parts.scheme == "" and not url.startswith("//"):
        if not url.startswith("/"):
            raise ValueError(f"blob store path must be absolute, got {url!r}")
        return _local(Path(url), keyring)
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise ValueError(f"file URL must name a local directory (file:///dir), got {url!r}")
        if parts.query or parts.fragment:
            raise ValueError(f"file URL takes no query or fragment, got {url!r}")
        if not parts.path.startswith("/"):
            raise ValueError(f"file URL must hold an absolute path, got {url!r}")
        return _local(Path(unquote(parts.path)), keyring)
    # Backends are imported when used: they import this module, and boto3 is slow to import.
    if parts.scheme == "s3":
        from rhenus.core.blobs.s3 import S3BlobStore

        return S3BlobStore.from_url(
            url, keyring, access_key_id=s3_access_key_id, secret_access_key=s3_secret_access_key
        )
    raise ValueError(
        f"unsupported blob store URL scheme {parts.scheme!r}: use file:///dir, /dir or s3://bucket"
    )


def _local(root: Path, keyring: Keyring) -> BlobStore:
    from rhenus.core.blobs.local import LocalBlobStore

    return LocalBlobStore(root, keyring)
