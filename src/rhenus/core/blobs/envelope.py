"""The stored form of a blob: a header, then the plaintext as AES-256-GCM sealed segments.

Byte layout (integers big-endian, ``k`` and ``w`` read from the bytes before them)::

    offset    size  field
    0         4     magic and format version: b"RHB" 0x02
    4         4     S, plaintext bytes per segment (65536)
    8         7     nonce prefix, random per object
    15        1     k, length of the KEK id
    16        k     KEK id (ASCII): the keyring KEK that wraps the data key
    16+k      1     w, length of the wrapped data key
    17+k      w     the object's random 256-bit data key, wrapped by the KEK (RFC 3394, w = 40)
    B=17+k+w        -- end of the "key block"
    B         8     N, plaintext size
    B+8       32    sha-256 of the plaintext, i.e. the object's address
    H=B+40          -- end of the header
    H         16    header tag
    H+16      …     segments 0 … n-1 with n = max(1, ceil(N / S)); segment i is the AES-256-GCM
                    ciphertext of plaintext bytes [i*S, min((i+1)*S, N)) followed by its 16-byte
                    tag, so the stored size is exactly H + 16 + N + 16*n

Every object has its own data key. Nonces are 12 bytes, ``prefix (7) || counter (4) || flag (1)``:
segment ``i`` uses counter ``i`` and flag 1 if it is the last segment, else 0; the header tag (an
AES-GCM tag over no plaintext) uses counter 0xFFFFFFFF and flag 2, which no segment nonce has.
Associated data: the key block for segments 0 … n-2; the whole header for the last segment and
for the header tag.

Why this shape: the writer learns N and the hash only at the end, so it seals the early segments
with what it knows up front and writes the header last (both backends spool to a file first).
What a reader that knows the address detects, before releasing any plaintext it concerns:

* an edited byte anywhere: a tag fails (key block: every segment; N or hash: the header tag);
* reordered segments: the counter is in the nonce;
* truncation, a dropped or an appended segment: N is authenticated, so n and the exact stored
  size are known, and the last segment must carry flag 1;
* segments or files swapped between objects: another data key, and the authenticated hash must
  equal the address asked for.

This is the STREAM construction (Hoang, Reyhanitabar, Rogaway, Vizár 2015) on AES-GCM.

Readers. :class:`Opener` reads an object from its first byte to its last. A ranged reader
(:mod:`.ranges`, for HTTP ``Range`` requests) reads the header and then only the segments that
cover the bytes it wants: segment ``i`` starts at stored offset ``H + 16 + i*(S+16)``
(:meth:`Header.segment_offset`), and :func:`open_segment` opens it alone, with its own counter,
its flag (1 if and only if ``i = n-1``, so a range that reaches the end proves it did) and its
associated data. A ranged reader detects everything above within its range, truncation and
appended bytes too when the range reaches the end. What it does not read it does not check:
the other segments, and the hash of the plaintext unless the range is all of it — a whole read
(:class:`Opener`, ``BlobStore.verify``) checks those.
"""

from __future__ import annotations

import hashlib
import secrets
import struct
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from rhenus.core.keys import Keyring, KeyringError

MAGIC = b"RHB\x02"
SEGMENT = 64 * 1024
TAG = 16
PREFIX = 7
_FIXED = len(MAGIC) + 4 + PREFIX  # magic, segment size, nonce prefix
_TRAILER = 8 + 32  # plaintext size and sha-256, after the key block
# The longest header there can be (k and w are one byte each): read this much to find the size.
MAX_HEADER = _FIXED + 1 + 255 + 1 + 255 + _TRAILER + TAG
_MAX_SEGMENT = 16 * 1024 * 1024  # bounds what a reader buffers for one (hostile) segment
_HEADER_COUNTER = 0xFFFFFFFF


class EnvelopeError(Exception):
    """The bytes are not a valid object for this address (edited, truncated, moved, wrong keys)."""


def _nonce(prefix: bytes, counter: int, flag: int) -> bytes:
    return prefix + struct.pack(">IB", counter, flag)


def segment_count(size: int, segment_size: int = SEGMENT) -> int:
    """Segments of an object of ``size`` plaintext bytes (an empty object has one, empty)."""
    return max(1, -(-size // segment_size))


def stored_size(header_size: int, size: int, segment_size: int = SEGMENT) -> int:
    """Bytes stored for ``size`` plaintext bytes behind a header (tag included) of that size."""
    return header_size + size + TAG * segment_count(size, segment_size)


class Sealer:
    """Encrypts one plaintext stream: :meth:`update` as data comes, then :meth:`finish`.

    The caller writes ``header_size`` placeholder bytes first, then the output of ``update`` and
    the final segment, then the header returned by ``finish`` over the placeholder.
    """

    def __init__(self, keyring: Keyring, segment_size: int = SEGMENT) -> None:
        data_key = secrets.token_bytes(32)
        kek_id, wrapped = keyring.wrap(data_key)
        kek = kek_id.encode("ascii")
        self._prefix = secrets.token_bytes(PREFIX)
        self._key_block = b"".join(
            [
                MAGIC,
                struct.pack(">I", segment_size),
                self._prefix,
                bytes([len(kek)]),
                kek,
                bytes([len(wrapped)]),
                wrapped,
            ]
        )
        self.header_size = len(self._key_block) + _TRAILER + TAG
        self.segment_size = segment_size
        self.size = 0
        self._aead = AESGCM(data_key)
        self._hash = hashlib.sha256()
        self._pending = bytearray()
        self._counter = 0

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()

    def update(self, data: bytes) -> bytes:
        """Sealed segments that are complete and known not to be the last one."""
        self._hash.update(data)
        self.size += len(data)
        self._pending += data
        out = bytearray()
        # A full segment is sealed only once more data follows it: the last one needs flag 1.
        while len(self._pending) > self.segment_size:
            out += self._seal(bytes(self._pending[: self.segment_size]), self._key_block, 0)
            del self._pending[: self.segment_size]
        return bytes(out)

    def finish(self) -> tuple[bytes, bytes]:
        """The last sealed segment, and the header (with its tag) for the start of the object."""
        if self._counter >= _HEADER_COUNTER:
            raise EnvelopeError("object too large for 32-bit segment counters")
        header = self._key_block + struct.pack(">Q", self.size) + self._hash.digest()
        last = self._seal(bytes(self._pending), header, 1)
        self._pending.clear()
        tag = self._aead.encrypt(_nonce(self._prefix, _HEADER_COUNTER, 2), b"", header)
        return last, header + tag

    def _seal(self, plain: bytes, aad: bytes, flag: int) -> bytes:
        nonce = _nonce(self._prefix, self._counter, flag)
        self._counter += 1
        return self._aead.encrypt(nonce, plain, aad)


@dataclass(frozen=True)
class Header:
    """An authenticated header: its fields, and the cipher for the object's segments."""

    size: int
    sha256: str
    segment_size: int
    prefix: bytes
    key_block: bytes
    header: bytes
    length: int  # stored bytes up to the first segment (header and its tag)
    aead: AESGCM

    @property
    def count(self) -> int:
        """Segments of the object, n."""
        return segment_count(self.size, self.segment_size)

    def segment_length(self, index: int) -> int:
        """Stored bytes of segment ``index`` (plaintext plus tag)."""
        last = self.count - 1
        if index < last:
            return self.segment_size + TAG
        return self.size - last * self.segment_size + TAG

    def segment_offset(self, index: int) -> int:
        """Where segment ``index`` starts in the stored object: ``H + 16 + index*(S+16)``."""
        return self.length + index * (self.segment_size + TAG)


def open_segment(header: Header, index: int, sealed: bytes | memoryview) -> bytes:
    """The plaintext of segment ``index``, given its stored bytes, authenticated first.

    Raises :class:`EnvelopeError` if the bytes are not that segment of that object: edited,
    truncated, from another position or object, or (for the last segment) not sealed as last.
    """
    count = header.count
    if not 0 <= index < count:
        raise ValueError(f"no segment {index} in an object of {count}")
    if len(sealed) != (expected := header.segment_length(index)):
        raise EnvelopeError(f"segment {index} is {len(sealed)} stored bytes, not {expected}")
    last = index == count - 1
    nonce = _nonce(header.prefix, index, 1 if last else 0)
    try:
        return header.aead.decrypt(nonce, sealed, header.header if last else header.key_block)
    except InvalidTag as exc:
        raise EnvelopeError(f"segment {index} fails authentication") from exc


def read_header(data: bytes, keyring: Keyring, address: str) -> Header | None:
    """The header at the start of ``data``, authenticated; None if ``data`` is too short yet.

    Raises :class:`EnvelopeError` if it is not a header, does not authenticate with the
    keyring, or belongs to another address.
    """
    if data[:4] != MAGIC[: len(data)]:
        raise EnvelopeError("not a Rhenus object, or an unknown format version")
    if len(data) < _FIXED + 1:
        return None
    k = data[_FIXED]
    if len(data) < _FIXED + 1 + k + 1:
        return None
    w = data[_FIXED + 1 + k]
    block_end = _FIXED + 2 + k + w
    end = block_end + _TRAILER
    if len(data) < end + TAG:
        return None
    (segment_size,) = struct.unpack(">I", data[4:8])
    if not 0 < segment_size <= _MAX_SEGMENT:
        raise EnvelopeError(f"implausible segment size {segment_size}")
    try:
        kek_id = data[_FIXED + 1 : _FIXED + 1 + k].decode("ascii")
        aead = AESGCM(keyring.unwrap(kek_id, data[_FIXED + 2 + k : block_end]))
    except (UnicodeDecodeError, KeyringError, ValueError) as exc:
        raise EnvelopeError(f"the data key does not unwrap: {exc}") from exc
    header = data[:end]
    prefix = data[8 : 8 + PREFIX]
    try:
        aead.decrypt(_nonce(prefix, _HEADER_COUNTER, 2), data[end : end + TAG], header)
    except InvalidTag as exc:
        raise EnvelopeError("the header fails authentication") from exc
    size, digest = struct.unpack(">Q32s", data[block_end:end])
    if digest.hex() != address:
        raise EnvelopeError("the object belongs to another address")
    if segment_count(size, segment_size) >= _HEADER_COUNTER:
        raise EnvelopeError("implausible plaintext size")
    return Header(
        size=size,
        sha256=address,
        segment_size=segment_size,
        prefix=prefix,
        key_block=data[:block_end],
        header=header,
        length=end + TAG,
        aead=aead,
    )


class Opener:
    """Decrypts and verifies one stored object against its address, segment by segment."""

    def __init__(self, keyring: Keyring, address: str) -> None:
        self._keyring = keyring
        self._address = address
        self._header: Header | None = None
        self._buffer = bytearray()
        self._index = 0
        self._count = 0
        self._hash = hashlib.sha256()

    def update(self, data: bytes) -> bytes:
        """Plaintext of every segment completed by ``data``, each one authenticated first."""
        self._buffer += data
        if self._header is None:
            self._header = read_header(bytes(self._buffer), self._keyring, self._address)
            if self._header is None:
                return b""
            del self._buffer[: self._header.length]
            self._count = self._header.count
        out = bytearray()
        while self._index < self._count:
            length = self._header.segment_length(self._index)
            if len(self._buffer) < length:
                break
            out += self._open(self._header, bytes(self._buffer[:length]))
            del self._buffer[:length]
        if self._index == self._count and self._buffer:
            raise EnvelopeError("bytes after the last segment")
        return bytes(out)

    def finish(self) -> None:
        """Check that the stream ended exactly after the last segment."""
        if self._header is None:
            raise EnvelopeError("the object ends inside its header")
        if self._index < self._count:
            raise EnvelopeError(f"the object is truncated in segment {self._index}")

    def _open(self, header: Header, sealed: bytes) -> bytes:
        plain = open_segment(header, self._index, sealed)
        self._index += 1
        self._hash.update(plain)
        if self._index == self._count and self._hash.hexdigest() != self._address:
            # Unreachable unless the writer itself lied; checked anyway, it is the address.
            raise EnvelopeError("the content does not hash to its address")
        return plain
