"""``/sync`` (initial and incremental, long-poll) and ``/messages`` pagination.

Tokens are stream positions, ``s<N>``: "everything up to and including event N". A sync reads
one snapshot (``events.snapshot``) and answers with ``next_batch = s<N>_<D>_<T>_<A>_<Y>``: the
newest event position in it, the newest device-list position (``devices``), the last to-device
message delivered to the device (``keys``), the newest position of the account stream (account
data and receipts, ``account_data``) and the typing serial (``typing_notices``). Since
positions commit in order (``events`` module docstring), the next sync from that token sees
each later event, device-list change, to-device message, account data change and receipt
exactly once. Older tokens without the last two parts still parse (as 0: everything current is
sent once); pagination tokens are the event part alone. Spec: "Syncing", "Getting events for a
room", "End-to-End Encryption" → "Extensions to /sync".
"""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any, NamedTuple

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from rhenus.core.db import Database
from rhenus.messaging import authrules, devices, events, filters, keys, rooms, sync_extras
from rhenus.messaging.auth import Requester
from rhenus.messaging.errors import invalid_param
from rhenus.messaging.events import Notifier, client_event, stripped
from rhenus.messaging.models import Event, RoomState
from rhenus.messaging.schemas import RoomEventFilter, RoomFilter, SyncFilter
from rhenus.messaging.typing_notices import Typing

DEFAULT_TIMELINE = 10
MAX_LIMIT = 1000
MAX_TIMEOUT_MS = 5 * 60 * 1000
_INVITE_STATE = {
    "m.room.create",
    "m.room.name",
    "m.room.avatar",
    "m.room.topic",
    "m.room.join_rules",
    "m.room.canonical_alias",
    "m.room.encryption",
}


_TOKEN = re.compile(r"^s([0-9]+)(?:_([0-9]+)_([0-9]+)(?:_([0-9]+)_([0-9]+))?)?$")


class SyncToken(NamedTuple):
    """A cut of the streams a sync reads: events, device lists, the device's inbox, account
    data and receipts, typing."""

    events: int
    device_lists: int = 0
    to_device: int = 0
    account: int = 0
    typing: int = 0

    def __str__(self) -> str:
        return "s" + "_".join(str(part) for part in self)


def token(position: int) -> str:
    return f"s{position}"


def parse_sync_token(value: str) -> SyncToken:
    match = _TOKEN.match(value)
    if match is None:
        raise invalid_param(f"{value!r} is not a token of this server")
    return SyncToken(*(int(part or 0) for part in match.groups()))


def parse_token(value: str) -> int:
    """The event position of a pagination token (a sync's ``next_batch`` is one too)."""
    return parse_sync_token(value).events


# ---- sync ---------------------------------------------------------------------------------


async def _membership_at(
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


async def _timeline(
    session: AsyncSession, room_id: str, lower: int, upper: int, flt: RoomEventFilter, limit: int
) -> tuple[list[Event], bool]:
    rows = await session.scalars(
        select(Event)
        .where(
            Event.room_id == room_id,
            Event.stream_ordering > lower,
            Event.stream_ordering <= upper,
            filters.event_types(flt),
        )
        .order_by(Event.stream_ordering.desc())
        .limit(limit + 1)
    )
    found = list(rows.all())
    return list(reversed(found[:limit])), len(found) > limit


async def _state_between(
    session: AsyncSession, room_id: str, lower: int, before: int
) -> list[Event]:
    """The latest state event per key that changed in (lower, before)."""
    state = await events.state_at(session, room_id=room_id, before=before)
    return [e for e in state if e.stream_ordering > lower]


async def _room_block(
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
    limit = min(
        flt.timeline.limit if flt.timeline.limit is not None else DEFAULT_TIMELINE, MAX_LIMIT
    )
    timeline, limited = await _timeline(session, room_id, lower or 0, upper, flt.timeline, limit)
    if lower is not None and not timeline and not full_state:
        return None
    start = timeline[0].stream_ordering if timeline else upper + 1
    if lower is None or full_state:
        state = await events.state_at(session, room_id=room_id, before=start)
    elif limited:
        state = await _state_between(session, room_id, lower, start)
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


async def _summary(session: AsyncSession, room_id: str) -> dict[str, Any]:
    rows = await session.execute(
        select(RoomState.membership, func.count())
        .where(RoomState.room_id == room_id, RoomState.type == authrules.MEMBER)
        .group_by(RoomState.membership)
    )
    counts = {m: n for m, n in rows.all()}
    return {
        "m.joined_member_count": counts.get("join", 0),
        "m.invited_member_count": counts.get("invite", 0),
    }


async def compute(
    session: AsyncSession,
    *,
    requester: Requester,
    since_token: SyncToken | None,
    full_state: bool,
    flt: SyncFilter,
    typing: Typing | None = None,
) -> tuple[dict[str, Any], bool]:
    """One sync answer from one snapshot; returns it and whether it holds anything new."""
    user = requester.user_id
    device = (user, requester.device_id)
    since = since_token.events if since_token is not None else None
    upper = await events.stream_position(session)
    upper_devices = await devices.device_list_position(session)
    memberships = await session.execute(
        select(RoomState.room_id, RoomState.membership, RoomState.stream_ordering).where(
            RoomState.type == authrules.MEMBER, RoomState.state_key == user
        )
    )
    join: dict[str, Any] = {}
    joined: dict[str, bool] = {}  # joined room → new to this sync
    invite: dict[str, Any] = {}
    leave: dict[str, Any] = {}
    for room_id, membership, changed_at in memberships.all():
        if not filters.room_wanted(flt.room, room_id):
            continue
        changed = since is None or changed_at > since
        before = (
            None
            if since is None or not changed
            else await _membership_at(session, room_id, user, since)
        )
        if membership == "join":
            newly = since is None or (changed and before != "join")
            joined[room_id] = newly
            block = await _room_block(
                session,
                room_id=room_id,
                lower=None if newly else since,
                upper=upper,
                full_state=full_state,
                flt=flt.room,
                device=device,
            )
            if block is not None:
                block.update(ephemeral={"events": []}, account_data={"events": []})
                block["summary"] = await _summary(session, room_id)
                block["unread_notifications"] = {"highlight_count": 0, "notification_count": 0}
                join[room_id] = block
        elif membership == "invite" and changed:
            state = await events.state_at(session, room_id=room_id, before=upper + 1)
            shown = [
                stripped(e)
                for e in state
                if e.type in _INVITE_STATE or (e.type == authrules.MEMBER and e.state_key == user)
            ]
            invite[room_id] = {"invite_state": {"events": shown}}
        elif (
            membership in ("leave", "ban")
            and changed
            and (since is not None or flt.room.include_leave)
        ):
            block = await _leave_block(
                session, room_id, user, since, before, changed_at, flt, device
            )
            leave[room_id] = block
    inbox, reached = await keys.pending(
        session,
        device_pk=requester.device_pk,
        after=since_token.to_device if since_token is not None else 0,
    )
    device_lists: dict[str, list[str]] = {"changed": [], "left": []}
    if since_token is not None:
        device_lists = await devices.changes(
            session,
            user=user,
            since_events=since_token.events,
            since_devices=since_token.device_lists,
            upper_events=upper,
            upper_devices=upper_devices,
        )
    extras = await sync_extras.collect(
        session,
        user=user,
        joined=joined,
        since_account=since_token.account if since_token is not None else None,
        since_typing=since_token.typing if since_token is not None else None,
        flt=flt,
        typing=typing,
    )
    news = bool(join or invite or leave or inbox or device_lists["changed"])
    news = news or bool(device_lists["left"]) or extras.news
    for room_id, sections in extras.rooms.items():
        if room_id not in join:  # nothing in its timeline: a block for these alone
            join[room_id] = {
                "timeline": {"events": [], "limited": False, "prev_batch": token(upper)},
                "state": {"events": []},
                "summary": await _summary(session, room_id),
                "unread_notifications": {"highlight_count": 0, "notification_count": 0},
            }
        join[room_id]["ephemeral"] = {"events": sections["ephemeral"]}
        join[room_id]["account_data"] = {"events": sections["account_data"]}
    reached_all = SyncToken(
        upper, upper_devices, reached, extras.account_position, extras.typing_serial
    )
    body = {
        "next_batch": str(reached_all),
        "rooms": {"join": join, "invite": invite, "leave": leave, "knock": {}},
        "account_data": {"events": extras.account_data},
        "presence": {"events": []},
        "to_device": {"events": inbox},
        "device_lists": device_lists,
        "device_one_time_keys_count": await keys.one_time_key_counts(
            session, device_pk=requester.device_pk
        ),
        "device_unused_fallback_key_types": await keys.unused_fallback_key_types(
            session, device_pk=requester.device_pk
        ),
    }
    return body, news


async def _leave_block(
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
    block = await _room_block(
        session,
        room_id=room_id,
        lower=lower,
        upper=left_at,
        full_state=False,
        flt=flt.room,
        device=device,
    )
    return block or {"timeline": {"events": [], "limited": False}, "state": {"events": []}}


async def sync(
    db: Database,
    notifier: Notifier,
    *,
    requester: Requester,
    since: SyncToken | None,
    timeout_ms: int,
    full_state: bool,
    flt: SyncFilter,
    typing: Typing | None = None,
) -> dict[str, Any]:
    """Answer at once if there is something new (or no ``since``), else wait for it at most
    ``timeout_ms``: the notifier wakes this user's wait when one of their rooms gets an event,
    a receipt or a typing change, a room-mate's devices change, a to-device message arrives, or
    their account data changes.

    ``since`` acknowledges the to-device messages up to its position: they are deleted first.
    """
    deadline = time.monotonic() + min(max(timeout_ms, 0), MAX_TIMEOUT_MS) / 1000
    if since is not None and since.to_device:
        async with db.transaction() as session:
            await keys.acknowledge(session, device_pk=requester.device_pk, upto=since.to_device)
    with notifier.listen(requester.user_id) as woken:
        while True:
            woken.clear()  # before reading: a wake during the read is not lost
            async with events.snapshot(db) as session:
                body, news = await compute(
                    session,
                    requester=requester,
                    since_token=since,
                    full_state=full_state,
                    flt=flt,
                    typing=typing,
                )
            remaining = deadline - time.monotonic()
            if news or since is None or full_state or remaining <= 0:
                return body
            try:
                await asyncio.wait_for(woken.wait(), remaining)
            except TimeoutError:
                return body


# ---- /messages ----------------------------------------------------------------------------


async def messages(
    session: AsyncSession,
    *,
    requester: Requester,
    room_id: str,
    from_token: str | None,
    to_token: str | None,
    direction: str,
    limit: int,
    flt: RoomEventFilter,
) -> dict[str, Any]:
    """A page of the room's events (spec: ``GET /rooms/{roomId}/messages``)."""
    bound = await rooms.visible_until(session, room_id=room_id, user=requester.user_id)
    if direction not in ("b", "f"):
        raise invalid_param("dir must be b or f")
    limit = max(1, min(limit, MAX_LIMIT))
    newest = min(await events.stream_position(session), bound)
    start = parse_token(from_token) if from_token else (newest if direction == "b" else 0)
    to = parse_token(to_token) if to_token else None
    query = select(Event).where(Event.room_id == room_id, filters.event_types(flt))
    if direction == "b":
        query = query.where(Event.stream_ordering <= min(start, newest))
        if to is not None:
            query = query.where(Event.stream_ordering > to)
        query = query.order_by(Event.stream_ordering.desc())
    else:
        query = query.where(
            Event.stream_ordering > start,
            Event.stream_ordering <= min(newest, to if to is not None else newest),
        )
        query = query.order_by(Event.stream_ordering)
    found = list((await session.scalars(query.limit(limit + 1))).all())
    page = found[:limit]
    body: dict[str, Any] = {
        "start": token(start),
        "chunk": [client_event(e, device=(requester.user_id, requester.device_id)) for e in page],
        "state": [],
    }
    if len(found) > limit:
        last = page[-1].stream_ordering
        body["end"] = token(last - 1 if direction == "b" else last)
    return body
