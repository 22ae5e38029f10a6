"""Two live nodes over TLS negotiate a contract and pull a 200 MiB file through the data plane:
an interrupted download resumes with ``Range`` and its sha-256 matches; a third, compliant
participant presenting the consumer's token is refused; once the agreement's ``count`` is used
up the provider terminates the next transfer with the reason (docs/contracts.md)."""

from __future__ import annotations

import base64
import hashlib
import json
import random
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from rhenus.core.keys import Keyring
from rhenus.core.node import Node
from rhenus.core.tls import client_ssl_context
from rhenus.dataspace.transfers import service
from rhenus.demo.nodes import Fleet, LiveNode, dev_tls, free_port
from rhenus.trust.client import federation_client
from rhenus.trust.did import did_for_url

MiB = 1024 * 1024
SIZE = 200 * MiB
CUT = 60 * MiB  # the first download stops here
USES = 3  # the offer permits three transfers
SEED = 20250101
PARTICIPANTS: dict[str, tuple[str, dict[str, str]]] = {
    "paris": (
        "fr-mininterieur",
        {
            "legal_name": "Ministère de l'Intérieur",
            "vat_id": "FR40303265045",
            "headquarters": "FR-75C",
            "legal_address": "FR-75C",
        },
    ),
    "berlin": (
        "de-berlin",
        {
            "legal_name": "Land Berlin",
            "vat_id": "DE136695976",
            "headquarters": "DE-BE",
            "legal_address": "DE-BE",
        },
    ),
    "zurich": (
        "ch-zurich",
        {
            "legal_name": "Kanton Zürich",
            "lei_code": "5299000J2N45DDNE4Y28",
            "headquarters": "CH-ZH",
            "legal_address": "CH-ZH",
        },
    ),
}
COUNTED_OFFER = {
    "permission": [
        {
            "action": "use",
            "constraint": [{"leftOperand": "count", "operator": "lteq", "rightOperand": USES}],
        }
    ]
}


def content() -> Iterator[bytes]:
    """The published file, 1 MiB at a time, the same bytes on every call."""
    rng = random.Random(SEED)
    for _ in range(SIZE // MiB):
        yield rng.randbytes(MiB)


@dataclass
class Dataspace:
    nodes: dict[str, LiveNode]
    http: httpx.Client
    dataset_id: str
    sha256: str
    agreement_id: str


def ok(response: httpx.Response) -> Any:
    assert not response.is_error, f"{response.request.url}: {response.status_code} {response.text}"
    return response.json()


def until(http: httpx.Client, node: LiveNode, path: str, states: set[str]) -> dict[str, Any]:
    """Poll one of ``node``'s processes until it reaches one of ``states``."""
    deadline = time.monotonic() + 30
    while True:
        body: dict[str, Any] = ok(http.get(f"{node.url}{path}", headers=node.headers()))
        if body["state"] in states or time.monotonic() > deadline:
            return body
        time.sleep(0.05)


def certify(http: httpx.Client, node: LiveNode, facts: dict[str, str], anchor: LiveNode) -> None:
    """Sign in as the first admin, sign the self-description, obtain compliance (the API)."""
    node.sign_in(http, f"{node.name}-test-password")
    api = f"{node.url}/api/v1/trust"
    ok(http.post(f"{api}/participant", headers=node.headers(), json=facts))
    body = {"anchor_url": anchor.url}
    ok(http.post(f"{api}/compliance-requests", headers=node.headers(), json=body))


def publish(http: httpx.Client, berlin: LiveNode) -> tuple[str, str]:
    """Berlin publishes the file, streamed up, under the counted offer; (dataset id, sha-256)."""
    metadata = {
        "title": {"de": "Zufallsdaten"},
        "theme": "TECH",
        "license": "CC-BY-4.0",
        "publisher": "Land Berlin",
    }
    dataset = ok(
        http.post(f"{berlin.url}/api/v1/datasets", headers=berlin.headers(), json=metadata)
    )
    base = f"{berlin.url}/api/v1/datasets/{dataset['id']}"
    digest = hashlib.sha256()

    def upload() -> Iterator[bytes]:  # the file is never whole in memory
        for chunk in content():
            digest.update(chunk)
            yield chunk

    headers = {**berlin.headers(), "content-type": "application/octet-stream"}
    stored = ok(http.put(f"{base}/content", content=upload(), headers=headers))
    assert (stored["sha256"], stored["byte_size"]) == (digest.hexdigest(), SIZE)
    ok(http.post(f"{base}/offers", headers=berlin.headers(), json={"policy": COUNTED_OFFER}))
    ok(http.post(f"{base}/publish", headers=berlin.headers()))
    return dataset["id"], digest.hexdigest()


def agree(http: httpx.Client, paris: LiveNode, berlin: LiveNode, dataset_id: str) -> str:
    """Paris negotiates for the dataset until both sides are FINALIZED; the agreement id."""
    request = {"provider_url": berlin.url, "dataset_id": dataset_id, "purpose": "test"}
    started = ok(
        http.post(
            f"{paris.url}/api/v1/contracts/negotiations", headers=paris.headers(), json=request
        )
    )
    final = {"FINALIZED", "TERMINATED"}
    mine = until(http, paris, f"/api/v1/contracts/negotiations/{started['id']}", final)
    assert mine["state"] == "FINALIZED", mine["reason"]
    theirs = until(http, berlin, f"/api/v1/contracts/negotiations/{mine['provider_pid']}", final)
    assert theirs["state"] == "FINALIZED", theirs["reason"]
    assert theirs["agreement_id"] == mine["agreement_id"]
    return str(mine["agreement_id"])


@pytest.fixture(scope="module")
def dataspace() -> Iterator[Dataspace]:
    """An anchor; Paris, Berlin and Zürich certified by it; Berlin's 200 MiB file offered for
    three uses; Paris's agreement for it, FINALIZED on both sides."""
    with ExitStack() as stack:
        root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="rhenus-transfer-")))
        ca_file, tls = dev_tls(root / "ca", ["anchor", *PARTICIPANTS])
        port = free_port()
        trusted = {"RHENUS_TRUSTED_ANCHORS": json.dumps([did_for_url(f"https://127.0.0.1:{port}")])}
        fleet = stack.enter_context(Fleet())
        http = stack.enter_context(httpx.Client(timeout=60, verify=client_ssl_context(ca_file)))
        anchor_env = {**trusted, **tls["anchor"], "RHENUS_TRUST_ANCHOR": "true"}
        anchor = fleet.start("anchor", "Anchor", root / "anchor", port=port, extra_env=anchor_env)
        nodes = {"anchor": anchor}
        for key, (name, facts) in PARTICIPANTS.items():
            env = {**trusted, **tls[key], "RHENUS_MAX_UPLOAD_BYTES": str(SIZE + MiB)}
            nodes[key] = fleet.start(name, facts["legal_name"], root / key, extra_env=env)
            certify(http, nodes[key], facts, anchor)
        dataset_id, sha256 = publish(http, nodes["berlin"])
        agreement_id = agree(http, nodes["paris"], nodes["berlin"], dataset_id)
        yield Dataspace(nodes, http, dataset_id, sha256, agreement_id)


def start_transfer(space: Dataspace) -> dict[str, Any]:
    """Paris asks Berlin for a pull transfer under the agreement; the process once the provider
    started it, or terminated it."""
    paris = space.nodes["paris"]
    tp = ok(
        space.http.post(
            f"{paris.url}/api/v1/transfers",
            headers=paris.headers(),
            json={"agreement_id": space.agreement_id},
        )
    )
    return until(space.http, paris, f"/api/v1/transfers/{tp['id']}", {"STARTED", "TERMINATED"})


async def data_address(node: LiveNode, transfer_id: str) -> tuple[str, str]:
    """The endpoint and token Berlin's TransferStartMessage gave Paris, from Paris's database."""
    opened = Node.open(node.settings())
    try:
        async with opened.db.session() as session:
            tp = await service.get_transfer(session, pid=transfer_id, caller=None)
            address = dict(tp.data_address or {})
    finally:
        await opened.close()
    props = {p["name"]: p["value"] for p in address["endpointProperties"]}
    return address["endpoint"], props["authorization"]


def signed_as(node: LiveNode) -> httpx.AsyncClient:
    """A client whose requests carry ``node``'s RFC 9421 signature (its own keys)."""
    settings = node.settings()
    return federation_client(settings, Keyring.load(settings.keys_dir), timeout=60)


async def test_an_interrupted_pull_resumes_with_range_and_the_digest_matches(
    dataspace: Dataspace,
) -> None:
    paris = dataspace.nodes["paris"]
    tp = start_transfer(dataspace)
    assert tp["state"] == "STARTED", tp["reason"]
    endpoint, token = await data_address(paris, tp["id"])
    assert endpoint.startswith(dataspace.nodes["berlin"].url + "/dataplane/")
    digest, received = hashlib.sha256(), 0
    async with signed_as(paris) as client:
        bearer = {"Authorization": f"Bearer {token}"}
        async with client.stream("GET", endpoint, headers=bearer) as response:
            assert response.status_code == 200
            assert response.headers["content-length"] == str(SIZE)
            assert response.headers["accept-ranges"] == "bytes"
            announced = response.headers["repr-digest"]
            async for chunk in response.aiter_bytes(MiB):
                digest.update(chunk)
                received += len(chunk)
                if received >= CUT:
                    break  # the connection drops: the rest of the body is never read
        assert CUT <= received < SIZE

        resume = {**bearer, "Range": f"bytes={received}-"}
        async with client.stream("GET", endpoint, headers=resume) as response:
            assert response.status_code == 206
            assert response.headers["content-range"] == f"bytes {received}-{SIZE - 1}/{SIZE}"
            assert response.headers["content-length"] == str(SIZE - received)
            assert response.headers["repr-digest"] == announced
            async for chunk in response.aiter_bytes(MiB):
                digest.update(chunk)
                received += len(chunk)
    assert received == SIZE
    assert digest.hexdigest() == dataspace.sha256
    assert announced == f"sha-256=:{base64.b64encode(digest.digest()).decode()}:"


async def test_a_token_presented_by_another_participant_is_refused(dataspace: Dataspace) -> None:
    """Zürich is a compliant participant, but the token was issued to Paris: 403, and the
    token still opens the data for Paris."""
    paris, zurich = dataspace.nodes["paris"], dataspace.nodes["zurich"]
    tp = start_transfer(dataspace)
    assert tp["state"] == "STARTED", tp["reason"]
    endpoint, token = await data_address(paris, tp["id"])
    headers = {"Authorization": f"Bearer {token}", "Range": "bytes=0-1023"}
    async with signed_as(zurich) as client:
        refused = await client.get(endpoint, headers=headers)
    assert refused.status_code == 403
    assert "issued to another participant" in refused.json()["detail"]
    async with signed_as(paris) as client:
        admitted = await client.get(endpoint, headers=headers)
    assert admitted.status_code == 206
    assert admitted.content == next(content())[:1024]


def test_once_the_count_is_used_up_the_next_transfer_is_terminated_with_the_reason(
    dataspace: Dataspace,
) -> None:
    paris, berlin, http = dataspace.nodes["paris"], dataspace.nodes["berlin"], dataspace.http
    last = start_transfer(dataspace)
    for _ in range(USES):  # the other tests may have used some of the count already
        if last["state"] == "TERMINATED":
            break
        last = start_transfer(dataspace)
    assert last["state"] == "TERMINATED"
    assert any(f"count lteq {USES}" in reason for reason in last["reason"]), last["reason"]
    under_agreement = [
        t
        for t in ok(http.get(f"{paris.url}/api/v1/transfers", headers=paris.headers()))
        if t["agreement_id"] == dataspace.agreement_id
    ]
    assert sum(t["state"] != "TERMINATED" for t in under_agreement) == USES

    provider_side = ok(
        http.get(f"{berlin.url}/api/v1/transfers/{last['provider_pid']}", headers=berlin.headers())
    )
    assert provider_side["state"] == "TERMINATED"
    assert provider_side["reason"] == last["reason"]
    pull = http.post(f"{paris.url}/api/v1/transfers/{last['id']}/pull", headers=paris.headers())
    assert pull.status_code == 409
    assert f"count lteq {USES}" in pull.json()["detail"]
