"""W3C Bitstring Status List v1.0: the revocation list a trust anchor publishes.

The list is a bitstring of at least 131,072 bits (16 KiB, so that one entry does not identify a
participant), gzip-compressed, base64url-encoded without padding and multibase-prefixed ``u``.
Bit ``i`` is set when the credential with ``statusListIndex`` ``i`` is revoked; index 0 is the
left-most bit of the first byte.
"""

from __future__ import annotations

import base64
import gzip
from collections.abc import Iterable

SIZE_BITS = 131_072


def encode(revoked: Iterable[int], size_bits: int = SIZE_BITS) -> str:
    bits = bytearray(size_bits // 8)
    for index in revoked:
        if not 0 <= index < size_bits:
            raise ValueError(f"status index {index} is outside the list")
        bits[index // 8] |= 0x80 >> (index % 8)
    packed = gzip.compress(bytes(bits), mtime=0)
    return "u" + base64.urlsafe_b64encode(packed).rstrip(b"=").decode()


def is_set(encoded_list: str, index: int) -> bool:
    """Whether bit ``index`` is set; ValueError for a malformed list or index."""
    if not encoded_list.startswith("u"):
        raise ValueError("encodedList must be multibase base64url (prefix 'u')")
    body = encoded_list[1:]
    bits = gzip.decompress(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    if not 0 <= index < len(bits) * 8:
        raise ValueError(f"status index {index} is outside the list")
    return bool(bits[index // 8] & (0x80 >> (index % 8)))
