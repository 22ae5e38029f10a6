"""Transfer processes and the data plane between live in-process nodes: a pull under an
agreement, resumable with Range, checked by sha-256; tokens bound to their participant; the
agreement's count enforced at each new transfer; every message schema-valid."""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from rhenus.core.audit import list_entries
from rhenus.dataspace.transfers import receipts, service
from rhenus.dataspace.transfers.pull import pull_to_file
from tests.dataspace.contracts_support import (
    CONTEXT,
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


async def agreed(fed: Federation, policy: dict[str, Any], content: bytes) -> str:
    """Berlin publishes ``content`` under ``policy``; Paris negotiates; the agreement id."""
    paris, berlin = fed.nodes[1], fed.nodes[2]
    dataset_id, _ = await publish_with(berlin, policy, content)
    started = await negotiate(paris, berlin, dataset_id)
    await settle(fed)
    done = await negotiation(paris, started["id"])
    assert done["state"] == "FINALIZED", done
    return str(done["agreement_id"])


async def request_transfer(fed: Federation, member: FedNode, agreement_id: str) -> dict[str, Any]:
    async with member.http() as http:
        started = await http.post(
            "/api/v1/transfers",
            headers=await member.admin_headers(),
            json={"agreement_id": agreement_id},
        )
    assert started.status_code == 201, started.text
    await settle(fed)
    async with member.http() as http:
        shown = await http.get(
            f"/api/v1/transfers/{started.json()['id']}", headers=await member.admin_headers()
        )
    body: dict[str, Any] = shown.json()
    return body


async def test_pull_under_an_agreement_delivers_the_exact_bytes(
    fed: Federation, tmp_path: Path
) -> None:
    paris, berlin = fed.nodes[1], fed.nodes[2]
    content = os.urandom(300_000)
    agreement_id = await agreed(fed, offer(c("purpose", "eq", "statistics")), content)
    tp = await request_transfer(fed, paris, agreement_id)
    assert tp["state"] == "STARTED", tp
    pulled = await pull_to_file(paris.node, tp["id"], tmp_path / "out.csv", transport=fed.router)
    assert pulled.sha256 == hashlib.sha256(content).hexdigest()
    assert (tmp_path / "out.csv").read_bytes() == content
    completed = await paris.app.state.transfers_driver.complete(
        transfer_id=tp["id"], sha256=pulled.sha256, size=pulled.size
    )
    assert completed.state == "COMPLETED"
    await settle(fed)
    # The provider's signed receipt, countersigned by the consumer, is in both audit logs.
    for member in (paris, berlin):
        async with member.node.db.session() as session:
            checks = await receipts.check_all(session, resolver=member.resolver())
            entries = await list_entries(session, limit=1000)
        assert [(c.ok, c.reason) for c in checks] == [(True, "")]
        assert (checks[0].provider, checks[0].consumer) == (berlin.did, paris.did)
        countersigned = [e for e in entries if e.action == "transfer.receipt.countersigned"]
        assert len(countersigned) == 1
        assert countersigned[0].details["receipt"] == checks[0].receipt
        assert countersigned[0].details["countersignature"] == checks[0].countersignature
    async with berlin.http() as http:
        theirs = (
            await http.get(
                f"/api/v1/transfers/{tp['provider_pid']}", headers=await berlin.admin_headers()
            )
        ).json()
    assert theirs["state"] == "COMPLETED"
    assert theirs["bytes_served"] == len(content)
    router = fed.router
    assert isinstance(router, RecordingRouter)
    kinds = {m["@type"] for m in router.messages}
    assert {"TransferRequestMessage", "TransferStartMessage", "TransferCompletionMessage"} <= kinds
    check_messages(router.messages)


async def test_a_partial_download_resumes_with_range(fed: Federation, tmp_path: Path) -> None:
    paris = fed.nodes[1]
    content = os.urandom(200_000)
    agreement_id = await agreed(fed, offer(), content)
    tp = await request_transfer(fed, paris, agreement_id)
    # An interrupted earlier download left the first 70,001 bytes behind.
    (tmp_path / "data.bin.part").write_bytes(content[:70_001])
    pulled = await pull_to_file(paris.node, tp["id"], tmp_path / "data.bin", transport=fed.router)
    assert pulled.sha256 == hashlib.sha256(content).hexdigest()
    assert (tmp_path / "data.bin").read_bytes() == content


async def test_another_participant_with_the_token_is_refused(fed: Federation) -> None:
    paris, zurich = fed.nodes[1], fed.nodes[3]
    agreement_id = await agreed(fed, offer(), b"secret;data\n")
    tp = await request_transfer(fed, paris, agreement_id)
    async with paris.node.db.session() as session:
        mine = await service.get_transfer(session, pid=tp["id"], caller=None)
    address = mine.data_address or {}
    token = next(p["value"] for p in address["endpointProperties"] if p["name"] == "authorization")
    async with zurich.client() as client:
        stolen = await client.get(address["endpoint"], headers={"Authorization": f"Bearer {token}"})
    assert stolen.status_code == 403
    assert "another participant" in stolen.json()["detail"]
    async with paris.client() as client:
        wrong = await client.get(address["endpoint"], headers={"Authorization": "Bearer nope"})
        ranged = await client.get(
            address["endpoint"], headers={"Authorization": f"Bearer {token}", "Range": "bytes=7-"}
        )
    assert wrong.status_code == 401
    assert ranged.status_code == 206
    assert ranged.content == b"data\n"
    assert ranged.headers["content-range"] == "bytes 7-11/12"


async def test_count_limit_refuses_the_next_transfer_with_the_reason(fed: Federation) -> None:
    paris = fed.nodes[1]
    agreement_id = await agreed(fed, offer(c("count", "lteq", 2)), b"x\n")
    first = await request_transfer(fed, paris, agreement_id)
    second = await request_transfer(fed, paris, agreement_id)
    third = await request_transfer(fed, paris, agreement_id)
    assert [first["state"], second["state"], third["state"]] == ["STARTED", "STARTED", "TERMINATED"]
    assert "count" in " ".join(third["reason"]), third["reason"]


async def test_transfer_request_errors_are_transfer_errors(fed: Federation) -> None:
    paris, berlin, zurich = fed.nodes[1], fed.nodes[2], fed.nodes[3]
    agreement_id = await agreed(fed, offer(), b"x\n")
    body = {
        "@context": [CONTEXT],
        "@type": "TransferRequestMessage",
        "consumerPid": "urn:uuid:z",
        "agreementId": agreement_id,
        "format": "HttpData-PULL",
        "callbackAddress": f"{zurich.url}/dsp",
    }
    async with zurich.client() as client:
        foreign = await client.post(f"{berlin.url}/dsp/transfers/request", json=body)
    async with paris.client() as client:
        bad_format = await client.post(
            f"{berlin.url}/dsp/transfers/request",
            json={**body, "format": "FTP-PUSH", "callbackAddress": f"{paris.url}/dsp"},
        )
        unknown = await client.get(f"{berlin.url}/dsp/transfers/urn:uuid:none")
    assert foreign.status_code == 400
    assert foreign.json()["code"] == "unknown-agreement"
    assert bad_format.status_code == 400
    assert bad_format.json()["code"] == "unsupported-format"
    assert unknown.status_code == 404
    check_messages([foreign.json(), bad_format.json(), unknown.json()])
