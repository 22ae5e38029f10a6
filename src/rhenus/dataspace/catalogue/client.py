"""Reading another node's DSP catalog, as this node: signed requests, verified answers."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx

from rhenus.config import Settings
from rhenus.core.errors import Unauthorized
from rhenus.core.keys import Keyring
from rhenus.dataspace.catalogue.dsp import BASE_PATH, CONTEXT
from rhenus.trust.client import PeerRefused, federation_client
from rhenus.trust.did import DidResolver, did_for_url
from rhenus.trust.httpsig import verify_response

MAX_PAGES = 2_000  # 100,000 datasets at the 50 a page our own catalog serves


def _reason(response: httpx.Response) -> str:
    try:
        reason = response.json().get("reason", [response.text])
    except ValueError:
        return response.text[:300]
    return "; ".join(map(str, reason if isinstance(reason, list) else [reason]))[:300]


async def fetch_catalog(
    settings: Settings,
    keyring: Keyring,
    peer_url: str,
    *,
    resolver: DidResolver,
    transport: httpx.AsyncBaseTransport | None = None,
) -> dict[str, Any]:
    """The peer's catalog as it shows it to this node (every page, datasets merged).

    Every page must be signed by the peer's did:web key and bound to our request
    (:class:`Unauthorized` otherwise), name the peer as ``participantId``, and link only to
    further pages of the same catalog.
    """
    peer_url = peer_url.rstrip("/")
    peer_did = did_for_url(peer_url)
    first = f"{peer_url}{BASE_PATH}/catalog/request"
    message = {"@context": [CONTEXT], "@type": "CatalogRequestMessage"}
    merged: dict[str, Any] = {}
    url: str | None = first
    pages = 0
    async with federation_client(settings, keyring, transport=transport) as client:
        while url:
            pages += 1
            if pages > MAX_PAGES:
                raise PeerRefused(502, f"the catalog has more than {MAX_PAGES} pages")
            response = await client.post(url, json=message)
            if response.is_error:
                raise PeerRefused(response.status_code, _reason(response))
            await verify_response(response, resolver=resolver, signer_did=peer_did)
            page = response.json()
            if not isinstance(page, dict) or page.get("@type") != "Catalog":
                raise PeerRefused(502, "the answer is not a DSP Catalog")
            if page.get("participantId") != peer_did:
                raise Unauthorized(
                    f"the catalog names {page.get('participantId')!r}, not {peer_did}"
                )
            datasets = page.get("dataset", [])
            if not merged:
                merged = {**page, "dataset": []}
            merged["dataset"].extend(d for d in datasets if isinstance(d, dict))
            url = response.links.get("next", {}).get("url")
            if url and not url.startswith(first):
                raise PeerRefused(502, f"the next page {url[:200]} is outside the peer's catalog")
    return merged


async def fetch_dataset(
    client: httpx.AsyncClient, peer_url: str, dataset_id: str, *, resolver: DidResolver
) -> dict[str, Any]:
    """One dataset of the peer's catalog, as it shows it to this node (signed and verified);
    ``client`` is a :func:`~rhenus.trust.client.federation_client` of this node."""
    peer_url = peer_url.rstrip("/")
    response = await client.get(
        f"{peer_url}{BASE_PATH}/catalog/datasets/{quote(dataset_id, safe=':@')}"
    )
    if response.is_error:
        raise PeerRefused(response.status_code, _reason(response))
    await verify_response(response, resolver=resolver, signer_did=did_for_url(peer_url))
    found = response.json()
    if not isinstance(found, dict) or found.get("@type") != "Dataset":
        raise PeerRefused(502, "the answer is not a DSP Dataset")
    return found
