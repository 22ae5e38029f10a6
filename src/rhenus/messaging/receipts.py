"""Receipts and read markers (spec: "Receipts", "Fully read markers").

A receipt (``m.read``, or ``m.read.private`` which only its user sees) is the user's latest per
room, type and thread, positioned in the account stream (``account_data`` module docstring);
syncs deliver the receipts past their token as ``m.receipt`` ephemeral events. As on Synapse,
a receipt never moves back: one for an event older than the current receipt's is ignored. The
fully read marker is the room account data ``m.fully_read``, which only moves forward too.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from rhenus.messaging import account_data, authrules, events
from rhenus.messaging.errors import forbidden, invalid_param, not_found
from rhenus.messaging.models import AccountData, Event, Receipt, RoomState

READ = "m.read"
READ_PRIVATE = "m.read.private"
RECEIPT_TYPES = (READ, READ_PRIVATE)


async def joined_members(session: AsyncSession, room_id: str) -> list[str]:
    rows = await session.scalars(
        select(RoomState.state_key).where(
            RoomState.room_id == room_id,
            RoomState.type == authrules.MEMBER,
            RoomState.membership == "join",
        )
    )
    return list(rows.all())


async def require_joined(session: AsyncSession, *, room_id: str, user: str) -> None:
    """M_FORBIDDEN unless ``user`` is joined to the room (nothing said of the room otherwise)."""
    row = await session.get(RoomState, (room_id, authrules.MEMBER, user))
    if row is None or row.membership != "join":
        raise forbidden(f"{user} is not in the room")


async def _event_in_room(session: AsyncSession, *, room_id: str, user: str, event_id: str) -> int:
    """The stream position of an event of the room the joined ``user`` names."""
    await require_joined(session, room_id=room_id, user=user)
    position = await session.scalar(
        select(Event.stream_ordering).where(Event.event_id == event_id, Event.room_id == room_id)
    )
    if position is None:
        raise not_found(f"no event {event_id} in the room")
    return int(position)


async def _position_of(session: AsyncSession, event_id: str | None) -> int:
    if event_id is None:
        return 0
    found = await session.scalar(select(Event.stream_ordering).where(Event.event_id == event_id))
    return int(found or 0)


async def send_receipt(
    session: AsyncSession,
    *,
    user: str,
    room_id: str,
    receipt_type: str,
    event_id: str,
    thread_id: str | None = None,
) -> None:
    """``POST /rooms/{roomId}/receipt/{receiptType}/{eventId}``; ``m.fully_read`` sets the read
    marker (spec v1.4)."""
    if receipt_type == account_data.FULLY_READ:
        if thread_id is not None:
            raise invalid_param("m.fully_read takes no thread_id")
        await set_fully_read(session, user=user, room_id=room_id, event_id=event_id)
        return
    if receipt_type not in RECEIPT_TYPES:
        raise invalid_param(f"the receipt type must be {READ}, {READ_PRIVATE} or m.fully_read")
    await events.lock_stream(session)
    at = await _event_in_room(session, room_id=room_id, user=user, event_id=event_id)
    thread = thread_id or ""
    row = await session.get(Receipt, (room_id, user, receipt_type, thread))
    if row is not None and await _position_of(session, row.event_id) >= at:
        return  # never backwards (nor the same receipt again)
    position = await account_data.allocate(session)
    if row is None:
        row = Receipt(room_id=room_id, user_id=user, receipt_type=receipt_type, thread_id=thread)
        session.add(row)
    row.event_id, row.ts, row.position = event_id, events.now_ms(), position
    await session.flush()
    audience = [user] if receipt_type == READ_PRIVATE else await joined_members(session, room_id)
    events.wake_users(session, audience)


async def set_fully_read(session: AsyncSession, *, user: str, room_id: str, event_id: str) -> None:
    """Move the ``m.fully_read`` marker forward to ``event_id`` (never back)."""
    await events.lock_stream(session)
    at = await _event_in_room(session, room_id=room_id, user=user, event_id=event_id)
    current = await session.get(AccountData, (user, room_id, account_data.FULLY_READ))
    previous = current.content.get("event_id") if current is not None else None
    if isinstance(previous, str) and await _position_of(session, previous) >= at:
        return
    await account_data.put(
        session,
        user=user,
        room_id=room_id,
        type=account_data.FULLY_READ,
        content={"event_id": event_id},
        by_server=True,
    )


async def for_sync(
    session: AsyncSession, *, user: str, after: dict[str, int], upper: int
) -> dict[str, dict[str, Any]]:
    """The ``m.receipt`` event of each room with receipts in (after[room], upper] that ``user``
    may see (private receipts are their own only)."""
    if not after or min(after.values()) >= upper:
        return {}  # the stream did not move past any start: nothing to read
    rows = await session.scalars(
        select(Receipt)
        .where(
            Receipt.room_id.in_(list(after)),
            Receipt.position > min(after.values()),
            Receipt.position <= upper,
            or_(Receipt.receipt_type != READ_PRIVATE, Receipt.user_id == user),
        )
        .order_by(Receipt.position)
    )
    found: dict[str, dict[str, Any]] = {}
    for row in rows.all():
        if row.position <= after[row.room_id]:
            continue
        content = found.setdefault(row.room_id, {"type": "m.receipt", "content": {}})["content"]
        receipt: dict[str, Any] = {"ts": row.ts}
        if row.thread_id:
            receipt["thread_id"] = row.thread_id
        content.setdefault(row.event_id, {}).setdefault(row.receipt_type, {})[row.user_id] = receipt
    return found
