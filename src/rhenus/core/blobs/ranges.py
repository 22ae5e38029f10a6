"""Ranged reads: plaintext bytes ``[start, stop)`` of an object, from the segments that cover them.

For HTTP ``Range`` requests (RFC 9110 §14), e.g. resumable downloads in the DSP data plane.
A :class:`RangeOpener` says which stored bytes to read — one run from
:meth:`~.envelope.Header.segment_offset` of the first covering segment to the end of the last —
and opens each segment alone (:func:`~.envelope.open_segment`), releasing only what has been
authenticated. :meth:`rhenus.core.blobs.BlobStore.open_range` does the I/O.
"""

from __future__ import annotations

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
