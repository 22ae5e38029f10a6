"""The FastAPI dependency that admits only requests signed by a federation node."""

from __future__ import annotations

from typing import Annotated

import httpx
from fastapi import Depends, Request
from sqlalchemy.exc import IntegrityError

from rhenus.core.errors import Unauthorized
from rhenus.core.node import NodeDep
from rhenus.trust import service
from rhenus.trust.did import DidResolver
from rhenus.trust.httpsig import WINDOW, SignedBy, verify_request


def get_resolver(request: Request) -> DidResolver:
    resolver: DidResolver = request.app.state.did_resolver
    return resolver


async def signed_peer(
    request: Request, node: NodeDep, resolver: Annotated[DidResolver, Depends(get_resolver)]
) -> SignedBy:
    """The verified sending node; 401 problem naming the reason otherwise.

    The target URI is rebuilt from this node's public URL, not from the Host header, so a
    request signed for another node cannot be replayed here.
    """
    target = node.settings.public_url + request.url.path
    if request.url.query:
        target += "?" + request.url.query
    body = await request.body()
    sender = await verify_request(
        method=request.method,
        target_uri=target,
        headers=httpx.Headers(request.headers.raw),
        body=body,
        resolver=resolver,
    )
    try:
        async with node.db.transaction() as session:
            fresh = await service.accept_nonce(
                session, nonce=sender.nonce, sender=sender.did, window=WINDOW
            )
    except IntegrityError:  # the same nonce arrived twice at the same moment
        fresh = False
    if not fresh:
        raise Unauthorized("replayed request: this signature nonce was already used")
    return sender


SignedPeer = Annotated[SignedBy, Depends(signed_peer)]
