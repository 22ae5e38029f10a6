"""Matrix routes for rooms and ``/sync`` (Client-Server API, spec v1.6: "Rooms", "Room
membership", "Sending events to a room", "Getting events for a room", "Syncing", "Room aliases").

Joining, leaving, inviting, kicking and banning are in ``membership_api``. Reads of a room open
a read session; changes open ``events.writing`` (a unit of work that wakes the room's
long-polling members once it has committed).
"""

from __future__ import annotations

from typing import Any

from fastapi import Body, Query

from rhenus.core.http import api_router
from rhenus.core.node import NodeDep
from rhenus.messaging import authrules, filters, rooms, sync
from rhenus.messaging.deps import MatrixUser, NotifierDep, TypingDep
from rhenus.messaging.errors import MatrixError
from rhenus.messaging.events import client_event, writing
from rhenus.messaging.schemas import (
    CreateRoomRequest,
    check_room_id,
)

router = api_router(prefix="/_matrix/client/v3", tags=["messaging"])
Content = dict[str, Any]


@router.post("/createRoom")
async def create_room(
    body: CreateRoomRequest, requester: MatrixUser, node: NodeDep, notifier: NotifierDep
) -> dict[str, Any]:
    """POST /createRoom — presets, name, topic, invite, initial_state, is_direct, alias."""
    async with writing(node.db, notifier) as session:
        room_id = await rooms.create_room(
            session,
            server_name=node.settings.matrix_server_name,
            creator=requester.user_id,
            request=body,
        )
    return {"room_id": room_id}


@router.get("/joined_rooms")
async def joined_rooms(requester: MatrixUser, node: NodeDep) -> dict[str, Any]:
    """GET /joined_rooms."""
    async with node.db.session() as session:
        return {"joined_rooms": await rooms.joined_rooms(session, user=requester.user_id)}


@router.put("/rooms/{room_id}/send/{event_type}/{txn_id}")
async def send(
    room_id: str,
    event_type: str,
    txn_id: str,
    requester: MatrixUser,
    node: NodeDep,
    notifier: NotifierDep,
    content: Content = Body(),
) -> dict[str, Any]:
    """PUT /rooms/{roomId}/send/{eventType}/{txnId} — idempotent per device and txnId."""
    async with writing(node.db, notifier) as session:
        event_id = await rooms.send_message(
            session,
            requester=requester,
            room_id=check_room_id(room_id),
            type=event_type,
            content=content,
            txn_id=txn_id,
        )
    return {"event_id": event_id}


async def _put_state(
    node: NodeDep,
    notifier: NotifierDep,
    requester: MatrixUser,
    room_id: str,
    event_type: str,
    state_key: str,
    content: Content,
) -> dict[str, Any]:
    async with writing(node.db, notifier) as session:
        if event_type == authrules.MEMBER:
            membership = str(content.get("membership", ""))
            event_id = await rooms.set_membership(
                session,
                room_id=check_room_id(room_id),
                sender=requester.user_id,
                target=state_key,
                membership=membership,
                reason=content.get("reason"),
            )
        else:
            event_id = await rooms.put_state(
                session,
                sender=requester.user_id,
                room_id=check_room_id(room_id),
                type=event_type,
                state_key=state_key,
                content=content,
            )
    return {"event_id": event_id}


@router.put("/rooms/{room_id}/state/{event_type}")
async def put_state_empty_key(
    room_id: str,
    event_type: str,
    requester: MatrixUser,
    node: NodeDep,
    notifier: NotifierDep,
    content: Content = Body(),
) -> dict[str, Any]:
    """PUT /rooms/{roomId}/state/{eventType} — the state key is empty."""
    return await _put_state(node, notifier, requester, room_id, event_type, "", content)


@router.put("/rooms/{room_id}/state/{event_type}/{state_key:path}")
async def put_state(
    room_id: str,
    event_type: str,
    state_key: str,
    requester: MatrixUser,
    node: NodeDep,
    notifier: NotifierDep,
    content: Content = Body(),
) -> dict[str, Any]:
    """PUT /rooms/{roomId}/state/{eventType}/{stateKey}."""
    return await _put_state(node, notifier, requester, room_id, event_type, state_key, content)


@router.get("/rooms/{room_id}/state")
async def get_room_state(room_id: str, requester: MatrixUser, node: NodeDep) -> list[Content]:
    """GET /rooms/{roomId}/state — the current state (as of leaving, for a former member)."""
    async with node.db.session() as session:
        state = await rooms.room_state(
            session, room_id=check_room_id(room_id), user=requester.user_id
        )
    return [client_event(e) for e in state]


async def _get_state(
    node: NodeDep, requester: MatrixUser, room_id: str, event_type: str, state_key: str
) -> Content:
    async with node.db.session() as session:
        event = await rooms.state_event(
            session,
            room_id=check_room_id(room_id),
            user=requester.user_id,
            type=event_type,
            state_key=state_key,
        )
    return event.content


@router.get("/rooms/{room_id}/state/{event_type}")
async def get_state_empty_key(
    room_id: str, event_type: str, requester: MatrixUser, node: NodeDep
) -> Content:
    """GET /rooms/{roomId}/state/{eventType} — the content of the state event with empty key."""
    return await _get_state(node, requester, room_id, event_type, "")


@router.get("/rooms/{room_id}/state/{event_type}/{state_key:path}")
async def get_state(
    room_id: str, event_type: str, state_key: str, requester: MatrixUser, node: NodeDep
) -> Content:
    """GET /rooms/{roomId}/state/{eventType}/{stateKey} — the content of one state event."""
    return await _get_state(node, requester, room_id, event_type, state_key)


@router.get("/rooms/{room_id}/members")
async def members(
    room_id: str,
    requester: MatrixUser,
    node: NodeDep,
    membership: str | None = None,
    not_membership: str | None = None,
) -> dict[str, Any]:
    """GET /rooms/{roomId}/members — with the ``membership`` / ``not_membership`` filters."""
    async with node.db.session() as session:
        found = await rooms.members(session, room_id=check_room_id(room_id), user=requester.user_id)
    chunk = [
        client_event(e)
        for e in found
        if (membership is None or e.content.get("membership") == membership)
        and (not_membership is None or e.content.get("membership") != not_membership)
    ]
    return {"chunk": chunk}


@router.get("/rooms/{room_id}/joined_members")
async def joined_members(room_id: str, requester: MatrixUser, node: NodeDep) -> dict[str, Any]:
    """GET /rooms/{roomId}/joined_members — for members of the room."""
    async with node.db.session() as session:
        if (
            await rooms.visible_until(
                session, room_id=check_room_id(room_id), user=requester.user_id
            )
            != rooms.EVERYTHING
        ):
            raise MatrixError(403, "M_FORBIDDEN", "you are not in the room")
        found = await rooms.members(session, room_id=room_id, user=requester.user_id)
    joined = {
        e.state_key: {k: e.content[k] for k in ("displayname", "avatar_url") if e.content.get(k)}
        for e in found
        if e.content.get("membership") == "join"
    }
    return {"joined": joined}


@router.get("/rooms/{room_id}/messages")
async def messages(
    room_id: str,
    requester: MatrixUser,
    node: NodeDep,
    dir: str = "b",
    from_: str | None = Query(default=None, alias="from"),
    to: str | None = None,
    limit: int = Query(default=10, ge=0),
    filter: str | None = None,
) -> dict[str, Any]:
    """GET /rooms/{roomId}/messages — dir b or f, from, to, limit, filter (types, not_types)."""
    flt = filters.load_event_filter(filter)
    async with node.db.session() as session:
        return await sync.messages(
            session,
            requester=requester,
            room_id=check_room_id(room_id),
            from_token=from_,
            to_token=to,
            direction=dir,
            limit=limit,
            flt=flt,
        )


@router.get("/sync")
async def sync_route(
    requester: MatrixUser,
    node: NodeDep,
    notifier: NotifierDep,
    typing: TypingDep,
    since: str | None = None,
    timeout_ms: int = Query(default=0, ge=0, alias="timeout"),
    full_state: bool = False,
    filter: str | None = None,
    set_presence: str | None = None,
) -> dict[str, Any]:
    """GET /sync — initial or incremental; long-polls up to ``timeout`` ms when nothing is new."""
    async with node.db.session() as session:
        flt = await filters.load_filter(session, user=requester.user_id, value=filter)
    return await sync.sync(
        node.db,
        notifier,
        requester=requester,
        since=sync.parse_sync_token(since) if since else None,
        timeout_ms=timeout_ms,
        full_state=full_state,
        flt=flt,
        typing=typing,
    )


@router.get("/directory/room/{room_alias}")
async def directory_room(room_alias: str, node: NodeDep) -> dict[str, Any]:
    """GET /directory/room/{roomAlias} — the room an alias points at."""
    async with node.db.session() as session:
        room_id = await rooms.resolve_alias(session, alias=room_alias)
    return {"room_id": room_id, "servers": [node.settings.matrix_server_name]}
