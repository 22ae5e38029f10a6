"""Routes of a trust anchor (only when ``RHENUS_TRUST_ANCHOR`` is set): the compliance API,
the participant registry and the revocation list."""

from __future__ import annotations

from fastapi import Request, Response

from rhenus.accounts.deps import AdminUser
from rhenus.core.errors import Forbidden, NotFound
from rhenus.core.http import api_router
from rhenus.core.node import Node, NodeDep
from rhenus.trust import service
from rhenus.trust.anchor import (
    STATUS_LIST_PATH,
    assess,
    compliance_credential,
    status_list_credential,
)
from rhenus.trust.deps import SignedNode, get_resolver
from rhenus.trust.did import did_for_url
from rhenus.trust.schemas import ComplianceOut, ComplianceRequest, ParticipantOut, RevokeIn

router = api_router(tags=["trust anchor"])


def _anchor(node: Node) -> str:
    if not node.settings.trust_anchor:
        raise NotFound("this node is not a trust anchor")
    return did_for_url(node.settings.public_url)


@router.post("/api/v1/trust/compliance", response_model=ComplianceOut)
async def request_compliance(
    body: ComplianceRequest, request: Request, node: NodeDep, sender: SignedNode
) -> ComplianceOut:
    """POST /api/v1/trust/compliance — check a participant's credentials, issue compliance.

    The request must be signed by the participant's node; the credentials must be issued by it.
    """
    anchor = _anchor(node)
    async with node.db.session() as session:
        known = await service.get_participant(session, did=sender.did)
    if known is not None and known.revoked_at is not None:
        raise Forbidden(f"{sender.did} was revoked by this anchor")
    assessment = await assess(
        body.verifiableCredentials, sender=sender.did, resolver=get_resolver(request)
    )
    async with node.db.transaction() as session:
        row = await service.register_participant(
            session,
            did=sender.did,
            legal_name=assessment.legal_name,
            country=assessment.country,
            labels=assessment.labels,
            digests=[vc.digest for vc in assessment.checked],
        )
        token = compliance_credential(
            keyring=node.keyring,
            anchor_did=anchor,
            anchor_url=node.settings.public_url,
            assessment=assessment,
            index=row.status_index,
        )
        await node.audit.record(
            session,
            actor=sender.did,
            action="trust.compliance.issued",
            object_type="participant",
            object_id=sender.did,
            payload=token.encode(),
            details={"labels": assessment.labels},
        )
    return ComplianceOut(complianceCredential=token, labels=assessment.labels)


@router.get("/api/v1/trust/participants", response_model=list[ParticipantOut])
async def participants(node: NodeDep) -> list[ParticipantOut]:
    """GET /api/v1/trust/participants — the anchor's public registry."""
    _anchor(node)
    async with node.db.session() as session:
        rows = await service.list_participants(session)
    return [
        ParticipantOut(
            did=r.did,
            legal_name=r.legal_name,
            country=r.country,
            labels=r.labels,
            revoked=r.revoked_at is not None,
        )
        for r in rows
    ]


@router.get(STATUS_LIST_PATH, response_class=Response)
async def status_list(node: NodeDep) -> Response:
    """GET /api/v1/trust/status-list — the revocation list (BitstringStatusListCredential)."""
    anchor = _anchor(node)
    async with node.db.session() as session:
        revoked = await service.revoked_indexes(session)
    token = status_list_credential(
        keyring=node.keyring,
        anchor_did=anchor,
        anchor_url=node.settings.public_url,
        revoked=revoked,
    )
    return Response(token, media_type="application/vc+jwt", headers={"cache-control": "max-age=60"})


@router.post("/api/v1/trust/revocations", response_model=ParticipantOut)
async def revoke(body: RevokeIn, node: NodeDep, admin: AdminUser) -> ParticipantOut:
    """POST /api/v1/trust/revocations — revoke a participant's compliance (admin)."""
    _anchor(node)
    async with node.db.transaction() as session:
        row = await service.revoke_participant(session, did=body.did)
        await node.audit.record(
            session,
            actor=admin.actor,
            action="trust.compliance.revoked",
            object_type="participant",
            object_id=body.did,
        )
        return ParticipantOut(
            did=row.did,
            legal_name=row.legal_name,
            country=row.country,
            labels=row.labels,
            revoked=True,
        )
