"""The lean RFC 9421 path for our one fixed signature shape (label ``rhenus``, Ed25519).

Why it exists: ``http-message-signatures`` builds the signature base twice per sign and spends
most of its time in ``http_sf`` string serialisation; measured ~660 µs per ``sign_request``
against ~50 µs for the Ed25519 signature itself, ~10 operations per node per DSP negotiation.
Here the signature base (RFC 9421 §2.5) and the ``Signature-Input`` / ``Signature`` /
``Content-Digest`` (RFC 9530) values are formatted directly. The output is byte-identical to the
library's (tests/trust/test_signature_fast_path.py checks it with hypothesis). Measured with
timeit (µs per op, library → lean, 2-core box under load): sign_request 481 → 150,
verify_request 512 → 145-170, sign_response 725 → 72-100, verify_response 636 → 237-267.

Verification takes this path only when the received fields are exactly in the canonical shape
the library emits (anchored regexes below); anything else returns ``None`` and the caller falls
back to the library, so correctness never depends on these regexes, only speed does.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import time
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature as BadEd25519
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from http_message_signatures.resolvers import HTTPSignatureComponentResolver

from rhenus.core.errors import Unauthorized

# RFC 8941 §3.3.3: an sf-string is printable ASCII; `"` and `\` are escaped.
_SF_STRING = re.compile(r"[\x20-\x7e]*")
_B64 = r"[A-Za-z0-9+/]*={0,2}"
_SIGNATURE = re.compile(rf"rhenus=:({_B64}):")
# Unescaped strings only: an escaped keyid or nonce is valid but rare, and goes to the library.
_Q = r'"([\x20\x21\x23-\x5b\x5d-\x7e]*)"'
REQUEST_INNER = '("@method" "@target-uri" "content-digest")'
RESPONSE_INNER = (
    '("@status" "content-digest" "@method";req "@target-uri";req "signature";key="rhenus";req)'
)
_REQUEST_INPUT = re.compile(
    rf'rhenus={re.escape(REQUEST_INNER)};created=(\d{{1,15}});keyid={_Q};nonce={_Q};tag="rhenus-federation"'
)
_RESPONSE_INPUT = re.compile(
    rf'rhenus={re.escape(RESPONSE_INNER)};created=(\d{{1,15}});keyid={_Q};tag="rhenus-response"'
)
# The library's verifier tolerates this much clock skew on both ends of the window.
CLOCK_SKEW = 5


def sf_string(value: str) -> str:
    """``value`` as an RFC 8941 sf-string; ValueError if it cannot be one."""
    if not _SF_STRING.fullmatch(value):
        raise ValueError("a structured-field string must be printable ASCII")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def content_digest(body: bytes) -> str:
    """The RFC 9530 ``Content-Digest`` value (sha-256) of ``body``."""
    return f"sha-256=:{base64.b64encode(hashlib.sha256(body).digest()).decode()}:"


@dataclass
class _Url:
    """Just enough of a message for the library to derive ``@target-uri``."""

    method: str
    url: str
    headers: Any = None

    def __post_init__(self) -> None:
        self.headers = {}


def target_uri(method: str, url: str) -> str:
    """``@target-uri`` exactly as the library derives it (its own URL normalisation)."""
    return HTTPSignatureComponentResolver(_Url(method, url)).get_target_uri()  # type: ignore[no-untyped-call,no-any-return]


def _base(lines: list[tuple[str, str]], params: str) -> bytes:
    for name, value in lines:
        if not value.isprintable() or value != value.strip(" ") or not value.isascii():
            raise ValueError(f"component {name} is not printable ASCII")
    text = "".join(f"{name}: {value}\n" for name, value in lines)
    return f'{text}"@signature-params": {params}'.encode()


def sign(base: bytes, key: Ed25519PrivateKey) -> str:
    """The ``Signature`` value for our label."""
    return f"rhenus=:{base64.b64encode(key.sign(base)).decode()}:"


def request_params(created: int, key_id: str, nonce: str, tag: str) -> str:
    """The ``@signature-params`` value of a request signature."""
    return (
        f"{REQUEST_INNER};created={created};keyid={sf_string(key_id)};"
        f"nonce={sf_string(nonce)};tag={sf_string(tag)}"
    )


def response_params(created: int, key_id: str, tag: str) -> str:
    """The ``@signature-params`` value of a response signature."""
    return f"{RESPONSE_INNER};created={created};keyid={sf_string(key_id)};tag={sf_string(tag)}"


def request_base(method: str, target: str, digest: str, params: str) -> bytes:
    """The signature base of a request (RFC 9421 §2.5)."""
    return _base(
        [('"@method"', method), ('"@target-uri"', target), ('"content-digest"', digest)], params
    )


def response_base(
    status: int, digest: str, method: str, target: str, request_sig: str, params: str
) -> bytes:
    """The signature base of a response bound to its request (RFC 9421 §2.4 ``req``)."""
    return _base(
        [
            ('"@status"', str(status)),
            ('"content-digest"', digest),
            ('"@method";req', method),
            ('"@target-uri";req', target),
            ('"signature";key="rhenus";req', request_sig),
        ],
        params,
    )


def our_signature(headers: Any) -> str | None:
    """The ``:base64:`` of a ``Signature: rhenus=:…:`` field alone, else None."""
    match = _SIGNATURE.fullmatch(headers.get("signature") or "")
    return f":{match[1]}:" if match else None


def parse_request_input(headers: Any) -> tuple[int, str, str] | None:
    """(created, keyid, nonce) of a canonical request ``Signature-Input``, else None."""
    match = _REQUEST_INPUT.fullmatch(headers.get("signature-input") or "")
    return (int(match[1]), match[2], match[3]) if match else None


def parse_response_input(headers: Any) -> tuple[int, str] | None:
    """(created, keyid) of a canonical response ``Signature-Input``, else None."""
    match = _RESPONSE_INPUT.fullmatch(headers.get("signature-input") or "")
    return (int(match[1]), match[2]) if match else None


def digest_matches(headers: Any, body: bytes) -> bool:
    """Whether ``Content-Digest`` is exactly our sha-256 of ``body`` (else: the library decides)."""
    return hmac.compare_digest(
        (headers.get("content-digest") or "").encode(), content_digest(body).encode()
    )


def check(
    *, base: bytes, signature: str, key: Any, created: int, window: float, prefix: str
) -> None:
    """Verify Ed25519 and the ``created`` window as the library does; Unauthorized otherwise."""
    now = time.time()
    if created > now + CLOCK_SKEW:
        raise Unauthorized(
            f'{prefix}: Signature "created" parameter is set to a time in the future'
        )
    if created + window < now - CLOCK_SKEW:
        raise Unauthorized(f"{prefix}: Signature age exceeds maximum allowable age")
    if not isinstance(key, Ed25519PublicKey):
        raise Unauthorized(f"{prefix}: the key is not an Ed25519 key")
    try:
        key.verify(base64.b64decode(signature[1:-1], validate=True), base)
    except (BadEd25519, binascii.Error) as exc:
        raise Unauthorized(f"{prefix}: Signature is invalid") from exc
