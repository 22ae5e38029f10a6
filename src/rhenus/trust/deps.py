"""FastAPI dependencies that admit only requests signed by federation nodes.

``SignedNode``: a valid RFC 9421 signature by a key in the sender's did:web document (used by
the anchor's compliance API: a participant asks for compliance before it has any).
``SignedPeer``: the same, and the sender holds a valid, unrevoked compliance credential from a
trust anchor this node trusts (every other federation route).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import httpx
from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError

from rhenus.config import Settings
from rhenus.core.errors import Unauthorized
from rhenus.core.node import Node, NodeDep
from rhenus.trust.client import public_client
from rhenus.trust.did import DidResolver, did_for_url
from rhenus.trust.httpsig import WINDOW, SignedBy, sign_response, verify_request
from rhenus.trust.replay import replay_guard
from rhenus.trust.verifier import Compliance, ComplianceChecker


def install(
    app: FastAPI, settings: Settings, transport: httpx.AsyncBaseTransport | None = None
) -> None:
    """Give the app its DID resolver and compliance checker (one each, shared)."""
    client = public_client(settings, transport=transport)
    app.state.federation_transport = transport
    app.state.did_resolver = DidResolver(
        ttl=settings.did_cache_seconds,
        allow_http_loopback=settings.federation_insecure_http,
        client=client,
    )
    app.state.compliance = ComplianceChecker(
        app.state.did_resolver, settings.trusted_anchors, ttl=settings.compliance_cache_seconds
    )


def get_resolver(request: Request) -> DidResolver:
    resolver: DidResolver = request.app.state.did_resolver
    return resolver


async def _resolver(request: Request) -> DidResolver:
    return get_resolver(request)  # async: a plain def dependency would run in the thread pool


async def get_transport(request: Request) -> httpx.AsyncBaseTransport | None:
    transport: httpx.AsyncBaseTransport | None = request.app.state.federation_transport
    return transport


def _target(request: Request, public_url: str) -> str:
    target = public_url + request.url.path
    if request.url.query:
        target += "?" + request.url.query
    return target


async def signed_node(
    request: Request, node: NodeDep, resolver: Annotated[DidResolver, Depends(_resolver)]
) -> SignedBy:
    """The verified sending node; 401 problem naming the reason otherwise.

    The target URI is rebuilt from this node's public URL, not from the Host header, so a
    request signed for another node cannot be replayed here.
    """
    sender = await verify_request(
        method=request.method,
        target_uri=_target(request, node.settings.public_url),
        headers=httpx.Headers(request.headers.raw),
        body=await request.body(),
        resolver=resolver,
    )
    try:
        fresh = await replay_guard(node.db, WINDOW).accept(sender.nonce, sender.did)
    except IntegrityError:  # the same nonce arrived at two workers at the same moment
        fresh = False
    if not fresh:
        raise Unauthorized("replayed request: this signature nonce was already used")
    return sender


@dataclass(frozen=True)
class Peer:
    """A verified, compliant sending node: who signed, and what its anchor certified."""

    did: str
    key_id: str
    compliance: Compliance


async def signed_peer(request: Request, sender: Annotated[SignedBy, Depends(signed_node)]) -> Peer:
    """The verified sender, if it is compliant; 403 problem naming the reason otherwise."""
    checker: ComplianceChecker = request.app.state.compliance
    return Peer(sender.did, sender.key_id, await checker.check(sender.did))


SignedNode = Annotated[SignedBy, Depends(signed_node)]
SignedPeer = Annotated[Peer, Depends(signed_peer)]
Transport = Annotated[httpx.AsyncBaseTransport | None, Depends(get_transport)]


def signed_json(
    request: Request,
    node: Node,
    body: Any,
    *,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """A JSON answer to a signed request, itself signed by this node (RFC 9421, bound to the
    request), so that what a peer stores from it is provably what this node said."""
    response = JSONResponse(body, status_code=status_code, headers=headers)
    sign_response(
        status=status_code,
        headers=response.headers,
        body=bytes(response.body),
        request=(
            request.method,
            _target(request, node.settings.public_url),
            httpx.Headers(request.headers.raw),
        ),
        keyring=node.keyring,
        did=did_for_url(node.settings.public_url),
    )
    return response
