"""The blob store's errors (:mod:`rhenus.core.blobs` re-exports them)."""

from __future__ import annotations


class BlobError(Exception):
    """Base of the blob store's errors."""


class BlobNotFound(BlobError):
    """No object has that address."""


class BlobCorrupt(BlobError):
    """The stored object fails authentication or does not hash to its address."""


class BlobTooLarge(BlobError):
    """More bytes arrived than the caller allowed; nothing was stored."""


class BlobRangeError(BlobError):
    """A range starts at or after the object's end: HTTP 416, with ``size`` for Content-Range."""

    def __init__(self, address: str, start: int, size: int) -> None:
        super().__init__(f"{address}: range starts at byte {start}, the object has {size} bytes")
        self.start = start
        self.size = size
