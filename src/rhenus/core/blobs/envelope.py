"""The encrypted object format: streaming AES-256-GCM in authenticated segments.

Byte layout of a stored object (all integers big-endian)::

    magic      4   b"RHB\\x01"
    segsize    4   plaintext bytes per segment (65536)
    nprefix    7   random nonce prefix, fresh per object
    klen       1   length of the KEK id
    kek_id  klen   id of the key-encryption key (ASCII)
    wlen       1   length of the wrapped data key
    wrapped wlen   the object's random 256-bit data key, wrapped with the KEK (RFC 3394)
    segment_0 … segment_n   AES-256-GCM ciphertext + 16-byte tag, segsize + 16 bytes each,
                            the last one shorter (0 … segsize plaintext bytes)

Segment i is sealed with nonce ``nprefix || i (4 bytes) || last (1 byte: 1 on the final
segment)`` and associated data = the header bytes, plus, on the final segment only, the sha-256
of the whole plaintext — which is the object's address. So a reader that knows the address
detects: any edited byte (tag), reordered segments (counter in the nonce), truncation (no segment
carries last=1 where the stream ends), an object moved to another address (final tag), and an
edited header (associated data of every segment). Every segment is authenticated before its
plaintext is released. (The construction is the STREAM scheme of Hoang, Reyhanitabar, Rogaway
and Vizár, as used by Tink's streaming AEAD and age.)
"""

from __future__ import annotations

import hashlib
import secrets
import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from rhenus.core.keys import Keyring, KeyringError

MAGIC = b"RHB\x01"
SEGMENT = 64 * 1024
TAG = 16
_FIXED = len(MAGIC) + 4 + 7 + 1  # up to and including klen


class EnvelopeError(Exception):
    """The stored bytes are not a valid object for this address (tampered, truncated, moved)."""


def _nonce(prefix: bytes, index: int, last: bool) -> bytes:
    return prefix + struct.pack(">I", index) + (b"\x01" if last else b"\x00")


class Sealer:
    """Encrypts a plaintext stream; feed it with :meth:`update`, close it with :meth:`finish`."""

    def __init__(self, keyring: Keyring, segment_size: int = SEGMENT) -> None:
        data_key = secrets.token_bytes(32)
        kek_id, wrapped = keyring.wrap(data_key)
        kek = kek_id.encode("ascii")
        self.prefix = secrets.token_bytes(7)
        self.segment_size = segment_size
        self.header = (
            MAGIC
            + struct.pack(">I", segment_size)
            + self.prefix
            + bytes([len(kek)])
            + kek
            + bytes([len(wrapped)])
            + wrapped
        )
        self._aead = AESGCM(data_key)
        self._pending = bytearray()
        self._index = 0
        self._hash = hashlib.sha256()
        self.size = 0

    def update(self, data: bytes) -> bytes:
        """Ciphertext of every segment that is complete *and* known not to be the last."""
        self._hash.update(data)
        self.size += len(data)
        self._pending += data
        out = bytearray()
        # A full segment is sealed only once more data follows it: the final one needs last=1.
        while len(self._pending) > self.segment_size:
            out += self._seal(bytes(self._pending[: self.segment_size]), last=False)
            del self._pending[: self.segment_size]
        return bytes(out)

    def finish(self) -> tuple[bytes, str]:
        """The final segment and the sha-256 (hex) of the whole plaintext."""
        digest = self._hash.hexdigest()
        tail = self._seal(bytes(self._pending), last=True, digest=bytes.fromhex(digest))
        self._pending.clear()
        return tail, digest

    def _seal(self, plain: bytes, *, last: bool, digest: bytes = b"") -> bytes:
        nonce = _nonce(self.prefix, self._index, last)
        self._index += 1
        return self._aead.encrypt(nonce, plain, self.header + digest)


class Opener:
    """Decrypts and verifies a stored object against its address, segment by segment."""

    def __init__(self, keyring: Keyring, address: str) -> None:
        self.keyring = keyring
        self.digest = bytes.fromhex(address)
        self._buffer = bytearray()
        self._header: bytes | None = None
        self._aead: AESGCM | None = None
        self._prefix = b""
        self._segment = 0
        self._index = 0
        self._hash = hashlib.sha256()

    def update(self, data: bytes) -> bytes:
        """Plaintext of the segments that are complete and not the last one."""
        self._buffer += data
        if self._header is None and not self._parse_header():
            return b""
        out = bytearray()
        size = self._segment + TAG
        while len(self._buffer) > size:
            out += self._open(bytes(self._buffer[:size]), last=False)
            del self._buffer[:size]
        return bytes(out)

    def finish(self) -> bytes:
        """The last segment's plaintext, once the whole stream is verified."""
        if self._header is None:
            raise EnvelopeError("the object ends inside its header")
        if len(self._buffer) < TAG:
            raise EnvelopeError("the object is truncated")
        plain = self._open(bytes(self._buffer), last=True)
        self._buffer.clear()
        if self._hash.digest() != self.digest:
            raise EnvelopeError("the content does not hash to its address")
        return plain

    def _parse_header(self) -> bool:
        buf = self._buffer
        if len(buf) < _FIXED:
            return False
        if bytes(buf[:4]) != MAGIC:
            raise EnvelopeError("not a Rhenus object (bad magic)")
        klen = buf[_FIXED - 1]
        if len(buf) < _FIXED + klen + 1:
            return False
        wlen = buf[_FIXED + klen]
        end = _FIXED + klen + 1 + wlen
        if len(buf) < end:
            return False
        (segment,) = struct.unpack(">I", bytes(buf[4:8]))
        if not 0 < segment <= 16 * 1024 * 1024:
            raise EnvelopeError("implausible segment size in header")
        try:
            kek_id = bytes(buf[_FIXED : _FIXED + klen]).decode("ascii")
            data_key = self.keyring.unwrap(kek_id, bytes(buf[_FIXED + klen + 1 : end]))
        except (UnicodeDecodeError, KeyringError) as exc:
            raise EnvelopeError(f"the data key does not unwrap: {exc}") from exc
        self._header = bytes(buf[:end])
        self._prefix = bytes(buf[8:15])
        self._segment = segment
        self._aead = AESGCM(data_key)
        del buf[:end]
        return True

    def _open(self, sealed: bytes, *, last: bool) -> bytes:
        assert self._aead is not None
        assert self._header is not None
        aad = self._header + (self.digest if last else b"")
        try:
            plain = self._aead.decrypt(_nonce(self._prefix, self._index, last), sealed, aad)
        except InvalidTag as exc:
            where = "final segment" if last else f"segment {self._index}"
            raise EnvelopeError(f"{where} fails authentication") from exc
        self._index += 1
        self._hash.update(plain)
        return plain


def plaintext_size(stored_size: int, header_size: int, segment: int = SEGMENT) -> int:
    """Plaintext bytes of a stored object of ``stored_size`` bytes."""
    body = stored_size - header_size
    segments = max(1, -(-body // (segment + TAG)))
    return body - segments * TAG


def header_size(stored_prefix: bytes) -> int:
    """Size of the header, read from the first bytes of a stored object (at least 300 bytes)."""
    if stored_prefix[:4] != MAGIC or len(stored_prefix) < _FIXED + 1:
        raise EnvelopeError("not a Rhenus object (bad magic)")
    klen = stored_prefix[_FIXED - 1]
    return _FIXED + klen + 1 + stored_prefix[_FIXED + klen]
