"""HTTP conventions shared by every route: request ids, access logs, metrics, body limits, JSON.

The middlewares are plain ASGI so that streaming uploads and SSE pass through untouched.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter, params
from fastapi.routing import APIRoute
from prometheus_client import Counter, Histogram
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rhenus.core.errors import render_error
from rhenus.core.logs import request_id

log = logging.getLogger("rhenus.http")

REQUESTS = Counter(
    "rhenus_http_requests_total", "HTTP requests served", ["method", "route", "status"]
)
LATENCY = Histogram(
    "rhenus_http_request_duration_seconds", "Time to the end of the response", ["method", "route"]
)

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_BODY_METHODS = {"POST", "PUT", "PATCH"}


class RequestContextMiddleware:
    """Gives each request an id (``X-Request-ID``), logs it as JSON and counts it in /metrics."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        rid = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        token = request_id.set(rid)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", rid.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", "unmatched")
            REQUESTS.labels(scope["method"], route, str(status)).inc()
            LATENCY.labels(scope["method"], route).observe(elapsed)
            log.info(
                "%s %s %s",
                scope["method"],
                scope["path"],
                status,
                extra={"status": status, "duration_ms": round(elapsed * 1000, 1), "route": route},
            )
            request_id.reset(token)


def _too_large(limit: int) -> HTTPException:
    return HTTPException(413, f"the request body is larger than the limit of {limit} bytes")


class BodyLimitMiddleware:
    """Refuses request bodies over a limit, whether announced (Content-Length) or streamed.

    ``limit_for(path)`` gives the limit per path, so upload routes can take more than JSON routes.
    """

    def __init__(self, app: ASGIApp, limit_for: Callable[[str], int]) -> None:
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None:
            if not declared.isdigit():
                await _reject(scope, receive, send, 400, "Content-Length is not a number")
                return
            if int(declared) > limit:
                await _reject(scope, receive, send, 413, str(_too_large(limit).detail))
                return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # FastAPI re-raises HTTPException from body reading; handlers render it.
                    raise _too_large(limit)
            return message

        await self.app(scope, counting_receive, send)


async def _reject(scope: Scope, receive: Receive, send: Send, status: int, detail: str) -> None:
    title = "Request body too large" if status == 413 else "Bad request"
    slug = "body-too-large" if status == 413 else "bad-request"
    # In the error shape of the protocol the path belongs to (RFC 9457 by default).
    response = render_error(Request(scope), status, slug, title, detail)
    await response(scope, receive, send)


def _is_json_media(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


class JSONRoute(APIRoute):
    """A route that refuses a body sent with a non-JSON content type (415) when it expects JSON.

    FastAPI would otherwise try to parse any body as JSON, or hand back a confusing 422.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        field = self.body_field
        expects_json = field is not None and not isinstance(field.field_info, params.Form)
        if not expects_json:
            return handler

        async def checked(request: Request) -> Response:
            content_type = request.headers.get("content-type", "")
            if (
                request.method in _BODY_METHODS
                and content_type
                and not _is_json_media(content_type)
            ):
                raise HTTPException(
                    415, f"this endpoint takes application/json, not {content_type.split(';')[0]}"
                )
            return await handler(request)

        return checked


def api_router(**kwargs: Any) -> APIRouter:
    """An APIRouter whose routes apply the JSON content-type rule. Use it for every domain."""
    return APIRouter(route_class=JSONRoute, **kwargs)
