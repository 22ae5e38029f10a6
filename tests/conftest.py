"""Fixtures shared by the whole suite.

Tests that touch the database use the ``node`` (or ``db_url``) fixture, which is parametrized
over SQLite and PostgreSQL: every such test runs on both engines (ids ``[sqlite]`` and
``[postgresql]``). The PostgreSQL server is real, started once per session (or taken from
``RHENUS_TEST_POSTGRES_URL``, a server URL whose user may create databases).
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest

from rhenus.app import create_app
from rhenus.config import Settings
from rhenus.core.node import Node
from rhenus.migrations import upgrade
from rhenus.ops.setup import initialise
from tests.support.postgres import PostgresServer, running_postgres
from tests.support.redis import RedisServer, running_redis
from tests.support.smtp import Mailbox, smtp_server

ENGINES = ["sqlite", "postgresql"]


class ExternalPostgres(PostgresServer):
    """A server given by URL (no process of ours)."""

    def __init__(self, url: str) -> None:
        self._base = url
        parts = urlsplit(url)
        super().__init__(Path("/"), Path("/"), parts.port or 5432, None)

    def psql(self, sql: str, db: str = "postgres") -> None:
        import asyncio

        import asyncpg  # type: ignore[import-untyped]

        async def run() -> None:
            conn = await asyncpg.connect(self.url(db).replace("+asyncpg", ""))
            try:
                await conn.execute(sql)
            finally:
                await conn.close()

        asyncio.run(run())

    def url(self, db: str) -> str:
        parts = urlsplit(self._base)
        return urlunsplit(parts._replace(path=f"/{db}"))


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    given = os.environ.get("RHENUS_TEST_POSTGRES_URL")
    if given:
        yield ExternalPostgres(given)
        return
    with running_postgres() as server:
        yield server


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A Redis server of this test's own (tests stop and start it to make outages)."""
    with running_redis() as server:
        yield server


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    """The messages a node sends, received by a real SMTP server (aiosmtpd) on loopback."""
    with smtp_server() as box:
        yield box


@pytest.fixture(scope="session")
def pg_template(postgres: PostgresServer) -> str:
    """A database migrated to head, copied (CREATE DATABASE … TEMPLATE) for each test."""
    name = f"rhenus_template_{uuid.uuid4().hex[:8]}"
    postgres.psql(f"CREATE DATABASE {name}")
    upgrade(postgres.url(name))
    return name


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    upgrade(f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture(params=ENGINES)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty, migrated database of each engine."""
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        target = tmp_path / "rhenus.db"
        shutil.copyfile(template, target)
        return f"sqlite+aiosqlite:///{target}"
    server: PostgresServer = request.getfixturevalue("postgres")
    template_name: str = request.getfixturevalue("pg_template")
    name = f"t_{uuid.uuid4().hex[:12]}"
    server.psql(f"CREATE DATABASE {name} TEMPLATE {template_name}")
    return server.url(name)


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    """Settings of an initialised node in a temporary home, on the parametrized engine."""
    return Settings(
        home=tmp_path / "home", database_url=db_url, node_name="test-node", audit_checkpoint_every=5
    )


@pytest.fixture
def initialised(settings: Settings) -> str:
    """Initialise the node; returns the first admin's one-time password."""
    result = initialise(settings)
    assert result.admin_password
    return result.admin_password


@pytest.fixture
async def node(settings: Settings, initialised: str) -> AsyncIterator[Node]:
    opened = Node.open(settings)
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
async def client(settings: Settings, node: Node) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client speaking to the node's app in-process."""
    app = create_app(settings, node=node)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


@pytest.fixture
async def admin_token(client: httpx.AsyncClient, initialised: str) -> str:
    """A bearer token of the first admin, after the mandatory password change."""
    response = await client.post(
        "/api/v1/auth/login", json={"username": "admin", "password": initialised}
    )
    token = response.json()["access_token"]
    changed = await client.post(
        "/api/v1/me/password",
        json={"current_password": initialised, "new_password": "a-good-long-password"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert changed.status_code == 204, changed.text
    return str(token)
