"""Routes of the trust domain: the node's DID document and the signed federation ping."""

from __future__ import annotations

from fastapi.responses import JSONResponse

from rhenus.core.http import api_router
from rhenus.core.node import NodeDep
from rhenus.trust.deps import SignedPeer
from rhenus.trust.did import did_document, did_for_url
from rhenus.trust.schemas import PingIn, PingOut

router = api_router(tags=["trust"])


@router.get("/.well-known/did.json")
async def did_json(node: NodeDep) -> JSONResponse:
    """GET /.well-known/did.json — this node's did:web document (all its keys, its services)."""
    did = did_for_url(node.settings.public_url)
    document = did_document(did=did, keyring=node.keyring, public_url=node.settings.public_url)
    return JSONResponse(document, media_type="application/did+json")


@router.post("/api/v1/federation/ping", response_model=PingOut)
async def ping(body: PingIn, node: NodeDep, peer: SignedPeer) -> PingOut:
    """POST /api/v1/federation/ping — a signed request from another node, answered with who it is.

    Nodes use it to check that they can reach and authenticate each other.
    """
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
