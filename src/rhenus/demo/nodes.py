"""Live nodes for the demo and the end-to-end tests: real ``rhenus run`` processes on loopback."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx

from rhenus.config import Settings
from rhenus.core.tls import ca_paths, client_ssl_context, create_dev_ca, issue_server_certificate


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
    pid: int = 0

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the node's process has used so far (Linux ``/proc``)."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

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


def dev_tls(directory: Path, names: list[str]) -> tuple[Path, dict[str, dict[str, str]]]:
    """A development CA and one loopback certificate per node; returns the CA file and, per
    node, the ``RHENUS_TLS_*`` environment that makes it serve HTTPS and trust the CA."""
    if not ca_paths(directory)[0].exists():
        create_dev_ca(directory)
    envs = {}
    for name in names:
        cert, key = issue_server_certificate(
            directory, directory, name=name, hosts=["127.0.0.1", "localhost"]
        )
        envs[name] = {
            "RHENUS_TLS_CERT_FILE": str(cert),
            "RHENUS_TLS_KEY_FILE": str(key),
            "RHENUS_TLS_CA_FILE": str(ca_paths(directory)[0]),
        }
    return ca_paths(directory)[0], envs


class Fleet:
    """Live nodes started one by one and stopped together.

    Stopping them all at once matters: each node drains its peers' idle keep-alive TLS
    connections at shutdown, which only end when those peers stop too.
    """

    def __init__(self) -> None:
        self._running: list[tuple[subprocess.Popen[bytes], IO[str]]] = []

    def __enter__(self) -> Fleet:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def stop(self) -> None:
        for process, _ in self._running:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
        for process, log in self._running:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
            log.close()
        self._running.clear()

    def start(
        self,
        name: str,
        organisation: str,
        home: Path,
        *,
        port: int | None = None,
        extra_env: dict[str, str] | None = None,
    ) -> LiveNode:
        """Run ``rhenus run`` for one organisation; returns once it answers /healthz."""
        port = port or free_port()
        env = {
            **os.environ,
            "RHENUS_HOME": str(home),
            "RHENUS_PORT": str(port),
            "RHENUS_NODE_NAME": name,
            "RHENUS_ORGANISATION": organisation,
            "RHENUS_LOG_LEVEL": "warning",
            # Crawls happen when the script asks, so that what it prints is deterministic.
            "RHENUS_CATALOGUE_CRAWL_SECONDS": "0",
            # Small, so that the demo's few acts already produce signed checkpoints.
            "RHENUS_AUDIT_CHECKPOINT_EVERY": "2",
            "COLUMNS": "200",
            **(extra_env or {}),
        }
        scheme = "https" if env.get("RHENUS_TLS_CERT_FILE") else "http"
        ca_file = env.get("RHENUS_TLS_CA_FILE")
        verify = client_ssl_context(Path(ca_file) if ca_file else None)
        home.mkdir(parents=True, exist_ok=True)
        rhenus = str(Path(sys.executable).parent / "rhenus")
        log = (home.parent / f"{name}.log").open("w+")
        # Our own executable with fixed arguments.
        process = subprocess.Popen([rhenus, "run"], env=env, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603
        self._running.append((process, log))
        url = f"{scheme}://127.0.0.1:{port}"
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
        return LiveNode(name, organisation, url, match.group(1), env, pid=process.pid)
