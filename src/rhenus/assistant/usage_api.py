"""Routes of metering: ``GET /v1/usage`` (OpenAI's error shape) and, on the node's own API,
the administrators' per-user limits ``/api/v1/assistant/limits`` (RFC 9457 problems).

``usage_router`` has no prefix: ``api.py`` includes it in the ``/v1`` router.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from rhenus.accounts.deps import AdminUser, CurrentUser
from rhenus.assistant import quotas, usage
from rhenus.assistant.errors import OpenAIRoute
from rhenus.assistant.service import Assistant
from rhenus.assistant.usage_models import ALL_MODELS, AssistantLimit
from rhenus.assistant.usage_schemas import (
    EffectiveLimit,
    LimitIn,
    LimitOut,
    UsagePage,
)
from rhenus.core.errors import Forbidden, NotFound
from rhenus.core.http import api_router
from rhenus.core.node import NodeDep

usage_router = APIRouter(route_class=OpenAIRoute, tags=["assistant"])
limits_router = api_router(prefix="/api/v1/assistant/limits", tags=["assistant"])


def _moment(seconds: int | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)


@usage_router.get("/usage", response_model=UsagePage)
async def get_usage(
    node: NodeDep,
    principal: CurrentUser,
    user: Annotated[str | None, Query(description="Whose records (admins; default own).")] = None,
    model: Annotated[str | None, Query(max_length=128)] = None,
    start_time: Annotated[int | None, Query(ge=0, description="Unix seconds, inclusive.")] = None,
    end_time: Annotated[int | None, Query(ge=0, description="Unix seconds, exclusive.")] = None,
    after: Annotated[int | None, Query(ge=0, description="Cursor: last_id of a page.")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> UsagePage:
    """GET /v1/usage — the caller's calls, newest first, with totals; administrators may name
    any ``user`` and also get every user's totals."""
    admin = principal.role == "admin"
    if user is not None and user != principal.username and not admin:
        raise Forbidden("only administrators may read the usage of other users")
    start, end = _moment(start_time), _moment(end_time)
    async with node.db.session() as session:
        user_id = principal.user_id
        if user is not None and user != principal.username:
            user_id = await quotas.user_id_of(session, user)
        mine = usage.UsageFilter(user_id=user_id, model=model, start=start, end=end)
        data, has_more = await usage.page(session, where=mine, after=after, limit=limit)
        out = UsagePage(
            data=data,
            has_more=has_more,
            first_id=data[0].id if data else None,
            last_id=data[-1].id if data else None,
            totals=await usage.totals(session, where=mine),
        )
        if admin:
            everyone = usage.UsageFilter(model=model, start=start, end=end)
            out.all_users = await usage.totals(session, where=everyone)
            out.users = await usage.totals_by_user(session, where=everyone)
    return out


def _out(limit: AssistantLimit, username: str) -> LimitOut:
    return LimitOut(
        user=username,
        model=limit.model,
        rpm=limit.rpm,
        tpm=limit.tpm,
        updated_at=limit.updated_at,
    )


def _known_model(request: Request, model: str) -> None:
    assistant: Assistant = request.app.state.assistant
    if model != ALL_MODELS and model not in assistant.models:
        raise NotFound(f"no model {model!r}: use a configured alias or '*'")


@limits_router.get("", response_model=list[LimitOut])
async def list_limits(node: NodeDep, _: AdminUser) -> list[LimitOut]:
    """GET /api/v1/assistant/limits — every per-user limit set (admin)."""
    async with node.db.session() as session:
        return [_out(limit, name) for limit, name in await quotas.list_limits(session)]


@limits_router.get("/{username}", response_model=list[EffectiveLimit])
async def effective_limits(
    username: str, request: Request, node: NodeDep, principal: CurrentUser
) -> list[EffectiveLimit]:
    """GET /api/v1/assistant/limits/{username} — what applies to the user on each model
    (the user themself, or an admin)."""
    if username != principal.username and principal.role != "admin":
        raise Forbidden("only administrators may read the limits of other users")
    assistant: Assistant = request.app.state.assistant
    out = []
    async with node.db.session() as session:
        user_id = await quotas.user_id_of(session, username)
        for alias, served in assistant.models.items():
            limits = await quotas.effective_limits(
                session, settings=node.settings, user_id=user_id, model=served.config
            )
            out.append(
                EffectiveLimit(
                    model=alias,
                    rpm=limits.rpm,
                    tpm=limits.tpm,
                    rpm_source=limits.rpm_source,
                    tpm_source=limits.tpm_source,
                )
            )
    return out


@limits_router.put("/{username}/{model}", response_model=LimitOut)
async def set_limit(
    username: str, model: str, body: LimitIn, request: Request, node: NodeDep, admin: AdminUser
) -> LimitOut:
    """PUT /api/v1/assistant/limits/{username}/{model} — set a user's limits on an alias, or
    on every alias with ``*`` (admin)."""
    _known_model(request, model)
    async with node.db.transaction() as session:
        limit = await quotas.set_limit(
            session,
            audit=node.audit,
            actor=admin.actor,
            username=username,
            model=model,
            rpm=body.rpm,
            tpm=body.tpm,
        )
        return _out(limit, username)


@limits_router.delete("/{username}/{model}", status_code=204)
async def delete_limit(username: str, model: str, node: NodeDep, admin: AdminUser) -> Response:
    """DELETE /api/v1/assistant/limits/{username}/{model} — back to the next level (admin)."""
    async with node.db.transaction() as session:
        await quotas.delete_limit(
            session, audit=node.audit, actor=admin.actor, username=username, model=model
        )
    return Response(status_code=204)
