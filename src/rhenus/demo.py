"""``rhenus demo``: the story of the federation, told by live nodes on this machine.

Each issue extends the story. Today: two sovereign nodes — a French ministry and a German
Land — start from nothing, each with its own keys, database, encrypted blob store and audit
log; their administrators sign in and create agent accounts; each node calls the other with a
request signed by its did:web key; each node proves its audit log intact.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

from rhenus.config import Settings
from rhenus.core.keys import Keyring
from rhenus.trust import client as trust_client

console = Console()


@dataclass
class DemoNode:
    name: str
    organisation: str
    url: str
    admin_password: str
    env: dict[str, str]
    token: str = ""

    def settings(self) -> Settings:
        """This node's settings, as its process sees them."""
        return Settings(
            home=Path(self.env["RHENUS_HOME"]),
            port=int(self.env["RHENUS_PORT"]),
            node_name=self.name,
            federation_insecure_http=True,
        )

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def live_node(name: str, organisation: str, home: Path) -> Iterator[DemoNode]:
    """Run ``rhenus run`` for one organisation until the block ends."""
    port = _free_port()
    env = {
        **os.environ,
        "RHENUS_HOME": str(home),
        "RHENUS_PORT": str(port),
        "RHENUS_NODE_NAME": name,
        "RHENUS_ORGANISATION": organisation,
        "RHENUS_LOG_LEVEL": "warning",
        # Small, so that the demo's few acts already produce signed checkpoints.
        "RHENUS_AUDIT_CHECKPOINT_EVERY": "2",
        # Nodes on one machine federate over loopback; plain HTTP is refused for anything else.
        "RHENUS_FEDERATION_INSECURE_HTTP": "true",
        "COLUMNS": "200",
    }
    rhenus = str(Path(sys.executable).parent / "rhenus")
    log = (home.parent / f"{name}.log").open("w+")
    process = subprocess.Popen(  # noqa: S603 - our own executable, fixed arguments
        [rhenus, "run"], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                raise RuntimeError(f"{name} did not start:\n{log.read()}")
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        log.seek(0)
        match = re.search(r"One-time password:\s+(\S+)", log.read())
        if match is None:
            raise RuntimeError(f"{name} printed no one-time password")
        yield DemoNode(name, organisation, url, match.group(1), env)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def _step(text: str) -> None:
    console.print(f"\n[bold cyan]▶ {text}[/]")


def _sign_in(http: httpx.Client, node: DemoNode) -> None:
    login = http.post(
        f"{node.url}/api/v1/auth/login", json={"username": "admin", "password": node.admin_password}
    )
    login.raise_for_status()
    node.token = login.json()["access_token"]
    http.post(
        f"{node.url}/api/v1/me/password",
        headers=node.headers(),
        json={
            "current_password": node.admin_password,
            "new_password": f"{node.name}-demo-password",
        },
    ).raise_for_status()


def run_demo() -> None:
    """Tell the story; raises if any step does not hold."""
    with ExitStack() as stack, httpx.Client(timeout=30) as http:
        root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="rhenus-demo-")))
        _step("Two organisations start their own sovereign node")
        paris = stack.enter_context(
            live_node("fr-mininterieur", "Ministère de l'Intérieur", root / "fr-mininterieur")
        )
        berlin = stack.enter_context(live_node("de-berlin", "Land Berlin", root / "de-berlin"))
        for node in (paris, berlin):
            console.print(
                f"  {node.organisation:<28} {node.url}  (own keys, SQLite, encrypted blobs)"
            )

        _step("Each administrator signs in with the one-time password and sets a new one")
        for node in (paris, berlin):
            _sign_in(http, node)
            console.print(f"  {node.name}: signed in as admin")

        _step("Each organisation registers one of its agents")
        agents = [
            (paris, "jeanne.dupont", "jeanne.dupont@interieur.gouv.fr"),
            (berlin, "max.mustermann", "max.mustermann@berlin.de"),
        ]
        for node, username, email in agents:
            created = http.post(
                f"{node.url}/api/v1/users",
                headers=node.headers(),
                json={"username": username, "email": email},
            )
            created.raise_for_status()
            console.print(f"  {node.name}: created agent {username} <{email}>")

        _step("Each node calls the other with a signed request (RFC 9421, keys from did:web)")
        for sender, receiver in ((paris, berlin), (berlin, paris)):
            settings = sender.settings()
            answer = asyncio.run(
                trust_client.ping(
                    settings, Keyring.load(settings.keys_dir), receiver.url, f"from {sender.name}"
                )
            )
            console.print(
                f"  {receiver.name} verified {answer.sender} "
                f"(key {answer.key_id.rpartition('#')[2]})"
            )

        _step("Each node proves its audit log is intact (hash chain + signed checkpoints)")
        table = Table("node", "entries", "checkpoints", "verdict")
        for node in (paris, berlin):
            result = http.get(f"{node.url}/api/v1/audit/verify", headers=node.headers()).json()
            if not result["ok"]:
                raise RuntimeError(f"{node.name}: audit log does not verify: {result['reason']}")
            table.add_row(
                node.name, str(result["entries"]), str(result["checkpoints"]), "[green]intact[/]"
            )
        console.print(table)
        console.print("\n[bold green]Demo complete.[/] Next chapters: trust, catalogue, contracts.")
