"""Signed node-to-node requests: RFC 9421 HTTP Message Signatures with the node's Ed25519 key.

Every federation request covers ``@method``, ``@target-uri`` and ``content-digest`` (RFC 9530)
with ``created``, ``nonce``, ``keyid`` (the did:web key id) and ``tag="rhenus-federation"``,
under the label ``rhenus``. The library ``http-message-signatures`` does the canonicalisation
and the cryptography; this module adds the federation's policy: keys come from the sender's
did:web document, signatures older than the window or from the future are refused, and each
nonce is accepted once.
"""

from __future__ import annotations

import secrets
from collections.abc import Generator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import http_sf
import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from http_message_signatures import (
    HTTPMessageSigner,
    HTTPMessageVerifier,
    HTTPSignatureKeyResolver,
    InvalidSignature,
)
from http_message_signatures.algorithms import ED25519
from http_message_signatures.exceptions import HTTPMessageSignaturesException

from rhenus.core.errors import Unauthorized
from rhenus.core.keys import Keyring
from rhenus.trust import signature_base as lean
from rhenus.trust.did import DidResolver

LABEL = "rhenus"
TAG = "rhenus-federation"
COVERED = ("@method", "@target-uri", "content-digest")
# A response signature covers the status and body, and binds itself to the request it answers
# (method, target and that request's own signature, hence its nonce): it cannot be replayed
# as the answer to another request.
RESPONSE_TAG = "rhenus-response"
RESPONSE_COVERED = (
    "@status",
    "content-digest",
    '"@method";req',
    '"@target-uri";req',
    f'"signature";key="{LABEL}";req',
)
WINDOW = timedelta(minutes=5)


class _OwnKeys(HTTPSignatureKeyResolver):
    def __init__(self, keyring: Keyring) -> None:
        self.keyring = keyring

    def resolve_private_key(self, key_id: str) -> Ed25519PrivateKey:
        return self.keyring.signing[key_id.rpartition("#")[2]].private


class _OneKey(HTTPSignatureKeyResolver):
    def __init__(self, key_id: str, key: Any) -> None:
        self.key_id, self.key = key_id, key

    def resolve_public_key(self, key_id: str) -> Any:
        if key_id != self.key_id:
            raise InvalidSignature("unexpected keyid")
        return self.key


def sign_request(
    request: httpx.Request,
    *,
    keyring: Keyring,
    did: str,
    created: datetime | None = None,
    nonce: str | None = None,
) -> None:
    """Add ``Signature-Input``, ``Signature`` and ``Content-Digest`` to an outgoing request.

    Formatted directly (:mod:`rhenus.trust.signature_base`), byte-identical to the library.
    """
    key_id = f"{did}#{keyring.current_signing}"
    stamp = int((created or datetime.now(UTC)).timestamp())
    try:
        params = lean.request_params(stamp, key_id, nonce or secrets.token_urlsafe(18), TAG)
        digest = lean.content_digest(request.content)
        target = lean.target_uri(request.method, str(request.url))
        base = lean.request_base(request.method, target, digest, params)
    except ValueError as exc:
        raise HTTPMessageSignaturesException(str(exc)) from exc
    headers = request.headers
    headers["Content-Digest"] = digest
    headers["Signature-Input"] = f"{LABEL}={params}"
    headers["Signature"] = lean.sign(base, keyring.signing[keyring.current_signing].private)


class NodeSignature(httpx.Auth):
    """httpx authentication that signs every request as this node."""

    requires_request_body = True

    def __init__(self, keyring: Keyring, did: str) -> None:
        self.keyring, self.did = keyring, did

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        sign_request(request, keyring=self.keyring, did=self.did)
        yield request


@dataclass(frozen=True)
class SignedBy:
    """The verified sender of a request."""

    did: str
    key_id: str
    nonce: str
    created: datetime


@dataclass
class _Message:
    method: str
    url: str
    headers: httpx.Headers


@dataclass
class _Response:
    status_code: int
    headers: Any  # httpx.Headers or Starlette's MutableHeaders: both are read and written
    request: _Message


def _our_signature_params(headers: Any, what: str = "request") -> dict[str, Any]:
    raw = headers.get("signature-input")
    if raw is None or "signature" not in headers:
        raise Unauthorized(f"the {what} is not signed (no Signature / Signature-Input)")
    try:
        parsed: Any = http_sf.parse(raw.encode(), tltype="dictionary")
    except Exception as exc:  # the parser raises plain ValueError subclasses
        raise Unauthorized("Signature-Input is not a structured dictionary") from exc
    entry = parsed.get(LABEL) if isinstance(parsed, dict) else None
    if entry is None:
        raise Unauthorized(f"no signature labelled {LABEL!r}")
    params = entry[1]
    if not isinstance(params, dict):
        raise Unauthorized("malformed signature parameters")
    return params


async def verify_request(
    *,
    method: str,
    target_uri: str,
    headers: httpx.Headers,
    body: bytes,
    resolver: DidResolver,
    window: timedelta = WINDOW,
) -> SignedBy:
    """Check an incoming request's signature; :class:`Unauthorized` naming what is wrong.

    The nonce is returned for the caller to record (replay protection needs the database).
    """
    key_id: Any
    nonce: Any
    created: Any
    canonical = lean.parse_request_input(headers)
    if canonical is not None and "signature" in headers:  # no http_sf parse on the hot path
        created, key_id, nonce = canonical
    else:
        params = _our_signature_params(headers)
        key_id, nonce, created = params.get("keyid"), params.get("nonce"), params.get("created")
    if not isinstance(key_id, str) or not isinstance(nonce, str) or not isinstance(created, int):
        raise Unauthorized("the signature must carry keyid, nonce and created")
    if not 16 <= len(nonce) <= 128:
        raise Unauthorized("the nonce must have 16 to 128 characters")
    key = await resolver.key(key_id)
    signed_at = datetime.fromtimestamp(created, UTC)
    signature = lean.our_signature(headers)
    if canonical is not None and signature is not None and lean.digest_matches(headers, body):
        try:
            base = lean.request_base(
                method,
                lean.target_uri(method, target_uri),
                lean.content_digest(body),
                lean.request_params(canonical[0], canonical[1], canonical[2], TAG),
            )
        except ValueError as exc:
            raise Unauthorized(f"signature rejected: {exc}") from exc
        lean.check(
            base=base,
            signature=signature,
            key=key.public_key,
            created=canonical[0],
            window=window.total_seconds(),
            prefix="signature rejected",
        )
        return SignedBy(key.did, key_id, nonce, signed_at)
    verifier = HTTPMessageVerifier(
        signature_algorithm=ED25519, key_resolver=_OneKey(key_id, key.public_key)
    )
    try:
        verifier.verify(
            _Message(method, target_uri, headers),
            max_age=window,
            expect_tag=TAG,
            expect_label=LABEL,
            require_components=COVERED,
            body=body,
        )
    except (InvalidSignature, HTTPMessageSignaturesException) as exc:
        raise Unauthorized(f"signature rejected: {exc}") from exc
    return SignedBy(key.did, key_id, nonce, signed_at)


def sign_response(
    *,
    status: int,
    headers: Any,
    body: bytes,
    request: tuple[str, str, httpx.Headers],
    keyring: Keyring,
    did: str,
) -> None:
    """Sign a response in place (adds Content-Digest, Signature-Input and Signature).

    ``request`` is the (method, target URI, headers) of the signed request it answers.
    """
    method, target, request_headers = request
    key_id = f"{did}#{keyring.current_signing}"
    request_sig = lean.our_signature(request_headers)
    if request_sig is None:  # not our one-label shape: the library serialises whatever it is
        _library_sign_response(status, headers, body, request, keyring, key_id)
        return
    try:
        params = lean.response_params(int(datetime.now(UTC).timestamp()), key_id, RESPONSE_TAG)
        digest = lean.content_digest(body)
        base = lean.response_base(
            status, digest, method, lean.target_uri(method, target), request_sig, params
        )
    except ValueError as exc:
        raise HTTPMessageSignaturesException(str(exc)) from exc
    headers["Content-Digest"] = digest
    headers["Signature-Input"] = f"{LABEL}={params}"
    headers["Signature"] = lean.sign(base, keyring.signing[keyring.current_signing].private)


def _library_sign_response(
    status: int,
    headers: Any,
    body: bytes,
    request: tuple[str, str, httpx.Headers],
    keyring: Keyring,
    key_id: str,
) -> None:
    signer = HTTPMessageSigner(signature_algorithm=ED25519, key_resolver=_OwnKeys(keyring))
    signer.sign(
        _Response(status, headers, _Message(*request)),
        key_id=key_id,
        created=datetime.now(UTC),
        label=LABEL,
        tag=RESPONSE_TAG,
        include_alg=False,
        covered_component_ids=RESPONSE_COVERED,
        body=body,
    )


async def verify_response(
    response: httpx.Response, *, resolver: DidResolver, signer_did: str
) -> None:
    """Check that ``signer_did`` signed this answer to our request; :class:`Unauthorized`."""
    canonical = lean.parse_response_input(response.headers)
    if canonical is not None and "signature" in response.headers:
        key_id: Any = canonical[1]
    else:
        key_id = _our_signature_params(response.headers, "response").get("keyid")
    if not isinstance(key_id, str) or key_id.partition("#")[0] != signer_did:
        raise Unauthorized(f"the response is not signed by {signer_did[:120]}")
    key = await resolver.key(key_id)
    request = response.request
    signature = lean.our_signature(response.headers)
    request_sig = lean.our_signature(request.headers)
    body = response.content
    if (
        canonical is not None
        and signature is not None
        and request_sig is not None
        and lean.digest_matches(response.headers, body)
    ):
        method = request.method
        try:
            base = lean.response_base(
                response.status_code,
                lean.content_digest(body),
                method,
                lean.target_uri(method, str(request.url)),
                request_sig,
                lean.response_params(canonical[0], canonical[1], RESPONSE_TAG),
            )
        except ValueError as exc:
            raise Unauthorized(f"response signature rejected: {exc}") from exc
        lean.check(
            base=base,
            signature=signature,
            key=key.public_key,
            created=canonical[0],
            window=WINDOW.total_seconds(),
            prefix="response signature rejected",
        )
        return
    verifier = HTTPMessageVerifier(
        signature_algorithm=ED25519, key_resolver=_OneKey(key_id, key.public_key)
    )
    try:
        verifier.verify(
            _Response(
                response.status_code,
                response.headers,
                _Message(request.method, str(request.url), request.headers),
            ),
            max_age=WINDOW,
            expect_tag=RESPONSE_TAG,
            expect_label=LABEL,
            require_components=RESPONSE_COVERED,
            body=response.content,
        )
    except (InvalidSignature, HTTPMessageSignaturesException) as exc:
        raise Unauthorized(f"response signature rejected: {exc}") from exc
