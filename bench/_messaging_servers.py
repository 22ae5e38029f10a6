"""The two homeservers ``bench/messaging.py`` compares, as running processes.

``rhenus`` and ``synapse`` start a server in a scratch directory and yield a ``Server``: its
URL, its process id (whose ``/proc`` tree ``memory`` and ``cpu_seconds`` measure) and how to
register an account on it. Synapse runs from its own virtualenv under ``.bench/``.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from nio import (  # type: ignore[import-untyped]
    AsyncClient,
    AsyncClientConfig,
    RegisterResponse,
)
from rich.console import Console

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
