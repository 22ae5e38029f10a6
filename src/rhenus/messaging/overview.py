"""Several rooms at once, for pages that list them (the web home page's chat panel): each
room's newest events and the user's own membership events, in one statement each rather than
one per room.

History visibility is the one ``GET /rooms/{roomId}/messages`` applies
(``rooms.visible_until``, "shared"): only rooms the user has joined are read, and members read
their rooms' history in full.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from rhenus.messaging import authrules
from rhenus.messaging.models import Event, RoomState


async def newest_events(
    session: AsyncSession, *, user: str, types: Sequence[str], per_room: int
) -> dict[str, list[Event]]:
    """The newest ``per_room`` events of ``types`` in each room ``user`` has joined, newest
    first, by room id (rooms without such events are left out)."""
    # For each joined room, its newest events through the (room_id, stream_ordering) index and
    # a LIMIT: a window function over the rooms would read every event of every room.
    newest = aliased(Event)
    per_room_newest = (
        select(newest.stream_ordering)
        .where(newest.room_id == RoomState.room_id, newest.type.in_(types))
        .order_by(newest.stream_ordering.desc())
        .limit(per_room)
        .correlate(RoomState)
    )
    rows = await session.scalars(
        select(Event)
        .join(RoomState, Event.stream_ordering.in_(per_room_newest))
        .where(
            RoomState.type == authrules.MEMBER,
            RoomState.state_key == user,
            RoomState.membership == "join",
        )
        .order_by(Event.room_id, Event.stream_ordering.desc())
    )
    found: dict[str, list[Event]] = {}
    for event in rows:
        found.setdefault(event.room_id, []).append(event)
    return found


async def membership_events(
    session: AsyncSession, *, user: str, room_ids: Iterable[str]
) -> dict[str, Event]:
    """The current ``m.room.member`` event of ``user`` in each of ``room_ids`` that has one
    (an invitation, for the rooms the user is invited to), by room id."""
    wanted = list(room_ids)
    if not wanted:
        return {}
    rows = await session.scalars(
        select(Event)
        .join(RoomState, RoomState.stream_ordering == Event.stream_ordering)
        .where(
            RoomState.room_id.in_(wanted),
            RoomState.type == authrules.MEMBER,
            RoomState.state_key == user,
        )
    )
    return {event.room_id: event for event in rows}
