"""FastAPI dependencies of the Matrix routes: the requester (access token), the notifier and
the typing notifications."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from rhenus.core.node import NodeDep
from rhenus.messaging import auth, validity
from rhenus.messaging.auth import Requester
from rhenus.messaging.errors import MatrixError
from rhenus.messaging.events import Notifier
from rhenus.messaging.typing_notices import Typing


def access_token(request: Request) -> str | None:
    """The access token: ``Authorization: Bearer`` or the deprecated ``access_token`` query."""
    scheme, _, credential = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credential.strip():
        return credential.strip()
    return request.query_params.get("access_token") or None


async def current_requester(request: Request, node: NodeDep) -> Requester:
    """Spec: "Client authentication" — M_MISSING_TOKEN or M_UNKNOWN_TOKEN, both 401."""
    token = access_token(request)
    if token is None:
        raise MatrixError(401, "M_MISSING_TOKEN", "missing access token")
    server_name = node.settings.matrix_server_name
    checks_expiry = (
        validity.period(node.settings) is not None
        and request.url.path not in validity.ALLOWED_WHEN_EXPIRED
    )
    # A token this process resolved moments ago needs no session (token_cache); expiry is
    # read each time, when account validity is on.
    requester = auth.cached(token=token, server_name=server_name)
    expired = False
    if requester is None or checks_expiry:
        async with node.db.session() as session:
            if requester is None:
                requester = await auth.resolve(session, token=token, server_name=server_name)
            expired = (
                requester is not None
                and checks_expiry
                and await validity.expired(session, account_id=requester.account_id)
            )
    if requester is None:
        raise MatrixError(401, "M_UNKNOWN_TOKEN", "unknown access token", soft_logout=False)
    if expired:  # Synapse's answer (account_validity)
        raise MatrixError(403, validity.EXPIRED_ERRCODE, validity.EXPIRED_ERROR)
    return requester


# Dependencies are ``async def`` even when they do not await: FastAPI runs a plain ``def``
# dependency in a worker thread, a thread round trip per request for an attribute read.
async def get_notifier(request: Request) -> Notifier:
    notifier: Notifier = request.app.state.matrix_notifier
    return notifier


async def get_typing(request: Request) -> Typing:
    """The app's typing notifications (made on first use, waking through the app's notifier)."""
    typing: Typing | None = getattr(request.app.state, "matrix_typing", None)
    if typing is None:
        typing = request.app.state.matrix_typing = Typing(request.app.state.matrix_notifier)
    return typing


MatrixUser = Annotated[Requester, Depends(current_requester)]
NotifierDep = Annotated[Notifier, Depends(get_notifier)]
TypingDep = Annotated[Typing, Depends(get_typing)]
