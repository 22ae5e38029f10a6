"""HTTPS between nodes: the development CA, the certificates it issues, and who trusts them."""

from __future__ import annotations

import ipaddress
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import typer
from cryptography import x509
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError
from typer.testing import CliRunner

from rhenus.cli.devca import dev_ca
from rhenus.core.tls import client_ssl_context, create_dev_ca, issue_server_certificate

STARTUP_TIMEOUT = 20.0
APP = """\
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"hello over tls"})
"""


@pytest.fixture
def issued(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A dev CA and a certificate for de-berlin on 127.0.0.1 and localhost: (ca, chain, key)."""
    ca_cert, _ = create_dev_ca(tmp_path / "ca")
    chain, key = issue_server_certificate(
        tmp_path / "ca", tmp_path / "certs", name="de-berlin", hosts=["127.0.0.1", "localhost"]
    )
    return ca_cert, chain, key


@pytest.mark.parametrize(
    "subject",
    [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")],
    ids=["ip", "dns"],
)
def test_server_certificate_chains_to_the_dev_ca_for_each_host(
    issued: tuple[Path, Path, Path], subject: x509.DNSName | x509.IPAddress
) -> None:
    ca_cert, chain_file, _ = issued
    leaf, ca_in_chain = x509.load_pem_x509_certificates(chain_file.read_bytes())
    ca = x509.load_pem_x509_certificate(ca_cert.read_bytes())
    verifier = PolicyBuilder().store(Store([ca])).build_server_verifier(subject)

    path = verifier.verify(leaf, [])

    assert path[-1] == ca
    assert ca_in_chain == ca


def test_server_certificate_is_refused_for_a_host_it_does_not_name(
    issued: tuple[Path, Path, Path],
) -> None:
    ca_cert, chain_file, _ = issued
    leaf = x509.load_pem_x509_certificates(chain_file.read_bytes())[0]
    ca = x509.load_pem_x509_certificate(ca_cert.read_bytes())
    verifier = PolicyBuilder().store(Store([ca])).build_server_verifier(x509.DNSName("evil.test"))

    with pytest.raises(VerificationError):
        verifier.verify(leaf, [])


def test_create_dev_ca_refuses_to_overwrite_an_existing_ca(tmp_path: Path) -> None:
    ca_cert, ca_key = create_dev_ca(tmp_path)
    before = (ca_cert.read_bytes(), ca_key.read_bytes())

    with pytest.raises(ValueError, match="already exists"):
        create_dev_ca(tmp_path)

    assert (ca_cert.read_bytes(), ca_key.read_bytes()) == before


def test_private_keys_are_readable_by_the_owner_only(tmp_path: Path) -> None:
    _, ca_key = create_dev_ca(tmp_path)
    _, server_key = issue_server_certificate(tmp_path, tmp_path, name="de-berlin", hosts=["::1"])

    assert ca_key.stat().st_mode & 0o777 == 0o600
    assert server_key.stat().st_mode & 0o777 == 0o600


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def https_server(tmp_path: Path, issued: tuple[Path, Path, Path]) -> Iterator[int]:
    """A real uvicorn serving HTTPS with the de-berlin certificate; yields its port."""
    _, chain, key = issued
    (tmp_path / "tlsapp.py").write_text(APP)
    port = _free_port()
    command = [sys.executable, "-m", "uvicorn", "tlsapp:app", "--app-dir", str(tmp_path)]
    command += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    command += ["--ssl-certfile", str(chain), "--ssl-keyfile", str(key)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            if process.poll() is not None:
                output = process.stdout.read().decode() if process.stdout else ""
                pytest.fail(f"uvicorn exited early ({process.returncode}):\n{output}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail("uvicorn did not start listening in time")
                time.sleep(0.1)
        yield port
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        if process.stdout:
            process.stdout.close()


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_node_trusting_the_dev_ca_reaches_the_https_server(
    https_server: int, issued: tuple[Path, Path, Path], host: str
) -> None:
    ca_cert, _, _ = issued
    with httpx.Client(verify=client_ssl_context(ca_cert), timeout=5) as client:
        response = client.get(f"https://{host}:{https_server}/")

    assert response.status_code == 200
    assert response.text == "hello over tls"


def test_client_with_only_the_system_store_refuses_the_dev_certificate(https_server: int) -> None:
    with (
        httpx.Client(verify=ssl.create_default_context(), timeout=5) as client,
        pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"),
    ):
        client.get(f"https://127.0.0.1:{https_server}/")


def test_client_context_requires_tls_1_2_and_verifies_hostnames() -> None:
    context = client_ssl_context(None)

    assert context.minimum_version >= ssl.TLSVersion.TLSv1_2
    assert context.verify_mode is ssl.CERT_REQUIRED
    assert context.check_hostname


def test_dev_ca_command_reuses_the_ca_and_prints_the_settings(tmp_path: Path) -> None:
    app = typer.Typer()
    app.command()(dev_ca)
    runner = CliRunner()
    out = tmp_path / "dev-ca"

    first = runner.invoke(app, ["--out", str(out), "--node", "de-berlin", "--node", "fr-paris"])
    ca_before = (out / "ca.pem").read_bytes()
    second = runner.invoke(app, ["--out", str(out), "--node", "it-roma"])

    assert first.exit_code == 0, first.output
    assert second.exit_code == 0, second.output
    assert (out / "ca.pem").read_bytes() == ca_before
    assert "Reusing the CA" in second.output
    for name in ("de-berlin", "fr-paris", "it-roma"):
        assert (out / f"{name}.pem").is_file()
        assert (out / f"{name}-key.pem").is_file()
    assert f"RHENUS_TLS_CERT_FILE={out / 'de-berlin.pem'}" in first.output
    assert f"RHENUS_TLS_KEY_FILE={out / 'de-berlin-key.pem'}" in first.output
    assert f"RHENUS_TLS_CA_FILE={out / 'ca.pem'}" in first.output
