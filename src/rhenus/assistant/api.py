"""OpenAI-compatible routes under ``/v1``: models, chat completions (plain and SSE), embeddings.

Authentication is the node's own (``Authorization: Bearer <API key or login token>``); errors
are OpenAI's shape (``errors.py``). What is and is not implemented: docs/assistant.md.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import StreamingResponse

from rhenus.accounts.deps import CurrentUser
from rhenus.assistant import rag
from rhenus.assistant.backends import ChatParams, Finished
from rhenus.assistant.errors import OpenAIError, OpenAIRoute, error_body
from rhenus.assistant.metering import MeterDep
from rhenus.assistant.schemas import (
    AssistantMessage,
    ChatCompletion,
    ChatCompletionRequest,
    Choice,
    Embedding,
    EmbeddingList,
    EmbeddingRequest,
    EmbeddingUsage,
    ErrorBody,
    Model,
    ModelList,
    Usage,
    chunk,
)
from rhenus.assistant.service import Assistant
from rhenus.assistant.usage_api import usage_router
from rhenus.core.node import NodeDep

ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (400, 401, 404, 413, 429, 503)
}
router = APIRouter(prefix="/v1", route_class=OpenAIRoute, tags=["assistant"], responses=ERRORS)
router.include_router(usage_router)  # GET /v1/usage


async def _assistant(request: Request) -> Assistant:
    assistant: Assistant = request.app.state.assistant
    return assistant


AssistantDep = Annotated[Assistant, Depends(_assistant)]


@router.get("/models", response_model=ModelList)
async def list_models(assistant: AssistantDep, principal: CurrentUser) -> ModelList:
    """GET /v1/models — the configured aliases."""
    return ModelList(
        data=[
            Model(id=alias, created=served.created, owned_by=assistant.owner)
            for alias, served in assistant.models.items()
        ]
    )


@router.get("/models/{model_id}", response_model=Model)
async def retrieve_model(model_id: str, assistant: AssistantDep, principal: CurrentUser) -> Model:
    """GET /v1/models/{model} — one alias; 404 model_not_found."""
    served = assistant.get(model_id)
    return Model(id=model_id, created=served.created, owned_by=assistant.owner)


def _params(body: ChatCompletionRequest) -> ChatParams:
    return ChatParams(
        messages=[
            {"role": "system" if m.role == "developer" else m.role, "content": m.text()}
            for m in body.messages
        ],
        temperature=1.0 if body.temperature is None else body.temperature,
        top_p=1.0 if body.top_p is None else body.top_p,
        max_tokens=body.token_limit(),
        stop=body.stops(),
        seed=body.seed,
        frequency_penalty=body.frequency_penalty or 0.0,
        presence_penalty=body.presence_penalty or 0.0,
    )


def _usage(finished: Finished) -> Usage:
    return Usage(
        prompt_tokens=finished.prompt_tokens,
        completion_tokens=finished.completion_tokens,
        total_tokens=finished.prompt_tokens + finished.completion_tokens,
    )


@router.post(
    "/chat/completions",
    response_model=ChatCompletion,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def create_chat_completion(
    body: ChatCompletionRequest,
    assistant: AssistantDep,
    principal: CurrentUser,
    meter: MeterDep,
    node: NodeDep,
) -> Response | ChatCompletion:
    """POST /v1/chat/completions — an answer, whole or (``stream``) as server-sent events;
    with ``search``, from the passages of documents found for it (:mod:`.rag`)."""
    params = _params(body)
    completion_id = f"chatcmpl-{secrets.token_urlsafe(18)}"
    created = int(time.time())
    with_usage = bool(body.stream_options and body.stream_options.include_usage)
    hits = None
    # Admitted first: a caller over quota gets 429 without costing a search.
    call = await meter.begin(body.model, "chat/completions", stream=bool(body.stream))  # or 429
    if body.search and body.search_args is not None:
        try:
            found = await rag.retrieve(
                node, assistant, principal, model=body.model, params=params, args=body.search_args
            )
        except BaseException as exc:
            await call.fail(exc)
            raise
        if not found.results:  # the model is not called (nor metered) to invent an answer
            await call.withdraw()
            return rag.nothing_found(completion_id, body.model, bool(body.stream), with_usage)
        params, hits = found.params, found.hits()
    if not body.stream:
        text, finished = await call.complete(assistant.complete_chat(body.model, params))
        completion = ChatCompletion(
            id=completion_id,
            created=created,
            model=body.model,
            choices=[
                Choice(message=AssistantMessage(content=text), finish_reason=finished.finish_reason)
            ],
            usage=_usage(finished),
        )
        return completion if hits is None else rag.with_results(completion, hits)
    items = call.stream(assistant.stream_chat, body.model, params)
    # The first piece is awaited here, so that a refusal (unknown model, prompt too long, busy
    # model) is still an HTTP error status rather than an event in a 200 stream.
    first = await anext(items)
    return StreamingResponse(
        _events(first, items, completion_id, created, body.model, with_usage, hits),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _events(
    first: str | Finished,
    rest: AsyncGenerator[str | Finished, None],
    completion_id: str,
    created: int,
    model: str,
    with_usage: bool,
    hits: list[dict[str, Any]] | None = None,
) -> AsyncIterator[str]:
    def event(delta: dict[str, str] | None, **extra: Any) -> str:
        body = chunk(
            id=completion_id,
            created=created,
            model=model,
            delta=delta,
            with_usage=with_usage,
            **extra,
        )
        if hits is not None and delta is not None and "role" in delta:
            body["search_results"] = hits  # once, on the first chunk
        return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"

    try:
        yield event({"role": "assistant", "content": ""})
        item = first
        while not isinstance(item, Finished):
            yield event({"content": item})
            item = await anext(rest)
    except OpenAIError as exc:
        # Too late for a status: OpenAI's clients raise on an event carrying an error.
        yield f"data: {json.dumps(error_body(exc.detail, exc.type, exc.param, exc.code))}\n\n"
        return
    finally:
        # A client gone mid-answer: stop the generation now and give the model to the next.
        await rest.aclose()
    yield event({}, finish_reason=item.finish_reason)
    if with_usage:
        yield event(None, usage=_usage(item))
    yield "data: [DONE]\n\n"


@router.post("/embeddings", response_model=EmbeddingList)
async def create_embeddings(
    body: EmbeddingRequest, assistant: AssistantDep, principal: CurrentUser, meter: MeterDep
) -> EmbeddingList:
    """POST /v1/embeddings — one vector per input, as floats or base64 float32."""
    served = assistant.get(body.model)
    dimensions = served.embeddings.dimensions if served.embeddings else None
    if body.dimensions is not None and body.dimensions != dimensions:
        raise OpenAIError(
            400,
            f"The model `{body.model}` only gives {dimensions}-dimension embeddings.",
            param="dimensions",
        )
    call = await meter.begin(body.model, "embeddings")  # or 429
    vectors, tokens = await call.embed(assistant.embed(body.model, body.texts()))
    data = [
        Embedding(
            index=i,
            embedding=base64.b64encode(row.astype("<f4").tobytes()).decode()
            if body.encoding_format == "base64"
            else row.tolist(),
        )
        for i, row in enumerate(vectors)
    ]
    return EmbeddingList(
        data=data,
        model=body.model,
        usage=EmbeddingUsage(prompt_tokens=tokens, total_tokens=tokens),
    )
