"""Filters (spec: "Filtering"): uploaded filters, the ``filter`` parameter of ``/sync`` and
``/messages``, and their translation to SQL on events."""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError
from sqlalchemy import ColumnElement, and_, false, or_, true
from sqlalchemy.ext.asyncio import AsyncSession

from rhenus.messaging.errors import MatrixError, bad_json, not_found
from rhenus.messaging.models import Event, Filter
from rhenus.messaging.schemas import EventFilter, RoomEventFilter, RoomFilter, SyncFilter


async def save_filter(session: AsyncSession, *, user: str, definition: dict[str, Any]) -> str:
    try:
        SyncFilter.model_validate(definition)
    except ValidationError as exc:
        raise bad_json(f"not a valid filter: {exc.errors()[0]['msg']}") from exc
    row = Filter(user_id=user, definition=definition)
    session.add(row)
    await session.flush()
    return str(row.id)


async def get_filter(session: AsyncSession, *, user: str, filter_id: str) -> dict[str, Any]:
    row = await session.get(Filter, int(filter_id)) if filter_id.isdigit() else None
    if row is None or row.user_id != user:
        raise not_found(f"no filter {filter_id}")
    return row.definition


async def load_filter(session: AsyncSession, *, user: str, value: str | None) -> SyncFilter:
    """The ``filter`` query parameter: a filter id or a filter's JSON."""
    if not value:
        return SyncFilter()
    try:
        raw = json.loads(value) if value.lstrip().startswith("{") else None
    except json.JSONDecodeError as exc:
        raise MatrixError(400, "M_NOT_JSON", "the filter is not valid JSON") from exc
    definition = raw if raw is not None else await get_filter(session, user=user, filter_id=value)
    try:
        return SyncFilter.model_validate(definition)
    except ValidationError as exc:
        raise bad_json(f"not a valid filter: {exc.errors()[0]['msg']}") from exc


def load_event_filter(value: str | None) -> RoomEventFilter:
    """The ``filter`` of ``/messages``: a RoomEventFilter's JSON."""
    if not value:
        return RoomEventFilter()
    try:
        return RoomEventFilter.model_validate_json(value)
    except ValidationError as exc:
        raise MatrixError(
            400, "M_BAD_JSON", f"not a valid filter: {exc.errors()[0]['msg']}"
        ) from exc


def event_types(flt: RoomEventFilter) -> ColumnElement[bool]:
    def matches(pattern: str) -> ColumnElement[bool]:
        if pattern.endswith("*"):
            return Event.type.startswith(pattern[:-1], autoescape=True)
        return Event.type == pattern

    clause: ColumnElement[bool] = true()
    if flt.types is not None:
        clause = or_(false(), *(matches(t) for t in flt.types))
    if flt.not_types:
        clause = and_(clause, *(~matches(t) for t in flt.not_types))
    return clause


def room_wanted(flt: RoomFilter, room_id: str) -> bool:
    for rooms_in, rooms_out in (
        (flt.rooms, flt.not_rooms),
        (flt.timeline.rooms, flt.timeline.not_rooms),
    ):
        if (rooms_in is not None and room_id not in rooms_in) or room_id in rooms_out:
            return False
    return True


def _type_matches(pattern: str, event_type: str) -> bool:
    if pattern.endswith("*"):
        return event_type.startswith(pattern[:-1])
    return event_type == pattern


def apply(flt: EventFilter | RoomEventFilter, found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Ephemeral or account data events (``{"type", "content"}``) kept by a filter's ``types``,
    ``not_types`` and ``limit`` (the in-memory counterpart of :func:`event_types`)."""
    kept = [
        e
        for e in found
        if (flt.types is None or any(_type_matches(t, e["type"]) for t in flt.types))
        and not any(_type_matches(t, e["type"]) for t in flt.not_types)
    ]
    return kept if flt.limit is None else kept[: flt.limit]


def section_wants_room(flt: RoomEventFilter, room_id: str) -> bool:
    """The ``rooms`` / ``not_rooms`` of one section of a room filter (``ephemeral``, …)."""
    return (flt.rooms is None or room_id in flt.rooms) and room_id not in flt.not_rooms
