"""The chat's room settings and memberships: invitations (send, accept, decline), leaving a
room, and the room's name, topic and Tchap access rule — all through the messaging services,
whose auth rules and access rules decide (:mod:`.chat_pages` has the timeline)."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from starlette.responses import Response

from rhenus.core.node import NodeDep
from rhenus.messaging import authrules, rooms
from rhenus.messaging.deps import NotifierDep
from rhenus.messaging.errors import MatrixError
from rhenus.messaging.events import writing
from rhenus.messaging.schemas import check_room_id
from rhenus.web import chat
from rhenus.web.i18n import N_
from rhenus.web.pages import WebRoute, error_page, redirect, render
from rhenus.web.security import CsrfChecked, WebUser

router = APIRouter(prefix="/chat", route_class=WebRoute, include_in_schema=False)
# The rules a room's members may choose; ``direct`` belongs to direct chats alone.
CHOOSABLE_RULES = (authrules.RESTRICTED, authrules.UNRESTRICTED)


@router.post("/rooms/{room_id}/invite", dependencies=[CsrfChecked])
async def invite(
    request: Request,
    node: NodeDep,
    user: WebUser,
    notifier: NotifierDep,
    room_id: str,
    invitee: Annotated[str, Form(max_length=255)] = "",
) -> Response:
    """POST /chat/rooms/{room}/invite — invite a user of this node (username or Matrix id)."""
    room_id = check_room_id(room_id)
    requester = await chat.requester_for(node, user)
    server_name = node.settings.matrix_server_name
    target = chat.matrix_id(invitee, server_name)
    failed = ""
    try:
        async with writing(node.db, notifier) as session:
            await rooms.set_membership(
                session,
                room_id=room_id,
                sender=requester.user_id,
                target=target,
                membership="invite",
                server_name=server_name,
            )
    except MatrixError as exc:
        failed = (
            N_("There is no user with this name on this node.")
            if exc.status == 404
            else N_("This person cannot be invited to this room.")
        )
    if failed:
        return await _settings_page(request, node, user, room_id, failed=failed, status=400)
    return await _settings_page(request, node, user, room_id, notice=N_("Invitation sent."))


@router.post("/rooms/{room_id}/join", dependencies=[CsrfChecked])
async def accept(
    request: Request, node: NodeDep, user: WebUser, notifier: NotifierDep, room_id: str
) -> Response:
    """POST /chat/rooms/{room}/join — accept an invitation."""
    room_id = check_room_id(room_id)
    requester = await chat.requester_for(node, user)
    async with writing(node.db, notifier) as session:
        await rooms.join(session, requester=requester, room=room_id)
    return redirect(request, f"/chat/rooms/{quote(room_id)}")


@router.post("/rooms/{room_id}/leave", dependencies=[CsrfChecked])
async def leave(
    request: Request, node: NodeDep, user: WebUser, notifier: NotifierDep, room_id: str
) -> Response:
    """POST /chat/rooms/{room}/leave — decline an invitation, or leave the room."""
    room_id = check_room_id(room_id)
    requester = await chat.requester_for(node, user)
    async with writing(node.db, notifier) as session:
        await rooms.set_membership(
            session,
            room_id=room_id,
            sender=requester.user_id,
            target=requester.user_id,
            membership="leave",
        )
    return redirect(request, "/chat")


async def _settings_page(
    request: Request,
    node: NodeDep,
    user: WebUser,
    room_id: str,
    *,
    notice: str = "",
    failed: str = "",
    status: int = 200,
) -> Response:
    requester = await chat.requester_for(node, user)
    settings = await chat.room_settings(node, requester, room_id)
    context = {
        "settings": settings,
        "rooms": await chat.my_rooms(node, requester),
        "room_id": room_id,
        "rules": chat.ACCESS_RULE_LABELS,
        "choosable": CHOOSABLE_RULES,
        "notice": notice,
        "failed": failed,
    }
    return render(request, "chat_settings.html", context, user=user, status=status)


@router.get("/rooms/{room_id}/settings")
async def settings_page(request: Request, node: NodeDep, user: WebUser, room_id: str) -> Response:
    """GET /chat/rooms/{room}/settings — name, topic, access rule, members, invitations."""
    return await _settings_page(request, node, user, check_room_id(room_id))


@router.post("/rooms/{room_id}/settings", dependencies=[CsrfChecked])
async def change_settings(
    request: Request,
    node: NodeDep,
    user: WebUser,
    notifier: NotifierDep,
    room_id: str,
    name: Annotated[str, Form(max_length=255)] = "",
    topic: Annotated[str, Form(max_length=4096)] = "",
    access_rule: Annotated[str, Form(max_length=32)] = "",
) -> Response:
    """POST /chat/rooms/{room}/settings — rename, change the topic or open the room to external
    users (Tchap: restricted → unrestricted is the only change of rule there is)."""
    room_id = check_room_id(room_id)
    requester = await chat.requester_for(node, user)
    current = await chat.room_settings(node, requester, room_id)
    changes: list[tuple[str, dict[str, Any]]] = []
    if name.strip() and name.strip() != current.name:
        changes.append(("m.room.name", {"name": name.strip()}))
    if topic.strip() != current.topic:
        changes.append(("m.room.topic", {"topic": topic.strip()}))
    if access_rule and access_rule != current.access_rule:
        if access_rule not in CHOOSABLE_RULES:
            return error_page(request, 400)
        changes.append((authrules.ACCESS_RULES, {"rule": access_rule}))
    try:
        async with writing(node.db, notifier) as session:
            for type, content in changes:
                await rooms.put_state(
                    session,
                    sender=requester.user_id,
                    room_id=room_id,
                    type=type,
                    state_key="",
                    content=content,
                )
    except MatrixError as exc:
        if exc.status != 403:
            raise
        failed = N_("This change is not allowed in this room.")
        return await _settings_page(request, node, user, room_id, failed=failed, status=403)
    return await _settings_page(request, node, user, room_id, notice=N_("Settings saved."))
