"""The assistant page's conversation: a question and its answer, streamed from the node's chat
model through the same services as ``POST /v1/chat/completions`` (metering and quotas, and
``search: true`` retrieval from a collection, :mod:`rhenus.assistant.rag`).

A question is posted with the conversation so far (the page keeps it: no conversation is
stored on the node); the answer is then read from ``GET /assistant/answer?ask=…``, a stream of
Server-Sent Events. ``ask`` carries the messages to answer, compressed and signed with the
browser's session (HMAC-SHA256, as the CSRF tokens), so that the stream needs no state of its
own on the node — any worker process may serve it — and no other browser can replay it.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import re
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from markupsafe import Markup, escape

from rhenus.accounts.service import Principal
from rhenus.assistant import rag
from rhenus.assistant.backends import ChatParams, Finished
from rhenus.assistant.metering import Meter
from rhenus.assistant.rag_schemas import SearchArgs
from rhenus.assistant.search import SearchResult
from rhenus.assistant.service import Assistant
from rhenus.core.node import Node

_PURPOSE = b"rhenus-web-assistant-v1"
HISTORY_CHARS = 4000  # of earlier turns sent again with a question (the newest kept)
QUESTION_CHARS = 2000
_CITATION = re.compile(r"\[(\d{1,3})\]")


@dataclass(frozen=True)
class Ask:
    """A question to answer: the conversation ending with it, and the collection to search."""

    messages: list[dict[str, str]]
    collection: int | None = None

    @property
    def question(self) -> str:
        return self.messages[-1]["content"] if self.messages else ""


def history_of(raw: str) -> list[dict[str, str]]:
    """The earlier turns the page sent back (its hidden field), checked, the newest that fit."""
    try:
        given = json.loads(raw) if raw else []
    except ValueError:
        return []
    turns = [
        {"role": str(t["role"]), "content": str(t["content"])}
        for t in given
        if isinstance(t, dict) and t.get("role") in ("user", "assistant") and "content" in t
    ]
    kept: list[dict[str, str]] = []
    used = 0
    for turn in reversed(turns):
        used += len(turn["content"])
        if used > HISTORY_CHARS:
            break
        kept.insert(0, turn)
    while kept and kept[0]["role"] != "user":  # a conversation starts with a question
        kept.pop(0)
    return kept


def _mac(secret: str, payload: bytes) -> str:
    key = hmac.new(secret.encode(), _PURPOSE, hashlib.sha256).digest()
    return hmac.new(key, payload, hashlib.sha256).hexdigest()


def seal(ask: Ask, secret: str) -> str:
    """``ask`` as the ``ask`` parameter of the answer stream, bound to ``secret``."""
    body = json.dumps({"m": ask.messages, "c": ask.collection}, ensure_ascii=False)
    payload = base64.urlsafe_b64encode(zlib.compress(body.encode(), 9)).decode().rstrip("=")
    return f"{payload}.{_mac(secret, payload.encode())}"


def unseal(value: str, secret: str) -> Ask | None:
    """The question sealed in ``value``, if this browser's session sealed it."""
    payload, _, mac = value.rpartition(".")
    if not payload or not hmac.compare_digest(mac, _mac(secret, payload.encode())):
        return None
    try:
        raw = zlib.decompress(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        body = json.loads(raw)
        messages = [{"role": str(m["role"]), "content": str(m["content"])} for m in body["m"]]
        collection = int(body["c"]) if body.get("c") is not None else None
    except (ValueError, KeyError, TypeError, zlib.error):
        return None
    return Ask(messages, collection)


def chat_model(node: Node) -> str:
    """The alias the page asks: the first chat model configured ("" if there is none)."""
    return next((m.alias for m in node.settings.assistant_models if m.type == "chat"), "")


@dataclass(frozen=True)
class Source:
    """A passage an answer cites as ``[number]``."""

    number: int
    chunk_id: int
    document_id: int
    document: str
    page: int | None
    text: str

    @classmethod
    def of(cls, number: int, result: SearchResult) -> Source:
        return cls(
            number,
            result.chunk_id,
            result.document_id,
            result.document_name,
            result.page,
            result.text,
        )


@dataclass
class Answered:
    """How an answer ended: its sources, or that the documents held nothing for it."""

    sources: list[Source] = field(default_factory=list)
    nothing_found: bool = False
    finish_reason: str = "stop"


async def answer(
    node: Node, assistant: Assistant, principal: Principal, ask: Ask
) -> AsyncIterator[str | Answered]:
    """Pieces of the answer as the model writes them, then one :class:`Answered`.

    Raises the API's errors (``OpenAIError``: a spent quota, a busy model, an unreadable
    collection) before the first piece."""
    alias = chat_model(node)
    params = ChatParams(
        messages=ask.messages, temperature=0.2, max_tokens=node.settings.web_assistant_max_tokens
    )
    call = await Meter(node, assistant, principal).begin(alias, "chat/completions", stream=True)
    results: list[SearchResult] = []
    if ask.collection is not None:
        try:
            found = await rag.retrieve(
                node,
                assistant,
                principal,
                model=alias,
                params=params,
                args=SearchArgs(collections=[ask.collection]),
            )
        except BaseException as exc:
            await call.fail(exc)
            raise
        if not found.results:  # as the API: the model is not asked to invent an answer
            await call.withdraw()
            yield Answered(nothing_found=True)
            return
        params, results = found.params, found.results
    finished: Finished | None = None
    async with contextlib.aclosing(call.stream(assistant.stream_chat, alias, params)) as items:
        async for item in items:
            if isinstance(item, Finished):
                finished = item
                break
            yield item
    yield Answered(
        sources=[Source.of(n, r) for n, r in enumerate(results, start=1)],
        finish_reason=finished.finish_reason if finished else "stop",
    )


def with_citations(text: str, sources: list[Source], source_link: Any) -> Markup:
    """The answer, escaped, its ``[n]`` made links to source ``n`` (when there is one)."""
    numbers = {s.number: s for s in sources}
    out = []
    last = 0
    for match in _CITATION.finditer(text):
        source = numbers.get(int(match.group(1)))
        if source is None:
            continue
        out.append(escape(text[last : match.start()]))
        out.append(source_link(source))
        last = match.end()
    out.append(escape(text[last:]))
    return Markup("").join(out)
