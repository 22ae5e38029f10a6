"""The assistant's models by alias, each with its queue, and the calls the API makes on them.

A model answers one request at a time (llama.cpp's context is not shareable); the others wait
their turn in arrival order (``asyncio.Lock`` wakes its waiters first in, first out), at most
``assistant_max_waiting`` of them, after which the API answers 503. The backend's own work runs
in a worker thread so that the event loop keeps serving every other route meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from rhenus.assistant.backends import (
    BackendUnavailable,
    BadMessages,
    ChatBackend,
    ChatParams,
    EmbeddingBackend,
    Finished,
    PromptTooLong,
    resolve_path,
)
from rhenus.assistant.embeddings import UniversalSentenceEncoder
from rhenus.assistant.errors import SERVER_ERROR, OpenAIError, model_not_found
from rhenus.assistant.local import LlamaChat
from rhenus.assistant.remote import RemoteChat, RemoteRefused
from rhenus.config import AssistantModel

# numpy is imported where it is used: a node that never needs it is ~11 MiB smaller.
if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

T = TypeVar("T")


class ModelSlot:
    """One model's turn-taking: ``size`` requests at a time, FIFO, a bounded number waiting."""

    def __init__(self, max_waiting: int, size: int = 1) -> None:
        self.max_waiting = max_waiting
        self.waiting = 0
        # asyncio's Semaphore (like its Lock) wakes its waiters in arrival order.
        self._lock = asyncio.Semaphore(size)

    @asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        if self._lock.locked() and self.waiting >= self.max_waiting:
            error = OpenAIError(
                503,
                "The model is busy with other requests; retry in a moment.",
                type=SERVER_ERROR,
                code="overloaded",
            )
            error.headers["Retry-After"] = "1"
            raise error
        self.waiting += 1
        try:
            await self._lock.acquire()
        finally:
            self.waiting -= 1
        try:
            yield
        finally:
            self._lock.release()


@dataclass
class ServedModel:
    """A configured alias, its backend and its queue."""

    config: AssistantModel
    slot: ModelSlot
    created: int
    chat: ChatBackend | None = None
    embeddings: EmbeddingBackend | None = None


def _served(config: AssistantModel, max_waiting: int) -> ServedModel:
    served = ServedModel(config, ModelSlot(max_waiting, config.slots()), _created(config))
    if config.backend == "openai":
        served.chat = RemoteChat(
            urls=config.urls,
            model=config.remote_model or config.alias,
            api_key_env=config.api_key_env,
            timeout=config.timeout_seconds,
            retries=config.retries,
            context_size=config.context_size,
        )
    elif config.type == "chat":
        served.chat = LlamaChat(
            path=config.path,
            context_size=config.context_size,
            threads=config.threads,
            batch_threads=config.batch_threads,
        )
    else:
        served.embeddings = UniversalSentenceEncoder(path=config.path, threads=config.threads)
    return served


def _created(config: AssistantModel) -> int:
    # OpenAI's ``created``: here when the weights were written (0 if they are missing).
    if config.backend != "local":
        return 0
    try:
        return int(resolve_path(config.path).stat().st_mtime)
    except BackendUnavailable:
        return 0


class Assistant:
    """The models of one node, by alias."""

    def __init__(self, models: list[AssistantModel], *, owner: str, max_waiting: int) -> None:
        self.owner = owner
        self.models = {m.alias: _served(m, max_waiting) for m in models}

    def get(self, alias: str) -> ServedModel:
        """The model served under ``alias``; 404 ``model_not_found`` otherwise."""
        served = self.models.get(alias)
        if served is None:
            raise model_not_found(alias)
        return served

    def _of_type(self, alias: str, kind: str) -> ServedModel:
        served = self.get(alias)
        if served.config.type != kind:
            raise OpenAIError(
                400,
                f"The model `{alias}` is a {served.config.type} model; use a {kind} model.",
                param="model",
                code="model_not_supported",
            )
        return served

    def stream_chat(self, alias: str, params: ChatParams) -> AsyncGenerator[str | Finished, None]:
        """Pieces of the answer as they are generated, then one :class:`Finished`."""
        served = self._of_type(alias, "chat")
        backend = served.chat
        assert backend is not None
        return self._streamed(served.slot, lambda cancel: backend.generate(params, cancel))

    async def complete_chat(self, alias: str, params: ChatParams) -> tuple[str, Finished]:
        """The whole answer and how it finished."""
        pieces: list[str] = []
        async with contextlib.aclosing(self.stream_chat(alias, params)) as items:
            async for item in items:
                if isinstance(item, Finished):
                    return "".join(pieces), item
                pieces.append(item)
        raise AssertionError("a generation always ends with Finished")

    async def embed(self, alias: str, texts: list[str]) -> tuple[NDArray[np.float32], int]:
        """One vector per text, and the number of tokens read."""
        served = self._of_type(alias, "embeddings")
        backend = served.embeddings
        assert backend is not None
        async with served.slot.turn():
            return await _in_thread(lambda: backend.embed(texts))

    async def _streamed(
        self, slot: ModelSlot, produce: Callable[[threading.Event], Iterator[T]]
    ) -> AsyncGenerator[T, None]:
        # aclosing: leaving early must stop the worker thread before the turn passes on.
        async with slot.turn(), contextlib.aclosing(_iterate_in_thread(produce)) as items:
            async for item in items:
                yield item


async def _in_thread(call: Callable[[], T]) -> T:
    try:
        return await asyncio.to_thread(call)
    except BackendUnavailable as exc:
        raise unavailable(exc) from exc


def unavailable(exc: BackendUnavailable) -> OpenAIError:
    return OpenAIError(503, f"The model cannot be served: {exc}", type=SERVER_ERROR)


def refused(exc: RemoteRefused) -> OpenAIError:
    """A remote server's refusal: the client's fault if it was the request, ours otherwise."""
    if exc.status in (400, 413, 422):
        return OpenAIError(400, f"The model's server refused the request: {exc}")
    return OpenAIError(503, f"The model's server refused us (HTTP {exc.status})", type=SERVER_ERROR)


def too_long(exc: PromptTooLong) -> OpenAIError:
    return OpenAIError(400, str(exc), param="messages", code="context_length_exceeded")


async def _iterate_in_thread(
    produce: Callable[[threading.Event], Iterator[T]],
) -> AsyncGenerator[T, None]:
    """Run a blocking generator in a worker thread and yield its items here.

    Leaving early (a client that disconnects) sets the event the generator watches, and waits
    for the thread to stop before the model's turn is given to the next request.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
    cancel = threading.Event()

    def put(kind: str, value: Any) -> None:
        try:
            loop.call_soon_threadsafe(queue.put_nowait, (kind, value))
        except RuntimeError:  # the loop is gone: nobody is listening any more
            cancel.set()

    def run() -> None:
        items = produce(cancel)
        try:
            for item in items:
                put("item", item)
                if cancel.is_set():
                    break
        except Exception as exc:
            put("error", exc)
        else:
            put("end", None)
        finally:
            # A generator left early runs its own cleanup (the model's lock) here, in this thread.
            close = getattr(items, "close", None)
            if close is not None:
                close()

    worker = loop.run_in_executor(None, run)
    try:
        while True:
            kind, value = await queue.get()
            if kind == "end":
                return
            if kind == "error":
                if isinstance(value, BackendUnavailable):
                    raise unavailable(value) from value
                if isinstance(value, PromptTooLong):
                    raise too_long(value) from value
                if isinstance(value, BadMessages):
                    raise OpenAIError(400, str(value), param="messages") from value
                if isinstance(value, RemoteRefused):
                    raise refused(value) from value
                raise value
            yield value
    finally:
        cancel.set()
        await asyncio.shield(worker)
