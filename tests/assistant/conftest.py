"""A live node (``rhenus run``) shared by the assistant's tests, and the official OpenAI client.

The node runs for the whole session so that it loads its models once; the clients are the
``openai`` package unmodified but for ``base_url`` and ``api_key`` (an API key of the node).
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import openai
import pytest

from rhenus.demo.nodes import Fleet, LiveNode

CHAT_MODEL = "smollm2-135m"
EMBEDDING_MODEL = "use-multilingual-v3"


@pytest.fixture(scope="session")
def assistant_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveNode, str]]:
    """A running node on its default models, and an API key of its first administrator."""
    root = tmp_path_factory.mktemp("assistant")
    with Fleet() as fleet, httpx.Client(timeout=30) as http:
        node = fleet.start("fr-mininterieur", "Ministère de l'Intérieur", root / "paris")
        node.sign_in(http, "a-good-long-password")
        created = http.post(
            f"{node.url}/api/v1/me/api-keys", headers=node.headers(), json={"name": "assistant"}
        )
        assert created.status_code == 201, created.text
        yield node, created.json()["key"]


@pytest.fixture(scope="session")
def sdk(assistant_node: tuple[LiveNode, str]) -> openai.OpenAI:
    node, key = assistant_node
    # No retries: a test sees the node's first answer, errors included.
    return openai.OpenAI(base_url=f"{node.url}/v1", api_key=key, max_retries=0, timeout=120)


@pytest.fixture
def async_sdk(assistant_node: tuple[LiveNode, str]) -> openai.AsyncOpenAI:
    node, key = assistant_node
    return openai.AsyncOpenAI(base_url=f"{node.url}/v1", api_key=key, max_retries=0, timeout=120)
