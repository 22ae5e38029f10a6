"""Matrix routes for redactions, single events and their context, typing, receipts, read
markers, account data and the user directory (Client-Server API, spec v1.x: "Redactions",
"Getting events for a room", "Typing Notifications", "Receipts", "Fully read markers", "Client
Config", "User directory").

Changes open ``events.writing``, so that the syncs they concern wake once committed; typing is
in memory (``typing_notices``) and wakes the room's members itself.
"""

from __future__ import annotations

from typing import Any

from fastapi import Body, Query

from rhenus.core.http import api_router
from rhenus.core.node import NodeDep
from rhenus.messaging import (
    account_data,
    auth,
    context,
    directory,
    filters,
    receipts,
    redaction,
)
from rhenus.messaging.deps import MatrixUser, NotifierDep, TypingDep
from rhenus.messaging.errors import MatrixError
from rhenus.messaging.events import writing
from rhenus.messaging.schemas import (
    ReadMarkersRequest,
    ReceiptRequest,
    RedactRequest,
    TypingRequest,
    UserDirectorySearch,
    check_room_id,
)

router = api_router(prefix="/_matrix/client/v3", tags=["messaging"])
Content = dict[str, Any]
_TYPE_LIMIT = 255


def _check_type(value: str) -> str:
    if not value or len(value) > _TYPE_LIMIT:
        raise MatrixError(400, "M_INVALID_PARAM", "an account data type is 1 to 255 characters")
    return value


# ---- redactions, events, context ------------------------------------------------------------


@router.put("/rooms/{room_id}/redact/{event_id}/{txn_id}")
async def redact(
    room_id: str,
    event_id: str,
    txn_id: str,
    requester: MatrixUser,
    node: NodeDep,
    notifier: NotifierDep,
    body: RedactRequest | None = None,
) -> dict[str, Any]:
    """PUT /rooms/{roomId}/redact/{eventId}/{txnId} — idempotent per device and txnId."""
    async with writing(node.db, notifier) as session:
        redaction_id = await redaction.redact(
            session,
            requester=requester,
            room_id=check_room_id(room_id),
            event_id=event_id,
            txn_id=txn_id,
            reason=body.reason if body else None,
        )
    return {"event_id": redaction_id}


@router.get("/rooms/{room_id}/event/{event_id}")
async def get_event(
    room_id: str, event_id: str, requester: MatrixUser, node: NodeDep
) -> dict[str, Any]:
    """GET /rooms/{roomId}/event/{eventId} — an event the requester may read."""
    async with node.db.session() as session:
        return await context.get_event(
            session, requester=requester, room_id=check_room_id(room_id), event_id=event_id
        )


@router.get("/rooms/{room_id}/context/{event_id}")
async def event_context(
    room_id: str,
    event_id: str,
    requester: MatrixUser,
    node: NodeDep,
    limit: int = Query(default=10, ge=0),
    filter: str | None = None,
) -> dict[str, Any]:
    """GET /rooms/{roomId}/context/{eventId} — limit, filter (types, not_types)."""
    flt = filters.load_event_filter(filter)
    async with node.db.session() as session:
        return await context.context(
            session,
            requester=requester,
            room_id=check_room_id(room_id),
            event_id=event_id,
            limit=limit,
            flt=flt,
        )


# ---- typing, receipts, read markers --------------------------------------------------------


@router.put("/rooms/{room_id}/typing/{user_id}")
async def typing_notice(
    room_id: str,
    user_id: str,
    body: TypingRequest,
    requester: MatrixUser,
    node: NodeDep,
    typing: TypingDep,
) -> dict[str, Any]:
    """PUT /rooms/{roomId}/typing/{userId} — typing (for ``timeout`` ms) or not."""
    auth.require_self(requester, user_id)
    async with node.db.session() as session:
        await receipts.require_joined(session, room_id=check_room_id(room_id), user=user_id)
        members = await receipts.joined_members(session, room_id)
    typing.set(
        room_id=room_id,
        user=user_id,
        typing=body.typing,
        timeout_ms=body.timeout,
        audience=members,
    )
    return {}


@router.post("/rooms/{room_id}/receipt/{receipt_type}/{event_id}")
async def receipt(
    room_id: str,
    receipt_type: str,
    event_id: str,
    requester: MatrixUser,
    node: NodeDep,
    notifier: NotifierDep,
    body: ReceiptRequest | None = None,
) -> dict[str, Any]:
    """POST /rooms/{roomId}/receipt/{receiptType}/{eventId} — m.read, m.read.private
    (``thread_id``), m.fully_read."""
    async with writing(node.db, notifier) as session:
        await receipts.send_receipt(
            session,
            user=requester.user_id,
            room_id=check_room_id(room_id),
            receipt_type=receipt_type,
            event_id=event_id,
            thread_id=body.thread_id if body else None,
        )
    return {}


@router.post("/rooms/{room_id}/read_markers")
async def read_markers(
    room_id: str,
    body: ReadMarkersRequest,
    requester: MatrixUser,
    node: NodeDep,
    notifier: NotifierDep,
) -> dict[str, Any]:
    """POST /rooms/{roomId}/read_markers — m.fully_read, m.read, m.read.private."""
    user = requester.user_id
    async with writing(node.db, notifier) as session:
        check_room_id(room_id)
        await receipts.require_joined(session, room_id=room_id, user=user)
        if body.fully_read is not None:
            await receipts.set_fully_read(
                session, user=user, room_id=room_id, event_id=body.fully_read
            )
        for receipt_type, event_id in (
            (receipts.READ, body.read),
            (receipts.READ_PRIVATE, body.read_private),
        ):
            if event_id is not None:
                await receipts.send_receipt(
                    session,
                    user=user,
                    room_id=room_id,
                    receipt_type=receipt_type,
                    event_id=event_id,
                )
    return {}


# ---- account data --------------------------------------------------------------------------


@router.put("/user/{user_id}/account_data/{data_type}")
async def put_account_data(
    user_id: str,
    data_type: str,
    requester: MatrixUser,
    node: NodeDep,
    notifier: NotifierDep,
    content: Content = Body(),
) -> dict[str, Any]:
    """PUT /user/{userId}/account_data/{type}."""
    auth.require_self(requester, user_id)
    async with writing(node.db, notifier) as session:
        await account_data.put(
            session,
            user=user_id,
            room_id=account_data.GLOBAL,
            type=_check_type(data_type),
            content=content,
        )
    return {}


@router.get("/user/{user_id}/account_data/{data_type}")
async def get_account_data(
    user_id: str, data_type: str, requester: MatrixUser, node: NodeDep
) -> Content:
    """GET /user/{userId}/account_data/{type}."""
    auth.require_self(requester, user_id)
    async with node.db.session() as session:
        return await account_data.get(
            session, user=user_id, room_id=account_data.GLOBAL, type=data_type
        )


@router.put("/user/{user_id}/rooms/{room_id}/account_data/{data_type}")
async def put_room_account_data(
    user_id: str,
    room_id: str,
    data_type: str,
    requester: MatrixUser,
    node: NodeDep,
    notifier: NotifierDep,
    content: Content = Body(),
) -> dict[str, Any]:
    """PUT /user/{userId}/rooms/{roomId}/account_data/{type} (m.fully_read: read_markers)."""
    auth.require_self(requester, user_id)
    async with writing(node.db, notifier) as session:
        await account_data.put(
            session,
            user=user_id,
            room_id=check_room_id(room_id),
            type=_check_type(data_type),
            content=content,
        )
    return {}


@router.get("/user/{user_id}/rooms/{room_id}/account_data/{data_type}")
async def get_room_account_data(
    user_id: str, room_id: str, data_type: str, requester: MatrixUser, node: NodeDep
) -> Content:
    """GET /user/{userId}/rooms/{roomId}/account_data/{type}."""
    auth.require_self(requester, user_id)
    async with node.db.session() as session:
        return await account_data.get(
            session, user=user_id, room_id=check_room_id(room_id), type=data_type
        )


# ---- user directory ------------------------------------------------------------------------


@router.post("/user_directory/search")
async def user_directory_search(
    body: UserDirectorySearch, requester: MatrixUser, node: NodeDep
) -> dict[str, Any]:
    """POST /user_directory/search — room-mates and members of public rooms."""
    async with node.db.session() as session:
        return await directory.search(
            session,
            requester=requester.user_id,
            server_name=node.settings.matrix_server_name,
            term=body.search_term,
            limit=body.limit,
        )
