"""Fixtures of the messaging tests: Matrix users registered over the node's own API (in-process),
on the parametrized engine."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from rhenus.app import create_app
from rhenus.config import Settings
from rhenus.core.node import Node
from rhenus.messaging.events import Notifier
from tests.support.smtp import Mailbox, links, path_of

PASSWORD = "a-long-matrix-password"
_txn = itertools.count()


@dataclass
class Mx:
    """One logged-in Matrix device, speaking to the in-process node."""

    http: httpx.AsyncClient
    user_id: str
    token: str
    device_id: str

    async def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        url = path if path.startswith("/_matrix") else f"/_matrix/client/v3{path}"
        headers = {"Authorization": f"Bearer {self.token}", **kwargs.pop("headers", {})}
        return await self.http.request(method, url, headers=headers, **kwargs)

    async def ok(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        response = await self.call(method, path, **kwargs)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def create_room(self, **body: Any) -> str:
        return str((await self.ok("POST", "/createRoom", json=body))["room_id"])

    async def send(self, room_id: str, body: str, txn: str | None = None) -> str:
        txn = txn or f"t{next(_txn)}"
        content = {"msgtype": "m.text", "body": body}
        answer = await self.ok("PUT", f"/rooms/{room_id}/send/m.room.message/{txn}", json=content)
        return str(answer["event_id"])

    async def sync(self, **params: Any) -> dict[str, Any]:
        return await self.ok("GET", "/sync", params=params)


async def create_registration_token(
    client: httpx.AsyncClient, admin_token: str, **body: Any
) -> str:
    response = await client.post(
        "/api/v1/messaging/registration-tokens",
        json=body,
        headers={"Authorization": f"Bearer {admin_token}"},
    )
    assert response.status_code == 201, response.text
    return str(response.json()["token"])


async def register(client: httpx.AsyncClient, username: str, token: str) -> Mx:
    """The three steps of token registration, as clients do them."""
    body = {"username": username, "password": PASSWORD}
    first = await client.post("/_matrix/client/v3/register", json=body)
    assert first.status_code == 401, first.text
    session = first.json()["session"]
    auth = {"type": "m.login.registration_token", "token": token, "session": session}
    second = await client.post("/_matrix/client/v3/register", json={**body, "auth": auth})
    assert second.status_code == 401, second.text
    assert second.json()["completed"] == ["m.login.registration_token"]
    dummy = {"type": "m.login.dummy", "session": session}
    done = await client.post("/_matrix/client/v3/register", json={**body, "auth": dummy})
    assert done.status_code == 200, done.text
    answer = done.json()
    return Mx(client, answer["user_id"], answer["access_token"], answer["device_id"])


Register = Callable[[str], Awaitable[Mx]]


@pytest.fixture
def app(settings: Settings, node: Node) -> FastAPI:
    return create_app(settings, node=node)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """The suite's in-process client (same as tests/conftest.py), on an app the test can see."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


@pytest.fixture
def notifier(app: FastAPI) -> Notifier:
    found: Notifier = app.state.matrix_notifier
    return found


@pytest.fixture
async def registration_token(client: httpx.AsyncClient, admin_token: str) -> str:
    return await create_registration_token(client, admin_token)


@pytest.fixture
def new_user(client: httpx.AsyncClient, registration_token: str) -> Register:
    async def make(username: str) -> Mx:
        return await register(client, username, registration_token)

    return make


# ---- e-mail (Tchap rules): a real SMTP server on loopback ---------------------------------

ALLOWED_DOMAINS = ["interieur.gouv.fr", "*.gouv.fr"]


def mail_settings(tmp_path: Path, db_url: str, mailbox: Mailbox, **more: Any) -> Settings:
    """Settings of a node that mails through ``mailbox`` and lets the organisation's domains
    register (as the suite's ``settings`` fixture otherwise)."""
    return Settings(
        home=tmp_path / "home",
        database_url=db_url,
        node_name="test-node",
        audit_checkpoint_every=5,
        smtp_host="127.0.0.1",
        smtp_port=mailbox.port,
        smtp_security="none",
        smtp_from="matrix@interieur.gouv.fr",
        matrix_allowed_email_domains=ALLOWED_DOMAINS,
        **more,
    )


async def register_by_email(
    client: httpx.AsyncClient, mailbox: Mailbox, username: str, address: str
) -> Mx:
    """The e-mail flow as a client does it: requestToken, the mailed link, then the stages."""
    secret = f"secret-{username}"
    asked = await client.post(
        "/_matrix/client/v3/register/email/requestToken",
        json={"client_secret": secret, "email": address, "send_attempt": 1},
    )
    assert asked.status_code == 200, asked.text
    sid = asked.json()["sid"]
    (link,) = links(await mailbox.last_to(address))
    followed = await client.get(path_of(link))
    assert followed.status_code == 200, followed.text
    body = {"username": username, "password": PASSWORD}
    first = await client.post("/_matrix/client/v3/register", json=body)
    assert first.status_code == 401, first.text
    session = first.json()["session"]
    creds = {"sid": sid, "client_secret": secret}
    auth = {"type": "m.login.email.identity", "threepid_creds": creds, "session": session}
    second = await client.post("/_matrix/client/v3/register", json={**body, "auth": auth})
    assert second.status_code == 401, second.text
    assert second.json()["completed"] == ["m.login.email.identity"]
    dummy = {"type": "m.login.dummy", "session": session}
    done = await client.post("/_matrix/client/v3/register", json={**body, "auth": dummy})
    assert done.status_code == 200, done.text
    answer = done.json()
    return Mx(client, answer["user_id"], answer["access_token"], answer["device_id"])
