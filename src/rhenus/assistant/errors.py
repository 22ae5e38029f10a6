"""OpenAI's error shape on every ``/v1`` route: ``{"error": {"message", "type", "param", "code"}}``.

Spec: OpenAI API reference, "Error codes" (401 invalid_api_key, 404 model_not_found, 400
invalid_request_error, 429, 500/503 server errors). Services raise :class:`OpenAIError`;
whatever else fails on a ``/v1`` path (authentication, body limits, unknown routes, malformed
JSON) is translated by :func:`render_openai_error`, registered in ``core.errors.ERROR_RENDERERS``.
Validation errors become 400 with ``param`` naming the field, through :class:`OpenAIRoute`.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from rhenus.core.errors import Problem
from rhenus.core.http import JSONRoute

OPENAI_PREFIX = "/v1/"

INVALID_REQUEST = "invalid_request_error"
SERVER_ERROR = "server_error"


class OpenAIError(Problem):
    """An error with OpenAI's ``type``, ``param`` and ``code``."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = INVALID_REQUEST,
        param: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message, status=status, kind=code or type, title=type)
        self.type = type
        self.param = param
        self.code = code


def model_not_found(model: str) -> OpenAIError:
    return OpenAIError(
        404,
        f"The model `{model}` does not exist or you do not have access to it.",
        param="model",
        code="model_not_found",
    )


def error_body(message: str, type: str, param: str | None, code: str | None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


def openai_response(
    status: int, message: str, type: str, param: str | None = None, code: str | None = None
) -> JSONResponse:
    return JSONResponse(error_body(message, type, param, code), status_code=status)


async def on_openai_error(request: Request, exc: Exception) -> JSONResponse:
    """The exception handler for :class:`OpenAIError`."""
    assert isinstance(exc, OpenAIError)
    response = openai_response(exc.status, exc.detail, exc.type, exc.param, exc.code)
    response.headers.update(exc.headers)
    return response


# Problem kinds (core.errors) -> (status, OpenAI type, OpenAI code).
_KINDS: dict[str, tuple[int, str, str | None]] = {
    "unauthorized": (401, INVALID_REQUEST, "invalid_api_key"),
    "forbidden": (403, "permission_error", None),
    "not-found": (404, INVALID_REQUEST, None),
    "method-not-allowed": (405, INVALID_REQUEST, None),
    "malformed-json": (400, INVALID_REQUEST, None),
    "unsupported-media-type": (415, INVALID_REQUEST, None),
    "body-too-large": (413, INVALID_REQUEST, "request_too_large"),
    "invalid-request": (400, INVALID_REQUEST, None),
    "bad-request": (400, INVALID_REQUEST, None),
    "conflict": (409, INVALID_REQUEST, None),
    "too-many-requests": (429, "rate_limit_error", "rate_limit_exceeded"),
}


def render_openai_error(status: int, kind: str, detail: str, request: Request) -> JSONResponse:
    """An error renderer (``core.errors.ErrorRenderer``) for the ``/v1`` prefix."""
    if status == 404 and request.scope.get("route") is None:
        message = f"Invalid URL ({request.method} {request.url.path})"
        return openai_response(404, message, INVALID_REQUEST, code="unknown_url")
    if kind == "malformed-json":
        detail = f"We could not parse the JSON body of your request. ({detail})"
    status, type_, code = _KINDS.get(kind, (status, SERVER_ERROR if status >= 500 else "", None))
    return openai_response(status, detail, type_ or INVALID_REQUEST, code=code)


def _param(loc: tuple[Any, ...]) -> str | None:
    """OpenAI's name of a field: ``messages.[0].role`` for body → messages → 0 → role."""
    parts = [f"[{p}]" if isinstance(p, int) else str(p) for p in loc[1:] if p is not None]
    # Union members appear in the location as their type names ("str", "list[str]").
    parts = [p for p in parts if not p.startswith(("str", "list[", "function-", "tagged-"))]
    return ".".join(parts) or None


def validation_error(exc: RequestValidationError) -> OpenAIError:
    """FastAPI's validation error as OpenAI's 400, naming the first offending parameter."""
    errors = exc.errors()
    broken = next((e for e in errors if e.get("type") == "json_invalid"), None)
    if broken is not None:
        reason = broken.get("ctx", {}).get("error", "")
        return OpenAIError(
            400, f"We could not parse the JSON body of your request. ({reason})".strip()
        )
    first = errors[0] if errors else {}
    loc = tuple(first.get("loc", ()))
    param = _param(loc)
    message = str(first.get("msg", "invalid request")).removeprefix("Value error, ")
    if first.get("type") == "missing":
        message = f"Missing required parameter: '{param}'."
    elif first.get("type") == "extra_forbidden":
        message = f"Unrecognized request argument supplied: {param}"
    elif param:
        message = f"Invalid value for '{param}': {message}"
    return OpenAIError(400, message, param=param)


class OpenAIRoute(JSONRoute):
    """A /v1 route: bodies that fail validation are OpenAI's 400, not FastAPI's 422."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def translated(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as exc:
                raise validation_error(exc) from None

        return translated
