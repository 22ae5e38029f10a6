"""did:web identities: this node's DID document, and resolution of other nodes' documents.

did:web (W3C CCG did:web method): ``did:web:rhenus.berlin.de`` is published at
``https://rhenus.berlin.de/.well-known/did.json``; a port is percent-encoded
(``did:web:127.0.0.1%3A8443``) and a path becomes colon-separated segments
(``did:web:example.org:nodes:berlin`` → ``https://example.org/nodes/berlin/did.json``).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from rhenus.core.errors import Unauthorized
from rhenus.core.keys import Keyring, b64url_decode
from rhenus.core.net import is_loopback_host

DID_CONTEXT = ["https://www.w3.org/ns/did/v1", "https://w3id.org/security/suites/jws-2020/v1"]
_MAX_DOCUMENT = 256 * 1024


def did_for_url(public_url: str) -> str:
    """The did:web of a node reachable at ``public_url``."""
    parts = urlsplit(public_url)
    if not parts.hostname:
        raise ValueError(f"public URL has no host: {public_url!r}")
    host = parts.hostname + (quote(f":{parts.port}", safe="") if parts.port else "")
    path = [quote(p, safe="") for p in parts.path.strip("/").split("/") if p]
    return ":".join(["did", "web", host, *path])


def url_for_did(did: str, *, allow_http_loopback: bool = False) -> str:
    """Where the DID document of ``did`` is published (https; http only to loopback if allowed)."""
    if not did.startswith("did:web:"):
        raise ValueError(f"not a did:web identifier: {did[:80]!r}")
    segments = did.removeprefix("did:web:").split(":")
    host = unquote(segments[0])
    if not host or "/" in host or "@" in host:
        raise ValueError(f"invalid did:web host in {did[:80]!r}")
    hostname = urlsplit(f"//{host}").hostname or ""
    scheme = "http" if allow_http_loopback and is_loopback_host(hostname) else "https"
    path = "/".join(unquote(s) for s in segments[1:])
    return (
        f"{scheme}://{host}/{path}/did.json" if path else f"{scheme}://{host}/.well-known/did.json"
    )


def base_url_for_did(did: str, *, allow_http_loopback: bool = False) -> str:
    """The public URL of the node a did:web names (the inverse of :func:`did_for_url`)."""
    document_url = url_for_did(did, allow_http_loopback=allow_http_loopback)
    return document_url.removesuffix("/.well-known/did.json").removesuffix("/did.json")


def did_document(*, did: str, keyring: Keyring, public_url: str) -> dict[str, Any]:
    """This node's DID document: every signing key it ever had, and its service endpoints.

    Retired keys stay listed as verification methods so that what they signed still verifies;
    only the current key is offered for new authentication.
    """
    methods = []
    for kid in sorted(keyring.signing):
        methods.append(
            {
                "id": f"{did}#{kid}",
                "type": "JsonWebKey2020",
                "controller": did,
                "publicKeyJwk": {
                    k: v for k, v in keyring.signing[kid].public_jwk().items() if k != "kid"
                },
            }
        )
    current = f"{did}#{keyring.current_signing}"
    return {
        "@context": DID_CONTEXT,
        "id": did,
        "verificationMethod": methods,
        "authentication": [current],
        "assertionMethod": [m["id"] for m in methods],
        "service": [
            {"id": f"{did}#dsp", "type": "DataService", "serviceEndpoint": f"{public_url}/dsp"},
            {"id": f"{did}#matrix", "type": "MatrixHomeserver", "serviceEndpoint": public_url},
            {
                "id": f"{did}#openai",
                "type": "OpenAICompatibleAPI",
                "serviceEndpoint": f"{public_url}/v1",
            },
        ],
    }


@dataclass(frozen=True)
class ResolvedKey:
    did: str
    key_id: str
    public_key: Ed25519PublicKey


def _public_key(jwk: dict[str, Any]) -> Ed25519PublicKey:
    if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519" or "d" in jwk:
        raise ValueError("not an Ed25519 public JWK")
    return Ed25519PublicKey.from_public_bytes(b64url_decode(str(jwk["x"])))


class DidResolver:
    """Fetches and caches DID documents (for ``ttl`` seconds) and finds keys in them."""

    def __init__(
        self,
        *,
        ttl: float = 300,
        allow_http_loopback: bool = False,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.ttl = ttl
        self.allow_http_loopback = allow_http_loopback
        self.client = client or httpx.AsyncClient(timeout=10, follow_redirects=False)
        self._cache: dict[str, tuple[float, dict[str, Any]]] = {}

    async def document(self, did: str) -> dict[str, Any]:
        """The DID document of ``did``; :class:`Unauthorized` if it cannot be had."""
        cached = self._cache.get(did)
        if cached and cached[0] > time.monotonic():
            return cached[1]
        try:
            url = url_for_did(did, allow_http_loopback=self.allow_http_loopback)
            response = await self.client.get(url, headers={"accept": "application/did+json"})
            if response.status_code != 200 or len(response.content) > _MAX_DOCUMENT:
                raise ValueError(f"{url} answered {response.status_code}")
            document = json.loads(response.content)
            if not isinstance(document, dict) or document.get("id") != did:
                raise ValueError("the document's id is not the DID that was resolved")
        except (ValueError, httpx.HTTPError) as exc:
            raise Unauthorized(f"cannot resolve {did[:120]}: {exc}") from exc
        self._cache[did] = (time.monotonic() + self.ttl, document)
        return document

    async def key(self, key_id: str) -> ResolvedKey:
        """The public key named ``did#fragment``, if the DID document lists it."""
        did, _, fragment = key_id.partition("#")
        if not fragment:
            raise Unauthorized(f"keyid {key_id[:120]!r} is not a DID URL with a fragment")
        document = await self.document(did)
        for method in document.get("verificationMethod", []):
            if isinstance(method, dict) and method.get("id") in (key_id, f"#{fragment}"):
                try:
                    return ResolvedKey(did, key_id, _public_key(method.get("publicKeyJwk", {})))
                except (ValueError, KeyError) as exc:
                    raise Unauthorized(f"key {key_id[:120]} is not usable: {exc}") from exc
        raise Unauthorized(f"key {key_id[:120]} is not in the DID document of {did[:120]}")

    async def close(self) -> None:
        await self.client.aclose()
