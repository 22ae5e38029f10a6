"""A quota holds across the worker processes of a node: ``rhenus run`` with two workers on
PostgreSQL (and Redis, which several workers need), one client pinned to each worker (as in
tests/e2e/test_messaging_workers.py), calls alternating between them; the limit counts them all."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from rhenus.demo.nodes import Fleet, LiveNode
from tests.assistant.conftest import EMBEDDING_MODEL
from tests.e2e.test_messaging_workers import Workers
from tests.support.postgres import PostgresServer
from tests.support.redis import RedisServer


@pytest.fixture
def two_workers(
    postgres: PostgresServer, pg_template: str, redis_server: RedisServer, tmp_path: Path
) -> Iterator[tuple[LiveNode, str]]:
    """The node, and an API key of its first administrator."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    postgres.psql(f"CREATE DATABASE {name} TEMPLATE {pg_template}")
    with Fleet() as fleet, httpx.Client(timeout=30) as http:
        node = fleet.start(
            "fr-mininterieur",
            "Ministère",
            tmp_path / "paris",
            extra_env={
                "RHENUS_DATABASE_URL": postgres.url(name),
                "RHENUS_REDIS_URL": redis_server.url,
                "RHENUS_WORKERS": "2",
            },
        )
        node.sign_in(http, "a-good-long-password")
        key = http.post(
            f"{node.url}/api/v1/me/api-keys", headers=node.headers(), json={"name": "w"}
        ).json()["key"]
        limited = http.put(
            f"{node.url}/api/v1/assistant/limits/admin/{EMBEDDING_MODEL}",
            headers=node.headers(),
            json={"rpm": 3},
        )
        assert limited.status_code == 200, limited.text
        yield node, key


async def test_requests_per_minute_count_the_calls_of_every_worker(
    two_workers: tuple[LiveNode, str], redis_server: RedisServer
) -> None:
    node, key = two_workers
    workers = Workers(node)
    first, second = await workers.ready(redis_server.url)
    auth = {"Authorization": f"Bearer {key}"}
    body = {"model": EMBEDDING_MODEL, "input": ["Bonjour"]}
    one, two = await workers.pin(first), await workers.pin(second)
    try:
        served = [
            await client.post("/v1/embeddings", json=body, headers=auth)
            for client in (one, two, one)
        ]
        assert [r.status_code for r in served] == [200, 200, 200]
        # Each worker has seen fewer than 3 calls itself; the database has seen 3.
        for client in (two, one):
            refused = await client.post("/v1/embeddings", json=body, headers=auth)
            assert refused.status_code == 429
            error = refused.json()["error"]
            assert (error["type"], error["code"]) == ("requests", "rate_limit_exceeded")
            assert 1 <= int(refused.headers["retry-after"]) <= 60
        usage = (await two.get("/v1/usage", headers=auth)).json()
        assert usage["totals"]["requests"] == 3
    finally:
        await one.aclose()
        await two.aclose()
