"""The TCK's sample fixtures, seeded at start-up in conformance mode (``sample.tck.properties``):
catalog datasets CAT0101 and CAT0102 (and no CAT0103), negotiation datasets ACN0101 … ACN0304
with offers ``CD123:<id>:456``, and agreements ATP0101 … ATP0306 (this node provides) and
ATPC0101 … ATPC0306 (this node consumes) with the conformance participant."""

from __future__ import annotations

from rhenus.core.node import Node
from rhenus.dataspace.catalogue import service as catalogue
from rhenus.dataspace.catalogue.dsp import BASE_PATH
from rhenus.dataspace.catalogue.schemas import DatasetIn
from rhenus.dataspace.conformance import scripts
from rhenus.dataspace.contracts import agreements
from rhenus.dataspace.machine import Role
from rhenus.trust.did import did_for_url

USE = {"@type": "Offer", "permission": [{"action": "use"}]}
ACTOR = "conformance-fixtures"


async def seed(node: Node) -> int:
    """Create the fixtures that are missing; how many were created."""
    settings = node.settings
    url, tck = settings.public_url, settings.dsp_conformance_participant
    created = 0
    async with node.db.transaction() as session:
        for dataset_id in (*scripts.CATALOG_DATASETS, *scripts.PROVIDER_NEGOTIATIONS):
            if await catalogue.find_dataset(session, dataset_id=dataset_id) is not None:
                continue
            data = DatasetIn(
                kind="service",
                title={"en": f"DSP TCK fixture {dataset_id}"},
                theme="TECH",
                license="https://creativecommons.org/publicdomain/zero/1.0/",
                publisher=settings.organisation,
                endpoint_url=f"{url}{BASE_PATH}",
            )
            await catalogue.create_dataset(
                session, audit=node.audit, actor=ACTOR, data=data, dataset_id=dataset_id
            )
            await catalogue.add_offer(
                session, audit=node.audit, actor=ACTOR, public_url=url, dataset_id=dataset_id,
                policy=USE, offer_id=scripts.offer_id(dataset_id),
            )  # fmt: skip
            await catalogue.publish(
                session, audit=node.audit, actor=ACTOR, public_url=url, dataset_id=dataset_id
            )
            created += 1
        for agreement_id in scripts.PROVIDER_AGREEMENTS:
            created += await agreements.seed_agreement(
                session, agreement_id=agreement_id, role=Role.PROVIDER, dataset_id="CAT0101",
                provider=did_for_url(url), consumer=tck, provider_address=url + BASE_PATH,
            )  # fmt: skip
        for agreement_id in scripts.CONSUMER_AGREEMENTS:
            created += await agreements.seed_agreement(
                session, agreement_id=agreement_id, role=Role.CONSUMER, dataset_id=agreement_id,
                provider=tck, consumer=did_for_url(url), provider_address="",
            )  # fmt: skip
    return created
