"""Quotas and usage on a live node, through the official ``openai`` SDK: a spent quota is
OpenAI's 429 (``RateLimitError``) with ``Retry-After``; every call leaves a usage record whose
tokens are the ones the response reported; users read only their own usage, admins everyone's
totals; limits set by an administrator apply by precedence."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import openai
import pytest

from rhenus.demo.nodes import LiveNode
from tests.assistant.conftest import CHAT_MODEL, EMBEDDING_MODEL

PASSWORD = "a-long-agent-password"
HI = [{"role": "user", "content": "Bonjour"}]


@dataclass
class Agent:
    """An agent account of the live node, with its API key as an SDK and as raw HTTP."""

    username: str
    sdk: openai.OpenAI
    http: httpx.Client

    def usage(self, **params: Any) -> dict[str, Any]:
        response = self.http.get("/v1/usage", params=params)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


@pytest.fixture
def new_agent(assistant_node: tuple[LiveNode, str]) -> Iterator[Any]:
    node, _ = assistant_node
    clients: list[httpx.Client] = []

    def make(**limits: Any) -> Agent:
        """A fresh agent; ``limits``: {alias: {"rpm": …, "tpm": …}} set by the admin."""
        name = f"agent-{secrets.token_hex(4)}"
        with httpx.Client(base_url=node.url, timeout=30) as admin:
            made = admin.post(
                "/api/v1/users",
                headers=node.headers(),
                json={"username": name, "password": PASSWORD},
            )
            assert made.status_code == 201, made.text
            for alias, values in limits.items():
                put = admin.put(
                    f"/api/v1/assistant/limits/{name}/{alias}", headers=node.headers(), json=values
                )
                assert put.status_code == 200, put.text
            login = admin.post("/api/v1/auth/login", json={"username": name, "password": PASSWORD})
            token = login.json()["access_token"]
            key = admin.post(
                "/api/v1/me/api-keys",
                headers={"Authorization": f"Bearer {token}"},
                json={"name": "quota-test"},
            ).json()["key"]
        http = httpx.Client(
            base_url=node.url, headers={"Authorization": f"Bearer {key}"}, timeout=120
        )
        clients.append(http)
        sdk = openai.OpenAI(base_url=f"{node.url}/v1", api_key=key, max_retries=0, timeout=120)
        return Agent(name, sdk, http)

    yield make
    for client in clients:
        client.close()


def test_requests_per_minute_spent_is_openais_429_with_retry_after(new_agent: Any) -> None:
    agent = new_agent(**{CHAT_MODEL: {"rpm": 2}})
    for _ in range(2):
        agent.sdk.chat.completions.create(model=CHAT_MODEL, messages=HI, max_tokens=2)
    with pytest.raises(openai.RateLimitError) as refused:
        agent.sdk.chat.completions.create(model=CHAT_MODEL, messages=HI, max_tokens=2)
    error = refused.value
    assert error.status_code == 429
    assert error.code == "rate_limit_exceeded"
    assert error.type == "requests"
    assert error.param is None
    assert isinstance(error.body, dict)
    assert set(error.body) == {"message", "type", "param", "code"}
    assert "Limit 2, Used 2" in error.message
    retry_after = int(error.response.headers["retry-after"])
    assert 1 <= retry_after <= 60
    assert error.response.headers["x-ratelimit-limit-requests"] == "2"
    # Per alias: the embedding model has no limit of its own.
    agent.sdk.embeddings.create(model=EMBEDDING_MODEL, input=["Bonjour"])
    # A streamed call is refused before the stream begins, with the same error.
    with pytest.raises(openai.RateLimitError):
        agent.sdk.chat.completions.create(model=CHAT_MODEL, messages=HI, max_tokens=2, stream=True)
    # The refusals are not calls: the window still holds the two that ran (and one embedding).
    assert agent.usage(model=CHAT_MODEL)["totals"]["requests"] == 2


def test_tokens_per_minute_spent_is_a_429_of_type_tokens(new_agent: Any) -> None:
    agent = new_agent(**{EMBEDDING_MODEL: {"tpm": 3}})
    first = agent.sdk.embeddings.create(model=EMBEDDING_MODEL, input=["Bonjour à tous"])
    assert first.usage.total_tokens >= 3
    with pytest.raises(openai.RateLimitError) as refused:
        agent.sdk.embeddings.create(model=EMBEDDING_MODEL, input=["Encore"])
    assert refused.value.type == "tokens"
    assert refused.value.code == "rate_limit_exceeded"
    assert 1 <= int(refused.value.response.headers["retry-after"]) <= 60
    assert f"Used {first.usage.total_tokens}" in refused.value.message


def test_usage_records_hold_the_tokens_the_responses_reported(new_agent: Any) -> None:
    agent = new_agent()
    plain = agent.sdk.chat.completions.create(model=CHAT_MODEL, messages=HI, max_tokens=4)
    stream = agent.sdk.chat.completions.create(
        model=CHAT_MODEL,
        messages=HI,
        max_tokens=4,
        stream=True,
        stream_options={"include_usage": True},
    )
    streamed = [c.usage for c in stream if c.usage is not None]
    vectors = agent.sdk.embeddings.create(model=EMBEDDING_MODEL, input=["Bonjour", "Salut"])
    page = agent.usage()
    embedded, in_stream, whole = page["data"]  # newest first
    assert plain.usage is not None
    assert (whole["prompt_tokens"], whole["completion_tokens"]) == (
        plain.usage.prompt_tokens,
        plain.usage.completion_tokens,
    )
    assert whole["endpoint"] == "chat/completions"
    assert not whole["stream"]
    assert whole["time_to_first_token_ms"] is None
    [usage] = streamed
    assert (in_stream["prompt_tokens"], in_stream["completion_tokens"]) == (
        usage.prompt_tokens,
        usage.completion_tokens,
    )
    assert in_stream["stream"]
    assert 0 <= in_stream["time_to_first_token_ms"] <= in_stream["duration_ms"]
    assert embedded["endpoint"] == "embeddings"
    assert embedded["prompt_tokens"] == vectors.usage.prompt_tokens
    assert embedded["completion_tokens"] == 0
    for record in page["data"]:
        assert record["user"] == agent.username
        assert (record["status"], record["http_status"]) == ("ok", 200)
        assert record["total_tokens"] == record["prompt_tokens"] + record["completion_tokens"]
    assert page["totals"] == {
        "requests": 3,
        "prompt_tokens": sum(r["prompt_tokens"] for r in page["data"]),
        "completion_tokens": sum(r["completion_tokens"] for r in page["data"]),
        "total_tokens": sum(r["total_tokens"] for r in page["data"]),
    }
    assert page["all_users"] is None  # an agent's page
    assert page["users"] is None


def test_usage_pages_newest_first_with_a_cursor(new_agent: Any) -> None:
    agent = new_agent()
    for text in ("un", "deux", "trois"):
        agent.sdk.embeddings.create(model=EMBEDDING_MODEL, input=[text])
    first = agent.usage(limit=2)
    assert first["has_more"]
    assert len(first["data"]) == 2
    assert first["first_id"] > first["last_id"]
    rest = agent.usage(limit=2, after=first["last_id"])
    assert not rest["has_more"]
    assert len(rest["data"]) == 1
    assert rest["data"][0]["id"] < first["last_id"]
    assert rest["totals"]["requests"] == 3  # totals are of every matching record, not the page


def test_a_stream_the_client_leaves_is_recorded_as_cancelled(new_agent: Any) -> None:
    agent = new_agent()
    poem = [{"role": "user", "content": "Écris un long poème sur la Loire."}]
    body = {"model": CHAT_MODEL, "messages": poem, "max_tokens": 400, "stream": True}
    with agent.http.stream("POST", "/v1/chat/completions", json=body) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if '"content"' in line and '"content": ""' not in line:
                break  # one piece of the answer, then the client goes away
    record = agent.usage()["data"][0]
    for _ in range(600):  # the node notices the disconnection at its next piece
        if record["status"] != "pending":
            break
        time.sleep(0.05)
        record = agent.usage()["data"][0]
    assert (record["status"], record["http_status"]) == ("cancelled", 499)
    assert record["completion_tokens"] >= 1
    assert record["time_to_first_token_ms"] is not None


def test_errors_are_recorded_with_their_code(new_agent: Any) -> None:
    agent = new_agent()
    with pytest.raises(openai.BadRequestError):
        agent.sdk.embeddings.create(model=CHAT_MODEL, input=["Bonjour"])
    [record] = agent.usage()["data"]
    assert (record["status"], record["http_status"]) == ("model_not_supported", 400)
    # An unknown model is refused before anything is counted.
    with pytest.raises(openai.NotFoundError):
        agent.sdk.embeddings.create(model="no-such-model", input=["Bonjour"])
    assert agent.usage()["totals"]["requests"] == 1


def test_a_user_cannot_see_another_users_usage(new_agent: Any) -> None:
    alice, bob = new_agent(), new_agent()
    alice.sdk.embeddings.create(model=EMBEDDING_MODEL, input=["Bonjour"])
    assert bob.usage()["data"] == []
    assert bob.usage()["totals"]["requests"] == 0
    refused = bob.http.get("/v1/usage", params={"user": alice.username})
    assert refused.status_code == 403
    assert refused.json()["error"]["type"] == "permission_error"
    assert alice.usage(user=alice.username)["totals"]["requests"] == 1
    limits = bob.http.get(f"/api/v1/assistant/limits/{alice.username}")
    assert limits.status_code == 403


def test_admins_get_every_users_totals_and_anyones_records(
    new_agent: Any, assistant_node: tuple[LiveNode, str]
) -> None:
    node, key = assistant_node
    alice, bob = new_agent(), new_agent()
    alice.sdk.embeddings.create(model=EMBEDDING_MODEL, input=["Bonjour"])
    bob.sdk.embeddings.create(model=EMBEDDING_MODEL, input=["Bonjour", "Salut"])
    with httpx.Client(base_url=node.url, headers={"Authorization": f"Bearer {key}"}) as admin:
        page = admin.get("/v1/usage").json()
        of_alice = admin.get("/v1/usage", params={"user": alice.username}).json()
    users = {u["user"]: u for u in page["users"]}
    assert {k: v for k, v in users[alice.username].items() if k != "user"} == alice.usage()[
        "totals"
    ]
    assert users[bob.username]["requests"] == 1
    assert users[bob.username]["prompt_tokens"] == bob.usage()["totals"]["prompt_tokens"]
    for field in ("requests", "prompt_tokens", "completion_tokens", "total_tokens"):
        assert page["all_users"][field] == sum(u[field] for u in page["users"])
    assert [r["user"] for r in of_alice["data"]] == [alice.username]


def test_limits_apply_alias_then_user_wide_then_model_then_node(
    new_agent: Any, assistant_node: tuple[LiveNode, str]
) -> None:
    node, _ = assistant_node
    agent = new_agent(**{"*": {"rpm": 5}, CHAT_MODEL: {"tpm": 100}})
    effective = {e["model"]: e for e in agent.http.get(
        f"/api/v1/assistant/limits/{agent.username}"
    ).json()}  # fmt: skip
    assert effective[CHAT_MODEL] == {
        "model": CHAT_MODEL, "rpm": 5, "tpm": 100, "rpm_source": "user:*", "tpm_source": "user"
    }  # fmt: skip
    assert effective[EMBEDDING_MODEL] == {
        "model": EMBEDDING_MODEL, "rpm": 5, "tpm": 0, "rpm_source": "user:*", "tpm_source": "node"
    }  # fmt: skip
    with httpx.Client(base_url=node.url, headers=node.headers()) as admin:
        listed = admin.get("/api/v1/assistant/limits").json()
        assert {
            (r["model"], r["rpm"], r["tpm"]) for r in listed if r["user"] == agent.username
        } == {
            ("*", 5, None),
            (CHAT_MODEL, None, 100),
        }
        assert admin.delete(f"/api/v1/assistant/limits/{agent.username}/*").status_code == 204
        unknown = admin.put(f"/api/v1/assistant/limits/{agent.username}/gpt-4o", json={"rpm": 1})
        assert unknown.status_code == 404
        assert unknown.headers["content-type"] == "application/problem+json"
    chat = {e["model"]: e for e in agent.http.get(
        f"/api/v1/assistant/limits/{agent.username}"
    ).json()}[CHAT_MODEL]  # fmt: skip
    assert (chat["rpm"], chat["rpm_source"], chat["tpm"]) == (0, "node", 100)
    # Only administrators set limits.
    assert agent.http.put(
        f"/api/v1/assistant/limits/{agent.username}/*", json={"rpm": 1000}
    ).status_code == 403  # fmt: skip


def test_quota_is_admitted_before_the_search_and_nothing_found_is_not_counted(
    new_agent: Any,
) -> None:
    agent = new_agent(**{CHAT_MODEL: {"rpm": 2}})
    made = agent.http.post("/v1/collections", json={"name": "vide"})
    assert made.status_code == 201, made.text

    def ask(collection: int) -> Any:
        return agent.sdk.chat.completions.create(
            model=CHAT_MODEL,
            messages=HI,
            max_tokens=2,
            extra_body={"search": True, "search_args": {"collections": [collection]}},
        )

    # An empty collection: nothing found, the model is not called, nothing is counted.
    for _ in range(3):
        assert ask(made.json()["id"]).model_extra["search_results"] == []
    assert agent.usage()["totals"]["requests"] == 0
    # Under quota, a collection that does not exist is the search's 404 (a failed call)…
    with pytest.raises(openai.NotFoundError):
        ask(999_999)
    agent.sdk.chat.completions.create(model=CHAT_MODEL, messages=HI, max_tokens=2)
    # …over quota the same request is a 429: refused before any search runs.
    with pytest.raises(openai.RateLimitError):
        ask(999_999)
    assert agent.usage()["totals"]["requests"] == 2
