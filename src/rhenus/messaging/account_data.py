"""Account data (spec: "Client Config"), and the account stream it shares with receipts.

The account stream is the fourth part of sync tokens. A change of account data or a new receipt
takes the stream lock (``events.lock_stream``: SQLite's write transaction, a PostgreSQL advisory
lock) and then the newest position of the two tables plus one, so positions are allocated and
committed in order and a token's account part is an exact cut, like the event stream's. Rows
keep only the latest value (one per user, room and type): a change moves its row to the new
position, so "what changed since N" is "the rows past N".
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from rhenus.messaging import events
from rhenus.messaging.errors import MatrixError, not_found
from rhenus.messaging.models import AccountData, Receipt

GLOBAL = ""  # the room_id of global account data
FULLY_READ = "m.fully_read"
# Types the server keeps itself (spec: 405 M_BAD_JSON on PUT): read markers and push rules.
_SERVER_GLOBAL = {FULLY_READ, "m.push_rules"}
_SERVER_ROOM = {FULLY_READ}


async def stream_position(session: AsyncSession) -> int:
    """The newest position of the account stream (account data and receipts; 0 before any)."""
    data = await session.scalar(select(func.max(AccountData.position)))
    receipts = await session.scalar(select(func.max(Receipt.position)))
    return max(int(data or 0), int(receipts or 0))


async def allocate(session: AsyncSession) -> int:
    """The next position of the account stream, under the stream lock (held to the commit)."""
    await events.lock_stream(session)
    return await stream_position(session) + 1


async def put(
    session: AsyncSession,
    *,
    user: str,
    room_id: str,
    type: str,
    content: dict[str, Any],
    by_server: bool = False,
) -> None:
    """Set the user's account data of ``type`` (``room_id`` empty: global) and wake their syncs.

    Putting the same content again changes nothing (no new position, no wake-up).
    """
    if not by_server and type in (_SERVER_ROOM if room_id else _SERVER_GLOBAL):
        raise MatrixError(
            405, "M_BAD_JSON", f"{type} is kept by the server; use /rooms/{{roomId}}/read_markers"
        )
    position = await allocate(session)
    row = await session.get(AccountData, (user, room_id, type))
    if row is not None and row.content == content:
        return
    if row is None:
        session.add(
            AccountData(
                user_id=user, room_id=room_id, type=type, content=content, position=position
            )
        )
    else:
        row.content = content
        row.position = position
    await session.flush()
    events.wake_users(session, [user])


async def get(session: AsyncSession, *, user: str, room_id: str, type: str) -> dict[str, Any]:
    row = await session.get(AccountData, (user, room_id, type))
    if row is None:
        raise not_found(f"no account data of type {type}")
    return row.content


async def changed(
    session: AsyncSession, *, user: str, after: dict[str, int], upper: int
) -> dict[str, list[dict[str, Any]]]:
    """The user's account data that changed in (after[room], upper], by room (``GLOBAL`` for
    global account data), as events ``{"type", "content"}``; ``after`` names the rooms wanted
    and where each starts (0: everything)."""
    if not after or min(after.values()) >= upper:
        return {}  # the stream did not move past any start: nothing to read
    rows = await session.execute(
        select(AccountData.room_id, AccountData.type, AccountData.content, AccountData.position)
        .where(
            AccountData.user_id == user,
            AccountData.room_id.in_(list(after)),
            AccountData.position > min(after.values()),
            AccountData.position <= upper,
        )
        .order_by(AccountData.position)
    )
    found: dict[str, list[dict[str, Any]]] = {}
    for room_id, type, content, position in rows.all():
        if position > after[room_id]:
            found.setdefault(room_id, []).append({"type": type, "content": content})
    return found
