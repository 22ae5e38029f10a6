"""A live node with two uvicorn workers (``rhenus run`` with ``RHENUS_WORKERS=2``) on PostgreSQL,
its long-polling syncs woken across the workers through a real Redis (``redis-server`` on a
free port): a message sent to worker 1 wakes a sync parked on worker 2 well before its
timeout; with Redis stopped, sending still works, local syncs still wake at once, the sync
parked on the other worker returns at its timeout, and once Redis is back the workers
subscribe again on their own.

Which worker serves a request is made exact, not left to chance: a client's one keep-alive
connection is opened while every other worker is stopped (SIGSTOP, a few milliseconds), so only
the wanted worker can accept it; ``/proc`` then confirms which process holds the server side of
that connection, and every later response is checked to come over the same connection. Nothing
in the node reveals its worker ids for this.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from redis.asyncio import Redis
from typer.testing import CliRunner

from rhenus.cli import app
from rhenus.demo.nodes import Fleet, LiveNode
from rhenus.messaging.fanout import channel_name
from tests.messaging.conftest import Mx, register
from tests.support.postgres import PostgresServer
from tests.support.redis import RedisServer

NAME = "fr-mininterieur"
WOKEN_WITHIN = 20  # seconds; the parked syncs ask for 60 s


@pytest.fixture
def pg_url(postgres: PostgresServer, pg_template: str) -> str:
    name = f"t_{uuid.uuid4().hex[:12]}"
    postgres.psql(f"CREATE DATABASE {name} TEMPLATE {pg_template}")
    return postgres.url(name)


@pytest.fixture
def live(pg_url: str, redis_server: RedisServer, tmp_path: Path) -> Iterator[LiveNode]:
    """The node, with a registration token for two (``LiveNode.token``)."""
    with Fleet() as fleet:
        node = fleet.start(
            NAME,
            "Ministère",
            tmp_path / "paris",
            extra_env={
                "RHENUS_DATABASE_URL": pg_url,
                "RHENUS_REDIS_URL": redis_server.url,
                "RHENUS_WORKERS": "2",
            },
        )
        made = CliRunner().invoke(
            app, ["messaging", "tokens", "create", "--uses", "2"], env=node.env
        )
        assert made.exit_code == 0, made.output
        match = re.search(r"Registration token: (\S+)", made.output)
        assert match is not None
        node.token = match.group(1)
        yield node


def node_log(node: LiveNode) -> str:
    return (Path(node.env["RHENUS_HOME"]).parent / f"{NAME}.log").read_text()


def _client_port(response: httpx.Response) -> int:
    return int(response.extensions["network_stream"].get_extra_info("client_addr")[1])


class Workers:
    """The worker processes of a live node, and clients pinned to one of them."""

    def __init__(self, node: LiveNode) -> None:
        self.node = node
        self.port = int(urlsplit(node.url).port or 0)
        self.pids: list[int] = []

    def _children(self) -> list[int]:
        found = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if ppid == self.node.pid and b"spawn_main" in cmdline:  # not the resource tracker
                found.append(int(entry))
        return sorted(found)

    async def ready(self, redis_url: str) -> list[int]:
        """Wait for two workers, both subscribed to the node's wake-up channel."""
        deadline = time.monotonic() + 60
        while True:
            self.pids = self._children()
            if len(self.pids) == 2 and await subscribers(redis_url) == 2:
                return self.pids
            assert time.monotonic() < deadline, (self.pids, node_log(self.node))
            await asyncio.sleep(0.2)

    def holder(self, client_port: int) -> int | None:
        """The worker holding the server side of the connection from ``client_port``."""
        inode = None
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                local, remote = fields[1], fields[2]
                if (
                    int(local.rsplit(":", 1)[1], 16) == self.port
                    and int(remote.rsplit(":", 1)[1], 16) == client_port
                ):
                    inode = fields[9]
        if inode is None:
            return None
        for pid in self.pids:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                try:
                    if os.readlink(f"/proc/{pid}/fd/{fd}") == f"socket:[{inode}]":
                        return pid
                except OSError:
                    continue
        return None

    async def pin(self, worker: int) -> httpx.AsyncClient:
        """A client whose one connection is served by ``worker`` (checked on every answer)."""
        others = [pid for pid in self.pids if pid != worker]
        for _ in range(20):
            http = httpx.AsyncClient(
                base_url=self.node.url,
                timeout=90,
                limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
            )
            for pid in others:
                os.kill(pid, signal.SIGSTOP)
            try:
                first: httpx.Response | None = await http.get("/_matrix/client/versions", timeout=3)
            except httpx.TransportError:
                first = None
            finally:
                for pid in others:
                    os.kill(pid, signal.SIGCONT)
            if first is not None and self.holder(_client_port(first)) == worker:
                port = _client_port(first)

                async def same_connection(response: httpx.Response, port: int = port) -> None:
                    assert _client_port(response) == port, "the connection changed worker"

                http.event_hooks["response"] = [same_connection]
                return http
            await http.aclose()
            await asyncio.sleep(0.1)
        raise AssertionError(f"no connection landed on worker {worker}")

    async def as_user(self, worker: int, user: Mx) -> Mx:
        return Mx(await self.pin(worker), user.user_id, user.token, user.device_id)


async def subscribers(redis_url: str) -> int:
    client = Redis.from_url(redis_url)
    try:
        ((_, count),) = await client.pubsub_numsub(channel_name(NAME))
        return int(count)
    except OSError:
        return 0
    finally:
        await client.aclose()


async def parked(probe: httpx.AsyncClient, at_least: int = 1) -> None:
    """Wait until the probe's worker holds ``at_least`` waiting syncs (its own /metrics)."""
    deadline = time.monotonic() + 10
    while True:
        text = (await probe.get("/metrics")).text
        match = re.search(r"^rhenus_matrix_syncs_waiting (\S+)$", text, re.M)
        assert match is not None, text
        if float(match.group(1)) >= at_least:
            return
        assert time.monotonic() < deadline, "the sync did not park"
        await asyncio.sleep(0.05)


def timeline(body: dict[str, Any], room_id: str) -> list[str]:
    room = body["rooms"]["join"].get(room_id)
    return [e["event_id"] for e in room["timeline"]["events"]] if room else []


async def users(node: LiveNode) -> tuple[Mx, Mx, str]:
    """alice and bob (registered through whichever worker) and alice's room with bob in it."""
    http = httpx.AsyncClient(base_url=node.url, timeout=30)
    alice = await register(http, "alice", node.token)
    bob = await register(http, "bob", node.token)
    room_id = await alice.create_room(invite=[bob.user_id])
    await bob.ok("POST", f"/rooms/{room_id}/join", json={})
    await http.aclose()
    return alice, bob, room_id


async def test_a_message_sent_to_worker_1_wakes_a_sync_parked_on_worker_2(
    live: LiveNode, redis_server: RedisServer
) -> None:
    workers = Workers(live)
    first, second = await workers.ready(redis_server.url)
    alice, bob, room_id = await users(live)
    alice_on_1 = await workers.as_user(first, alice)
    bob_on_2 = await workers.as_user(second, bob)
    probe_2 = await workers.pin(second)

    for word in ("Bonjour", "Guten Tag"):
        since = (await bob_on_2.sync(timeout=0))["next_batch"]
        waiting = asyncio.create_task(bob_on_2.sync(since=since, timeout=60_000))
        await parked(probe_2)
        event_id = await alice_on_1.send(room_id, word)
        body = await asyncio.wait_for(waiting, WOKEN_WITHIN)  # not the 60 s timeout
        assert event_id in timeline(body, room_id)

    for client in (alice_on_1.http, bob_on_2.http, probe_2):
        await client.aclose()


async def test_with_redis_down_sending_works_and_the_other_worker_falls_back_to_timeouts(
    live: LiveNode, redis_server: RedisServer
) -> None:
    workers = Workers(live)
    first, second = await workers.ready(redis_server.url)
    alice, bob, room_id = await users(live)
    redis_server.stop()
    # Clients are pinned right before each part: an idle keep-alive connection is closed by
    # the server after 5 s, and its replacement could land on the other worker.
    alice_on_1 = await workers.as_user(first, alice)
    bob_on_2 = await workers.as_user(second, bob)
    probe_2 = await workers.pin(second)

    # The other worker's sync is not woken: it returns at its timeout, without the message.
    # (A woken sync reads again and would carry the message; one that timed out answers what
    # it read before waiting.)
    since = (await bob_on_2.sync(timeout=0))["next_batch"]
    waiting = asyncio.create_task(bob_on_2.sync(since=since, timeout=3_000))
    await parked(probe_2)
    event_id = await alice_on_1.send(room_id, "Redis est en panne")  # 200 all the same
    body = await asyncio.wait_for(waiting, WOKEN_WITHIN)
    assert event_id not in timeline(body, room_id)
    later = await bob_on_2.sync(since=body["next_batch"], timeout=0)
    assert event_id in timeline(later, room_id)  # nothing lost: the data is in the database

    # A sync on the sending worker is still woken at once.
    for client in (alice_on_1.http, bob_on_2.http, probe_2):
        await client.aclose()
    alice_on_1 = await workers.as_user(first, alice)
    bob_on_1 = await workers.as_user(first, bob)
    probe_1 = await workers.pin(first)
    since = (await bob_on_1.sync(timeout=0))["next_batch"]
    waiting = asyncio.create_task(bob_on_1.sync(since=since, timeout=60_000))
    await parked(probe_1)
    event_id = await alice_on_1.send(room_id, "mais ce worker-ci répond")
    assert event_id in timeline(await asyncio.wait_for(waiting, WOKEN_WITHIN), room_id)

    for client in (alice_on_1.http, bob_on_1.http, probe_1):
        await client.aclose()
    text = node_log(live)
    assert "redis publish failing" in text
    assert "redis subscription failing" in text

    # Back: both workers subscribe again on their own (backoff), and the fan-out works again.
    redis_server.start()
    await workers.ready(redis_server.url)
    alice_on_1 = await workers.as_user(first, alice)
    bob_on_2 = await workers.as_user(second, bob)
    probe_2 = await workers.pin(second)
    since = (await bob_on_2.sync(timeout=0))["next_batch"]
    waiting = asyncio.create_task(bob_on_2.sync(since=since, timeout=60_000))
    await parked(probe_2)
    event_id = await alice_on_1.send(room_id, "Redis est revenu")
    assert event_id in timeline(await asyncio.wait_for(waiting, WOKEN_WITHIN), room_id)
    for client in (alice_on_1.http, bob_on_2.http, probe_2):
        await client.aclose()
    assert "redis subscription back after" in node_log(live)
