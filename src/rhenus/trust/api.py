"""Routes of the trust domain, participant side: DID document, self-description, compliance
credential, and the signed federation ping."""

from __future__ import annotations

from fastapi import Request, Response
from fastapi.responses import JSONResponse

from rhenus.accounts.deps import AdminUser
from rhenus.core.errors import NotFound, Problem
from rhenus.core.http import api_router
from rhenus.core.node import NodeDep
from rhenus.trust import participant, service
from rhenus.trust.client import federation_client
from rhenus.trust.deps import SignedPeer, Transport, get_resolver
from rhenus.trust.did import did_document, did_for_url
from rhenus.trust.participant import self_description
from rhenus.trust.schemas import (
    CredentialOut,
    ObtainComplianceIn,
    ObtainComplianceOut,
    ParticipantIn,
    PingIn,
    PingOut,
    ServiceOfferingIn,
    TrustStatusOut,
)

router = api_router(tags=["trust"])
VC_JWT = "application/vc+jwt"
COMPLIANCE_PATH = "/api/v1/trust/compliance-credential"


@router.get("/.well-known/did.json")
async def did_json(node: NodeDep) -> JSONResponse:
    """GET /.well-known/did.json — this node's did:web document (all its keys, its services)."""
    url = node.settings.public_url
    did = did_for_url(url)
    document = did_document(did=did, keyring=node.keyring, public_url=url)
    document["service"].append(
        {
            "id": f"{did}#compliance",
            "type": "ComplianceCredential",
            "serviceEndpoint": url + COMPLIANCE_PATH,
        }
    )
    return JSONResponse(document, media_type="application/did+json")


@router.get(COMPLIANCE_PATH, response_class=Response)
async def compliance_credential(node: NodeDep) -> Response:
    """GET /api/v1/trust/compliance-credential — this node's compliance credential (vc+jwt)."""
    async with node.db.session() as session:
        held = await service.latest_credential(session, kind="compliance")
    if held is None:
        raise NotFound("this node holds no compliance credential yet")
    return Response(held.token, media_type=VC_JWT)


@router.post("/api/v1/trust/participant", response_model=CredentialOut, status_code=201)
async def create_participant(body: ParticipantIn, node: NodeDep, admin: AdminUser) -> CredentialOut:
    """POST /api/v1/trust/participant — sign this organisation's self-description (admin)."""
    token = self_description(settings=node.settings, keyring=node.keyring, **body.model_dump())
    digest = await participant.keep_own_credential(
        node, kind="participant", token=token, actor=admin.actor
    )
    return CredentialOut(token=token, digest=digest)


@router.post("/api/v1/trust/service-offerings", response_model=CredentialOut, status_code=201)
async def create_service_offering(
    body: ServiceOfferingIn, node: NodeDep, admin: AdminUser
) -> CredentialOut:
    """POST /api/v1/trust/service-offerings — sign a gx:ServiceOffering of this node (admin);
    it is presented to the anchor with the self-description at the next compliance request."""
    token = participant.service_offering(
        settings=node.settings, keyring=node.keyring, **body.model_dump()
    )
    digest = await participant.keep_own_credential(
        node, kind="service", token=token, actor=admin.actor
    )
    return CredentialOut(token=token, digest=digest)


@router.post("/api/v1/trust/compliance-requests", response_model=ObtainComplianceOut)
async def obtain_compliance(
    body: ObtainComplianceIn, request: Request, node: NodeDep, transport: Transport, _: AdminUser
) -> ObtainComplianceOut:
    """POST /api/v1/trust/compliance-requests — ask a trust anchor to certify this node (admin)."""
    async with federation_client(node.settings, node.keyring, transport=transport) as client:
        try:
            vc = await participant.obtain_compliance(
                node=node,
                anchor_url=body.anchor_url,
                client=client,
                resolver=get_resolver(request),
            )
        except participant.AnchorRefused as exc:
            raise Problem(
                exc.detail or "the trust anchor refused",
                status=502,
                kind="anchor-refused",
                title="The trust anchor refused",
                anchor_status=exc.status,
                errors=exc.errors,
            ) from exc
    labels = vc.subject.get("rhenus:labels", [])
    return ObtainComplianceOut(
        anchor=vc.issuer, digest=vc.digest, labels=list(labels) if isinstance(labels, list) else []
    )


@router.get("/api/v1/trust/status", response_model=TrustStatusOut)
async def trust_status(node: NodeDep, _: AdminUser) -> TrustStatusOut:
    """GET /api/v1/trust/status — this node's DID and the credentials it holds (admin)."""
    async with node.db.session() as session:
        participant = await service.latest_credential(session, kind="participant")
        compliance = await service.latest_credential(session, kind="compliance")
    return TrustStatusOut(
        did=did_for_url(node.settings.public_url),
        participant_credential=participant.token if participant else None,
        compliance_credential=compliance.token if compliance else None,
        compliance_issuer=compliance.issuer if compliance else None,
        compliance_valid_until=(
            compliance.valid_until.isoformat() if compliance and compliance.valid_until else None
        ),
    )


@router.post("/api/v1/federation/ping", response_model=PingOut)
async def ping(body: PingIn, node: NodeDep, peer: SignedPeer) -> PingOut:
    """POST /api/v1/federation/ping — a signed request from a compliant node, answered with who
    it is. Nodes use it to check that they can reach and authenticate each other."""
    async with node.db.transaction() as session:
        await node.audit.record(
            session,
            actor=peer.did,
            action="trust.ping.received",
            object_type="node",
            object_id=peer.did,
            payload=body.model_dump(),
            details={"key_id": peer.key_id},
        )
    return PingOut(
        sender=peer.did,
        receiver=did_for_url(node.settings.public_url),
        key_id=peer.key_id,
        echo=body.message,
    )
