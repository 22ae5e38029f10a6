"""Signed node-to-node requests (RFC 9421): accepted when right, refused with a reason otherwise.

Three real nodes in one process (own keys, databases, apps): a trust anchor, a compliant
sender and the receiver, which resolves the sender's did:web document and compliance from it.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from rhenus.core.keys import Keyring
from rhenus.core.node import Node
from rhenus.trust.httpsig import sign_request
from tests.support.federation import PARTICIPANTS, Federation, certify

PING = "/api/v1/federation/ping"


@dataclass
class Pair:
    """A compliant sender (fr-mininterieur) and a receiver (de-berlin, on each engine)."""

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
async def federation(tmp_path: Path, db_url: str) -> AsyncIterator[Pair]:
    fed = Federation(tmp_path)
    await fed.add("anchor", anchor=True)
    paris = await fed.add("fr-mininterieur")
    berlin = await fed.add("de-berlin", db_url=db_url)
    await certify(paris, **PARTICIPANTS["fr-mininterieur"])
    async with berlin.http() as receiver:
        yield Pair(paris.node, paris.did, receiver, berlin.url)
    await fed.close()


def _problem(response: httpx.Response, status: int, words: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert words in response.json()["detail"]


async def test_signed_request_is_accepted_and_names_its_sender(federation: Pair) -> None:
    response = await federation.send(federation.signed())
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["sender"] == "did:web:fr-mininterieur.test"
    assert body["receiver"] == "did:web:de-berlin.test"
    assert body["key_id"] == f"{federation.sender_did}#{federation.sender.keyring.current_signing}"
    assert body["echo"] == "bonjour"


async def test_unsigned_request_is_refused(federation: Pair) -> None:
    _problem(await federation.send(federation.request()), 401, "not signed")


async def test_bad_signature_is_refused(federation: Pair) -> None:
    request = federation.signed()
    label, _, value = request.headers["signature"].partition("=:")
    raw = bytearray(base64.b64decode(value.rstrip(":")))
    raw[0] ^= 0xFF
    request.headers["signature"] = f"{label}=:{base64.b64encode(bytes(raw)).decode()}:"
    _problem(await federation.send(request), 401, "signature rejected")


async def test_body_altered_after_signing_is_refused(federation: Pair) -> None:
    signed = federation.signed()
    altered = httpx.Request(
        "POST", signed.url, content=b'{"message": "au revoir"}', headers=signed.headers
    )
    _problem(await federation.send(altered), 401, "signature rejected")


async def test_replayed_nonce_is_refused(federation: Pair) -> None:
    request = federation.signed()
    assert (await federation.send(request)).status_code == 200
    _problem(await federation.send(request), 401, "replayed")


async def test_six_minute_old_signature_is_refused(federation: Pair) -> None:
    old = datetime.now(UTC) - timedelta(minutes=6)
    _problem(await federation.send(federation.signed(created=old)), 401, "age")


async def test_future_dated_signature_is_refused(federation: Pair) -> None:
    future = datetime.now(UTC) + timedelta(minutes=2)
    _problem(await federation.send(federation.signed(created=future)), 401, "future")


async def test_key_not_in_senders_did_document_is_refused(federation: Pair, tmp_path: Path) -> None:
    impostor = Keyring.create(tmp_path / "impostor")
    request = federation.request()
    sign_request(request, keyring=impostor, did=federation.sender_did)
    _problem(await federation.send(request), 401, "is not in the DID document")


async def test_request_signed_for_another_node_is_refused(federation: Pair) -> None:
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


async def test_unresolvable_sender_is_refused(federation: Pair) -> None:
    request = federation.request()
    sign_request(request, keyring=federation.sender.keyring, did="did:web:unknown.invalid")
    _problem(await federation.send(request), 401, "cannot resolve")


async def test_ping_is_in_the_receivers_audit_log(federation: Pair) -> None:
    nonce = secrets.token_urlsafe(18)
    assert (await federation.send(federation.signed(nonce=nonce))).status_code == 200
    from rhenus.core.audit import list_entries

    app = federation.receiver._transport.app  # type: ignore[attr-defined]
    async with app.state.node.db.session() as session:
        entries = await list_entries(session)
    assert any(
        e.action == "trust.ping.received" and e.actor == federation.sender_did for e in entries
    )
