"""Matrix routes for accounts: versions, capabilities, login, registration, whoami, logout,
profiles, filters; and the admin API of registration tokens (``/api/v1/messaging``).

Room routes and ``/sync`` are in ``rooms_api``. Each route's docstring is the route and the
spec section (Client-Server API, spec v1.6).
"""

from __future__ import annotations

import re
import secrets
from datetime import timedelta
from typing import Any

from fastapi import Body, Request
from fastapi.responses import JSONResponse

from rhenus.accounts.deps import AdminUser
from rhenus.accounts.schemas import USERNAME
from rhenus.core.http import api_router
from rhenus.core.node import NodeDep
from rhenus.messaging import access, auth, filters, registration, rooms, threepids, validity
from rhenus.messaging.deps import MatrixUser, NotifierDep
from rhenus.messaging.errors import MatrixError, forbidden
from rhenus.messaging.events import writing
from rhenus.messaging.schemas import (
    ROOM_VERSION,
    SPEC_VERSIONS,
    AvatarUrl,
    DisplayName,
    LoginRequest,
    RegisterRequest,
    RegistrationTokenCreate,
    RegistrationTokenCreated,
    RegistrationTokenOut,
    localpart_of,
)

router = api_router(prefix="/_matrix/client", tags=["messaging"])
well_known_router = api_router(tags=["messaging"])
admin_router = api_router(prefix="/api/v1/messaging", tags=["messaging"])
_USERNAME = re.compile(USERNAME)


@well_known_router.get("/.well-known/matrix/client")
async def client_discovery(node: NodeDep) -> dict[str, Any]:
    """GET /.well-known/matrix/client — spec: "Server Discovery"."""
    return {"m.homeserver": {"base_url": node.settings.public_url}}


@router.get("/versions")
async def versions() -> dict[str, Any]:
    """GET /_matrix/client/versions — spec: "Capabilities negotiation" (no auth)."""
    return {"versions": SPEC_VERSIONS, "unstable_features": {}}


@router.get("/v3/capabilities")
async def capabilities(_: MatrixUser) -> dict[str, Any]:
    """GET /_matrix/client/v3/capabilities — spec: "Capabilities negotiation"."""
    return {
        "capabilities": {
            # Passwords are the node's accounts': changed at /api/v1/me/password for now.
            "m.change_password": {"enabled": False},
            "m.room_versions": {"default": ROOM_VERSION, "available": {ROOM_VERSION: "stable"}},
            "m.set_displayname": {"enabled": True},
            "m.set_avatar_url": {"enabled": True},
            "m.3pid_changes": {"enabled": False},
        }
    }


@router.get("/v3/login")
async def login_flows() -> dict[str, Any]:
    """GET /_matrix/client/v3/login — spec: "Login"."""
    return {"flows": [{"type": "m.login.password"}]}


@router.post("/v3/login")
async def login(
    body: LoginRequest, request: Request, node: NodeDep, notifier: NotifierDep
) -> dict[str, Any]:
    """POST /_matrix/client/v3/login — ``m.login.password`` with an ``m.id.user`` identifier."""
    server_name = node.settings.matrix_server_name
    if body.type != "m.login.password":
        raise MatrixError(400, "M_UNKNOWN", f"unknown login type {body.type!r}")
    if body.identifier is not None and body.identifier.type != "m.id.user":
        raise MatrixError(400, "M_UNKNOWN", f"unsupported identifier {body.identifier.type!r}")
    user = body.identifier.user if body.identifier is not None else body.user
    if not user or body.password is None:
        raise MatrixError(400, "M_MISSING_PARAM", "a user and a password are needed")
    localpart = localpart_of(user, server_name) if user.startswith("@") else user.lower()
    if localpart is None:
        raise forbidden("invalid username or password")
    settings = node.settings
    async with writing(node.db, notifier) as session:  # a new device wakes room-mates
        result = await auth.password_login(
            session,
            server_name=server_name,
            localpart=localpart,
            password=body.password,
            address=request.client.host if request.client else "unknown",
            device_id=body.device_id,
            display_name=body.initial_device_display_name,
            max_attempts=settings.login_max_attempts,
            window=timedelta(seconds=settings.login_window_seconds),
        )
        if result is not None:  # accounts made before expiry was on get their date now
            await validity.start(session, settings=settings, account_id=result[1].user_id)
    if result is None:  # raised after the commit, so that the failure counts
        raise forbidden("invalid username or password")
    token, device = result
    return {
        "user_id": f"@{localpart}:{server_name}",
        "access_token": token,
        "device_id": device.device_id,
        "home_server": server_name,
    }


def _localpart(username: str | None) -> str:
    local = username.removeprefix("@").split(":")[0] if username else f"u{secrets.token_hex(6)}"
    if not _USERNAME.match(local):
        raise MatrixError(
            400, "M_INVALID_USERNAME", "a username is lower-case letters, digits, '.', '_', '-'"
        )
    return local


@router.get("/v3/register/available")
async def username_available(username: str, node: NodeDep) -> dict[str, Any]:
    """GET /_matrix/client/v3/register/available — M_USER_IN_USE if taken."""
    async with node.db.session() as session:
        await registration.check_new_account(session, localpart=_localpart(username), password=None)
    return {"available": True}


@router.get("/v1/register/m.login.registration_token/validity")
async def registration_token_validity(token: str, node: NodeDep) -> dict[str, Any]:
    """GET /_matrix/client/v1/register/m.login.registration_token/validity."""
    async with node.db.session() as session:
        return {"valid": await registration.registration_token_valid(session, token=token)}


@router.post("/v3/register", response_model=None)
async def register(
    body: RegisterRequest, node: NodeDep, notifier: NotifierDep, kind: str = "user"
) -> dict[str, Any] | JSONResponse:
    """POST /_matrix/client/v3/register — User-Interactive Auth (``registration`` module).

    Until a flow is complete the answer is 401 with the flows, the session and the stages done.
    """
    if kind != "user":
        raise MatrixError(403, "M_GUEST_ACCESS_FORBIDDEN", "guest accounts are not offered")
    localpart = _localpart(body.username)
    server_name = node.settings.matrix_server_name
    email = threepids.email_registration_enabled(node.settings)
    async with writing(node.db, notifier) as session:  # invites from e-mail invitations
        await registration.check_new_account(session, localpart=localpart, password=body.password)
        auth_session, challenge = await registration.advance_registration(
            session, auth=body.auth, email=email
        )
        if challenge is None:
            if body.password is None:
                raise MatrixError(400, "M_MISSING_PARAM", "a password is needed")
            registered = await registration.register(
                session,
                audit=node.audit,
                settings=node.settings,
                auth_session=auth_session,
                localpart=localpart,
                password=body.password,
                device_id=body.device_id,
                device_name=body.initial_device_display_name,
                inhibit_login=body.inhibit_login,
            )
    if challenge is not None:
        return JSONResponse(challenge, status_code=401)
    answer: dict[str, Any] = {"user_id": registered.user_id, "home_server": server_name}
    if registered.access_token is not None:
        answer.update(access_token=registered.access_token, device_id=registered.device_id)
    return answer


@router.get("/v3/account/whoami")
async def whoami(requester: MatrixUser) -> dict[str, Any]:
    """GET /_matrix/client/v3/account/whoami."""
    return {"user_id": requester.user_id, "device_id": requester.device_id, "is_guest": False}


@router.post("/v3/logout")
async def logout(requester: MatrixUser, node: NodeDep, notifier: NotifierDep) -> dict[str, Any]:
    """POST /_matrix/client/v3/logout — the token and its device are deleted."""
    async with writing(node.db, notifier) as session:
        await auth.logout(session, requester=requester, everywhere=False)
    return {}


@router.post("/v3/logout/all")
async def logout_all(requester: MatrixUser, node: NodeDep, notifier: NotifierDep) -> dict[str, Any]:
    """POST /_matrix/client/v3/logout/all — every token and device of the user."""
    async with writing(node.db, notifier) as session:
        await auth.logout(session, requester=requester, everywhere=True)
    return {}


def _profile_body(displayname: str | None, avatar_url: str | None) -> dict[str, Any]:
    body = {"displayname": displayname, "avatar_url": avatar_url}
    return {k: v for k, v in body.items() if v is not None}


@router.get("/v3/profile/{user_id}")
async def profile(user_id: str, node: NodeDep, _: MatrixUser) -> dict[str, Any]:
    """GET /_matrix/client/v3/profile/{userId} — with ``"eu.rhenus.external": true`` for an
    external user (``messaging.external``)."""
    async with node.db.session() as session:
        found = await rooms.get_profile(session, uid=user_id)
        external = await access.is_external(
            session, uid=user_id, server_name=node.settings.matrix_server_name
        )
    body = _profile_body(found.displayname, found.avatar_url)
    if external:
        body[access.EXTERNAL_PROFILE_FIELD] = True
    return body


@router.get("/v3/profile/{user_id}/displayname")
async def displayname(user_id: str, node: NodeDep, _: MatrixUser) -> dict[str, Any]:
    """GET /_matrix/client/v3/profile/{userId}/displayname."""
    async with node.db.session() as session:
        found = await rooms.get_profile(session, uid=user_id)
    return _profile_body(found.displayname, None)


@router.get("/v3/profile/{user_id}/avatar_url")
async def avatar_url(user_id: str, node: NodeDep, _: MatrixUser) -> dict[str, Any]:
    """GET /_matrix/client/v3/profile/{userId}/avatar_url."""
    async with node.db.session() as session:
        found = await rooms.get_profile(session, uid=user_id)
    return _profile_body(None, found.avatar_url)


@router.put("/v3/profile/{user_id}/displayname")
async def set_displayname(
    user_id: str, body: DisplayName, requester: MatrixUser, node: NodeDep, notifier: NotifierDep
) -> dict[str, Any]:
    """PUT /_matrix/client/v3/profile/{userId}/displayname — also updates joined rooms."""
    auth.require_self(requester, user_id)
    async with writing(node.db, notifier) as session:
        await rooms.set_profile(
            session, requester=requester, field="displayname", value=body.displayname
        )
    return {}


@router.put("/v3/profile/{user_id}/avatar_url")
async def set_avatar_url(
    user_id: str, body: AvatarUrl, requester: MatrixUser, node: NodeDep, notifier: NotifierDep
) -> dict[str, Any]:
    """PUT /_matrix/client/v3/profile/{userId}/avatar_url — also updates joined rooms."""
    auth.require_self(requester, user_id)
    async with writing(node.db, notifier) as session:
        await rooms.set_profile(
            session, requester=requester, field="avatar_url", value=body.avatar_url
        )
    return {}


@router.post("/v3/user/{user_id}/filter")
async def create_filter(
    user_id: str, requester: MatrixUser, node: NodeDep, body: dict[str, Any] = Body()
) -> dict[str, Any]:
    """POST /_matrix/client/v3/user/{userId}/filter — spec: "Filtering"."""
    auth.require_self(requester, user_id)
    async with node.db.transaction() as session:
        return {"filter_id": await filters.save_filter(session, user=user_id, definition=body)}


@router.get("/v3/user/{user_id}/filter/{filter_id}")
async def get_filter(
    user_id: str, filter_id: str, requester: MatrixUser, node: NodeDep
) -> dict[str, Any]:
    """GET /_matrix/client/v3/user/{userId}/filter/{filterId}."""
    auth.require_self(requester, user_id)
    async with node.db.session() as session:
        return await filters.get_filter(session, user=user_id, filter_id=filter_id)


@admin_router.post("/registration-tokens", status_code=201)
async def create_registration_token(
    body: RegistrationTokenCreate, node: NodeDep, admin: AdminUser
) -> RegistrationTokenCreated:
    """POST /api/v1/messaging/registration-tokens — a token to register Matrix accounts with."""
    async with node.db.transaction() as session:
        row, secret = await registration.create_registration_token(
            session,
            audit=node.audit,
            actor=admin.actor,
            token=body.token,
            uses_allowed=body.uses_allowed,
            expires_at=body.expires_at,
        )
        out = RegistrationTokenOut.model_validate(row)
    return RegistrationTokenCreated(**out.model_dump(), token=secret)


@admin_router.get("/registration-tokens")
async def list_registration_tokens(node: NodeDep, _: AdminUser) -> list[RegistrationTokenOut]:
    """GET /api/v1/messaging/registration-tokens — every token (never the tokens themselves)."""
    async with node.db.session() as session:
        rows = await registration.list_registration_tokens(session)
        return [RegistrationTokenOut.model_validate(r) for r in rows]
