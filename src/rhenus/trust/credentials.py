"""Verifiable credentials (W3C VC Data Model 2.0) secured as JWTs (``typ: vc+jwt``).

The JWT payload *is* the credential (VC-JOSE-COSE): ``@context``, ``type``, ``issuer``,
``validFrom``/``validUntil``, ``credentialSubject``. It is signed with the issuer node's current
Ed25519 key; the ``kid`` header is the did:web key id, so any verifier can fetch the key from the
issuer's DID document. Algorithm ``Ed25519`` (RFC 9864, the fully specified form of EdDSA);
``EdDSA`` is accepted on input. The JSON-LD contexts credentials may use are package data,
never fetched.
"""

from __future__ import annotations

import base64
import hashlib
import json
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from importlib import resources
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import OKPKey
from joserfc.util import to_bytes

from rhenus.core.errors import Problem
from rhenus.core.keys import Keyring
from rhenus.trust.did import DidResolver

VC_CONTEXT = "https://www.w3.org/ns/credentials/v2"
GX_CONTEXT = "https://w3id.org/gaia-x/development#"
ALGORITHMS = ["Ed25519", "EdDSA"]
_CONTEXT_FILES = {VC_CONTEXT: "credentials-v2.jsonld", GX_CONTEXT: "gaia-x.jsonld"}
_MAX_TOKEN = 64 * 1024


class CredentialError(Problem):
    """A credential is malformed, badly signed, expired, or not what it claims."""

    status, kind, title = 403, "credential-refused", "Credential refused"


@cache
def context_document(url: str) -> dict[str, Any]:
    """The JSON-LD context published at ``url``, from package data."""
    name = _CONTEXT_FILES.get(url)
    if name is None:
        raise CredentialError(f"unknown JSON-LD context {url[:120]!r} (contexts are never fetched)")
    data: dict[str, Any] = json.loads(
        resources.files("rhenus.trust").joinpath("data", name).read_text()
    )
    return data


def digest(token: str) -> str:
    """``sha256-<hex>`` of a credential as transmitted (what compliance credentials list)."""
    return "sha256-" + hashlib.sha256(token.encode()).hexdigest()


def _private_key(keyring: Keyring) -> OKPKey:
    pem = keyring.signing_key.private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return OKPKey.import_key(pem)


def issue(
    *,
    keyring: Keyring,
    did: str,
    types: list[str],
    subject: dict[str, Any],
    valid_for: timedelta = timedelta(days=365),
    credential_id: str | None = None,
    status: dict[str, Any] | None = None,
    contexts: tuple[str, ...] = (VC_CONTEXT, GX_CONTEXT),
) -> str:
    """A compact vc+jwt signed by this node with its current key."""
    now = datetime.now(UTC).replace(microsecond=0)
    credential: dict[str, Any] = {
        "@context": list(contexts),
        "type": ["VerifiableCredential", *types],
        "issuer": did,
        "validFrom": now.isoformat().replace("+00:00", "Z"),
        "validUntil": (now + valid_for).isoformat().replace("+00:00", "Z"),
        "credentialSubject": subject,
    }
    if credential_id:
        credential["id"] = credential_id
    if status:
        credential["credentialStatus"] = status
    header = {
        "alg": "Ed25519",
        "typ": "vc+jwt",
        "cty": "vc",
        "kid": f"{did}#{keyring.current_signing}",
    }
    payload = json.dumps(credential, separators=(",", ":"), ensure_ascii=False).encode()
    return jws.serialize_compact(header, payload, _private_key(keyring), algorithms=ALGORITHMS)


@dataclass(frozen=True)
class VerifiedCredential:
    token: str
    credential: dict[str, Any]
    issuer: str
    key_id: str

    @property
    def digest(self) -> str:
        return digest(self.token)

    @property
    def types(self) -> list[str]:
        value = self.credential.get("type", [])
        return [value] if isinstance(value, str) else list(value)

    @property
    def subject(self) -> dict[str, Any]:
        subject = self.credential.get("credentialSubject", {})
        return subject if isinstance(subject, dict) else {}


def _parse_time(value: Any, name: str) -> datetime:
    if not isinstance(value, str):
        raise CredentialError(f"{name} must be an XML Schema dateTime string")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise CredentialError(f"{name} is not a valid dateTime: {value[:40]!r}") from exc
    if parsed.tzinfo is None:
        raise CredentialError(f"{name} must carry a time zone")
    return parsed


def sign_jws(*, keyring: Keyring, did: str, payload: dict[str, Any], typ: str) -> str:
    """A compact JWS of ``payload`` (JSON) signed with this node's current key, whose did:web
    key id is in ``kid`` (credentials, transfer receipts)."""
    header = {"alg": "Ed25519", "typ": typ, "kid": f"{did}#{keyring.current_signing}"}
    data = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    return jws.serialize_compact(header, data, _private_key(keyring), algorithms=ALGORITHMS)


async def verify_jws(
    token: str, resolver: DidResolver, *, typ: str
) -> tuple[dict[str, Any], str, str]:
    """(payload, signer DID, key id) of a compact JWS of type ``typ`` signed by a key of its
    signer's did:web document; :class:`CredentialError` naming what is wrong otherwise."""
    if len(token) > _MAX_TOKEN:
        raise CredentialError("the token is larger than 64 KiB")
    try:
        header = jws.extract_compact(to_bytes(token)).headers()
    except (JoseError, ValueError) as exc:
        raise CredentialError(f"not a compact JWS: {exc}") from exc
    if header.get("typ") != typ:
        raise CredentialError(f"the JWT header must have typ {typ}")
    if header.get("alg") not in ALGORITHMS:
        raise CredentialError(f"unsupported algorithm {header.get('alg')!r}; use Ed25519")
    key_id = header.get("kid")
    if not isinstance(key_id, str) or "#" not in key_id:
        raise CredentialError("the JWT header must name the signer's did:web key in kid")
    resolved = await resolver.key(key_id)
    public = OKPKey.import_key({"kty": "OKP", "crv": "Ed25519", "x": _x(resolved.public_key)})
    try:
        with warnings.catch_warnings():
            # joserfc warns that "EdDSA" is deprecated (RFC 9864); older issuers still use it.
            warnings.simplefilter("ignore")
            verified = jws.deserialize_compact(token, public, algorithms=ALGORITHMS)
    except JoseError as exc:
        raise CredentialError(f"bad signature: {exc}") from exc
    try:
        payload = json.loads(verified.payload)
    except ValueError as exc:
        raise CredentialError("the payload is not JSON") from exc
    if not isinstance(payload, dict):
        raise CredentialError("the payload is not a JSON object")
    return payload, resolved.did, key_id


async def verify(
    token: str, resolver: DidResolver, *, now: datetime | None = None
) -> VerifiedCredential:
    """Check a vc+jwt: header, issuer's did:web key, signature, validity period, contexts."""
    credential, signer, key_id = await verify_jws(token, resolver, typ="vc+jwt")
    issuer = credential.get("issuer")
    issuer_id = issuer.get("id") if isinstance(issuer, dict) else issuer
    if issuer_id != signer:
        raise CredentialError("the credential's issuer is not the DID that signed it")
    contexts = credential.get("@context")
    if not isinstance(contexts, list) or not contexts or contexts[0] != VC_CONTEXT:
        raise CredentialError(f"the first @context must be {VC_CONTEXT}")
    for url in contexts:
        if isinstance(url, str):
            context_document(url)
    moment = now or datetime.now(UTC)
    if "validFrom" in credential and _parse_time(credential["validFrom"], "validFrom") > moment:
        raise CredentialError("the credential is not valid yet (validFrom)")
    if "validUntil" in credential and _parse_time(credential["validUntil"], "validUntil") < moment:
        raise CredentialError("the credential has expired (validUntil)")
    return VerifiedCredential(token, credential, signer, key_id)


def _x(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_unverified(token: str) -> dict[str, Any]:
    """The payload of a vc+jwt without checking it (for display and tests only)."""
    payload = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return decoded


def expanded(credential: dict[str, Any]) -> dict[str, Any]:
    """The credential with its context URLs replaced by their (local) documents, for rdflib."""
    contexts = credential.get("@context", [])
    inline = [context_document(c)["@context"] if isinstance(c, str) else c for c in contexts]
    return {**credential, "@context": inline}
