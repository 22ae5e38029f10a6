"""The per-room sections of a ``/sync`` answer: joined and left rooms' timelines and state.

``sync.compute`` decides which rooms a sync shows and in which section; this module builds each
room's ``timeline``/``state`` block between two stream positions (``sync`` module docstring)
and the member counts of its ``summary``. Spec: "Syncing" → ``Joined Room``, ``Left Room``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Select, bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from rhenus.messaging import authrules, events, filters
from rhenus.messaging.events import client_event
from rhenus.messaging.models import Event, RoomState
from rhenus.messaging.schemas import RoomEventFilter, RoomFilter, SyncFilter
from rhenus.messaging.sync_tokens import token

DEFAULT_TIMELINE = 10
MAX_LIMIT = 1000


async def membership_at(
    session: AsyncSession, room_id: str, user: str, position: int
) -> str | None:
    content = await session.scalar(
        select(Event.content)
        .where(
            Event.room_id == room_id,
            Event.type == authrules.MEMBER,
            Event.state_key == user,
            Event.stream_ordering <= position,
        )
        .order_by(Event.stream_ordering.desc())
        .limit(1)
    )
    return None if content is None else str(content.get("membership"))


def _timeline(types: ColumnElement[bool] | None) -> Select[Event]:
    return (
        select(Event)
        .where(
            Event.room_id == bindparam("room_id"),
            Event.stream_ordering > bindparam("lower"),
            Event.stream_ordering <= bindparam("upper"),
            *([types] if types is not None else []),
        )
        .order_by(Event.stream_ordering.desc())
        .limit(bindparam("limit"))
    )


# Built once: every incremental sync reads each changed room's timeline (most without types).
_TIMELINE = _timeline(None)
_SUMMARY = (
    select(RoomState.membership, func.count())
    .where(RoomState.room_id == bindparam("room_id"), RoomState.type == authrules.MEMBER)
    .group_by(RoomState.membership)
)


async def timeline_events(
    session: AsyncSession, room_id: str, lower: int, upper: int, flt: RoomEventFilter, limit: int
) -> tuple[list[Event], bool]:
    typed = flt.types is not None or bool(flt.not_types)
    query = _timeline(filters.event_types(flt)) if typed else _TIMELINE
    params = {"room_id": room_id, "lower": lower, "upper": upper, "limit": limit + 1}
    found = list((await session.scalars(query, params)).all())
    return list(reversed(found[:limit])), len(found) > limit


async def state_between(
    session: AsyncSession, room_id: str, lower: int, before: int
) -> list[Event]:
    """The latest state event per key that changed in (lower, before)."""
    state = await events.state_at(session, room_id=room_id, before=before)
    return [e for e in state if e.stream_ordering > lower]


async def room_block(
    session: AsyncSession,
    *,
    room_id: str,
    lower: int | None,
    upper: int,
    full_state: bool,
    flt: RoomFilter,
    device: tuple[str, str],
) -> dict[str, Any] | None:
    """A joined or left room's section; None if nothing happened in it since ``lower``."""
    if lower is not None and lower >= upper and not full_state:
        return None  # the event stream did not move since ``lower``
    limit = min(
        flt.timeline.limit if flt.timeline.limit is not None else DEFAULT_TIMELINE, MAX_LIMIT
    )
    timeline, limited = await timeline_events(
        session, room_id, lower or 0, upper, flt.timeline, limit
    )
    if lower is not None and not timeline and not full_state:
        return None
    start = timeline[0].stream_ordering if timeline else upper + 1
    if lower is None or full_state:
        state = await events.state_at(session, room_id=room_id, before=start)
    elif limited:
        state = await state_between(session, room_id, lower, start)
    else:
        state = []
    return {
        "timeline": {
            "events": [client_event(e, with_room_id=False, device=device) for e in timeline],
            "limited": limited,
            "prev_batch": token(start - 1),
        },
        "state": {"events": [client_event(e, with_room_id=False, device=device) for e in state]},
    }


async def summary(session: AsyncSession, room_id: str) -> dict[str, Any]:
    rows = await session.execute(_SUMMARY, {"room_id": room_id})
    counts = {m: n for m, n in rows.all()}
    return {
        "m.joined_member_count": counts.get("join", 0),
        "m.invited_member_count": counts.get("invite", 0),
    }


async def leave_block(
    session: AsyncSession,
    room_id: str,
    user: str,
    since: int | None,
    before: str | None,
    left_at: int,
    flt: SyncFilter,
    device: tuple[str, str],
) -> dict[str, Any]:
    """A room the user left, was kicked or banned from since ``since``: what they may see of it
    (nothing but their own membership if they were never joined, e.g. a rejected invite)."""
    joined_in_window = await session.scalar(
        select(Event.stream_ordering)
        .where(
            Event.room_id == room_id,
            Event.type == authrules.MEMBER,
            Event.state_key == user,
            Event.stream_ordering > (since or 0),
            Event.stream_ordering < left_at,
            Event.content["membership"].as_string() == "join",
        )
        .order_by(Event.stream_ordering)
        .limit(1)
    )
    if before == "join" or (since is None and joined_in_window is not None):
        lower = since
    elif joined_in_window is not None:
        lower = joined_in_window - 1
    else:
        own = await session.get(Event, left_at)
        assert own is not None
        shown = [client_event(own, with_room_id=False, device=device)]
        return {"timeline": {"events": shown, "limited": False}, "state": {"events": []}}
    block = await room_block(
        session,
        room_id=room_id,
        lower=lower,
        upper=left_at,
        full_state=False,
        flt=flt.room,
        device=device,
    )
    return block or {"timeline": {"events": [], "limited": False}, "state": {"events": []}}
