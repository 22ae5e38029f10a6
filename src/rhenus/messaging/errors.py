"""Matrix errors: ``{"errcode", "error"}`` on every ``/_matrix`` route.

Spec: Client-Server API, "API standards" → "Standard error response" and "Common error codes".
Services raise :class:`MatrixError` with the protocol's own code; anything else that fails on a
Matrix path (validation, unknown route, body limits, problems raised by other domains' services)
is translated by :func:`render_matrix_error`, registered in ``core.errors.ERROR_RENDERERS``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from rhenus.core.errors import Problem

MATRIX_PREFIX = "/_matrix"


class MatrixError(Problem):
    """An error with a Matrix ``errcode``; ``extra`` fields go into the body as they are."""

    def __init__(self, status: int, errcode: str, error: str, **extra: Any) -> None:
        super().__init__(error, status=status, kind=errcode, title=errcode)
        self.errcode = errcode
        self.fields = extra
        if errcode == "M_LIMIT_EXCEEDED" and "retry_after_ms" in extra:
            self.headers["Retry-After"] = str(max(1, int(extra["retry_after_ms"]) // 1000))


def forbidden(error: str) -> MatrixError:
    return MatrixError(403, "M_FORBIDDEN", error)


def not_found(error: str) -> MatrixError:
    return MatrixError(404, "M_NOT_FOUND", error)


def bad_json(error: str) -> MatrixError:
    return MatrixError(400, "M_BAD_JSON", error)


def invalid_param(error: str) -> MatrixError:
    return MatrixError(400, "M_INVALID_PARAM", error)


def matrix_response(status: int, errcode: str, error: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"errcode": errcode, "error": error, **extra}, status_code=status)


async def on_matrix_error(request: Request, exc: Exception) -> JSONResponse:
    """The exception handler for :class:`MatrixError` (it keeps the extra body fields)."""
    assert isinstance(exc, MatrixError)
    return matrix_response(exc.status, exc.errcode, exc.detail, **exc.fields)


# Problem kinds (core.errors) → (Matrix status, errcode).
_KINDS: dict[str, tuple[int, str]] = {
    "malformed-json": (400, "M_NOT_JSON"),
    "unsupported-media-type": (400, "M_NOT_JSON"),
    "body-too-large": (413, "M_TOO_LARGE"),
    "too-many-requests": (429, "M_LIMIT_EXCEEDED"),
    "forbidden": (403, "M_FORBIDDEN"),
    "not-found": (404, "M_NOT_FOUND"),
    "unauthorized": (401, "M_UNKNOWN_TOKEN"),
    "method-not-allowed": (405, "M_UNRECOGNIZED"),
    "conflict": (409, "M_UNKNOWN"),
    "bad-request": (400, "M_UNKNOWN"),
}


def render_matrix_error(status: int, kind: str, detail: str, request: Request) -> JSONResponse:
    """An error renderer (``core.errors.ErrorRenderer``) for the ``/_matrix`` prefix."""
    if kind.startswith("M_"):
        return matrix_response(status, kind, detail)
    if status == 404 and request.scope.get("route") is None:
        # Spec: an unknown endpoint answers 404 M_UNRECOGNIZED.
        return matrix_response(404, "M_UNRECOGNIZED", "unrecognized request")
    if kind == "invalid-request":
        # FastAPI's validation: a body field is M_BAD_JSON, a path or query one M_INVALID_PARAM.
        code = "M_BAD_JSON" if detail.startswith("body") else "M_INVALID_PARAM"
        return matrix_response(400, code, detail)
    status, code = _KINDS.get(kind, (status if status >= 400 else 500, "M_UNKNOWN"))
    return matrix_response(status, code, detail)


class MatrixBodyLimit:
    """Refuses announced bodies over the limit on Matrix paths with ``M_TOO_LARGE``.

    Sits in front of ``core.http.BodyLimitMiddleware``, which answers such requests with a
    problem document before any route (and so before the error renderers) is reached; bodies
    that grow past the limit while streamed reach the renderers and get the same answer.
    """

    def __init__(self, app: ASGIApp, limit_for: Callable[[str], int]) -> None:
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(MATRIX_PREFIX):
            limit = self.limit_for(scope["path"])
            declared = dict(scope["headers"]).get(b"content-length", b"")
            if declared.isdigit() and int(declared) > limit:
                body = {"errcode": "M_TOO_LARGE", "error": f"the body is over {limit} bytes"}
                response = JSONResponse(body, status_code=413)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
