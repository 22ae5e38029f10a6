"""`rhenus run` (what `make run` calls) starts a real node: keys, schema, admin, HTTP."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.support.postgres import free_port

RHENUS = str(Path(sys.executable).parent / "rhenus")


def _start(home: Path, port: int) -> subprocess.Popen[str]:
    env = {**os.environ, "RHENUS_HOME": str(home), "RHENUS_PORT": str(port), "COLUMNS": "200"}
    return subprocess.Popen(
        [RHENUS, "run"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def _serve_until_healthy(home: Path) -> tuple[str, str]:
    """Start, wait for /healthz 200, stop; returns (printed output, admin login status)."""
    port = free_port()
    process = _start(home, port)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert process.poll() is None, process.communicate()[0]
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        else:
            raise AssertionError("the node did not answer /healthz within 60 s")
        ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5)
        assert ready.json()["status"] == "ready"
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=30)
    return output, f"http://127.0.0.1:{port}"


def test_first_start_initialises_and_serves_then_restarts_quietly(tmp_path: Path) -> None:
    home = tmp_path / "node"
    first, url = _serve_until_healthy(home)
    assert f"Rhenus serving on {url}" in first
    match = re.search(r"One-time password:\s+(\S+)", first)
    assert match, first
    password = match.group(1)
    assert first.count(password) == 1  # printed once, never logged
    assert (home / "rhenus.db").is_file()
    assert (home / "keys" / "keys.json").is_file()
    assert oct((home / "keys").stat().st_mode & 0o777) == "0o700"

    second, _ = _serve_until_healthy(home)
    assert "One-time password" not in second
    assert password not in second
