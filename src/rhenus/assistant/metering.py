"""Metering of the ``/v1`` model routes: admit a call under the caller's quotas, record its usage.

A route takes a :class:`Meter` (``MeterDep``), calls :meth:`Meter.begin` just before the model
(429 if a quota is spent; a ``pending`` record otherwise), then runs the model through the
:class:`Call` it got back — :meth:`Call.complete`, :meth:`Call.embed` or :meth:`Call.stream` —
which completes the record when the call ends: tokens, duration, time to first token
(streams), and how it ended (``ok``, ``cancelled`` when the client went away, or the error).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Annotated, ParamSpec, TypeVar

import anyio
from fastapi import Depends, Request
from sqlalchemy import delete, update

from rhenus.accounts.deps import CurrentUser
from rhenus.accounts.service import Principal
from rhenus.assistant import quotas
from rhenus.assistant.backends import Finished
from rhenus.assistant.errors import SERVER_ERROR, OpenAIError
from rhenus.assistant.service import Assistant
from rhenus.assistant.usage_models import CANCELLED, OK, PENDING, AssistantUsage
from rhenus.core.db import utcnow
from rhenus.core.node import Node, NodeDep

log = logging.getLogger("rhenus.assistant.metering")

P = ParamSpec("P")
T = TypeVar("T")
CLIENT_CLOSED = 499  # nginx's status for a client that closed the connection first


class Call:
    """One admitted call; completes its usage record exactly once, when it ends."""

    def __init__(self, node: Node, record_id: int) -> None:
        self.node = node
        self.record_id = record_id
        self.started = time.monotonic()
        self.first_token: float | None = None
        self.pieces = 0
        self._ended = False

    async def complete(self, answer: Awaitable[tuple[str, Finished]]) -> tuple[str, Finished]:
        """Await a whole chat answer and record its tokens."""
        try:
            text, finished = await answer
        except BaseException as exc:
            await self.fail(exc)
            raise
        await self.end(finished.prompt_tokens, finished.completion_tokens)
        return text, finished

    async def embed(self, answer: Awaitable[tuple[T, int]]) -> tuple[T, int]:
        """Await embeddings and record the tokens read."""
        try:
            vectors, tokens = await answer
        except BaseException as exc:
            await self.fail(exc)
            raise
        await self.end(tokens, 0)
        return vectors, tokens

    async def stream(
        self,
        start: Callable[P, AsyncGenerator[str | Finished, None]],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> AsyncGenerator[str | Finished, None]:
        """``start(*args)``'s pieces, passed on; recorded when they end, however they end.

        ``start`` is called at the first ``anext``, so that its own refusals (a model of the
        wrong type) are recorded too.
        """
        finished: Finished | None = None
        try:
            async with contextlib.aclosing(start(*args, **kwargs)) as items:
                async for item in items:
                    if isinstance(item, Finished):
                        finished = item
                    else:
                        self.first_token = self.first_token or time.monotonic()
                        self.pieces += 1
                    yield item
        except BaseException as exc:
            # GeneratorExit after Finished is the normal end: the events are all sent.
            if finished is None:
                await self.fail(exc)
            raise
        finally:
            if finished is not None:
                await self.end(finished.prompt_tokens, finished.completion_tokens)

    async def fail(self, exc: BaseException) -> None:
        """Record how the call failed; an exception that is no error is a client gone."""
        if isinstance(exc, OpenAIError):
            status, http = exc.code or exc.type, exc.status
        elif isinstance(exc, (GeneratorExit, anyio.get_cancelled_exc_class())):
            status, http = CANCELLED, CLIENT_CLOSED
        else:
            status, http = SERVER_ERROR, 500
        # Tokens already streamed are spent; the prompt's count is only known at the end.
        await self._write(status, http, 0, self.pieces)

    async def withdraw(self) -> None:
        """Forget the call: it never reached the model (a search found nothing to answer from),
        so it counts for no quota and leaves no record."""
        if self._ended:
            return
        self._ended = True
        with anyio.CancelScope(shield=True):
            async with self.node.db.transaction() as session:
                await session.execute(
                    delete(AssistantUsage).where(AssistantUsage.id == self.record_id)
                )

    async def end(self, prompt_tokens: int, completion_tokens: int) -> None:
        await self._write(OK, 200, prompt_tokens, completion_tokens)

    async def _write(self, status: str, http: int, prompt: int, completion: int) -> None:
        if self._ended:
            return
        self._ended = True
        now = time.monotonic()
        values = {
            "status": status,
            "http_status": http,
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "duration_ms": round((now - self.started) * 1000),
            "time_to_first_token_ms": None
            if self.first_token is None
            else round((self.first_token - self.started) * 1000),
        }
        # Shielded: a client that disconnects cancels the request's task, and its record
        # must still be written (anyio re-cancels every await of a cancelled scope).
        with anyio.CancelScope(shield=True):
            try:
                async with self.node.db.transaction() as session:
                    await session.execute(
                        update(AssistantUsage)
                        .where(AssistantUsage.id == self.record_id)
                        .values(**values)
                    )
            except Exception:
                # The answer is given; a lost record must not turn it into an error.
                log.exception("could not complete usage record %s", self.record_id)


class Meter:
    """The caller's side of the quotas: admits calls and opens their usage records."""

    def __init__(self, node: Node, assistant: Assistant, principal: Principal) -> None:
        self.node = node
        self.assistant = assistant
        self.principal = principal

    async def begin(self, alias: str, endpoint: str, *, stream: bool = False) -> Call:
        """Admit one call of ``alias`` now, or raise OpenAI's 429 with ``Retry-After``."""
        served = self.assistant.get(alias)  # an unknown model is a 404, counted nowhere
        user_id = self.principal.user_id
        async with self.node.db.transaction() as session:
            await quotas.lock_user(session, user_id)
            now = utcnow()  # after the lock: the window ends when this admission is decided
            limits = await quotas.effective_limits(
                session, settings=self.node.settings, user_id=user_id, model=served.config
            )
            await quotas.admit(session, user_id=user_id, alias=alias, limits=limits, now=now)
            record = AssistantUsage(
                user_id=user_id,
                model=alias,
                endpoint=endpoint,
                stream=stream,
                prompt_tokens=0,
                completion_tokens=0,
                status=PENDING,
                created_at=now,
            )
            session.add(record)
            await session.flush()
            record_id = record.id
        return Call(self.node, record_id)


async def _meter(request: Request, node: NodeDep, principal: CurrentUser) -> Meter:
    return Meter(node, request.app.state.assistant, principal)


MeterDep = Annotated[Meter, Depends(_meter)]
