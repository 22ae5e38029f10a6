"""TLS for federation: a development CA, server certificates it signs, and the client context.

did:web resolves only over HTTPS (did:web method specification), so nodes that federate on
one machine need real certificates on loopback. The CA here is for development only: its key
sits unencrypted on disk next to its certificate.
"""

from __future__ import annotations

import functools
import ipaddress
import ssl
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from rhenus.core.keys import write_private

CA_CERT = "ca.pem"
CA_KEY = "ca-key.pem"
CA_VALIDITY = timedelta(days=3650)
SERVER_VALIDITY = timedelta(days=365)
# Tolerate clocks a little behind ours on the other node.
BACKDATE = timedelta(minutes=5)


def ca_paths(directory: Path) -> tuple[Path, Path]:
    """The CA certificate and key paths inside ``directory``."""
    return directory / CA_CERT, directory / CA_KEY


def create_dev_ca(
    directory: Path, *, organisation: str = "Rhenus development CA"
) -> tuple[Path, Path]:
    """Create a self-signed P-256 CA in ``directory``; return (certificate, key) paths."""
    cert_path, key_path = ca_paths(directory)
    if cert_path.exists() or key_path.exists():
        raise ValueError(f"a CA already exists in {directory}; refusing to overwrite it")
    directory.mkdir(parents=True, exist_ok=True)

    # P-256 rather than Ed25519: browsers and common OpenSSL clients accept it everywhere.
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation),
            x509.NameAttribute(NameOID.COMMON_NAME, organisation),
        ]
    )
    now = datetime.now(UTC)
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    write_private(key_path, _private_pem(key))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path


def issue_server_certificate(
    ca_directory: Path, out_directory: Path, *, name: str, hosts: list[str]
) -> tuple[Path, Path]:
    """Issue a server certificate for ``hosts`` signed by the CA; return (chain, key) paths."""
    if not hosts:
        raise ValueError("a server certificate needs at least one host")
    ca_cert_path, ca_key_path = ca_paths(ca_directory)
    ca_cert = x509.load_pem_x509_certificate(ca_cert_path.read_bytes())
    ca_key = serialization.load_pem_private_key(ca_key_path.read_bytes(), password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{ca_key_path} is not an ECDSA key")

    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, name),
            x509.NameAttribute(NameOID.COMMON_NAME, hosts[0]),
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(min(now + SERVER_VALIDITY, ca_cert.not_valid_after_utc))
        .add_extension(x509.SubjectAlternativeName(_san(hosts)), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    out_directory.mkdir(parents=True, exist_ok=True)
    chain_path = out_directory / f"{name}.pem"
    key_path = out_directory / f"{name}-key.pem"
    write_private(key_path, _private_pem(key))
    chain_path.write_bytes(
        cert.public_bytes(serialization.Encoding.PEM)
        + ca_cert.public_bytes(serialization.Encoding.PEM)
    )
    return chain_path, key_path


@functools.cache
def client_ssl_context(ca_file: Path | None) -> ssl.SSLContext:
    """The context for outgoing federation calls: the system store plus ``ca_file``, TLS >= 1.2.

    Built once per CA file and shared (an SSLContext is safe to share): reading the system
    store costs about 30 ms of CPU, and every federation client needs a context.
    """
    context = ssl.create_default_context()
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if ca_file is not None:
        context.load_verify_locations(cafile=ca_file)
    return context


def _san(hosts: list[str]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return names


def _private_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
