"""What the negotiation and transfer tests share: publishing under a policy, running every
node's background jobs until the federation is quiet, and checking each DSP message on the wire
against the published DSP 2025-1 JSON schemas."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx

from tests.dataspace.dsp_schemas import validate
from tests.support.federation import Federation, FedNode, HostRouter

CONTEXT = "https://w3id.org/dspace/2025/1/context.jsonld"

# @type -> schema of the published DSP 2025-1 artefacts.
SCHEMAS = {
    "ContractRequestMessage": "negotiation/contract-request-message-schema.json",
    "ContractOfferMessage": "negotiation/contract-offer-message-schema.json",
    "ContractAgreementMessage": "negotiation/contract-agreement-message-schema.json",
    "ContractAgreementVerificationMessage": (
        "negotiation/contract-agreement-verification-message-schema.json"
    ),
    "ContractNegotiationEventMessage": "negotiation/contract-negotiation-event-message-schema.json",
    "ContractNegotiationTerminationMessage": (
        "negotiation/contract-negotiation-termination-message-schema.json"
    ),
    "ContractNegotiation": "negotiation/contract-negotiation-schema.json",
    "ContractNegotiationError": "negotiation/contract-negotiation-error-schema.json",
    "TransferRequestMessage": "transfer/transfer-request-message-schema.json",
    "TransferStartMessage": "transfer/transfer-start-message-schema.json",
    "TransferCompletionMessage": "transfer/transfer-completion-message-schema.json",
    "TransferSuspensionMessage": "transfer/transfer-suspension-message-schema.json",
    "TransferTerminationMessage": "transfer/transfer-termination-message-schema.json",
    "TransferProcess": "transfer/transfer-process-schema.json",
    "TransferError": "transfer/transfer-error-schema.json",
}


def offer(*constraints: dict[str, Any], action: str = "use") -> dict[str, Any]:
    rule: dict[str, Any] = {"action": action}
    if constraints:
        rule["constraint"] = list(constraints)
    return {"@type": "Offer", "permission": [rule]}


def c(left: str, op: str, right: Any) -> dict[str, Any]:
    return {"leftOperand": left, "operator": op, "rightOperand": right}


STATISTICS_EU = offer(c("purpose", "eq", "statistics"), c("spatial", "isPartOf", "EU"))


class RecordingRouter(HostRouter):
    """A HostRouter that keeps every DSP message (request and answer) it carries."""

    def __init__(self) -> None:
        super().__init__()
        self.messages: list[dict[str, Any]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await super().handle_async_request(request)
        if request.url.path.startswith(("/dsp/negotiations", "/dsp/transfers")):
            if request.content:
                self.messages.append(json.loads(request.content))
            body = await response.aread()
            if body:
                self.messages.append(json.loads(body))
        return response


def check_messages(messages: list[dict[str, Any]]) -> int:
    """Validate each recorded message against its schema; how many were checked."""
    checked = 0
    for body in messages:
        kind = body.get("@type")
        assert kind in SCHEMAS, f"unexpected DSP message {kind}"
        validate(body, SCHEMAS[kind])
        checked += 1
    return checked


async def settle(fed: Federation, rounds: int = 100) -> None:
    """Run every node's due jobs until the federation is quiet: two rounds in a row in which
    no node ran anything, a moment apart (a job started at commit by one node's answer may
    still be getting under way while another node's round reports nothing)."""
    quiet = 0
    for _ in range(rounds):
        ran = 0
        for member in fed.nodes:
            ran += await member.app.state.jobs.run_due()
        quiet = quiet + 1 if not ran else 0
        if quiet == 2:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the federation did not settle")


async def publish_with(member: FedNode, policy: dict[str, Any], content: bytes) -> tuple[str, str]:
    """Publish a CSV dataset with one offer; (dataset id, offer id)."""
    headers = await member.admin_headers()
    async with member.http() as http:
        created = await http.post(
            "/api/v1/datasets",
            headers=headers,
            json={
                "title": {"de": "Bevölkerung", "en": "Population"},
                "theme": "SOCI",
                "publisher": "Land Berlin",
                "license": "https://www.govdata.de/dl-de/by-2-0",
            },
        )
        assert created.status_code == 201, created.text
        dataset_id = created.json()["id"]
        put = await http.put(
            f"/api/v1/datasets/{dataset_id}/content",
            content=content,
            headers={**headers, "content-type": "text/csv"},
        )
        assert put.status_code == 200, put.text
        added = await http.post(
            f"/api/v1/datasets/{dataset_id}/offers", headers=headers, json={"policy": policy}
        )
        assert added.status_code == 201, added.text
        published = await http.post(f"/api/v1/datasets/{dataset_id}/publish", headers=headers)
        assert published.status_code == 200, published.text
    return str(dataset_id), str(added.json()["id"])


async def negotiate(
    consumer: FedNode, provider: FedNode, dataset_id: str, purpose: str = "statistics"
) -> dict[str, Any]:
    """Start a negotiation through the consumer's API; its first view of it."""
    async with consumer.http() as http:
        started = await http.post(
            "/api/v1/contracts/negotiations",
            headers=await consumer.admin_headers(),
            json={"provider_url": provider.url, "dataset_id": dataset_id, "purpose": purpose},
        )
    assert started.status_code == 201, started.text
    body: dict[str, Any] = started.json()
    return body


async def negotiation(member: FedNode, pid: str) -> dict[str, Any]:
    async with member.http() as http:
        found = await http.get(
            f"/api/v1/contracts/negotiations/{pid}", headers=await member.admin_headers()
        )
    assert found.status_code == 200, found.text
    body: dict[str, Any] = found.json()
    return body
