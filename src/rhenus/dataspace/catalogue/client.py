"""Reading another node's DSP catalog, as this node (signed request)."""

from __future__ import annotations

from typing import Any

from rhenus.config import Settings
from rhenus.core.keys import Keyring
from rhenus.dataspace.catalogue.dsp import BASE_PATH, CONTEXT
from rhenus.trust.client import PeerRefused, federation_client


async def fetch_catalog(settings: Settings, keyring: Keyring, peer_url: str) -> dict[str, Any]:
    """The peer's catalog as it shows it to this node (every page, datasets merged)."""
    message = {"@context": [CONTEXT], "@type": "CatalogRequestMessage"}
    url: str | None = f"{peer_url.rstrip('/')}{BASE_PATH}/catalog/request"
    merged: dict[str, Any] = {}
    async with federation_client(settings, keyring) as client:
        while url:
            response = await client.post(url, json=message)
            if response.is_error:
                reason = response.json().get("reason", [response.text]) if response.content else []
                raise PeerRefused(response.status_code, "; ".join(map(str, reason)))
            page = response.json()
            if not merged:
                merged = {**page, "dataset": []}
            merged["dataset"].extend(page.get("dataset", []))
            url = response.links.get("next", {}).get("url")
    return merged
