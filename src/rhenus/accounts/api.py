"""Routes of the accounts domain: login/logout, the caller's own account, user administration."""

from __future__ import annotations

from datetime import timedelta

from fastapi import Request, Response

from rhenus.accounts import service
from rhenus.accounts.deps import AdminUser, CurrentUser, bearer
from rhenus.accounts.schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyOut,
    LoginRequest,
    PasswordChange,
    TokenOut,
    UserCreate,
    UserCreated,
    UserOut,
)
from rhenus.core.errors import Unauthorized
from rhenus.core.http import api_router
from rhenus.core.node import NodeDep

router = api_router(prefix="/api/v1", tags=["accounts"])


@router.post("/auth/login", response_model=TokenOut)
async def login(body: LoginRequest, request: Request, node: NodeDep) -> TokenOut:
    """POST /api/v1/auth/login — exchange a username and password for a bearer token."""
    settings = node.settings
    address = request.client.host if request.client else "unknown"
    async with node.db.transaction() as session:
        result = await service.login(
            session,
            username=body.username,
            password=body.password,
            address=address,
            ttl=timedelta(seconds=settings.session_ttl_seconds),
            max_attempts=settings.login_max_attempts,
            window=timedelta(seconds=settings.login_window_seconds),
        )
    if result is None:
        raise Unauthorized("wrong username or password")
    token, row, user = result
    return TokenOut(
        access_token=token,
        expires_at=row.expires_at,
        must_change_password=user.must_change_password,
    )


@router.post("/auth/logout", status_code=204)
async def logout(request: Request, node: NodeDep, _: CurrentUser) -> Response:
    """POST /api/v1/auth/logout — revoke the token used for this request."""
    async with node.db.transaction() as session:
        await service.logout(session, token=bearer(request))
    return Response(status_code=204)


@router.get("/me", response_model=UserOut)
async def me(node: NodeDep, principal: CurrentUser) -> UserOut:
    """GET /api/v1/me — the caller's account."""
    async with node.db.session() as session:
        user = await service.get_user(session, username=principal.username)
        return UserOut.model_validate(user)


@router.post("/me/password", status_code=204)
async def change_password(body: PasswordChange, node: NodeDep, principal: CurrentUser) -> Response:
    """POST /api/v1/me/password — set a new password (required after a one-time password)."""
    async with node.db.transaction() as session:
        await service.change_password(
            session,
            audit=node.audit,
            username=principal.username,
            current=body.current_password,
            new=body.new_password,
        )
    return Response(status_code=204)


@router.get("/me/api-keys", response_model=list[ApiKeyOut])
async def list_api_keys(node: NodeDep, principal: CurrentUser) -> list[ApiKeyOut]:
    """GET /api/v1/me/api-keys — the caller's API keys (never their secrets)."""
    async with node.db.session() as session:
        keys = await service.list_api_keys(session, username=principal.username)
        return [ApiKeyOut.model_validate(k) for k in keys]


@router.post("/me/api-keys", response_model=ApiKeyCreated, status_code=201)
async def create_api_key(
    body: ApiKeyCreate, node: NodeDep, principal: CurrentUser
) -> ApiKeyCreated:
    """POST /api/v1/me/api-keys — a new API key; its secret is in this response only."""
    async with node.db.transaction() as session:
        key, secret = await service.create_api_key(
            session, audit=node.audit, username=principal.username, name=body.name
        )
        out = ApiKeyOut.model_validate(key)
    return ApiKeyCreated(**out.model_dump(), key=secret)


@router.delete("/me/api-keys/{prefix}", status_code=204)
async def revoke_api_key(prefix: str, node: NodeDep, principal: CurrentUser) -> Response:
    """DELETE /api/v1/me/api-keys/{prefix} — revoke one of the caller's keys."""
    async with node.db.transaction() as session:
        await service.revoke_api_key(
            session, audit=node.audit, username=principal.username, prefix=prefix
        )
    return Response(status_code=204)


@router.get("/users", response_model=list[UserOut])
async def list_users(node: NodeDep, _: AdminUser) -> list[UserOut]:
    """GET /api/v1/users — every account (admin)."""
    async with node.db.session() as session:
        return [UserOut.model_validate(u) for u in await service.list_users(session)]


@router.post("/users", response_model=UserCreated, status_code=201)
async def create_user(body: UserCreate, node: NodeDep, admin: AdminUser) -> UserCreated:
    """POST /api/v1/users — create an account (admin); a one-time password is returned once."""
    async with node.db.transaction() as session:
        user, one_time = await service.create_user(
            session,
            audit=node.audit,
            actor=admin.actor,
            username=body.username,
            email=body.email,
            display_name=body.display_name,
            role=body.role,
            password=body.password,
        )
        out = UserOut.model_validate(user)
    return UserCreated(**out.model_dump(), one_time_password=one_time)


@router.post("/users/{username}/disable", response_model=UserOut)
async def disable_user(username: str, node: NodeDep, admin: AdminUser) -> UserOut:
    """POST /api/v1/users/{username}/disable — disable an account and revoke its credentials."""
    async with node.db.transaction() as session:
        user = await service.disable_user(
            session, audit=node.audit, actor=admin.actor, username=username
        )
        return UserOut.model_validate(user)
