"""The TCK's callback HTTP server, as tck-common builds it (``SystemBootstrapExtension``
``DispatchingHandler``; ``/work/notes/dsp-tck.md`` §2.2): every message the node sends goes to
one handler registered for a regex of the *whole* path; a handler serves once and is removed;
a message no handler is registered for (unexpected, early or duplicated) gets
``404 No handler registered on this endpoint``. The HTTP method is not checked; a trailing ``/``
is stripped; answers carry no ``Content-Type``.

Each case records what arrived. A 404'd message that the node later delivers again, once the
TCK has registered its handler, is a retry and is forgiven (the TCK needs those: §2.4); one that
is never taken is *unexpected*, and the case fails.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.tck.wire import problems

WAIT = 15.0  # dataspacetck.dsp.default.wait, in seconds


@dataclass
class Received:
    """One request from the node: what it sent, what the TCK made of it, what it answered."""

    method: str
    path: str
    body: Any
    problems: list[str]
    status: int = 0
    between_cases: bool = False
    at: float = field(default_factory=time.monotonic)

    @property
    def kind(self) -> str | None:
        return self.body.get("@type") if isinstance(self.body, dict) else None

    def same_message(self, other: Received) -> bool:
        """``other`` is this message again (a retry): same path, type and pids."""
        keys = ("@type", "providerPid", "consumerPid")
        mine, theirs = self.body, other.body
        return (
            self.path == other.path
            and isinstance(mine, dict)
            and isinstance(theirs, dict)
            and all(mine.get(k) == theirs.get(k) for k in keys)
        )

    def __str__(self) -> str:
        text = json.dumps(self.body)[:600] if self.body is not None else "(no body)"
        late = " [arrived between cases]" if self.between_cases else ""
        return f"{self.method} {self.path} -> {self.status}{late}: {text}"


class Refused(Exception):
    """The TCK's handler throws on this message (schema, state machine, wrong ids): the
    answer it gives, and why."""

    def __init__(self, reason: str, status: int, body: dict[str, Any] | None = None) -> None:
        super().__init__(reason)
        self.reason, self.status, self.body = reason, status, body


Reply = tuple[int, dict[str, Any] | None]


class Expectation:
    """A registered handler: ``handle`` takes the message (or raises :class:`Refused`) and
    returns the TCK's answer; :meth:`wait` is the pipeline's wait step."""

    def __init__(self, description: str, path: str, handle: Callable[[Received], Reply]) -> None:
        self.description = description
        self.pattern = re.compile(path)
        self._handle = handle
        self._done = threading.Event()
        self.received: Received | None = None
        self.failure: str | None = None
        self._callbacks: Callbacks | None = None

    def take(self, received: Received) -> Reply:
        self.received = received
        try:
            return self._handle(received)
        except Refused as exc:
            self.failure = (
                f"the TCK refused the node's {self.description}: {exc.reason}\n  {received}"
            )
            return exc.status, exc.body
        finally:
            self._done.set()

    def wait(self, timeout: float = WAIT) -> dict[str, Any]:
        """The message this handler took; fails if it was refused or did not come in time."""
        if not self._done.wait(timeout):
            seen = self._callbacks.unexpected_now() if self._callbacks else []
            listing = "".join(f"\n  {r}" for r in seen) or " none"
            raise AssertionError(
                f"no {self.description} on {self.pattern.pattern} within {timeout:.0f} s; "
                f"unexpected messages so far:{listing}"
            )
        if self.failure:
            raise AssertionError(self.failure)
        assert self.received is not None
        body: dict[str, Any] = self.received.body
        return body

    @property
    def done(self) -> bool:
        return self._done.is_set()


@dataclass
class _Case:
    name: str
    handlers: list[Expectation] = field(default_factory=list)
    all_handlers: list[Expectation] = field(default_factory=list)
    taken: list[Received] = field(default_factory=list)
    refused: list[Received] = field(default_factory=list)  # answered 404: no handler
    last_exchange: float | None = None  # when a DSP message last went either way


class Callbacks:
    """The callback server (loopback, a free port, no path prefix) and the current case."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._case: _Case | None = None
        self._between: list[Received] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    # -- cases -------------------------------------------------------------------------------
    def begin(self, name: str) -> None:
        with self._lock:
            self._case = _Case(name, refused=list(self._between))
            self._between.clear()

    def end(self) -> None:
        with self._lock:
            self._case = None

    def exchanged(self) -> None:
        """A DSP message went to or came from the node, now."""
        with self._lock:
            if self._case is not None:
                self._case.last_exchange = time.monotonic()

    def quiet_since(self) -> float | None:
        """When the current case last exchanged a DSP message (``None``: never)."""
        with self._lock:
            return self._case.last_exchange if self._case else None

    def register(self, expectation: Expectation) -> Expectation:
        with self._lock:
            assert self._case is not None, "register handlers inside a case"
            expectation._callbacks = self
            self._case.handlers.append(expectation)
            self._case.all_handlers.append(expectation)
        return expectation

    def unexpected_now(self) -> list[Received]:
        """404'd messages of this case that no later delivery redeemed."""
        with self._lock:
            case = self._case
            if case is None:
                return []
            return [r for r in case.refused if not any(t.same_message(r) for t in case.taken)]

    def loose_ends(self) -> list[str]:
        """Everything wrong with the case so far, beyond what its wait steps raised."""
        found = [f"unexpected message (answered 404): {r}" for r in self.unexpected_now()]
        with self._lock:
            case = self._case
            handlers = list(case.all_handlers) if case else []
            received = (case.taken + case.refused) if case else []
        for handler in handlers:
            if not handler.done:
                found.append(f"harness: the case never received its {handler.description}")
            elif handler.failure:
                found.append(handler.failure)
        for r in received:
            found.extend(f"invalid message: {p}\n  {r}" for p in r.problems)
        return list(dict.fromkeys(found))

    # -- dispatch ----------------------------------------------------------------------------
    def dispatch(self, method: str, path: str, raw: bytes) -> tuple[int, bytes]:
        path = path.split("?", 1)[0]
        if len(path) > 1:
            path = path.rstrip("/")
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        received = Received(method, path, body, problems(body))
        with self._lock:
            case = self._case
            if case is not None:
                case.last_exchange = received.at
            handler = None
            if case is not None:
                handler = next((h for h in case.handlers if h.pattern.fullmatch(path)), None)
                if handler is not None:
                    case.handlers.remove(handler)
                    case.taken.append(received)
        if handler is None:
            received.status = 404
            with self._lock:
                if case is None:
                    received.between_cases = True
                    self._between.append(received)
                else:
                    case.refused.append(received)
            return 404, b"No handler registered on this endpoint"
        status, answer = handler.take(received)
        received.status = status
        return status, json.dumps(answer).encode() if answer is not None else b""


def _handler_for(callbacks: Callbacks) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            status, payload = callbacks.dispatch(self.command, self.path, self._body())
            self.send_response(status)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_POST = do_GET = do_PUT = do_DELETE = _serve

        def _body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                chunks = []
                while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
                self.rfile.readline()
                return b"".join(chunks)
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler
