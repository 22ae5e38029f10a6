"""FastAPI dependencies of the Matrix routes: the requester (access token) and the notifier."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from rhenus.core.node import NodeDep
from rhenus.messaging import auth
from rhenus.messaging.auth import Requester
from rhenus.messaging.errors import MatrixError
from rhenus.messaging.events import Notifier


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
    async with node.db.session() as session:
        requester = await auth.resolve(
            session, token=token, server_name=node.settings.matrix_server_name
        )
    if requester is None:
        raise MatrixError(401, "M_UNKNOWN_TOKEN", "unknown access token", soft_logout=False)
    return requester


def get_notifier(request: Request) -> Notifier:
    notifier: Notifier = request.app.state.matrix_notifier
    return notifier


MatrixUser = Annotated[Requester, Depends(current_requester)]
NotifierDep = Annotated[Notifier, Depends(get_notifier)]
