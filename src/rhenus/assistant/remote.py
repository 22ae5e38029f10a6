"""Chat models served by other OpenAI-compatible servers (vLLM, llama.cpp's server, another
Albert), by URL: each URL in turn, with timeouts and retries, the next one as fallback.

The answer is always asked for as a stream, so that pieces reach the client as they come. A
server that fails before its first piece (refused connection, timeout, 429 or 5xx) is retried,
then the next URL is tried; one that fails after it cannot be replaced without repeating text,
so the stream ends with an error. Runs in the service's worker thread like the local backend.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx

from rhenus.assistant.backends import BackendUnavailable, ChatParams, Finished

_RETRY_STATUSES = {408, 409, 429, 500, 502, 503, 504}


class RemoteRefused(Exception):
    """The remote server refused the request itself (a 4xx other than a retryable one)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class _Retryable(Exception):
    pass


class RemoteChat:
    """OpenAI-compatible servers by URL (the :class:`~rhenus.assistant.backends.ChatBackend`)."""

    def __init__(
        self,
        *,
        urls: list[str],
        model: str,
        api_key_env: str,
        timeout: float,
        retries: int,
        context_size: int,
    ) -> None:
        self.urls = [u.rstrip("/") for u in urls]
        self.model = model
        self.api_key_env = api_key_env
        self.timeout = httpx.Timeout(timeout, connect=min(timeout, 5.0))
        self.retries = retries
        self.context_size = context_size

    def load(self) -> None:
        """Nothing to load: the servers hold the weights."""

    def _headers(self) -> dict[str, str]:
        key = os.environ.get(self.api_key_env, "") if self.api_key_env else ""
        return {"Authorization": f"Bearer {key}"} if key else {}

    def _body(self, params: ChatParams) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": params.messages,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        optional = {
            "max_tokens": params.max_tokens,
            "stop": params.stop or None,
            "seed": params.seed,
            "frequency_penalty": params.frequency_penalty or None,
            "presence_penalty": params.presence_penalty or None,
        }
        body.update({k: v for k, v in optional.items() if v is not None})
        return body

    def generate(self, params: ChatParams, cancel: threading.Event) -> Iterator[str | Finished]:
        body = self._body(params)
        failures: list[str] = []
        for url in self.urls:
            for attempt in range(self.retries + 1):
                if cancel.is_set():
                    return
                started = [False]
                try:
                    yield from self._ask(url, body, cancel, started)
                    return
                except (httpx.TransportError, _Retryable) as exc:
                    if started[0]:
                        raise BackendUnavailable(
                            f"{url} failed in the middle of the answer"
                        ) from exc
                    failures.append(f"{url}: {exc or type(exc).__name__}")
                    if attempt < self.retries:
                        time.sleep(min(0.25 * 2**attempt, 2.0))
        raise BackendUnavailable("no server answered (" + "; ".join(failures) + ")")

    def _ask(
        self, url: str, body: dict[str, Any], cancel: threading.Event, started: list[bool]
    ) -> Iterator[str | Finished]:
        pieces = 0
        reason = "stop"
        usage: dict[str, Any] | None = None
        with (
            httpx.Client(timeout=self.timeout) as http,
            http.stream(
                "POST", f"{url}/chat/completions", json=body, headers=self._headers()
            ) as response,
        ):
            if response.status_code in _RETRY_STATUSES:
                raise _Retryable(f"HTTP {response.status_code}")
            if response.status_code >= 400:
                response.read()
                raise RemoteRefused(response.status_code, _message(response))
            for line in response.iter_lines():
                if cancel.is_set():
                    return
                if not line.startswith("data:"):
                    continue
                data = line.removeprefix("data:").strip()
                if data == "[DONE]":
                    break
                event = json.loads(data)
                if "error" in event:
                    # Before the first piece another try may do better; after it, it is over.
                    raise _Retryable(f"the server reported an error: {event['error']}")
                usage = event.get("usage") or usage
                for choice in event.get("choices") or []:
                    text = (choice.get("delta") or {}).get("content")
                    if text:
                        started[0] = True
                        pieces += 1
                        yield text
                    reason = choice.get("finish_reason") or reason
        # Servers that send no usage (llama-cpp-python's) stream one token per piece.
        prompt = int((usage or {}).get("prompt_tokens", 0))
        completion = int((usage or {}).get("completion_tokens", pieces))
        yield Finished("length" if reason == "length" else "stop", prompt, completion)


def _message(response: httpx.Response) -> str:
    try:
        error = response.json().get("error")
        if isinstance(error, dict):
            return str(error.get("message", response.text))
        return str(error or response.text)
    except (ValueError, AttributeError):
        return response.text[:500]
