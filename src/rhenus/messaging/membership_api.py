"""Matrix membership routes (Client-Server API, spec v1.6: "Room membership" → "Joining rooms",
"Leaving rooms", "Inviting users", "Banning users", "Kicking users").

Each route changes one member event inside ``events.writing``; the rules of who may do what are
the room's auth rules (``authrules``), applied by ``rooms.set_membership`` and ``rooms.join``.
"""

from __future__ import annotations

from typing import Any

from rhenus.core.http import api_router
from rhenus.core.node import NodeDep
from rhenus.messaging import rooms, tchap_api
from rhenus.messaging.deps import MatrixUser, NotifierDep
from rhenus.messaging.errors import MatrixError
from rhenus.messaging.events import writing
from rhenus.messaging.schemas import InviteBody, ReasonBody, TargetBody, check_room_id

router = api_router(prefix="/_matrix/client/v3", tags=["messaging"])


@router.post("/join/{room_id_or_alias}")
async def join(
    room_id_or_alias: str,
    requester: MatrixUser,
    node: NodeDep,
    notifier: NotifierDep,
    body: ReasonBody | None = None,
) -> dict[str, Any]:
    """POST /join/{roomIdOrAlias}."""
    if not room_id_or_alias.startswith("#"):
        check_room_id(room_id_or_alias)
    async with writing(node.db, notifier) as session:
        room_id = await rooms.join(session, requester=requester, room=room_id_or_alias)
    return {"room_id": room_id}


@router.post("/rooms/{room_id}/join")
async def join_room(
    room_id: str,
    requester: MatrixUser,
    node: NodeDep,
    notifier: NotifierDep,
    body: ReasonBody | None = None,
) -> dict[str, Any]:
    """POST /rooms/{roomId}/join."""
    async with writing(node.db, notifier) as session:
        await rooms.join(session, requester=requester, room=check_room_id(room_id))
    return {"room_id": room_id}


async def _membership(
    node: NodeDep,
    notifier: NotifierDep,
    *,
    room_id: str,
    sender: str,
    target: str,
    membership: str,
    reason: str | None,
    invite: bool = False,
) -> dict[str, Any]:
    async with writing(node.db, notifier) as session:
        await rooms.set_membership(
            session,
            room_id=check_room_id(room_id),
            sender=sender,
            target=target,
            membership=membership,
            reason=reason,
            server_name=node.settings.matrix_server_name if invite else None,
        )
    return {}


@router.post("/rooms/{room_id}/invite")
async def invite(
    room_id: str, body: InviteBody, requester: MatrixUser, node: NodeDep, notifier: NotifierDep
) -> dict[str, Any]:
    """POST /rooms/{roomId}/invite — a user of this node, or an e-mail address (``external``)."""
    if body.user_id is None:
        if body.medium is None or body.address is None:
            raise MatrixError(400, "M_MISSING_PARAM", "a user_id, or a medium and an address")
        await tchap_api.invite_by_email(
            node,
            notifier,
            requester=requester,
            room_id=check_room_id(room_id),
            medium=body.medium,
            address=body.address,
        )
        return {}
    return await _membership(
        node,
        notifier,
        room_id=room_id,
        sender=requester.user_id,
        target=body.user_id,
        membership="invite",
        reason=body.reason,
        invite=True,
    )


@router.post("/rooms/{room_id}/leave")
async def leave(
    room_id: str,
    requester: MatrixUser,
    node: NodeDep,
    notifier: NotifierDep,
    body: ReasonBody | None = None,
) -> dict[str, Any]:
    """POST /rooms/{roomId}/leave — also rejects an invite."""
    return await _membership(
        node,
        notifier,
        room_id=room_id,
        sender=requester.user_id,
        target=requester.user_id,
        membership="leave",
        reason=body.reason if body else None,
    )


async def _of_target(
    node: NodeDep,
    notifier: NotifierDep,
    requester: MatrixUser,
    room_id: str,
    body: TargetBody,
    membership: str,
) -> dict[str, Any]:
    """What kick, ban and unban share: the requester sets another user's membership."""
    return await _membership(
        node,
        notifier,
        room_id=room_id,
        sender=requester.user_id,
        target=body.user_id,
        membership=membership,
        reason=body.reason,
    )


@router.post("/rooms/{room_id}/kick")
async def kick(
    room_id: str, body: TargetBody, requester: MatrixUser, node: NodeDep, notifier: NotifierDep
) -> dict[str, Any]:
    """POST /rooms/{roomId}/kick."""
    return await _of_target(node, notifier, requester, room_id, body, "leave")


@router.post("/rooms/{room_id}/ban")
async def ban(
    room_id: str, body: TargetBody, requester: MatrixUser, node: NodeDep, notifier: NotifierDep
) -> dict[str, Any]:
    """POST /rooms/{roomId}/ban."""
    return await _of_target(node, notifier, requester, room_id, body, "ban")


@router.post("/rooms/{room_id}/unban")
async def unban(
    room_id: str, body: TargetBody, requester: MatrixUser, node: NodeDep, notifier: NotifierDep
) -> dict[str, Any]:
    """POST /rooms/{roomId}/unban."""
    return await _of_target(node, notifier, requester, room_id, body, "leave")
