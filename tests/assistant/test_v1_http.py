"""The /v1 routes on the wire, in-process: OpenAI's error shape for every failure there (and
RFC 9457 elsewhere), the server-sent events of a stream, body limits. On both engines."""

from __future__ import annotations

import json

import httpx
import pytest

from rhenus.core.node import Node
from tests.assistant.conftest import CHAT_MODEL

ERROR_KEYS = {"message", "type", "param", "code"}


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def error_of(response: httpx.Response) -> dict[str, object]:
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == ERROR_KEYS
    assert isinstance(body["error"]["message"], str)
    assert body["error"]["message"]
    return dict(body["error"])


async def test_v1_answers_a_missing_key_in_openais_shape_and_the_node_in_rfc9457(
    client: httpx.AsyncClient, node: Node
) -> None:
    refused = await client.get("/v1/models")
    assert refused.status_code == 401
    assert refused.headers["content-type"] == "application/json"
    assert error_of(refused)["code"] == "invalid_api_key"
    elsewhere = await client.get("/api/v1/me")
    assert elsewhere.status_code == 401
    assert elsewhere.headers["content-type"] == "application/problem+json"


async def test_an_unknown_v1_route_is_an_invalid_url(
    client: httpx.AsyncClient, admin_token: str
) -> None:
    response = await client.get("/v1/assistants", headers=auth(admin_token))
    assert response.status_code == 404
    assert error_of(response) == {
        "message": "Invalid URL (GET /v1/assistants)",
        "type": "invalid_request_error",
        "param": None,
        "code": "unknown_url",
    }


@pytest.mark.parametrize(
    ("body", "status", "param"),
    [
        (b'{"model": "x", "messages": [', 400, None),
        (b'{"model": "x"}', 400, "messages"),
        (
            b'{"model": "x", "messages": [{"role": "robot", "content": "hi"}]}',
            400,
            "messages.[0].role",
        ),
        (b'{"model": "x", "messages": []}', 400, "messages"),
    ],
)
async def test_unreadable_or_invalid_bodies_are_400s_not_422s(
    client: httpx.AsyncClient, admin_token: str, body: bytes, status: int, param: str | None
) -> None:
    response = await client.post(
        "/v1/chat/completions",
        content=body,
        headers={**auth(admin_token), "content-type": "application/json"},
    )
    assert response.status_code == status
    error = error_of(response)
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param


async def test_a_body_over_the_limit_is_a_413_in_openais_shape(
    client: httpx.AsyncClient, admin_token: str
) -> None:
    huge = json.dumps(
        {"model": CHAT_MODEL, "messages": [{"role": "user", "content": "a" * (2 * 1024 * 1024)}]}
    )
    response = await client.post(
        "/v1/chat/completions",
        content=huge,
        headers={**auth(admin_token), "content-type": "application/json"},
    )
    assert response.status_code == 413
    assert error_of(response)["code"] == "request_too_large"


async def test_a_stream_is_server_sent_events_ending_with_done(
    client: httpx.AsyncClient, admin_token: str
) -> None:
    response = await client.post(
        "/v1/chat/completions",
        headers=auth(admin_token),
        json={
            "model": CHAT_MODEL,
            "messages": [{"role": "user", "content": "Bonjour"}],
            "max_tokens": 6,
            "stream": True,
        },
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = [e for e in response.text.split("\n\n") if e]
    assert all(e.startswith("data: ") for e in events)
    assert events[-1] == "data: [DONE]"
    chunks = [json.loads(e.removeprefix("data: ")) for e in events[:-1]]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert chunks[-1]["choices"][0]["delta"] == {}
    assert chunks[-1]["choices"][0]["finish_reason"] in ("stop", "length")
    assert all("usage" not in c for c in chunks)


async def test_a_developer_message_counts_as_the_system_prompt(
    client: httpx.AsyncClient, admin_token: str
) -> None:
    def body(role: str) -> dict[str, object]:
        return {
            "model": CHAT_MODEL,
            "messages": [
                {"role": role, "content": [{"type": "text", "text": "Réponds en français."}]},
                {"role": "user", "content": "Bonjour"},
            ],
            "max_tokens": 8,
            "temperature": 0,
        }

    as_system = await client.post(
        "/v1/chat/completions", headers=auth(admin_token), json=body("system")
    )
    as_developer = await client.post(
        "/v1/chat/completions", headers=auth(admin_token), json=body("developer")
    )
    assert as_system.status_code == as_developer.status_code == 200
    assert as_system.json()["usage"] == as_developer.json()["usage"]
    assert (
        as_system.json()["choices"][0]["message"]["content"]
        == as_developer.json()["choices"][0]["message"]["content"]
    )
