"""Several rooms at once, for pages that list them (the web home page's chat panel): each
room's newest events and the user's own membership events, in one statement each rather than
one per room.

History visibility is the one ``GET /rooms/{roomId}/messages`` applies
(``rooms.visible_until``, "shared"): only rooms the user has joined are read, and members read
their rooms' history in full.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from rhenus.messaging import authrules
from rhenus.messaging.models import Event, RoomState


async def newest_events(
    session: AsyncSession, *, user: str, types: Sequence[str], per_room: int
) -> dict[str, list[Event]]:
    """The newest ``per_room`` events of ``types`` in each room ``user`` has joined, newest
    first, by room id (rooms without such events are left out)."""
    joined = select(RoomState.room_id).where(
        RoomState.type == authrules.MEMBER,
        RoomState.state_key == user,
        RoomState.membership == "join",
    )
    rank = func.row_number().over(partition_by=Event.room_id, order_by=Event.stream_ordering.desc())
    ranked = (
        select(Event.stream_ordering, rank.label("rank"))
        .where(Event.room_id.in_(joined), Event.type.in_(types))
        .subquery()
    )
    rows = await session.scalars(
        select(Event)
        .join(ranked, ranked.c.stream_ordering == Event.stream_ordering)
        .where(ranked.c.rank <= per_room)
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
