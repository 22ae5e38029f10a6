"""A node as a participant: its self-description, and obtaining compliance from an anchor."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx

from rhenus.config import Settings
from rhenus.core.errors import NotFound
from rhenus.core.keys import Keyring
from rhenus.core.node import Node
from rhenus.trust import credentials, service
from rhenus.trust.credentials import CredentialError, VerifiedCredential
from rhenus.trust.did import DidResolver, did_for_url


def self_description(
    *,
    settings: Settings,
    keyring: Keyring,
    legal_name: str,
    headquarters: str,
    legal_address: str,
    vat_id: str | None = None,
    eori: str | None = None,
    lei_code: str | None = None,
) -> str:
    """This node's gx:LegalParticipant credential, signed by itself (vc+jwt)."""
    did = did_for_url(settings.public_url)
    number: dict[str, Any] = {"type": "gx:legalRegistrationNumber"}
    for term, value in (("gx:vatID", vat_id), ("gx:EORI", eori), ("gx:leiCode", lei_code)):
        if value:
            number[term] = value
    subject = {
        "id": did,
        "type": "gx:LegalParticipant",
        "gx:legalName": legal_name,
        "gx:legalRegistrationNumber": number,
        "gx:headquarterAddress": {"gx:countrySubdivisionCode": headquarters},
        "gx:legalAddress": {"gx:countrySubdivisionCode": legal_address},
    }
    return credentials.issue(
        keyring=keyring,
        did=did,
        types=[],
        subject=subject,
        credential_id=f"{settings.public_url}/credentials/participant",
    )


def service_offering(
    *,
    settings: Settings,
    keyring: Keyring,
    name: str,
    description: str,
    terms_url: str,
    terms_sha256: str | None = None,
) -> str:
    """A gx:ServiceOffering credential of this node, provided by its participant (vc+jwt)."""
    did = did_for_url(settings.public_url)
    slug = "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-")[:60] or "service"
    terms: dict[str, Any] = {"type": "gx:TermsAndConditions", "gx:URL": terms_url}
    if terms_sha256:
        terms["gx:hash"] = terms_sha256
    subject = {
        "id": f"{settings.public_url}/services/{slug}",
        "type": "gx:ServiceOffering",
        "gx:providedBy": {"id": did},
        "gx:name": name,
        "gx:description": description,
        "gx:termsAndConditions": terms,
    }
    return credentials.issue(
        keyring=keyring,
        did=did,
        types=[],
        subject=subject,
        credential_id=f"{settings.public_url}/credentials/services/{slug}",
    )


async def keep_own_credential(node: Node, *, kind: str, token: str, actor: str) -> str:
    """Store a credential this node signed about itself and record the act; returns its digest.

    ``kind`` is "participant" (the self-description) or "service" (a service offering); both
    are presented to the anchor at the next compliance request.
    """
    async with node.db.transaction() as session:
        row = await service.store_credential(
            session,
            kind=kind,
            token=token,
            issuer=did_for_url(node.settings.public_url),
            valid_until=None,
        )
        await node.audit.record(
            session,
            actor=actor,
            action=f"trust.{kind}.signed",
            object_type="credential",
            object_id=row.digest,
        )
        return row.digest


class AnchorRefused(Exception):
    """The anchor did not certify us; ``detail`` and ``errors`` say why."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        self.status = status
        self.detail = str(body.get("detail", ""))
        self.errors = [str(e) for e in body.get("errors", [])]
        super().__init__(f"{status}: {self.detail} {'; '.join(self.errors)}".strip())


async def request_compliance(
    *,
    settings: Settings,
    anchor_url: str,
    tokens: list[str],
    client: httpx.AsyncClient,
    resolver: DidResolver,
) -> VerifiedCredential:
    """Send our credentials to an anchor (signed request) and check the credential it returns."""
    anchor_url = anchor_url.rstrip("/")
    response = await client.post(
        anchor_url + "/api/v1/trust/compliance", json={"verifiableCredentials": tokens}
    )
    if response.is_error:
        try:
            body = response.json()
        except ValueError:
            body = {"detail": response.text[:500]}
        raise AnchorRefused(response.status_code, body if isinstance(body, dict) else {})
    token = str(response.json().get("complianceCredential", ""))
    vc = await credentials.verify(token, resolver)
    if vc.issuer != did_for_url(anchor_url):
        raise CredentialError("the compliance credential is not issued by the anchor we asked")
    if vc.subject.get("id") != did_for_url(settings.public_url):
        raise CredentialError("the compliance credential is not about this node")
    return vc


async def obtain_compliance(
    *, node: Node, anchor_url: str, client: httpx.AsyncClient, resolver: DidResolver
) -> VerifiedCredential:
    """Present our newest self-description and our service offerings to an anchor, and keep
    the compliance credential it issues."""
    async with node.db.session() as session:
        held = await service.latest_credential(session, kind="participant")
        offerings = await service.credentials_of_kind(session, kind="service")
    if held is None:
        raise NotFound("sign a self-description first (rhenus trust participant create)")
    vc = await request_compliance(
        settings=node.settings,
        anchor_url=anchor_url,
        tokens=[held.token, *(row.token for row in offerings)],
        client=client,
        resolver=resolver,
    )
    until = vc.credential.get("validUntil")
    async with node.db.transaction() as session:
        await service.store_credential(
            session,
            kind="compliance",
            token=vc.token,
            issuer=vc.issuer,
            valid_until=datetime.fromisoformat(until.replace("Z", "+00:00")) if until else None,
        )
        await node.audit.record(
            session,
            actor="node",
            action="trust.compliance.obtained",
            object_type="credential",
            object_id=vc.digest,
            details={"anchor": vc.issuer},
        )
    return vc
