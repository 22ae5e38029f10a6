"""In-process federations: several real nodes (own keys, databases, apps) joined by a transport
that routes each request to the app of the host it names."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import anyio.to_thread
import httpx
from fastapi import FastAPI

from rhenus.app import create_app
from rhenus.config import Settings
from rhenus.core.node import Node
from rhenus.ops.setup import initialise
from rhenus.trust import participant, service
from rhenus.trust.client import federation_client
from rhenus.trust.did import DidResolver, did_for_url

ANCHOR = "https://anchor.test"


class HostRouter(httpx.AsyncBaseTransport):
    """Sends each request to the ASGI app registered for its host."""

    def __init__(self) -> None:
        self.apps: dict[str, httpx.ASGITransport] = {}

    def add(self, host: str, app: FastAPI) -> None:
        self.apps[host] = httpx.ASGITransport(app=app)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        target = self.apps.get(request.url.host)
        if target is None:
            raise httpx.ConnectError(f"no node at {request.url.host}", request=request)
        return await target.handle_async_request(request)


@dataclass
class FedNode:
    settings: Settings
    node: Node
    app: FastAPI
    router: HostRouter
    admin_password: str = ""
    _admin_token: str = ""

    async def admin_headers(self) -> dict[str, str]:
        """Bearer headers of this node's admin (signing in, and past the one-time password)."""
        if not self._admin_token:
            async with self.http() as http:
                login = await http.post(
                    "/api/v1/auth/login",
                    json={"username": "admin", "password": self.admin_password},
                )
                self._admin_token = login.json()["access_token"]
                headers = {"Authorization": f"Bearer {self._admin_token}"}
                changed = await http.post(
                    "/api/v1/me/password",
                    headers=headers,
                    json={
                        "current_password": self.admin_password,
                        "new_password": "a-long-test-password",
                    },
                )
                assert changed.status_code == 204, changed.text
        return {"Authorization": f"Bearer {self._admin_token}"}

    @property
    def did(self) -> str:
        return did_for_url(self.settings.public_url)

    @property
    def url(self) -> str:
        return self.settings.public_url

    def client(self) -> httpx.AsyncClient:
        """A client calling other nodes as this node (signed requests)."""
        return federation_client(self.settings, self.node.keyring, transport=self.router)

    def resolver(self) -> DidResolver:
        return DidResolver(client=httpx.AsyncClient(transport=self.router))

    def http(self) -> httpx.AsyncClient:
        """A plain client to this node's own API."""
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url=self.url)


@dataclass
class Federation:
    root: Path
    router: HostRouter = field(default_factory=HostRouter)
    nodes: list[FedNode] = field(default_factory=list)

    async def add(self, name: str, *, db_url: str | None = None, anchor: bool = False) -> FedNode:
        url = ANCHOR if anchor else f"https://{name}.test"
        settings = Settings(
            home=self.root / name,
            public_url=url,
            node_name=name,
            trust_anchor=anchor,
            trusted_anchors=[did_for_url(ANCHOR)],
            compliance_cache_seconds=0,
            database_url=db_url or f"sqlite+aiosqlite:///{self.root / (name + '.db')}",
        )
        result = await anyio.to_thread.run_sync(initialise, settings)  # runs its own event loop
        node = Node.open(settings)
        app = create_app(settings, node=node, transport=self.router)
        self.router.add(httpx.URL(url).host, app)
        member = FedNode(settings, node, app, self.router, result.admin_password or "")
        self.nodes.append(member)
        return member

    async def close(self) -> None:
        for member in self.nodes:
            await member.app.state.jobs.idle()
        for member in self.nodes:
            await member.app.state.contracts_driver.aclose()
            await member.app.state.transfers_driver.aclose()
            await member.app.state.did_resolver.close()
            await member.node.close()


PARTICIPANTS = {
    "fr-mininterieur": {
        "legal_name": "Ministère de l'Intérieur",
        "vat_id": "FR40303265045",
        "headquarters": "FR-75C",
        "legal_address": "FR-75C",
    },
    "de-berlin": {
        "legal_name": "Land Berlin",
        "vat_id": "DE136695976",
        "headquarters": "DE-BE",
        "legal_address": "DE-BE",
    },
    "ch-zurich": {
        "legal_name": "Kanton Zürich",
        "lei_code": "5299000J2N45DDNE4Y28",
        "headquarters": "CH-ZH",
        "legal_address": "CH-ZH",
    },
}


async def sign_self_description(member: FedNode, **facts: str | None) -> str:
    token = participant.self_description(
        settings=member.settings,
        keyring=member.node.keyring,
        **facts,  # type: ignore[arg-type]
    )
    async with member.node.db.transaction() as session:
        await service.store_credential(
            session, kind="participant", token=token, issuer=member.did, valid_until=None
        )
    return token


async def certify(member: FedNode, **facts: str | None) -> str:
    """Sign the member's self-description and obtain its compliance from the anchor."""
    await sign_self_description(member, **facts)
    async with member.client() as client:
        vc = await participant.obtain_compliance(
            node=member.node, anchor_url=ANCHOR, client=client, resolver=member.resolver()
        )
    return vc.token
