"""Errors as RFC 9457 problem details (``application/problem+json``).

Services raise :class:`Problem` (or a subclass); the handlers installed by
:func:`install_problem_handlers` turn it, FastAPI's validation errors and Starlette's HTTP errors
into problem documents. Domains that speak a protocol with its own error shape (Matrix, OpenAI,
DSP) register their own handlers for their routes through :data:`ERROR_RENDERERS`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("rhenus.errors")

PROBLEM_JSON = "application/problem+json"
PROBLEM_BASE = "https://rhenus.eu/problems/"


class Problem(Exception):
    """An error the client can act on. ``kind`` becomes the problem ``type`` URI."""

    status: int = 400
    kind: str = "bad-request"
    title: str = "Bad request"

    def __init__(
        self,
        detail: str,
        *,
        status: int | None = None,
        kind: str | None = None,
        title: str | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        if status is not None:
            self.status = status
        if kind is not None:
            self.kind = kind
        if title is not None:
            self.title = title
        self.extra = extra
        self.headers: dict[str, str] = {}


class NotFound(Problem):
    status, kind, title = 404, "not-found", "Not found"


class Conflict(Problem):
    status, kind, title = 409, "conflict", "Conflict"


class Unauthorized(Problem):
    status, kind, title = 401, "unauthorized", "Authentication required"

    def __init__(self, detail: str = "missing or invalid credentials", **extra: Any) -> None:
        super().__init__(detail, **extra)
        self.headers["WWW-Authenticate"] = "Bearer"


class Forbidden(Problem):
    status, kind, title = 403, "forbidden", "Forbidden"


class TooManyRequests(Problem):
    status, kind, title = 429, "too-many-requests", "Too many requests"

    def __init__(self, detail: str, *, retry_after: int, **extra: Any) -> None:
        super().__init__(detail, **extra)
        self.headers["Retry-After"] = str(retry_after)


def problem_response(
    status: int,
    title: str,
    detail: str,
    *,
    kind: str = "about:blank",
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    """A problem+json response; ``kind`` is a short slug made into a type URI."""
    body: dict[str, Any] = {
        "type": kind if kind == "about:blank" or ":" in kind else PROBLEM_BASE + kind,
        "title": title,
        "status": status,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


# Path prefix -> renderer(status, code, message, request) for protocols with their own error shape.
ErrorRenderer = Callable[[int, str, str, Request], JSONResponse]
ERROR_RENDERERS: dict[str, ErrorRenderer] = {}


def render_error(
    request: Request, status: int, kind: str, title: str, detail: str, **extra: Any
) -> JSONResponse:
    """Render an error in the shape of the protocol the path belongs to (default RFC 9457)."""
    for prefix, renderer in ERROR_RENDERERS.items():
        if request.url.path.startswith(prefix):
            return renderer(status, kind, detail, request)
    return problem_response(status, title, detail, kind=kind, instance=request.url.path, **extra)


_STATUS_KINDS = {
    400: ("bad-request", "Bad request"),
    401: ("unauthorized", "Authentication required"),
    403: ("forbidden", "Forbidden"),
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    406: ("not-acceptable", "Not acceptable"),
    409: ("conflict", "Conflict"),
    413: ("body-too-large", "Request body too large"),
    415: ("unsupported-media-type", "Unsupported media type"),
    422: ("invalid-request", "Invalid request"),
    429: ("too-many-requests", "Too many requests"),
}


def install_problem_handlers(app: FastAPI) -> None:
    """Make every error leave the app as a problem document (or its protocol's shape)."""

    async def on_problem(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, Problem)
        response = render_error(request, exc.status, exc.kind, exc.title, exc.detail, **exc.extra)
        response.headers.update(exc.headers)
        return response

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        kind, title = _STATUS_KINDS.get(exc.status_code, ("about:blank", "Error"))
        response = render_error(request, exc.status_code, kind, title, str(exc.detail))
        if exc.headers:
            response.headers.update(exc.headers)
        return response

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = exc.errors()
        if any(err.get("type") == "json_invalid" for err in errors):
            first = next(err for err in errors if err.get("type") == "json_invalid")
            detail = f"the request body is not valid JSON: {first.get('ctx', {}).get('error', '')}"
            return render_error(request, 400, "malformed-json", "Malformed JSON", detail.strip())
        fields = [
            {"field": ".".join(str(p) for p in err.get("loc", ())), "message": err.get("msg", "")}
            for err in errors
        ]
        detail = "; ".join(f"{f['field']}: {f['message']}" for f in fields)
        return render_error(
            request, 422, "invalid-request", "Invalid request", detail, errors=fields
        )

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        # Logged with its traceback; the client learns nothing about internals.
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return render_error(
            request, 500, "internal-error", "Internal error", "an unexpected error occurred"
        )

    app.add_exception_handler(Problem, on_problem)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(Exception, on_unexpected)
