"""Ranged reads: plaintext bytes ``[start, stop)`` of an object, from the segments that cover them.

For HTTP ``Range`` requests (RFC 9110 §14), e.g. resumable downloads in the DSP data plane.
A :class:`RangeOpener` says which stored bytes to read — one run from
:meth:`~.envelope.Header.segment_offset` of the first covering segment to the end of the last —
and opens each segment alone (:func:`~.envelope.open_segment`), releasing only what has been
authenticated. :meth:`rhenus.core.blobs.BlobStore.open_range` does the I/O.

:func:`open_run` is the same for a caller that reads synchronously (in a worker thread): one
read of the covering segments, then each opened in place — for
:meth:`~rhenus.core.blobs.BlobStore.read_ranges`, which decrypts many ranges per hand-over to a
worker thread.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

from rhenus.core.blobs.envelope import EnvelopeError, Header, open_segment


class RangeOpener:
    """Decrypts and verifies the segments covering plaintext ``[start, stop)`` of one object.

    Read :attr:`length` stored bytes from :attr:`offset`, pass them to :meth:`update` as they
    come, then call :meth:`finish`. Needs ``0 <= start < stop <= size``, or ``start = stop = 0``
    for an empty object (its one, empty, segment is then read and checked).
    """

    def __init__(self, header: Header, start: int, stop: int) -> None:
        size, step = header.size, header.segment_size
        if not (0 <= start < stop <= size or start == stop == size == 0):
            raise ValueError(f"not a range of an object of {size} bytes: [{start}, {stop})")
        self.header = header
        self.start = start
        self.stop = stop
        self.first = start // step
        self.last = max(stop - 1, 0) // step
        self.final = self.last == header.count - 1  # the range ends with the object
        self.offset = header.segment_offset(self.first)
        end = header.segment_offset(self.last) + header.segment_length(self.last)
        # A range that ends with the object asks for one byte more: any there was appended.
        self.length = end - self.offset + (1 if self.final else 0)
        # No whole-content hash here, even when the range is the whole object: every segment
        # is authenticated under the object's own key with its index and last-flag in the
        # nonce, and the header (size, sha-256) under the header tag, so a wrong byte, order or
        # length fails a tag already; hashing again halved the data plane's throughput.
        # ``BlobStore.verify`` (and ``open``) still check the hash.
        self._buffer = bytearray()
        self._index = self.first

    def update(self, data: bytes) -> bytes:
        """The wanted plaintext of every segment completed by ``data``, all authenticated first.

        Raises :class:`EnvelopeError` before releasing anything of a batch with a bad segment.
        """
        self._buffer += data
        header, step = self.header, self.header.segment_size
        pieces: list[bytes | memoryview] = []
        used = 0
        with memoryview(self._buffer) as view:
            while self._index <= self.last:
                length = header.segment_length(self._index)
                if len(view) - used < length:
                    break
                plain = open_segment(header, self._index, view[used : used + length])
                base = self._index * step
                lo, hi = max(self.start - base, 0), min(self.stop - base, len(plain))
                pieces.append(plain if (lo, hi) == (0, len(plain)) else memoryview(plain)[lo:hi])
                used += length
                self._index += 1
        del self._buffer[:used]
        if self._index > self.last and self._buffer:
            raise EnvelopeError("bytes after the last segment")
        return b"".join(pieces)

    def finish(self) -> None:
        """Check that every covering segment arrived whole."""
        if self._index <= self.last:
            raise EnvelopeError(f"the object is truncated in segment {self._index}")


def open_run(
    header: Header, pread: Callable[[int, int], bytes], start: int, stop: int
) -> list[bytes | memoryview]:
    """Plaintext ``[start, stop)`` (``0 <= start < stop <= size``) in pieces, one per segment,
    all authenticated, from one read of the stored bytes that cover them.

    ``pread(offset, length)`` returns up to ``length`` stored bytes from ``offset``. Raises
    :class:`EnvelopeError` as :class:`RangeOpener` does (truncated, appended, a bad segment)
    before returning anything.
    """
    if not 0 <= start < stop <= header.size:
        raise ValueError(f"not a range of an object of {header.size} bytes: [{start}, {stop})")
    step = header.segment_size
    first, last = start // step, (stop - 1) // step
    final = last == header.count - 1
    offset = header.segment_offset(first)
    length = header.segment_offset(last) + header.segment_length(last) - offset
    # A run that ends with the object asks for one byte more: any there was appended.
    data = pread(offset, length + (1 if final else 0))
    if len(data) > length:
        raise EnvelopeError("bytes after the last segment")
    pieces: list[bytes | memoryview] = []
    used = 0
    with memoryview(data) as view:
        for index in range(first, last + 1):
            size = header.segment_length(index)
            if len(view) - used < size:
                raise EnvelopeError(f"the object is truncated in segment {index}")
            plain = open_segment(header, index, view[used : used + size])
            used += size
            base = index * step
            lo, hi = max(start - base, 0), min(stop - base, len(plain))
            pieces.append(plain if (lo, hi) == (0, len(plain)) else memoryview(plain)[lo:hi])
    return pieces


Sink = Callable[[int, list[bytes | memoryview]], None]


def runs(header: Header, ranges: Sequence[tuple[int, int]], most: int) -> list[tuple[int, int]]:
    """``ranges`` (clipped to the object, each non-empty) cut into runs of about ``most``
    plaintext bytes along segment boundaries: the units that :class:`Shared` hands out."""
    step = header.segment_size
    most = max(step, most - most % step)
    out = []
    for start, end in ranges:
        at, stop = start, min(end, header.size)
        while at < stop:
            cut = min(stop, (at // step) * step + most)
            out.append((at, cut))
            at = cut
    return out


class Shared:
    """Runs that several worker threads decrypt together, each run once: each thread calls
    :meth:`work`; the first error stops them all and is kept in :attr:`errors`."""

    def __init__(self, header: Header, items: Sequence[tuple[int, int]]) -> None:
        self.header, self.errors = header, list[BaseException]()
        self._items, self._next, self._lock = items, 0, threading.Lock()

    def _take(self) -> tuple[int, int] | None:
        with self._lock:
            if self.errors or self._next >= len(self._items):
                return None
            self._next += 1
            return self._items[self._next - 1]

    def work(self, pread: Callable[[int, int], bytes], sink: Sink) -> None:
        """Decrypt runs until none is left, handing each to ``sink(start, plaintext pieces)``."""
        while (item := self._take()) is not None:
            try:
                sink(item[0], open_run(self.header, pread, *item))
            except BaseException as exc:  # kept for the caller, which raises it
                with self._lock:
                    self.errors.append(exc)
                return
