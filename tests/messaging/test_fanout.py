"""The Redis fan-out of the notifier, in one process: two notifiers stand for two workers of
one node on a real Redis server (``redis-server`` on a free port), as live workers use it
(``tests/e2e/test_messaging_workers.py`` runs the real processes)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable, Iterable

import pytest
from redis.asyncio import Redis

from rhenus.messaging import fanout
from rhenus.messaging.events import Notifier
from rhenus.messaging.fanout import Fanout, channel_name, fanned_out
from tests.support.redis import RedisServer

CHANNEL = channel_name("test-node")
Wake = Callable[[Iterable[str]], None]


async def subscribers(url: str, channel: str = CHANNEL) -> int:
    client = Redis.from_url(url)
    try:
        ((_, count),) = await client.pubsub_numsub(channel)
        return int(count)
    finally:
        await client.aclose()


@pytest.fixture
async def workers(redis_server: RedisServer) -> AsyncIterator[tuple[Fanout, Fanout]]:
    """Two notifiers, each with its fan-out running, both subscribed."""
    one, two = Notifier(), Notifier()
    async with (
        fanned_out(one, redis_server.url, "test-node") as first,
        fanned_out(two, redis_server.url, "test-node") as second,
    ):
        assert first is not None
        assert second is not None
        assert first.subscribed.is_set()
        assert second.subscribed.is_set()
        assert await subscribers(redis_server.url) == 2
        yield first, second


async def test_a_wake_up_in_one_worker_wakes_the_syncs_waiting_in_the_other(
    workers: tuple[Fanout, Fanout],
) -> None:
    first, second = workers
    with (
        second.notifier.listen("@bob:x") as bob,
        second.notifier.listen("@carol:x") as carol,
        first.notifier.listen("@bob:x") as bob_here,
    ):
        first.notifier.wake(["@bob:x"])
        assert bob_here.is_set()  # at once, not through Redis
        await asyncio.wait_for(bob.wait(), 5)
        await asyncio.sleep(0.2)
        assert not carol.is_set()  # only the users of the wake-up


async def test_a_worker_does_not_wake_its_own_syncs_twice(
    workers: tuple[Fanout, Fanout], monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = workers
    calls: list[tuple[str, frozenset[str]]] = []
    for name, fan in (("first", first), ("second", second)):
        original = fan.notifier.wake_local

        def spy(users: Iterable[str], name: str = name, original: Wake = original) -> None:
            users = frozenset(users)
            calls.append((name, users))
            original(users)

        monkeypatch.setattr(fan.notifier, "wake_local", spy)
    first.notifier.wake(["@bob:x"])
    await asyncio.wait_for(_until(lambda: ("second", frozenset({"@bob:x"})) in calls), 5)
    # Redis wrote first's own copy before this marker on first's connection: once the marker
    # is in, the copy has been read (and skipped).
    second.notifier.wake(["@marker:x"])
    await asyncio.wait_for(_until(lambda: ("first", frozenset({"@marker:x"})) in calls), 5)
    assert calls.count(("first", frozenset({"@bob:x"}))) == 1  # its own wake, directly
    assert calls.count(("second", frozenset({"@bob:x"}))) == 1  # through Redis
    assert calls.count(("second", frozenset({"@marker:x"}))) == 1


async def test_wake_ups_queued_together_are_published_as_one_message(
    redis_server: RedisServer,
) -> None:
    spy = Redis.from_url(redis_server.url)
    pubsub = spy.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe(CHANNEL)
    notifier = Notifier()
    try:
        async with fanned_out(notifier, redis_server.url, "test-node"):
            for user in ("@a:x", "@b:x", "@c:x"):
                notifier.wake([user])  # queued before the publisher runs again
            message = await pubsub.get_message(timeout=5)
            while message is None:
                message = await pubsub.get_message(timeout=5)
            assert json.loads(message["data"])["users"] == ["@a:x", "@b:x", "@c:x"]
    finally:
        await pubsub.aclose()
        await spy.aclose()


async def test_with_redis_down_wake_ups_stay_local_and_nothing_raises(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    redis_server.stop()
    caplog.set_level(logging.WARNING, logger="rhenus.messaging.fanout")
    notifier = Notifier()
    async with fanned_out(notifier, redis_server.url, "test-node") as fan:
        assert fan is not None
        assert not fan.subscribed.is_set()  # started anyway
        with notifier.listen("@bob:x") as bob:
            notifier.wake(["@bob:x"])
            assert bob.is_set()
        for _ in range(fanout.QUEUE_SIZE + 10):  # more than the queue holds: dropped, logged
            notifier.wake(["@bob:x"])
        await asyncio.sleep(0.5)
    text = caplog.text
    assert "redis subscription failing" in text
    assert "redis publish failing" in text
    assert "redis publish queue failing" in text


async def test_the_subscription_comes_back_after_an_outage_and_wakes_the_parked_syncs(
    workers: tuple[Fanout, Fanout], redis_server: RedisServer
) -> None:
    first, second = workers
    redis_server.stop()
    await asyncio.wait_for(_until(lambda: not second.subscribed.is_set()), 10)
    with second.notifier.listen("@bob:x") as bob:
        first.notifier.wake(["@bob:x"])  # lost: nobody hears it
        await asyncio.sleep(0.3)
        assert not bob.is_set()
        redis_server.start()
        # Resubscribed (backoff from 0.5 s): the parked sync is woken once, to read again.
        await asyncio.wait_for(bob.wait(), 15)
    await asyncio.wait_for(_until(first.subscribed.is_set), 15)
    assert await subscribers(redis_server.url) == 2
    with second.notifier.listen("@bob:x") as bob:
        first.notifier.wake(["@bob:x"])
        await asyncio.wait_for(bob.wait(), 5)


async def test_malformed_messages_are_ignored(
    workers: tuple[Fanout, Fanout], redis_server: RedisServer
) -> None:
    _, second = workers
    client = Redis.from_url(redis_server.url)
    try:
        with second.notifier.listen("@bob:x") as bob:
            for junk in ("not json", '{"users": ["@bob:x"]}', '{"from": "x", "users": "@bob:x"}'):
                await client.publish(CHANNEL, junk)
            await client.publish(CHANNEL, json.dumps({"from": "other", "users": ["@bob:x"]}))
            await asyncio.wait_for(bob.wait(), 5)
            assert second.subscribed.is_set()
    finally:
        await client.aclose()


async def test_without_a_redis_url_the_notifier_stays_in_process() -> None:
    notifier = Notifier()
    async with fanned_out(notifier, "", "test-node") as fan:
        assert fan is None
        assert notifier.relay is None
        with notifier.listen("@bob:x") as bob:
            notifier.wake(iter(["@bob:x"]))  # any iterable, consumed once
            assert bob.is_set()


async def _until(condition: Callable[[], bool]) -> None:
    while not condition():
        await asyncio.sleep(0.02)
