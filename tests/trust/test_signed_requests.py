"""Signed node-to-node requests (RFC 9421): accepted when right, refused with a reason otherwise.

The sender is a second real node (its own keys, database and app); the receiver resolves the
sender's did:web document from that app.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio.to_thread
import httpx
import pytest

from rhenus.app import create_app
from rhenus.config import Settings
from rhenus.core.keys import Keyring
from rhenus.core.node import Node
from rhenus.ops.setup import initialise
from rhenus.trust.did import DidResolver, did_for_url
from rhenus.trust.httpsig import sign_request

SENDER_URL = "https://fr-mininterieur.test"
PING = "/api/v1/federation/ping"


@dataclass
class Federation:
    sender: Node
    sender_did: str
    receiver: httpx.AsyncClient
    receiver_url: str

    def request(self, body: bytes = b'{"message": "bonjour"}', path: str = PING) -> httpx.Request:
        return httpx.Request(
            "POST",
            self.receiver_url + path,
            content=body,
            headers={"content-type": "application/json"},
        )

    def signed(self, **kwargs: object) -> httpx.Request:
        request = self.request()
        sign_request(request, keyring=self.sender.keyring, did=self.sender_did, **kwargs)  # type: ignore[arg-type]
        return request

    async def send(self, request: httpx.Request) -> httpx.Response:
        return await self.receiver.send(request)


@pytest.fixture
async def federation(tmp_path: Path, settings: Settings, node: Node) -> AsyncIterator[Federation]:
    sender_settings = Settings(
        home=tmp_path / "sender",
        public_url=SENDER_URL,
        node_name="fr-mininterieur",
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'sender.db'}",
    )
    await anyio.to_thread.run_sync(initialise, sender_settings)  # runs its own event loop
    sender = Node.open(sender_settings)
    sender_app = create_app(sender_settings, node=sender)
    receiver_app = create_app(settings, node=node)
    # The receiver fetches did.json documents from the sender's app.
    receiver_app.state.did_resolver = DidResolver(
        client=httpx.AsyncClient(transport=httpx.ASGITransport(app=sender_app))
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=receiver_app), base_url=settings.public_url
    ) as receiver:
        yield Federation(sender, did_for_url(SENDER_URL), receiver, settings.public_url)
    await sender.close()


def _problem(response: httpx.Response, status: int, words: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert words in response.json()["detail"]


async def test_signed_request_is_accepted_and_names_its_sender(federation: Federation) -> None:
    response = await federation.send(federation.signed())
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["sender"] == "did:web:fr-mininterieur.test"
    assert body["key_id"] == f"{federation.sender_did}#{federation.sender.keyring.current_signing}"
    assert body["echo"] == "bonjour"


async def test_unsigned_request_is_refused(federation: Federation) -> None:
    _problem(await federation.send(federation.request()), 401, "not signed")


async def test_bad_signature_is_refused(federation: Federation) -> None:
    request = federation.signed()
    label, _, value = request.headers["signature"].partition("=:")
    raw = bytearray(base64.b64decode(value.rstrip(":")))
    raw[0] ^= 0xFF
    request.headers["signature"] = f"{label}=:{base64.b64encode(bytes(raw)).decode()}:"
    _problem(await federation.send(request), 401, "signature rejected")


async def test_body_altered_after_signing_is_refused(federation: Federation) -> None:
    signed = federation.signed()
    altered = httpx.Request(
        "POST", signed.url, content=b'{"message": "au revoir"}', headers=signed.headers
    )
    _problem(await federation.send(altered), 401, "signature rejected")


async def test_replayed_nonce_is_refused(federation: Federation) -> None:
    request = federation.signed()
    assert (await federation.send(request)).status_code == 200
    _problem(await federation.send(request), 401, "replayed")


async def test_six_minute_old_signature_is_refused(federation: Federation) -> None:
    old = datetime.now(UTC) - timedelta(minutes=6)
    _problem(await federation.send(federation.signed(created=old)), 401, "age")


async def test_future_dated_signature_is_refused(federation: Federation) -> None:
    future = datetime.now(UTC) + timedelta(minutes=2)
    _problem(await federation.send(federation.signed(created=future)), 401, "future")


async def test_key_not_in_senders_did_document_is_refused(
    federation: Federation, tmp_path: Path
) -> None:
    impostor = Keyring.create(tmp_path / "impostor")
    request = federation.request()
    sign_request(request, keyring=impostor, did=federation.sender_did)
    _problem(await federation.send(request), 401, "is not in the DID document")


async def test_request_signed_for_another_node_is_refused(federation: Federation) -> None:
    request = httpx.Request(
        "POST",
        "https://de-bayern.test" + PING,
        content=b"{}",
        headers={"content-type": "application/json"},
    )
    sign_request(request, keyring=federation.sender.keyring, did=federation.sender_did)
    forwarded = httpx.Request(
        "POST", federation.receiver_url + PING, content=b"{}", headers=request.headers
    )
    _problem(await federation.send(forwarded), 401, "signature rejected")


async def test_unresolvable_sender_is_refused(federation: Federation) -> None:
    request = federation.request()
    sign_request(request, keyring=federation.sender.keyring, did="did:web:unknown.invalid")
    _problem(await federation.send(request), 401, "cannot resolve")


async def test_ping_is_in_the_receivers_audit_log(federation: Federation, node: Node) -> None:
    nonce = secrets.token_urlsafe(18)
    assert (await federation.send(federation.signed(nonce=nonce))).status_code == 200
    from rhenus.core.audit import list_entries

    async with node.db.session() as session:
        entries = await list_entries(session)
    assert any(
        e.action == "trust.ping.received" and e.actor == federation.sender_did for e in entries
    )
