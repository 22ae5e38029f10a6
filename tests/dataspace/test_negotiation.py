"""Contract negotiation between live in-process nodes (DSP 2025-1): the node drives it to
FINALIZED on both sides or terminates it with the policy's reason; the state machine refuses
forbidden moves without changing anything; every message validates against the DSP schemas."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.dataspace.contracts_support import (
    CONTEXT,
    STATISTICS_EU,
    RecordingRouter,
    c,
    check_messages,
    negotiate,
    negotiation,
    offer,
    publish_with,
    settle,
)
from tests.support.federation import PARTICIPANTS, Federation, FedNode, certify


@pytest.fixture
async def fed(tmp_path: Path, db_url: str) -> AsyncIterator[Federation]:
    federation = Federation(tmp_path, router=RecordingRouter())
    await federation.add("anchor", anchor=True)
    for name in ("fr-mininterieur", "de-berlin", "ch-zurich"):
        member = await federation.add(name, db_url=db_url if name == "de-berlin" else None)
        await certify(member, **PARTICIPANTS[name])
    yield federation
    await federation.close()


def nodes(fed: Federation) -> tuple[FedNode, FedNode, FedNode]:
    return fed.nodes[1], fed.nodes[2], fed.nodes[3]


def msg(kind: str, **fields: Any) -> dict[str, Any]:
    return {"@context": [CONTEXT], "@type": kind, **fields}


async def finalized(fed: Federation, dataset_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Paris negotiates Berlin's dataset to the end; (Paris's view, Berlin's view)."""
    paris, berlin, _ = nodes(fed)
    started = await negotiate(paris, berlin, dataset_id)
    await settle(fed)
    mine = await negotiation(paris, started["id"])
    theirs = await negotiation(berlin, mine["provider_pid"])
    return mine, theirs


async def test_negotiation_reaches_finalized_on_both_sides_with_one_agreement(
    fed: Federation,
) -> None:
    paris, berlin, _ = nodes(fed)
    dataset_id, offer_id = await publish_with(berlin, STATISTICS_EU, b"a;b\n1;2\n")
    mine, theirs = await finalized(fed, dataset_id)
    assert mine["state"] == theirs["state"] == "FINALIZED", (mine, theirs)
    assert mine["agreement_id"] == theirs["agreement_id"] is not None
    assert (mine["consumer_pid"], mine["provider_pid"]) == (
        theirs["consumer_pid"],
        theirs["provider_pid"],
    )
    assert theirs["offer_id"] == offer_id
    for member in (paris, berlin):
        async with member.http() as http:
            agreements = (
                await http.get("/api/v1/contracts/agreements", headers=await member.admin_headers())
            ).json()
        assert [a["id"] for a in agreements] == [mine["agreement_id"]]
        assert agreements[0]["dataset_id"] == dataset_id
        assert agreements[0]["consumer"] == paris.did
        assert agreements[0]["provider"] == berlin.did
    router = fed.router
    assert isinstance(router, RecordingRouter)
    kinds = [m["@type"] for m in router.messages]
    for kind in (
        "ContractRequestMessage",
        "ContractAgreementMessage",
        "ContractAgreementVerificationMessage",
        "ContractNegotiationEventMessage",
    ):
        assert kind in kinds
    assert check_messages(router.messages) == len(router.messages)


async def test_policy_denial_terminates_with_the_reason_on_both_sides(fed: Federation) -> None:
    _, berlin, zurich = nodes(fed)
    # Visible to everyone in the catalogue, but its offer permits use in the EU only.
    dataset_id, _ = await publish_with(berlin, STATISTICS_EU, b"x\n")
    started = await negotiate(zurich, berlin, dataset_id)
    await settle(fed)
    mine = await negotiation(zurich, started["id"])
    theirs = await negotiation(berlin, mine["provider_pid"])
    assert mine["state"] == theirs["state"] == "TERMINATED"
    assert "spatial" in " ".join(theirs["reason"]), theirs["reason"]
    assert mine["agreement_id"] is None


async def test_wrong_purpose_is_refused_at_agreement_time(fed: Federation) -> None:
    paris, berlin, _ = nodes(fed)
    dataset_id, _ = await publish_with(berlin, STATISTICS_EU, b"x\n")
    started = await negotiate(paris, berlin, dataset_id, purpose="marketing")
    await settle(fed)
    mine = await negotiation(paris, started["id"])
    assert mine["state"] == "TERMINATED"
    assert "purpose" in " ".join(mine["reason"])


async def test_a_forbidden_move_is_refused_with_both_pids_and_changes_nothing(
    fed: Federation,
) -> None:
    paris, berlin, _ = nodes(fed)
    dataset_id, _ = await publish_with(berlin, offer(), b"x\n")
    mine, _ = await finalized(fed, dataset_id)
    pids = {"providerPid": mine["provider_pid"], "consumerPid": mine["consumer_pid"]}
    async with paris.client() as client:
        # ACCEPTED answers an offer; this negotiation is long past that.
        wrong = await client.post(
            f"{berlin.url}/dsp/negotiations/{mine['provider_pid']}/events",
            json=msg("ContractNegotiationEventMessage", eventType="ACCEPTED", **pids),
        )
        assert wrong.status_code == 400
        error = wrong.json()
        assert error["@type"] == "ContractNegotiationError"
        assert (error["providerPid"], error["consumerPid"]) == (
            mine["provider_pid"],
            mine["consumer_pid"],
        )
        state = await client.get(f"{berlin.url}/dsp/negotiations/{mine['provider_pid']}")
        assert state.json()["state"] == "FINALIZED"
    check_messages([error, state.json()])


async def test_retried_initial_request_is_the_same_negotiation(fed: Federation) -> None:
    paris, berlin, _ = nodes(fed)
    dataset_id, offer_id = await publish_with(berlin, offer(), b"x\n")
    request = msg(
        "ContractRequestMessage",
        consumerPid="urn:uuid:retry",
        offer={"@id": offer_id, "@type": "Offer", "target": dataset_id,
               "permission": [{"action": "use"}]},
        callbackAddress=f"{paris.url}/dsp",
    )  # fmt: skip
    async with paris.client() as client:
        first = await client.post(f"{berlin.url}/dsp/negotiations/request", json=request)
        again = await client.post(f"{berlin.url}/dsp/negotiations/request", json=request)
    assert first.status_code == again.status_code == 201
    assert first.json()["providerPid"] == again.json()["providerPid"]


async def test_unknown_and_other_participants_negotiations_are_404(fed: Federation) -> None:
    paris, berlin, zurich = nodes(fed)
    dataset_id, _ = await publish_with(berlin, offer(), b"x\n")
    mine, _ = await finalized(fed, dataset_id)
    async with zurich.client() as client:
        foreign = await client.get(f"{berlin.url}/dsp/negotiations/{mine['provider_pid']}")
        unknown = await client.get(f"{berlin.url}/dsp/negotiations/urn:uuid:nothing")
    assert foreign.status_code == unknown.status_code == 404
    assert foreign.json()["@type"] == "ContractNegotiationError"
    async with paris.client() as client:
        own = await client.get(f"{berlin.url}/dsp/negotiations/{mine['provider_pid']}")
    assert own.status_code == 200
    assert own.json()["state"] == "FINALIZED"


async def test_final_states_are_final(fed: Federation) -> None:
    paris, berlin, _ = nodes(fed)
    dataset_id, _ = await publish_with(berlin, offer(), b"x\n")
    mine, _ = await finalized(fed, dataset_id)
    async with paris.client() as client:
        ended = await client.post(
            f"{berlin.url}/dsp/negotiations/{mine['provider_pid']}/termination",
            json=msg(
                "ContractNegotiationTerminationMessage",
                providerPid=mine["provider_pid"],
                consumerPid=mine["consumer_pid"],
                code="late",
                reason=["changed my mind"],
            ),
        )
    assert ended.status_code == 400
    assert (await negotiation(berlin, mine["provider_pid"]))["state"] == "FINALIZED"


async def test_changed_terms_and_foreign_callbacks_are_refused(fed: Federation) -> None:
    paris, berlin, _ = nodes(fed)
    dataset_id, offer_id = await publish_with(berlin, STATISTICS_EU, b"x\n")
    changed = {"@id": offer_id, "@type": "Offer", "target": dataset_id,
               "permission": [{"action": "use"}]}  # fmt: skip
    same = {"@id": offer_id, "@type": "Offer", "target": dataset_id,
            "permission": [{"action": "use", "constraint": [
                c("spatial", "isPartOf", "EU"), c("purpose", "eq", "statistics")]}]}  # fmt: skip
    async with paris.client() as client:
        loose = await client.post(
            f"{berlin.url}/dsp/negotiations/request",
            json=msg("ContractRequestMessage", consumerPid="urn:uuid:a", offer=changed,
                     callbackAddress=f"{paris.url}/dsp"),
        )  # fmt: skip
        elsewhere = await client.post(
            f"{berlin.url}/dsp/negotiations/request",
            json=msg("ContractRequestMessage", consumerPid="urn:uuid:b", offer=same,
                     callbackAddress="https://ch-zurich.test/dsp"),
        )  # fmt: skip
        reordered = await client.post(
            f"{berlin.url}/dsp/negotiations/request",
            json=msg("ContractRequestMessage", consumerPid="urn:uuid:c", offer=same,
                     callbackAddress=f"{paris.url}/dsp"),
        )  # fmt: skip
    assert loose.status_code == 400
    assert loose.json()["code"] == "changed-terms"
    assert elsewhere.status_code == 400
    assert elsewhere.json()["code"] == "bad-callback"
    # The same constraints in another order are the same terms (compared semantically).
    assert reordered.status_code == 201, reordered.text
