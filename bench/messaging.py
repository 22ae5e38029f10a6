"""Messaging benchmark: Rhenus's Matrix homeserver next to Synapse, driven by the same client.

One workload, with the same matrix-nio ``AsyncClient`` code (encryption off: the servers are
measured, not the crypto), runs against a live Rhenus node (``rhenus run`` on its embedded
defaults: SQLite, plain HTTP on loopback) and then against Synapse (installed from PyPI into its
own virtual environment, ``.bench/synapse-venv``, on first use; SQLite, one plain-HTTP client
listener on loopback, every ``rc_*`` rate limit raised out of the way, no federation, presence
or URL previews, logs at WARNING as the node's are). Each server runs alone while it is measured.

Two users, registered as each server wants it (a registration token made with ``rhenus
messaging tokens create``; Synapse's shared-secret admin registration), log in; alice creates a
private room, invites bob, bob joins; 20 messages warm up. Then

1. alice sends ``--messages`` messages one after another: messages/s;
2. alice sends ``--messages`` more, 10 in flight (a semaphore of 10 over ``asyncio.gather``);
3. delivery: bob long-polls ``/sync`` (``timeout=30000``, ``since`` his last token) while alice
   sends ``--latency`` messages one at a time; latency is from the start of the send to bob's
   sync answering the event (parsed by nio), p50 and p95;
4. initial sync: a fresh client with bob's token syncs without ``since`` in the room now holding
   the whole history (default filter: 10 timeline events), median of ``--initial-syncs``;
5. the server's resident memory (VmRSS of its process and any children) after all that.

Goals: >= 5x Synapse's throughput (both sends), <= 1/5 of its delivery latency, <= 1/2 of its
memory. The exit code is 0 whether the goals are met or not: this is a measurement.
Usage: ``.venv/bin/python bench/messaging.py [--messages 450] [--latency 100] [--rounds 1]
[--quick] [--servers rhenus,synapse]`` (``--rounds`` starts fresh servers each round, alternating
their order, and reports medians: the machine's load varies).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from nio import (  # type: ignore[import-untyped]
    AsyncClient,
    JoinResponse,
    LoginResponse,
    RoomCreateResponse,
    RoomMessageText,
    RoomSendResponse,
    SyncResponse,
)
from rich.table import Table

# Run as ``python bench/messaging.py``: bench/ is on sys.path, so its sibling imports directly.
from _messaging_servers import (  # isort: skip
    NIO,
    PASSWORD,
    Server,
    console,
    cpu_seconds,
    memory,
    rhenus,
    synapse,
)


# -- the workload -----------------------------------------------------------------------------
@dataclass
class Measured:
    sequential: float  # messages/s
    concurrent: float  # messages/s, 10 in flight
    send_rtts: list[float]  # seconds, the sequential sends' round trips
    latencies: list[float]  # seconds, send start -> bob's sync has it
    initial_syncs: list[float]  # seconds
    initial_events: int  # timeline events the initial sync answered for the room
    history: int  # messages in the room when the initial syncs ran
    cpu_ms: float  # server CPU milliseconds per message sent in 1 and 2
    rss: int  # bytes
    hwm: int  # bytes, the peak


@asynccontextmanager
async def logged_in(server: Server, username: str) -> AsyncIterator[AsyncClient]:
    client = AsyncClient(server.url, username, config=NIO)
    try:
        login = await client.login(PASSWORD, device_name=f"{username}'s bench")
        if not isinstance(login, LoginResponse):
            raise RuntimeError(f"{server.name}: {username} cannot log in: {login}")
        yield client
    finally:
        await client.close()


def texts(sync: SyncResponse, room_id: str) -> list[str]:
    room = sync.rooms.join.get(room_id)
    events = room.timeline.events if room else []
    return [e.body for e in events if isinstance(e, RoomMessageText)]


async def workload(server: Server, args: argparse.Namespace) -> Measured:
    for name in ("alice", "bob"):
        await server.register(name)
    async with logged_in(server, "alice") as alice, logged_in(server, "bob") as bob:
        created = await alice.room_create(name="Cellule de crise", invite=[bob.user_id])
        if not isinstance(created, RoomCreateResponse):
            raise RuntimeError(f"{server.name}: createRoom: {created}")
        room_id = created.room_id
        joined = await bob.join(room_id)
        if not isinstance(joined, JoinResponse):
            raise RuntimeError(f"{server.name}: join: {joined}")
        sent = 0

        async def say(body: str) -> float:
            nonlocal sent
            started = time.perf_counter()
            answer = await alice.room_send(
                room_id, "m.room.message", {"msgtype": "m.text", "body": body}
            )
            if not isinstance(answer, RoomSendResponse):
                raise RuntimeError(f"{server.name}: send: {answer}")
            sent += 1
            return time.perf_counter() - started

        for i in range(20):
            await say(f"warm-up {i}")
        for client in (alice, bob):
            if not isinstance(await client.sync(timeout=0), SyncResponse):
                raise RuntimeError(f"{server.name}: the first sync failed")

        console.print(f"  {server.name}: {args.messages} sequential sends…")
        cpu_before = cpu_seconds(server.pid)
        started = time.perf_counter()
        rtts = [await say(f"sequential {i}") for i in range(args.messages)]
        sequential = args.messages / (time.perf_counter() - started)

        console.print(f"  {server.name}: {args.messages} sends, 10 in flight…")
        gate = asyncio.Semaphore(10)

        async def gated(body: str) -> float:
            async with gate:
                return await say(body)

        started = time.perf_counter()
        await asyncio.gather(*(gated(f"concurrent {i}") for i in range(args.messages)))
        concurrent = args.messages / (time.perf_counter() - started)
        cpu_ms = (cpu_seconds(server.pid) - cpu_before) * 1000 / (2 * args.messages)

        console.print(f"  {server.name}: delivery latency over {args.latency} messages…")
        caught_up = await bob.sync(timeout=0)
        if not isinstance(caught_up, SyncResponse):
            raise RuntimeError(f"{server.name}: sync: {caught_up}")
        since = caught_up.next_batch

        async def seen(body: str, since: str) -> tuple[float, str]:
            """Long-poll as bob until ``body`` arrives; when it did, and the next token."""
            while True:
                answer = await bob.sync(timeout=30_000, since=since)
                if not isinstance(answer, SyncResponse):
                    raise RuntimeError(f"{server.name}: sync: {answer}")
                since = answer.next_batch
                if body in texts(answer, room_id):
                    return time.perf_counter(), since

        latencies = []
        for i in range(args.latency):
            body = f"latency {i}"
            waiting = asyncio.ensure_future(seen(body, since))
            await asyncio.sleep(0.05)  # bob's sync is parked on the server
            started = time.perf_counter()
            await say(body)
            arrived, since = await waiting
            latencies.append(arrived - started)

        console.print(f"  {server.name}: {args.initial_syncs} initial syncs…")
        initial_syncs, initial_events = [], 0
        for _ in range(args.initial_syncs):
            fresh = AsyncClient(server.url, "bob", config=NIO)
            fresh.user_id, fresh.device_id = bob.user_id, bob.device_id
            fresh.access_token = bob.access_token
            try:
                started = time.perf_counter()
                answer = await fresh.sync(timeout=0)
                initial_syncs.append(time.perf_counter() - started)
            finally:
                await fresh.close()
            if not isinstance(answer, SyncResponse) or room_id not in answer.rooms.join:
                raise RuntimeError(f"{server.name}: initial sync: {answer}")
            initial_events = len(answer.rooms.join[room_id].timeline.events)
    rss, hwm = memory(server.pid)
    return Measured(
        sequential, concurrent, rtts, latencies, initial_syncs, initial_events, sent, cpu_ms,
        rss, hwm,
    )  # fmt: skip


# -- the run ----------------------------------------------------------------------------------
def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[round(q * (len(ordered) - 1))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=450, help="sends in each of 1 and 2")
    parser.add_argument("--latency", type=int, default=100, help="messages timed to delivery")
    parser.add_argument("--initial-syncs", type=int, default=5)
    parser.add_argument("--servers", default="rhenus,synapse", help="comma-separated")
    parser.add_argument(
        "--rounds", type=int, default=1, help="fresh servers each round, in alternating order"
    )
    parser.add_argument(
        "--quick", action="store_true", help="100 messages, 30 timed to delivery, 3 initial syncs"
    )
    args = parser.parse_args()
    if args.quick:
        args.messages, args.latency, args.initial_syncs = 100, 30, 3
    servers = {"rhenus": rhenus, "synapse": synapse}
    chosen = [name.strip() for name in args.servers.split(",")]
    if unknown := set(chosen) - set(servers):
        parser.error(f"unknown servers: {', '.join(sorted(unknown))}")
    load_before = os.getloadavg()
    rounds: dict[str, list[Measured]] = {name: [] for name in chosen}
    versions: dict[str, str] = {}
    for n in range(args.rounds):
        for name in chosen if n % 2 == 0 else reversed(chosen):
            console.print(f"round {n + 1} of {args.rounds}: starting {name}…")
            with (
                tempfile.TemporaryDirectory(prefix="rhenus-bench-") as root,
                servers[name](Path(root)) as server,
            ):
                versions[name] = server.version
                try:
                    rounds[name].append(asyncio.run(workload(server, args)))
                except Exception:
                    tail = server.log.read_text(errors="replace")[-4000:]
                    console.print(f"[bold red]{name} failed; the end of {server.log}:[/]\n{tail}")
                    raise
    load_after = os.getloadavg()
    results = {name: combined(measured) for name, measured in rounds.items()}
    report(results, versions, args, load_before, load_after)


def combined(rounds: list[Measured]) -> Measured:
    """One result of several rounds: medians of the rates and of memory, samples pooled."""
    return Measured(
        statistics.median(m.sequential for m in rounds),
        statistics.median(m.concurrent for m in rounds),
        [x for m in rounds for x in m.send_rtts],
        [x for m in rounds for x in m.latencies],
        [x for m in rounds for x in m.initial_syncs],
        rounds[-1].initial_events,
        rounds[-1].history,
        statistics.median(m.cpu_ms for m in rounds),
        int(statistics.median(m.rss for m in rounds)),
        max(m.hwm for m in rounds),
    )


def report(
    results: dict[str, Measured],
    versions: dict[str, str],
    args: argparse.Namespace,
    load_before: tuple[float, float, float],
    load_after: tuple[float, float, float],
) -> None:
    ours, theirs = results.get("rhenus"), results.get("synapse")
    r = args.rounds
    rounds_text = "1 round" if r == 1 else f"medians of {r} rounds"
    verdicts: list[bool] = []
    described = ", ".join(f"{name} {version}" for name, version in versions.items())
    table = Table(
        "measure", "rhenus", "synapse", "ratio", "goal", "met?", "detail",
        title=f"Messaging: {described}; {rounds_text}; {os.cpu_count()} cores "
        f"({platform.machine()}), Python {platform.python_version()}, load average "
        f"{load_before[0]:.2f} → {load_after[0]:.2f}",
    )  # fmt: skip

    def row(
        measure: str,
        value: Callable[[Measured], float],
        unit: Callable[[float], str],
        goal: float | None,
        higher_is_better: bool,
        detail: str,
    ) -> None:
        cells = [unit(value(m)) if m else "—" for m in (ours, theirs)]
        ratio = met = goal_text = ""
        if ours and theirs and value(theirs):
            times = value(ours) / value(theirs)
            ratio = f"{times:.2f}x"
            if goal is not None:
                goal_text = f"{'≥' if higher_is_better else '≤'} {goal:g}x"
                ok = times >= goal if higher_is_better else times <= goal
                met = "[green]yes[/]" if ok else "[bold red]NO[/]"
                verdicts.append(ok)
        table.add_row(measure, *cells, ratio, goal_text, met, detail)

    def rate(v: float) -> str:
        return f"{v:,.0f} msg/s"

    def ms(v: float) -> str:
        return f"{v * 1000:,.1f} ms"

    def mib(v: float) -> str:
        return f"{v / 2**20:,.0f} MiB"

    history = max(m.history for m in results.values())
    row("sequential sends", lambda m: m.sequential, rate, 5, True,
        f"{args.messages} PUT …/send/m.room.message/{{txnId}}, one at a time")  # fmt: skip
    row("sends, 10 in flight", lambda m: m.concurrent, rate, 5, True,
        f"{args.messages} sends, asyncio.gather under a semaphore of 10")  # fmt: skip
    row("delivery latency p50", lambda m: statistics.median(m.latencies), ms, 0.2, False,
        f"{args.latency * r} messages: send start → the other user's long-polling /sync has "
        "it")  # fmt: skip
    row("delivery latency p95", lambda m: quantile(m.latencies, 0.95), ms, 0.2, False, "")
    row("initial sync", lambda m: statistics.median(m.initial_syncs), ms, None, False,
        f"median of {args.initial_syncs * r}, room of {history} messages, "
        + ", ".join(f"{n}: {m.initial_events} timeline events"
                    for n, m in results.items()))  # fmt: skip
    row("server memory (VmRSS)", lambda m: m.rss, mib, 0.5, False,
        "after the workload; peak (VmHWM) "
        + ", ".join(f"{n} {mib(m.hwm)}" for n, m in results.items()))  # fmt: skip
    row("send round trip p50", lambda m: statistics.median(m.send_rtts), ms, None, False,
        "of the sequential sends (for reference)")  # fmt: skip
    row("server CPU per send", lambda m: m.cpu_ms / 1000, ms, None, False,
        "server process CPU time over 1 and 2, per message (for reference)")  # fmt: skip
    console.print(table)
    if verdicts:
        met = sum(verdicts)
        style = "green" if met == len(verdicts) else "bold red"
        console.print(f"[{style}]goals met: {met} of {len(verdicts)}[/]")
    console.print(
        f"load average (1, 5, 15 min) before {', '.join(f'{x:.2f}' for x in load_before)}, "
        f"after {', '.join(f'{x:.2f}' for x in load_after)}; a measurement: exit code 0 "
        "whether the goals are met or not."
    )


if __name__ == "__main__":
    main()
