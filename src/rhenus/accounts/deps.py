"""FastAPI dependencies that authenticate the caller; every domain's routes use these."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import Depends, Request

from rhenus.accounts import service
from rhenus.accounts.schemas import EXTERNAL
from rhenus.accounts.service import Principal
from rhenus.core.db import utcnow
from rhenus.core.errors import Forbidden, Unauthorized
from rhenus.core.node import NodeDep

# last_used_at of API keys is kept to this resolution, so that use does not mean a write each time.
_USE_RESOLUTION = timedelta(minutes=1)
# While a one-time password is unchanged, only these routes answer (the account is not yet the
# user's own until they chose a password).
_ALLOWED_BEFORE_PASSWORD_CHANGE = {"/api/v1/me", "/api/v1/me/password", "/api/v1/auth/logout"}


def bearer(request: Request) -> str:
    """The bearer credential of the request, or :class:`Unauthorized`."""
    header = request.headers.get("authorization", "")
    scheme, _, credential = header.partition(" ")
    if scheme.lower() != "bearer" or not credential.strip():
        raise Unauthorized("send an Authorization: Bearer header with a token or API key")
    return credential.strip()


async def current_principal(request: Request, node: NodeDep) -> Principal:
    """The authenticated caller; 401 if the credential is missing, unknown, expired or revoked."""
    credential = bearer(request)
    async with node.db.session() as session:
        principal = await service.resolve(session, credential=credential)
    if principal is None:
        raise Unauthorized("the token or API key is unknown, expired or revoked")
    if principal.role == EXTERNAL:
        raise Forbidden("external users have a Matrix account only, not access to the node's API")
    used = principal.api_key_used_at
    if principal.api_key_prefix and (used is None or utcnow() - used > _USE_RESOLUTION):
        async with node.db.transaction() as session:
            await service.note_api_key_use(session, prefix=principal.api_key_prefix)
    if principal.must_change_password and request.url.path not in _ALLOWED_BEFORE_PASSWORD_CHANGE:
        raise Forbidden("change the one-time password first (POST /api/v1/me/password)")
    return principal


async def admin_principal(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
    """The caller, if an administrator; 403 otherwise."""
    if principal.role != "admin":
        raise Forbidden("this needs the admin role")
    return principal


CurrentUser = Annotated[Principal, Depends(current_principal)]
AdminUser = Annotated[Principal, Depends(admin_principal)]
