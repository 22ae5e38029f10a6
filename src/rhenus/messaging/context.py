"""One event, and the events around it (spec: ``GET /rooms/{roomId}/event/{eventId}``,
``GET /rooms/{roomId}/context/{eventId}``).

Both read what ``rooms.visible_until`` lets the requester read: a member the whole room, a
former member up to their departure. Anyone else gets M_FORBIDDEN before the event is looked
up (as Synapse answers for an event it has, without telling whether it exists); an event out
of reach or unknown is M_NOT_FOUND.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from rhenus.messaging import events, filters, rooms
from rhenus.messaging.auth import Requester
from rhenus.messaging.errors import not_found
from rhenus.messaging.events import client_event
from rhenus.messaging.models import Event
from rhenus.messaging.schemas import RoomEventFilter

MAX_LIMIT = 1000


def _token(position: int) -> str:
    return f"s{position}"  # the event part of a sync token, as ``/messages`` reads it


async def _visible_event(
    session: AsyncSession, *, requester: Requester, room_id: str, event_id: str
) -> tuple[Event, int]:
    bound = await rooms.visible_until(session, room_id=room_id, user=requester.user_id)
    event = await session.scalar(
        select(Event).where(
            Event.event_id == event_id,
            Event.room_id == room_id,
            Event.stream_ordering <= bound,
        )
    )
    if event is None:
        raise not_found(f"no event {event_id} you may read in the room")
    return event, bound


async def get_event(
    session: AsyncSession, *, requester: Requester, room_id: str, event_id: str
) -> dict[str, Any]:
    event, _ = await _visible_event(
        session, requester=requester, room_id=room_id, event_id=event_id
    )
    return client_event(event, device=(requester.user_id, requester.device_id))


async def context(
    session: AsyncSession,
    *,
    requester: Requester,
    room_id: str,
    event_id: str,
    limit: int,
    flt: RoomEventFilter,
) -> dict[str, Any]:
    """The event, up to ``limit`` events around it (half before, as Synapse), the room's state
    at the last one, and tokens to paginate on with ``/messages`` (``start`` backwards, ``end``
    forwards)."""
    event, bound = await _visible_event(
        session, requester=requester, room_id=room_id, event_id=event_id
    )
    limit = max(0, min(limit, MAX_LIMIT))
    before_limit = limit // 2
    after_limit = limit - before_limit
    around = select(Event).where(Event.room_id == room_id, filters.event_types(flt))
    before = list(
        (
            await session.scalars(
                around.where(Event.stream_ordering < event.stream_ordering)
                .order_by(Event.stream_ordering.desc())
                .limit(before_limit)
            )
        ).all()
    )
    after = list(
        (
            await session.scalars(
                around.where(
                    Event.stream_ordering > event.stream_ordering,
                    Event.stream_ordering <= bound,
                )
                .order_by(Event.stream_ordering)
                .limit(after_limit)
            )
        ).all()
    )
    last = after[-1] if after else event
    state = await events.state_at(session, room_id=room_id, before=last.stream_ordering + 1)
    device = (requester.user_id, requester.device_id)
    return {
        "event": client_event(event, device=device),
        "events_before": [client_event(e, device=device) for e in before],
        "events_after": [client_event(e, device=device) for e in after],
        "start": _token((before[-1] if before else event).stream_ordering - 1),
        "end": _token(last.stream_ordering),
        "state": [client_event(e, device=device) for e in state],
    }
