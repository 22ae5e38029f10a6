"""The consumer's half: send a query to the provider of an agreement, as this node (RFC 9421),
and accept only an answer the provider signed for that very request."""

from __future__ import annotations

from typing import Any

import httpx

from rhenus.config import Settings
from rhenus.core.errors import Problem
from rhenus.core.keys import Keyring
from rhenus.dataspace.pools.schemas import QueryMessage
from rhenus.trust.client import federation_client
from rhenus.trust.did import DidResolver
from rhenus.trust.httpsig import verify_response

QUERIES_PATH = "/pools/queries"  # under the provider's DSP base (…/dsp)


async def send_query(
    settings: Settings,
    keyring: Keyring,
    *,
    provider_address: str,
    provider: str,
    message: QueryMessage,
    resolver: DidResolver,
    transport: httpx.AsyncBaseTransport | None = None,
) -> tuple[int, dict[str, Any]]:
    """The provider's status and (verified) JSON answer; a 502 problem if it cannot be reached
    or its answer is not signed by ``provider``."""
    url = provider_address.rstrip("/") + QUERIES_PATH
    async with federation_client(
        settings,
        keyring,
        transport=transport,
        timeout=httpx.Timeout(settings.pools_max_seconds + 30, connect=5),
    ) as client:
        try:
            response = await client.post(
                url, json=message.model_dump(mode="json", by_alias=True, exclude_none=True)
            )
        except httpx.HTTPError as exc:
            raise Problem(f"the provider could not be reached: {exc}", status=502) from exc
    if response.is_error and "signature" not in response.headers:
        # Refused before any handler ran (authentication, body limits): nothing signed.
        raise Problem(
            f"the provider refused the request ({response.status_code}): {response.text[:300]}",
            status=502,
        )
    await verify_response(response, resolver=resolver, signer_did=provider)
    try:
        body = response.json()
    except ValueError as exc:
        raise Problem("the provider's answer is not JSON", status=502) from exc
    if not isinstance(body, dict):
        raise Problem("the provider's answer is not a JSON object", status=502)
    return response.status_code, body
