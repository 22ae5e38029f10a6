"""Live nodes for the demo and the end-to-end tests: real ``rhenus run`` processes on loopback."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from rhenus.config import Settings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LiveNode:
    """A running node: its URL, first admin password, environment (for CLI calls as it)."""

    name: str
    organisation: str
    url: str
    admin_password: str
    env: dict[str, str]
    token: str = ""

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    @property
    def did(self) -> str:
        from rhenus.trust.did import did_for_url

        return did_for_url(self.url)

    def settings(self) -> Settings:
        """This node's settings, as its process sees them."""
        keys = [k for k in self.env if k.startswith("RHENUS_")]
        saved = {k: os.environ.get(k) for k in keys}
        try:
            os.environ.update({k: self.env[k] for k in keys})
            return Settings()
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value

    def sign_in(self, http: httpx.Client, new_password: str) -> None:
        """Sign in as the first admin and replace its one-time password."""
        login = http.post(
            f"{self.url}/api/v1/auth/login",
            json={"username": "admin", "password": self.admin_password},
        )
        login.raise_for_status()
        self.token = login.json()["access_token"]
        http.post(
            f"{self.url}/api/v1/me/password",
            headers=self.headers(),
            json={"current_password": self.admin_password, "new_password": new_password},
        ).raise_for_status()


@contextmanager
def live_node(
    name: str,
    organisation: str,
    home: Path,
    *,
    port: int | None = None,
    extra_env: dict[str, str] | None = None,
    verify: str | bool = True,
) -> Iterator[LiveNode]:
    """Run ``rhenus run`` for one organisation until the block ends."""
    port = port or free_port()
    env = {
        **os.environ,
        "RHENUS_HOME": str(home),
        "RHENUS_PORT": str(port),
        "RHENUS_NODE_NAME": name,
        "RHENUS_ORGANISATION": organisation,
        "RHENUS_LOG_LEVEL": "warning",
        # Small, so that the demo's few acts already produce signed checkpoints.
        "RHENUS_AUDIT_CHECKPOINT_EVERY": "2",
        "COLUMNS": "200",
        **(extra_env or {}),
    }
    scheme = "https" if env.get("RHENUS_TLS_CERT_FILE") else "http"
    home.mkdir(parents=True, exist_ok=True)
    rhenus = str(Path(sys.executable).parent / "rhenus")
    log = (home.parent / f"{name}.log").open("w+")
    # Our own executable with fixed arguments.
    process = subprocess.Popen([rhenus, "run"], env=env, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603
    url = f"{scheme}://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                raise RuntimeError(f"{name} did not start:\n{log.read()}")
            try:
                if httpx.get(f"{url}/healthz", timeout=1, verify=verify).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        log.seek(0)
        match = re.search(r"One-time password:\s+(\S+)", log.read())
        if match is None:
            raise RuntimeError(f"{name} printed no one-time password")
        yield LiveNode(name, organisation, url, match.group(1), env)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()
