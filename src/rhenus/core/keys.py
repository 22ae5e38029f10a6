"""The node's key material: Ed25519 signing keys and AES-256 key-encryption keys (KEKs).

Everything lives under ``{home}/keys/`` (mode 0700, files 0600)::

    keys.json             manifest: current signing key id, current KEK id, every key's dates
    signing-<kid>.pem     PKCS#8 Ed25519 private key
    kek-<id>.bin          32 random bytes

Rotation adds a key and makes it current; old keys stay, so signatures and wrapped data keys made
before the rotation still verify and unwrap (``docs/operations.md``).
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap, aes_key_wrap

MANIFEST = "keys.json"


class KeyringError(Exception):
    """A key is missing, unknown or does not unwrap."""


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    """Decode unpadded base64url (as JWKs and JWS use it)."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _new_id() -> str:
    # Sortable by creation (date prefix) and unique without coordination.
    return datetime.now(UTC).strftime("%Y%m%d") + "-" + secrets.token_hex(4)


def write_private(path: Path, data: bytes) -> None:
    """Write a secret file atomically with mode 0600 (never world-readable, not even briefly)."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


@dataclass(frozen=True)
class SigningKey:
    """One Ed25519 key of the node, named by ``kid``."""

    kid: str
    private: Ed25519PrivateKey
    created: str

    @property
    def public(self) -> Ed25519PublicKey:
        return self.private.public_key()

    def public_bytes(self) -> bytes:
        return self.public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)

    def public_jwk(self) -> dict[str, str]:
        """The public key as an OKP JWK (RFC 8037), as did:web documents carry it."""
        return {"kty": "OKP", "crv": "Ed25519", "x": _b64url(self.public_bytes()), "kid": self.kid}


@dataclass
class Keyring:
    """The node's signing keys and KEKs, with one current key of each kind."""

    directory: Path
    signing: dict[str, SigningKey] = field(default_factory=dict)
    keks: dict[str, bytes] = field(default_factory=dict)
    current_signing: str = ""
    current_kek: str = ""
    dates: dict[str, dict[str, str]] = field(default_factory=dict)

    # -- lifecycle -----------------------------------------------------------------------------
    @classmethod
    def exists(cls, directory: Path) -> bool:
        return (directory / MANIFEST).is_file()

    @classmethod
    def create(cls, directory: Path) -> Keyring:
        """Create a new keyring with one signing key and one KEK; refuses to overwrite one."""
        if cls.exists(directory):
            raise KeyringError(f"a keyring already exists in {directory}")
        directory.mkdir(parents=True, exist_ok=True)
        directory.chmod(0o700)
        ring = cls(directory=directory)
        ring.rotate_signing()
        ring.rotate_kek()
        return ring

    @classmethod
    def load(cls, directory: Path) -> Keyring:
        """Load the keyring written by :meth:`create`."""
        try:
            manifest = json.loads((directory / MANIFEST).read_text())
        except FileNotFoundError as exc:
            raise KeyringError(f"no keyring in {directory}; run `rhenus init`") from exc
        ring = cls(
            directory=directory,
            current_signing=manifest["current_signing"],
            current_kek=manifest["current_kek"],
            dates=manifest.get("dates", {}),
        )
        for kid in manifest["signing"]:
            pem = (directory / f"signing-{kid}.pem").read_bytes()
            key = serialization.load_pem_private_key(pem, password=None)
            if not isinstance(key, Ed25519PrivateKey):
                raise KeyringError(f"signing key {kid} is not Ed25519")
            created = ring.dates.get(kid, {}).get("created", "")
            ring.signing[kid] = SigningKey(kid=kid, private=key, created=created)
        for kek_id in manifest["keks"]:
            ring.keks[kek_id] = (directory / f"kek-{kek_id}.bin").read_bytes()
        return ring

    @classmethod
    def load_or_create(cls, directory: Path) -> Keyring:
        return cls.load(directory) if cls.exists(directory) else cls.create(directory)

    def _save_manifest(self) -> None:
        manifest = {
            "current_signing": self.current_signing,
            "current_kek": self.current_kek,
            "signing": sorted(self.signing),
            "keks": sorted(self.keks),
            "dates": self.dates,
        }
        write_private(self.directory / MANIFEST, json.dumps(manifest, indent=2).encode())

    def rotate_signing(self) -> SigningKey:
        """Add a new Ed25519 key and make it current; the old ones still verify."""
        kid = _new_id()
        now = datetime.now(UTC).isoformat()
        private = Ed25519PrivateKey.generate()
        pem = private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        write_private(self.directory / f"signing-{kid}.pem", pem)
        if self.current_signing:
            self.dates.setdefault(self.current_signing, {})["retired"] = now
        self.dates[kid] = {"created": now}
        self.signing[kid] = SigningKey(kid=kid, private=private, created=now)
        self.current_signing = kid
        self._save_manifest()
        return self.signing[kid]

    def rotate_kek(self) -> str:
        """Add a new KEK and make it current; objects wrapped by older KEKs still open."""
        kek_id = _new_id()
        now = datetime.now(UTC).isoformat()
        write_private(self.directory / f"kek-{kek_id}.bin", secrets.token_bytes(32))
        if self.current_kek:
            self.dates.setdefault(self.current_kek, {})["retired"] = now
        self.dates[kek_id] = {"created": now}
        self.keks[kek_id] = (self.directory / f"kek-{kek_id}.bin").read_bytes()
        self.current_kek = kek_id
        self._save_manifest()
        return kek_id

    # -- signatures ----------------------------------------------------------------------------
    @property
    def signing_key(self) -> SigningKey:
        return self.signing[self.current_signing]

    def sign(self, data: bytes) -> tuple[str, bytes]:
        """Sign with the current key; returns ``(kid, signature)``."""
        key = self.signing_key
        return key.kid, key.private.sign(data)

    def verify(self, kid: str, data: bytes, signature: bytes) -> bool:
        """Check a signature made by one of this node's keys, current or retired."""
        key = self.signing.get(kid)
        if key is None:
            return False
        try:
            key.public.verify(signature, data)
        except InvalidSignature:
            return False
        return True

    # -- envelope encryption -------------------------------------------------------------------
    def wrap(self, data_key: bytes) -> tuple[str, bytes]:
        """Wrap a data key with the current KEK (RFC 3394 AES key wrap)."""
        return self.current_kek, aes_key_wrap(self.keks[self.current_kek], data_key)

    def unwrap(self, kek_id: str, wrapped: bytes) -> bytes:
        """Unwrap a data key; raises :class:`KeyringError` if the KEK is unknown or wrong."""
        kek = self.keks.get(kek_id)
        if kek is None:
            raise KeyringError(f"unknown key-encryption key {kek_id!r}")
        try:
            return aes_key_unwrap(kek, wrapped)
        except InvalidUnwrap as exc:
            raise KeyringError(f"data key does not unwrap with KEK {kek_id!r}") from exc
