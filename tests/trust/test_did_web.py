"""did:web: identifiers from URLs and back, and the node's published DID document."""

from __future__ import annotations

import httpx
import pytest

from rhenus.core.node import Node
from rhenus.trust.did import did_for_url, url_for_did


@pytest.mark.parametrize(
    ("url", "did"),
    [
        ("https://rhenus.berlin.de", "did:web:rhenus.berlin.de"),
        ("https://127.0.0.1:8443", "did:web:127.0.0.1%3A8443"),
        ("https://example.org/nodes/berlin/", "did:web:example.org:nodes:berlin"),
    ],
)
def test_did_web_identifier_follows_the_method_spec(url: str, did: str) -> None:
    assert did_for_url(url) == did


@pytest.mark.parametrize(
    ("did", "url"),
    [
        ("did:web:rhenus.berlin.de", "https://rhenus.berlin.de/.well-known/did.json"),
        ("did:web:127.0.0.1%3A8443", "https://127.0.0.1:8443/.well-known/did.json"),
        ("did:web:example.org:nodes:berlin", "https://example.org/nodes/berlin/did.json"),
    ],
)
def test_did_web_document_location(did: str, url: str) -> None:
    assert url_for_did(did) == url


def test_plain_http_only_for_loopback_and_only_when_allowed() -> None:
    assert url_for_did("did:web:127.0.0.1%3A9000", allow_http_loopback=True).startswith("http://")
    assert url_for_did("did:web:127.0.0.1%3A9000").startswith("https://")
    assert url_for_did("did:web:gouv.fr", allow_http_loopback=True).startswith("https://")


@pytest.mark.parametrize("bad", ["did:key:z6Mk", "did:web:", "did:web:evil.com%2Fpath", "web:x"])
def test_malformed_did_is_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="did:web"):
        url_for_did(bad)


async def test_did_document_lists_current_and_retired_keys(
    client: httpx.AsyncClient, node: Node
) -> None:
    first = node.keyring.current_signing
    node.keyring.rotate_signing()
    response = await client.get("/.well-known/did.json")
    assert response.headers["content-type"] == "application/did+json"
    document = response.json()
    did = did_for_url(node.settings.public_url)
    assert document["id"] == did
    ids = [m["id"] for m in document["verificationMethod"]]
    assert f"{did}#{first}" in ids
    assert f"{did}#{node.keyring.current_signing}" in ids
    assert document["authentication"] == [f"{did}#{node.keyring.current_signing}"]
    jwk = document["verificationMethod"][0]["publicKeyJwk"]
    assert jwk["kty"] == "OKP"
    assert jwk["crv"] == "Ed25519"
    assert "d" not in jwk
    services = {s["type"]: s["serviceEndpoint"] for s in document["service"]}
    assert services["DataService"] == node.settings.public_url + "/dsp"
