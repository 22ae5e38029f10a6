"""The lean RFC 9421 path agrees with ``http-message-signatures`` byte for byte, both ways.

A real DidResolver fetches a real DID document over an in-process httpx transport.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from http_message_signatures import HTTPMessageSigner
from http_message_signatures.algorithms import ED25519
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rhenus.core.errors import Unauthorized
from rhenus.core.keys import Keyring
from rhenus.trust.did import DidResolver, did_document
from rhenus.trust.httpsig import COVERED, LABEL, TAG, _OwnKeys, sign_request, verify_request

URL = "https://paris.example"
DID = "did:web:paris.example"
TARGET = "https://berlin.example/api/v1/federation/ping?x=%41&y=1"
NONCE = "n" * 24


@pytest.fixture(scope="module")
def keyring(tmp_path_factory: pytest.TempPathFactory) -> Keyring:
    return Keyring.create(tmp_path_factory.mktemp("paris"))


def _resolver(keyring: Keyring) -> DidResolver:
    doc = json.dumps(did_document(did=DID, keyring=keyring, public_url=URL)).encode()
    transport = httpx.MockTransport(lambda request: httpx.Response(200, content=doc))
    return DidResolver(client=httpx.AsyncClient(transport=transport))


def _library_sign(request: httpx.Request, keyring: Keyring, created: datetime, nonce: str) -> None:
    """Exactly what the old sign_request did."""
    HTTPMessageSigner(signature_algorithm=ED25519, key_resolver=_OwnKeys(keyring)).sign(
        request,
        key_id=f"{DID}#{keyring.current_signing}",
        created=created,
        nonce=nonce,
        label=LABEL,
        tag=TAG,
        include_alg=False,
        covered_component_ids=COVERED,
        body=request.content,
    )


async def _verify(request: httpx.Request, keyring: Keyring, body: bytes | None = None) -> str:
    sender = await verify_request(
        method=request.method,
        target_uri=str(request.url),
        headers=request.headers,
        body=request.content if body is None else body,
        resolver=_resolver(keyring),
    )
    return sender.did


SIGNED = ("content-digest", "signature-input", "signature")


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    body=st.binary(max_size=300),
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH"]),
    path=st.lists(
        st.sampled_from(["a", "X", "0", "-", ".", "_", "~", "/", "%2F"]), max_size=12
    ).map("".join),
    query=st.lists(st.sampled_from(["a", "=", "&", "+", "%20", "%C3%A9"]), max_size=8).map("".join),
    nonce=st.text(
        alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=16, max_size=40
    ),
)
def test_lean_signature_is_byte_identical_to_the_library(
    keyring: Keyring, body: bytes, method: str, path: str, query: str, nonce: str
) -> None:
    url = f"https://berlin.example/{path}" + (f"?{query}" if query else "")
    created = datetime.now(UTC)
    lean, library = (httpx.Request(method, url, content=body) for _ in range(2))
    sign_request(lean, keyring=keyring, did=DID, created=created, nonce=nonce)
    _library_sign(library, keyring, created, nonce)
    assert [lean.headers[h] for h in SIGNED] == [library.headers[h] for h in SIGNED]


async def test_library_signed_request_verifies_on_the_lean_path(keyring: Keyring) -> None:
    request = httpx.Request("POST", TARGET, content=b"{}")
    _library_sign(request, keyring, datetime.now(UTC), NONCE)
    assert await _verify(request, keyring) == DID


async def test_non_canonical_but_valid_signature_is_verified_by_the_fallback(
    keyring: Keyring,
) -> None:
    """An extra ``alg`` parameter leaves the canonical shape; the library path still verifies."""
    request = httpx.Request("POST", TARGET, content=b"{}")
    HTTPMessageSigner(signature_algorithm=ED25519, key_resolver=_OwnKeys(keyring)).sign(
        request,
        key_id=f"{DID}#{keyring.current_signing}",
        nonce=NONCE,
        label=LABEL,
        tag=TAG,
        include_alg=True,
        covered_component_ids=COVERED,
        body=request.content,
    )
    assert 'alg="ed25519"' in request.headers["signature-input"]
    assert await _verify(request, keyring) == DID
    request.headers["signature-input"] = request.headers["signature-input"].replace(
        'alg="ed25519"', 'alg="ed25519";expires=9999999999'
    )
    with pytest.raises(Unauthorized, match="signature rejected"):
        await _verify(request, keyring)


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ("body", "signature rejected"),
        ("method", "signature rejected"),
        ("target", "signature rejected"),
        ("digest", "signature rejected"),
        ("tag", "signature rejected"),
        ("duplicate_label", "signature"),
    ],
)
async def test_tampered_request_is_refused(keyring: Keyring, change: str, words: str) -> None:
    request = httpx.Request("POST", TARGET, content=b'{"a": 1}')
    sign_request(request, keyring=keyring, did=DID, nonce=NONCE)
    body, headers = request.content, request.headers
    if change == "body":
        body = b'{"a": 2}'
    elif change == "method":
        request = httpx.Request("PUT", TARGET, content=body, headers=headers)
    elif change == "target":
        request = httpx.Request("POST", TARGET + "&z=1", content=body, headers=headers)
    elif change == "digest":
        body = b'{"a": 2}'
        other = httpx.Request("POST", TARGET, content=body)
        sign_request(other, keyring=keyring, did=DID, nonce=NONCE)
        headers["content-digest"] = other.headers["content-digest"]
    elif change == "tag":
        headers["signature-input"] = headers["signature-input"].replace(TAG, "other")
    elif change == "duplicate_label":
        headers["signature-input"] += ", " + headers["signature-input"]
        headers["signature"] += ", " + headers["signature"]
    with pytest.raises(Unauthorized, match=words):
        await _verify(request, keyring, body)


async def test_signature_from_another_key_is_refused(keyring: Keyring, tmp_path: Path) -> None:
    request = httpx.Request("POST", TARGET, content=b"{}")
    sign_request(request, keyring=keyring, did=DID, nonce=NONCE)
    other = Keyring.create(tmp_path / "other")
    other.signing[keyring.current_signing] = other.signing[other.current_signing]
    with pytest.raises(Unauthorized, match="signature rejected"):
        await _verify(request, other)


async def test_old_and_future_signatures_are_refused_on_the_lean_path(keyring: Keyring) -> None:
    for created, words in [(timedelta(minutes=-6), "age"), (timedelta(minutes=2), "future")]:
        request = httpx.Request("POST", TARGET, content=b"{}")
        sign_request(
            request, keyring=keyring, did=DID, nonce=NONCE, created=datetime.now(UTC) + created
        )
        with pytest.raises(Unauthorized, match=words):
            await _verify(request, keyring)


async def test_second_label_goes_to_the_library_which_judges_only_ours(keyring: Keyring) -> None:
    """As before the lean path: another label beside a valid ``rhenus`` one is ignored."""
    request = httpx.Request("POST", TARGET, content=b"{}")
    sign_request(request, keyring=keyring, did=DID, nonce=NONCE)
    request.headers["signature-input"] += ', x=("@method");created=1;keyid="k"'
    request.headers["signature"] += ", x=:AAAA:"
    assert await _verify(request, keyring) == DID
