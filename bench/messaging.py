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
import hashlib
import hmac
import os
import platform
import re
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from nio import (  # type: ignore[import-untyped]
    AsyncClient,
    AsyncClientConfig,
    JoinResponse,
    LoginResponse,
    RegisterResponse,
    RoomCreateResponse,
    RoomMessageText,
    RoomSendResponse,
    SyncResponse,
)
from rich.console import Console
from rich.table import Table

from rhenus.demo.nodes import Fleet, free_port

PROJECT = Path(__file__).resolve().parents[1]
SYNAPSE_VENV = PROJECT / ".bench" / "synapse-venv"
PASSWORD = "bench-correct-horse-battery-staple"
NIO = AsyncClientConfig(encryption_enabled=False, store_sync_tokens=False)
console = Console(width=160)
Register = Callable[[str], Awaitable[None]]


@dataclass
class Server:
    """A running homeserver: what the workload needs of it."""

    name: str
    version: str
    url: str
    pid: int
    register: Register  # makes an account with PASSWORD
    log: Path  # what the server wrote, shown if the workload fails


# -- /proc ------------------------------------------------------------------------------------
def _tree(pid: int) -> list[int]:
    """``pid`` and its descendants (Linux ``/proc``)."""
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        parents.setdefault(ppid, []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo += parents.get(current, [])
    return found


def memory(pid: int) -> tuple[int, int]:
    """Resident memory (VmRSS) and its peak (VmHWM) in bytes, summed over ``pid``'s tree."""
    rss = hwm = 0
    for each in _tree(pid):
        for line in Path(f"/proc/{each}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                kib = int(value.split()[0]) * 1024
                rss, hwm = (rss + kib, hwm) if key == "VmRSS" else (rss, hwm + kib)
    return rss, hwm


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) used so far by ``pid``'s tree."""
    total = 0
    for each in _tree(pid):
        fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


# -- Rhenus -----------------------------------------------------------------------------------
@contextmanager
def rhenus(root: Path) -> Iterator[Server]:
    """A node on its embedded defaults; accounts registered with a registration token."""
    with Fleet() as fleet:
        node = fleet.start(
            "fr-mininterieur",
            "Ministère de l'Intérieur",
            root / "rhenus",
            extra_env={"RHENUS_AUDIT_CHECKPOINT_EVERY": "100"},  # the default, not the demo's 2
        )
        cli = str(Path(sys.executable).parent / "rhenus")
        made = subprocess.run(
            [cli, "messaging", "tokens", "create", "--uses", "10"],
            env=node.env,
            capture_output=True,
            text=True,
            check=True,
        )
        match = re.search(r"Registration token: (\S+)", made.stdout)
        if match is None:
            raise RuntimeError(f"no registration token in: {made.stdout}{made.stderr}")
        token = match.group(1)

        async def register(username: str) -> None:
            client = AsyncClient(node.url, username, config=NIO)
            try:
                answer = await client.register_with_token(username, PASSWORD, token)
            finally:
                await client.close()
            if not isinstance(answer, RegisterResponse):
                raise RuntimeError(f"Rhenus refused to register {username}: {answer}")

        from rhenus import __version__

        log = root / "fr-mininterieur.log"  # where Fleet sends the node's output
        yield Server("rhenus", __version__, node.url, node.pid, register, log)


# -- Synapse ----------------------------------------------------------------------------------
def synapse_python() -> tuple[Path, str]:
    """The Python of Synapse's own venv, made and filled from PyPI if missing; and its version."""
    python = SYNAPSE_VENV / "bin" / "python"
    version = "import importlib.metadata as m; print(m.version('matrix-synapse'))"
    probe = [str(python), "-c", version]
    if python.exists():
        found = subprocess.run(probe, capture_output=True, text=True)
        if found.returncode == 0:
            return python, found.stdout.strip()
    console.print(f"installing Synapse from PyPI into {SYNAPSE_VENV}…")
    subprocess.run([sys.executable, "-m", "venv", str(SYNAPSE_VENV)], check=True)
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, "matrix-synapse"], check=True)
    return python, subprocess.run(probe, capture_output=True, text=True, check=True).stdout.strip()


RATE_LIMITS = [
    "rc_message", "rc_registration", "rc_registration_token_validity", "rc_joins.local",
    "rc_joins.remote", "rc_joins_per_room", "rc_invites.per_room", "rc_invites.per_user",
    "rc_invites.per_issuer", "rc_3pid_validation", "rc_admin_redaction", "rc_third_party_invite",
    "rc_key_requests", "rc_room_creation", "rc_reports", "rc_media_create",
    "rc_delayed_event_mgmt", "rc_presence.per_user", "rc_login.address", "rc_login.account",
    "rc_login.failed_attempts",
]  # fmt: skip


def synapse_config(home: Path, port: int, secret: str) -> str:
    """homeserver.yaml: SQLite, loopback HTTP, no federation, rate limits out of the way."""
    limits: dict[str, list[str]] = {}
    for name in RATE_LIMITS:
        top, _, sub = name.partition(".")
        limits.setdefault(top, []).append(sub)
    unlimited = "{per_second: 100000, burst_count: 1000000}"
    lines = [
        "server_name: localhost",
        f"pid_file: {home}/homeserver.pid",
        "listeners:",
        f"  - {{port: {port}, bind_addresses: ['127.0.0.1'], type: http, tls: false,",
        "      x_forwarded: false, resources: [{names: [client], compress: false}]}",
        f"database: {{name: sqlite3, args: {{database: {home}/homeserver.db}}}}",
        f"log_config: {home}/log.yaml",
        f"media_store_path: {home}/media",
        f"signing_key_path: {home}/signing.key",
        f"registration_shared_secret: '{secret}'",
        f"macaroon_secret_key: '{secrets.token_hex(32)}'",
        f"form_secret: '{secrets.token_hex(32)}'",
        "enable_registration: false",
        "report_stats: false",
        "enable_metrics: false",
        "presence: {enabled: false}",
        "url_preview_enabled: false",
        "federation_domain_whitelist: []",
        "trusted_key_servers: []",
        "suppress_key_server_warning: true",
    ]
    for top, subs in limits.items():
        if subs == [""]:
            lines.append(f"{top}: {unlimited}")
        else:
            lines.append(f"{top}: {{{', '.join(f'{sub}: {unlimited}' for sub in subs)}}}")
    return "\n".join(lines) + "\n"


SYNAPSE_LOG = """\
version: 1
formatters: {{precise: {{format: '%(asctime)s %(name)s %(levelname)s %(message)s'}}}}
handlers: {{file: {{class: logging.FileHandler, formatter: precise, filename: {log}}}}}
root: {{level: WARNING, handlers: [file]}}
disable_existing_loggers: false
"""


@contextmanager
def synapse(root: Path) -> Iterator[Server]:
    """Synapse from its venv, its homeserver process alone; accounts made with the shared
    secret (the admin registration API, as ``register_new_matrix_user`` does)."""
    python, version = synapse_python()
    home = root / "synapse"
    home.mkdir()
    port = free_port()
    config = home / "homeserver.yaml"
    secret = secrets.token_hex(32)
    config.write_text(synapse_config(home, port, secret))
    (home / "log.yaml").write_text(SYNAPSE_LOG.format(log=home / "homeserver.log"))
    server = [str(python), "-m", "synapse.app.homeserver", "-c", str(config)]
    subprocess.run([*server, "--generate-keys"], cwd=home, check=True, capture_output=True)
    output = (home / "stdout.log").open("w+")
    process = subprocess.Popen(server, cwd=home, stdout=output, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                output.seek(0)
                log = (home / "homeserver.log").read_text(errors="replace")
                raise RuntimeError(f"Synapse did not start:\n{output.read()}\n{log[-3000:]}")
            try:
                if httpx.get(f"{url}/_matrix/client/versions", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)

        async def register(username: str) -> None:
            admin = f"{url}/_synapse/admin/v1/register"
            async with httpx.AsyncClient(timeout=30) as http:
                nonce = (await http.get(admin)).raise_for_status().json()["nonce"]
                message = "\x00".join([nonce, username, PASSWORD, "notadmin"]).encode()
                mac = hmac.new(secret.encode(), message, hashlib.sha1).hexdigest()
                body = {"nonce": nonce, "username": username, "password": PASSWORD,
                        "admin": False, "mac": mac}  # fmt: skip
                (await http.post(admin, json=body)).raise_for_status()

        yield Server("synapse", version, url, process.pid, register, home / "homeserver.log")
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        output.close()


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
