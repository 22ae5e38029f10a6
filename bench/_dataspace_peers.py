"""The peers and clients of bench/dataspace.py: nginx serving the same plaintext file over TLS
on loopback (the Debian package, installed when missing, its own minimal config), and curl."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console

from rhenus.demo.nodes import free_port

MiB = 1024 * 1024
console = Console(width=160)


def curl(url: str, headers: dict[str, str], ca_file: Path, size: int) -> float:
    """GET ``url`` to /dev/null with curl; its average MiB/s."""
    args = ["curl", "--silent", "--show-error", "--cacert", str(ca_file), "--output", "/dev/null",
            "--write-out", "%{http_code} %{size_download} %{speed_download}"]  # fmt: skip
    for name, value in headers.items():
        args += ["--header", f"{name}: {value}"]
    status, received, speed = subprocess.run(
        [*args, url], capture_output=True, text=True, check=True
    ).stdout.split()
    if status != "200" or int(received) != size:
        raise RuntimeError(f"{url}: curl got {status}, {received} bytes of {size}")
    return float(speed) / MiB


NGINX_CONF = """\
daemon off;
master_process on;
worker_processes 1;
pid {home}/nginx.pid;
error_log stderr warn;
{user}
events {{ worker_connections 64; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    default_type application/octet-stream;
    client_body_temp_path {home}/body;
    proxy_temp_path {home}/proxy;
    fastcgi_temp_path {home}/fastcgi;
    uwsgi_temp_path {home}/uwsgi;
    scgi_temp_path {home}/scgi;
    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        root {home}/www;
    }}
}}
"""


def nginx_binary() -> str:
    path = f"{os.environ.get('PATH', '')}:/usr/sbin:/usr/local/sbin"
    found = shutil.which("nginx", path=path)
    if found:
        return found
    if os.geteuid() != 0:
        raise SystemExit("nginx is missing: install the Debian package nginx (needs root)")
    console.print("installing nginx (Debian package nginx)…")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", "nginx"], check=True, env=env,
                   stdout=subprocess.DEVNULL)  # fmt: skip
    found = shutil.which("nginx", path=path)
    if not found:
        raise SystemExit("nginx did not install")
    return found


@contextmanager
def nginx(home: Path, plain: Path, cert: tuple[Path, Path]) -> Iterator[tuple[str, str]]:
    """nginx serving ``plain`` over TLS on loopback with its own config; (file URL, version)."""
    binary = nginx_binary()
    version = subprocess.run([binary, "-v"], capture_output=True, text=True).stderr.strip()
    version = version.removeprefix("nginx version: ")
    (home / "www").mkdir(parents=True)
    for folder in (home, home / "www"):  # readable by the worker's user too
        folder.chmod(0o755)
    served = home / "www" / plain.name
    os.link(plain, served)  # the same file, not a copy
    served.chmod(0o644)
    port = free_port()
    conf = NGINX_CONF.format(
        home=home,
        port=port,
        cert=cert[0],
        key=cert[1],
        # As root, nginx's workers would run as nobody, who cannot read the bench's directory.
        user="user root;" if os.geteuid() == 0 else "",
    )
    (home / "nginx.conf").write_text(conf)
    log = (home / "nginx.log").open("w+")
    process = subprocess.Popen(
        [binary, "-p", str(home), "-c", str(home / "nginx.conf"), "-e", "stderr"],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                raise RuntimeError(f"nginx did not start:\n{log.read()}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        yield f"https://127.0.0.1:{port}/{plain.name}", version
    finally:
        process.send_signal(signal.SIGQUIT)  # graceful shutdown, of this master only
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
