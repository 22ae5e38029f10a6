"""Retrieval-augmented chat: ``search: true`` on ``/v1/chat/completions`` (as the Albert API).

The last user message is searched in ``search_args.collections``; the chunks found are given
to the model in the system prompt, numbered ``[1]``, ``[2]``… with their document and page,
and the model is told to answer from them only and to cite them by number. The answer carries
``search_results``: the same chunks, in the same order, so that ``[n]`` is
``search_results[n-1]``. When no chunk passes the score threshold, the model is not called at
all: the answer says that nothing was found in the documents, rather than letting a model
invent one.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import Any

from fastapi import Response
from fastapi.responses import JSONResponse, StreamingResponse

from rhenus.accounts.service import Principal
from rhenus.assistant import documents
from rhenus.assistant.backends import ChatParams
from rhenus.assistant.rag_schemas import Hit, SearchArgs
from rhenus.assistant.schemas import (
    AssistantMessage,
    ChatCompletion,
    Choice,
    Usage,
    chunk,
)
from rhenus.assistant.search import SearchResult, embedder_for, search
from rhenus.assistant.service import Assistant
from rhenus.core.node import Node

NOTHING_FOUND = (
    "I found nothing relevant to this question in the documents searched, so I cannot answer "
    "it from them."
)
INSTRUCTIONS = (
    "Answer the user's question using only the numbered passages below, taken from the "
    "user's documents. Cite each passage you use by its number in square brackets, like [1]. "
    "If the passages do not contain the answer, say that the documents do not say."
)
# Tokens of the context window kept for the conversation itself and the answer; the rest may
# hold passages, at about CHARS_PER_TOKEN characters each (a low estimate for French, German
# and English with the small models' tokenizers, so that the prompt fits).
RESERVED_TOKENS = 700
CHARS_PER_TOKEN = 2.5


@dataclass(frozen=True)
class Retrieval:
    """What a chat request found, and the messages that give it to the model."""

    results: list[SearchResult]
    params: ChatParams

    def hits(self) -> list[dict[str, Any]]:
        return [Hit.of(r).model_dump(mode="json") for r in self.results]


async def retrieve(
    node: Node,
    assistant: Assistant,
    principal: Principal,
    *,
    model: str,
    params: ChatParams,
    args: SearchArgs,
) -> Retrieval:
    """The chunks for the conversation's last user message, and the params that carry them."""
    prompt = next((m["content"] for m in reversed(params.messages) if m["role"] == "user"), "")
    threshold = args.score_threshold
    if threshold is None and args.method != "keyword":
        threshold = node.settings.assistant_rag_score_threshold
    served = assistant.get(model)  # 404 for an unknown model before any search
    context_size = served.chat.context_size if served.chat is not None else 2048
    async with node.db.session() as session:
        collections = await documents.readable_collections(
            session, principal=principal, collection_ids=args.collections
        )
        results = await search(
            session,
            embedder_for(assistant, node.settings),
            collections=collections,
            prompt=prompt,
            k=args.k,
            method=args.method,
            score_threshold=threshold,
            metadata=args.metadata,
            vector_index=node.settings.assistant_vector_index,
        )
    budget = int(max(600, (context_size - RESERVED_TOKENS) * CHARS_PER_TOKEN))
    results = fitting(results, budget)
    return Retrieval(results, replace(params, messages=with_passages(params.messages, results)))


def fitting(results: list[SearchResult], budget: int) -> list[SearchResult]:
    """The best results whose texts fit ``budget`` characters (the first always, cut to it)."""
    kept: list[SearchResult] = []
    used = 0
    for result in results:
        if kept and used + len(result.text) > budget:
            break
        if not kept and len(result.text) > budget:
            result = replace(result, text=result.text[:budget])
        kept.append(result)
        used += len(result.text)
    return kept


def passages(results: list[SearchResult]) -> str:
    """The numbered passages: ``[n] (document, page p)`` and the chunk's text."""
    blocks = []
    for n, result in enumerate(results, start=1):
        where = result.document_name + (f", page {result.page}" if result.page else "")
        blocks.append(f"[{n}] ({where})\n{result.text}")
    return "\n\n".join(blocks)


def with_passages(
    messages: list[dict[str, str]], results: list[SearchResult]
) -> list[dict[str, str]]:
    """The conversation with the passages in its system message (added first if none): chat
    templates take one system message, at the start."""
    context = f"{INSTRUCTIONS}\n\n{passages(results)}"
    if messages and messages[0]["role"] == "system":
        first = {"role": "system", "content": f"{messages[0]['content']}\n\n{context}"}
        return [first, *messages[1:]]
    return [{"role": "system", "content": context}, *messages]


def nothing_found(completion_id: str, model: str, stream: bool, with_usage: bool) -> Response:
    """The answer when no passage is relevant: said without calling the model."""
    created = int(time.time())
    usage = Usage(prompt_tokens=0, completion_tokens=0, total_tokens=0)
    if not stream:
        completion = ChatCompletion(
            id=completion_id,
            created=created,
            model=model,
            choices=[Choice(message=AssistantMessage(content=NOTHING_FOUND), finish_reason="stop")],
            usage=usage,
        )
        return with_results(completion, [])

    async def events() -> AsyncIterator[str]:
        def event(delta: dict[str, str] | None, **extra: Any) -> str:
            body = chunk(
                id=completion_id,
                created=created,
                model=model,
                delta=delta,
                with_usage=with_usage,
                **extra,
            )
            if delta is not None and "role" in delta:
                body["search_results"] = []
            return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"

        yield event({"role": "assistant", "content": ""})
        yield event({"content": NOTHING_FOUND})
        yield event({}, finish_reason="stop")
        if with_usage:
            yield event(None, usage=usage)
        yield "data: [DONE]\n\n"

    return StreamingResponse(
        events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
    )


def with_results(completion: ChatCompletion, hits: list[dict[str, Any]]) -> JSONResponse:
    """A chat completion with its ``search_results``."""
    body = completion.model_dump(mode="json")
    body["search_results"] = hits
    return JSONResponse(body)
