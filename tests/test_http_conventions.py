"""HTTP conventions: problem+json errors (never a 500), body limits, probes, metrics, ids."""

from __future__ import annotations

import httpx
import pytest

from rhenus.core.node import Node


async def test_malformed_json_is_a_400_problem(client: httpx.AsyncClient, node: Node) -> None:
    response = await client.post(
        "/api/v1/auth/login",
        content=b'{"username": "admin", "password": ',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["title"] == "Malformed JSON"
    assert body["instance"] == "/api/v1/auth/login"


async def test_wrong_content_type_is_a_415_problem(client: httpx.AsyncClient, node: Node) -> None:
    response = await client.post(
        "/api/v1/auth/login",
        content=b"username=admin&password=x",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 415
    assert response.headers["content-type"] == "application/problem+json"
    assert "application/json" in response.json()["detail"]


async def test_declared_oversized_body_is_a_413_problem(
    client: httpx.AsyncClient, node: Node
) -> None:
    big = b'{"username": "' + b"a" * (2 * 1024 * 1024) + b'", "password": "x"}'
    response = await client.post(
        "/api/v1/auth/login", content=big, headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"


async def test_streamed_oversized_body_without_length_is_a_413_problem(
    client: httpx.AsyncClient, node: Node
) -> None:
    async def chunks():  # type: ignore[no-untyped-def]
        for _ in range(40):
            yield b"x" * 65536

    response = await client.post(
        "/api/v1/auth/login", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json()["status"] == 413


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"username": "admin"}, "body.password"),
        ([1, 2], "body"),
        ({"username": 3, "password": "x"}, "body.username"),
    ],
)
async def test_invalid_fields_are_a_422_problem_naming_them(
    client: httpx.AsyncClient, node: Node, body: object, field: str
) -> None:
    response = await client.post("/api/v1/auth/login", json=body)
    assert response.status_code == 422
    assert field in [e["field"] for e in response.json()["errors"]]


async def test_unknown_route_and_method_are_problems(client: httpx.AsyncClient, node: Node) -> None:
    missing = await client.get("/api/v1/nothing-here")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    wrong = await client.put("/healthz")
    assert wrong.status_code == 405
    assert wrong.json()["status"] == 405


async def test_probes_and_metrics(client: httpx.AsyncClient, node: Node) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok", "blobs": "ok"}
    metrics = await client.get("/metrics")
    assert "rhenus_http_requests_total" in metrics.text
    assert 'route="/healthz"' in metrics.text


async def test_request_id_is_echoed_or_created(client: httpx.AsyncClient, node: Node) -> None:
    given = await client.get("/healthz", headers={"x-request-id": "abc-123"})
    assert given.headers["x-request-id"] == "abc-123"
    made = await client.get("/healthz", headers={"x-request-id": "bad id with spaces"})
    assert len(made.headers["x-request-id"]) == 32


async def test_openapi_is_served(client: httpx.AsyncClient, node: Node) -> None:
    spec = (await client.get("/openapi.json")).json()
    assert "/api/v1/auth/login" in spec["paths"]
