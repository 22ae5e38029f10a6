"""Wake-ups across the node's worker processes, through Redis pub/sub (``RHENUS_REDIS_URL``).

A long-polling ``/sync`` waits in the worker process that took its request; the event that
should end the wait may be committed by any other worker. Each worker therefore publishes the
users of every wake-up of its :class:`~rhenus.messaging.events.Notifier` on one channel of the
node (``rhenus:<node_name>:matrix:wake``), after the commit, and wakes the syncs parked in it
for the wake-ups the other workers publish. A message is ``{"from": <worker>, "users": [...]}``:
which users may have something new, not what — a woken sync reads every stream again from its
token (events, device lists, to-device, and whatever else ``sync`` reads), so the kinds need no
telling apart.

- Local syncs are woken at once, by the worker itself; a worker skips its own messages when
  they come back from Redis (``from``), so no sync is woken twice or waits for a round trip.
- Publishing never holds up a request: :meth:`Fanout.relay` puts the wake-up in a bounded
  queue and returns; one background task publishes it, joining the wake-ups that queued up
  meanwhile into one message.
- Redis being down does not break sending: the wake-ups are dropped (counted and logged, once
  per outage and then every minute); syncs parked in other workers return at their timeout, and
  the next sync of each client sees everything, since the data is in the database. The
  subscription reconnects with exponential backoff (0.5 s doubling to 30 s, with jitter) and,
  once subscribed again, wakes every sync parked in its worker once: wake-ups published while
  it was away are lost, and a sync woken for nothing simply waits again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import secrets
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from prometheus_client import Counter, Gauge

from rhenus.messaging.events import Notifier

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.asyncio.client import PubSub

log = logging.getLogger("rhenus.messaging.fanout")

QUEUE_SIZE = 10_000  # wake-ups waiting for the publisher; past that they are dropped
CONNECT_TIMEOUT = 2.0
PUBLISH_TIMEOUT = 2.0
KEEPALIVE = 10.0  # seconds of silence on the subscription before it is pinged
DEAD_AFTER = 3 * KEEPALIVE  # seconds of silence after which it is taken as lost
BACKOFF_FIRST, BACKOFF_MAX = 0.5, 30.0
STABLE_AFTER = 5.0  # a subscription that lasted this long resets the backoff
LOG_EVERY = 60.0  # while Redis fails, at most one warning per minute (per direction)

WAKEUPS = Counter(
    "rhenus_matrix_fanout_wakeups_total",
    "Wake-ups of long-polling syncs relayed between worker processes through Redis",
    ["outcome"],  # published, failed, dropped (queue full), received
)
SYNCS_WAITING = Gauge(
    "rhenus_matrix_syncs_waiting", "Long-polling /sync requests parked in this worker process"
)


def channel_name(node_name: str) -> str:
    """The node's wake-up channel (one per node: several nodes may share a Redis)."""
    return f"rhenus:{node_name}:matrix:wake"


def watch(notifier: Notifier) -> None:
    """Report this process's parked syncs as ``rhenus_matrix_syncs_waiting``."""
    SYNCS_WAITING.set_function(notifier.parked)


def _redis(url: str, *, retries: int, **options: Any) -> Redis:
    """A client of ``url`` retrying ``retries`` times at once on a fresh connection."""
    # Imported here: redis weighs ~20 MiB and a single-worker node never talks to it.
    from redis.asyncio import Redis
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    return Redis.from_url(url, retry=Retry(NoBackoff(), retries), **options)


class _Health:
    """Logs an outage once when it starts, then at most every minute, and when it ends."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.failing_since: float | None = None
        self.failures = 0
        self._logged = 0.0

    def failed(self, exc: BaseException) -> None:
        now = time.monotonic()
        self.failures += 1
        if self.failing_since is None:
            self.failing_since = now
        elif now - self._logged < LOG_EVERY:
            return
        self._logged = now
        log.warning(
            "redis %s failing (%s failures so far): %s: %s",
            self.what,
            self.failures,
            type(exc).__name__,
            exc,
            extra={"redis": self.what, "failures": self.failures},
        )

    def ok(self) -> None:
        if self.failing_since is not None:
            log.warning(
                "redis %s back after %.1f s (%s failures)",
                self.what,
                time.monotonic() - self.failing_since,
                self.failures,
                extra={"redis": self.what, "failures": self.failures},
            )
            self.failing_since, self.failures = None, 0


class Fanout:
    """One worker's side of the fan-out: a publisher and a subscriber of the node's channel."""

    def __init__(self, notifier: Notifier, url: str, channel: str) -> None:
        self.notifier, self.url, self.channel = notifier, url, channel
        self.origin = secrets.token_hex(8)  # this worker, to skip its own messages
        self._queue: asyncio.Queue[frozenset[str]] = asyncio.Queue(QUEUE_SIZE)
        self._publishing = _Health("publish")
        self._subscribing = _Health("subscription")
        self._dropped = _Health("publish queue")
        self.subscribed = asyncio.Event()  # set while the subscription is up
        self._first_attempt = asyncio.Event()

    # -- publishing ----------------------------------------------------------------------------
    def relay(self, users: frozenset[str]) -> None:
        """The notifier's relay: queue a wake-up for the publisher (never blocks or raises)."""
        try:
            self._queue.put_nowait(users)
        except asyncio.QueueFull:
            WAKEUPS.labels("dropped").inc()
            self._dropped.failed(RuntimeError(f"{QUEUE_SIZE} wake-ups already waiting"))

    async def _publish_loop(self) -> None:
        client = _redis(
            self.url,
            socket_connect_timeout=CONNECT_TIMEOUT,
            socket_timeout=PUBLISH_TIMEOUT,
            # One immediate retry on a fresh connection: after a Redis restart the pooled one
            # is dead, and that is no reason to drop a wake-up.
            retries=1,
        )
        try:
            while True:
                users = set(await self._queue.get())
                count = 1
                while not self._queue.empty():
                    users |= self._queue.get_nowait()
                    count += 1
                message = json.dumps({"from": self.origin, "users": sorted(users)})
                try:
                    await client.publish(self.channel, message)
                except Exception as exc:  # any failure: these wake-ups are lost, sending goes on
                    WAKEUPS.labels("failed").inc(count)
                    self._publishing.failed(exc)
                else:
                    WAKEUPS.labels("published").inc(count)
                    self._publishing.ok()
                    self._dropped.ok()
        finally:
            await client.aclose()

    # -- subscribing ---------------------------------------------------------------------------
    def _receive(self, data: bytes | str) -> None:
        try:
            message: Any = json.loads(data)
            origin, users = message["from"], message["users"]
            if not isinstance(users, list) or not all(isinstance(u, str) for u in users):
                raise TypeError("users is not a list of strings")
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("ignored a malformed wake-up on %s: %s", self.channel, exc)
            return
        if origin == self.origin:
            return  # woken locally already
        WAKEUPS.labels("received").inc()
        self.notifier.wake_local(users)

    def _subscribed(self) -> None:
        """Redis confirmed the subscription: from now on no wake-up of another worker is lost.

        Those published before (while this worker was not subscribed) never reach it: every
        sync parked here reads again once (one that finds nothing new waits again).
        """
        self.subscribed.set()
        self._first_attempt.set()
        self._subscribing.ok()
        self.notifier.wake_all_local()

    async def _listen(self, pubsub: PubSub) -> None:
        """Deliver messages until the connection fails or falls silent."""
        loop = asyncio.get_running_loop()
        heard = pinged = loop.time()
        while True:
            message = await pubsub.get_message(timeout=1.0)
            now = loop.time()
            if message is not None:
                heard = now
                if message["type"] == "message":
                    self._receive(message["data"])
                elif message["type"] == "subscribe":
                    self._subscribed()
                continue
            if now - heard > DEAD_AFTER:
                raise ConnectionError(f"no answer from Redis for {now - heard:.0f} s")
            if now - max(heard, pinged) > KEEPALIVE:
                await pubsub.ping()  # its answer arrives as a message
                pinged = now

    async def _subscribe_loop(self) -> None:
        delay = BACKOFF_FIRST
        while True:
            client = _redis(
                self.url,
                socket_connect_timeout=CONNECT_TIMEOUT,
                socket_keepalive=True,
                retries=0,  # a failure must show: this loop reconnects
            )
            since = time.monotonic()
            try:
                async with client.pubsub() as pubsub:
                    await pubsub.subscribe(self.channel)
                    since = time.monotonic()
                    await self._listen(pubsub)
            except Exception as exc:  # down, refused, reset, silent: reconnect later
                self.subscribed.clear()
                self._first_attempt.set()
                self._subscribing.failed(exc)
            finally:
                self.subscribed.clear()
                with contextlib.suppress(Exception):
                    await client.aclose()
            if time.monotonic() - since > STABLE_AFTER:
                delay = BACKOFF_FIRST
            await asyncio.sleep(delay * random.uniform(0.5, 1.0))  # noqa: S311 - jitter
            delay = min(delay * 2, BACKOFF_MAX)

    # -- lifetime ------------------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def running(self, first_wait: float = 5.0) -> AsyncIterator[Fanout]:
        """Relay the notifier's wake-ups for the block's duration.

        Waits (at most ``first_wait`` seconds) for the first subscription attempt, so that a
        worker that answers requests already hears the others; a Redis that is down does not
        stop the worker from starting (the attempt fails at once, or at the connect timeout).
        """
        tasks = [
            asyncio.create_task(self._subscribe_loop(), name="matrix-fanout-subscribe"),
            asyncio.create_task(self._publish_loop(), name="matrix-fanout-publish"),
        ]
        self.notifier.relay = self.relay
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._first_attempt.wait(), first_wait)
            yield self
        finally:
            self.notifier.relay = None
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


@contextlib.asynccontextmanager
async def fanned_out(
    notifier: Notifier, redis_url: str, node_name: str
) -> AsyncIterator[Fanout | None]:
    """The fan-out of ``notifier`` when ``redis_url`` is set; else nothing (one process)."""
    if not redis_url:
        yield None
        return
    async with Fanout(notifier, redis_url, channel_name(node_name)).running() as fanout:
        yield fanout
