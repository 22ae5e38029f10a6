"""A consumer reuses a dataset it read from a provider's catalog moments ago for its next
negotiations (one signed exchange fewer each), and reads it afresh when the provider refuses a
cached offer: a withdrawn offer costs one refused attempt, not a failed negotiation."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import delete

from rhenus.dataspace.catalogue.models import Offer
from tests.dataspace.contracts_support import (
    STATISTICS_EU,
    negotiate,
    negotiation,
    publish_with,
    settle,
)
from tests.support.federation import PARTICIPANTS, Federation, FedNode, HostRouter, certify


class CatalogCounter(HostRouter):
    """Counts the catalog requests it carries."""

    def __init__(self) -> None:
        super().__init__()
        self.catalog_requests = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.startswith("/dsp/catalog"):
            self.catalog_requests += 1
        return await super().handle_async_request(request)


@pytest.fixture
async def fed(tmp_path: Path, db_url: str) -> AsyncIterator[Federation]:
    federation = Federation(tmp_path, router=CatalogCounter())
    await federation.add("anchor", anchor=True)
    for name in ("fr-mininterieur", "de-berlin"):
        member = await federation.add(name, db_url=db_url if name == "de-berlin" else None)
        await certify(member, **PARTICIPANTS[name])
    yield federation
    await federation.close()


def counter(fed: Federation) -> CatalogCounter:
    assert isinstance(fed.router, CatalogCounter)
    return fed.router


async def finalized(
    fed: Federation, paris: FedNode, berlin: FedNode, dataset_id: str
) -> dict[str, Any]:
    started = await negotiate(paris, berlin, dataset_id)
    await settle(fed)
    mine = await negotiation(paris, started["id"])
    assert mine["state"] == "FINALIZED", mine
    return mine


async def test_the_second_negotiation_reuses_the_catalog_read(fed: Federation) -> None:
    paris, berlin = fed.nodes[1], fed.nodes[2]
    dataset_id, offer_id = await publish_with(berlin, STATISTICS_EU, b"a\n1\n")
    await finalized(fed, paris, berlin, dataset_id)
    read = counter(fed).catalog_requests
    assert read >= 1
    second = await finalized(fed, paris, berlin, dataset_id)
    assert counter(fed).catalog_requests == read  # no catalog request this time
    assert second["offer_id"] == offer_id


async def test_a_withdrawn_cached_offer_is_read_afresh_and_the_new_one_agreed(
    fed: Federation,
) -> None:
    paris, berlin = fed.nodes[1], fed.nodes[2]
    dataset_id, old_offer = await publish_with(berlin, STATISTICS_EU, b"a\n1\n")
    await finalized(fed, paris, berlin, dataset_id)
    read = counter(fed).catalog_requests
    # Berlin withdraws the offer and makes a new one
    async with berlin.node.db.transaction() as session:
        await session.execute(delete(Offer).where(Offer.id == old_offer))
    async with berlin.http() as http:
        added = await http.post(
            f"/api/v1/datasets/{dataset_id}/offers",
            headers=await berlin.admin_headers(),
            json={"policy": STATISTICS_EU},
        )
    assert added.status_code == 201, added.text
    mine = await finalized(fed, paris, berlin, dataset_id)
    assert mine["offer_id"] == added.json()["id"]
    assert counter(fed).catalog_requests > read
    # the attempt with the withdrawn offer is on record, terminated with Berlin's reason
    async with paris.http() as http:
        listed = (
            await http.get("/api/v1/contracts/negotiations", headers=await paris.admin_headers())
        ).json()
    refused = [n for n in listed if n["offer_id"] == old_offer and n["state"] == "TERMINATED"]
    assert len(refused) == 1, listed
    assert refused[0]["reason"], refused
