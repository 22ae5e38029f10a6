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
import time
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from rhenus.core.db import Database
from rhenus.messaging import (
    authrules,
    devices,
    events,
    filters,
    keys,
    rooms,
    sync_extras,
    sync_rooms,
)
from rhenus.messaging.auth import Requester
from rhenus.messaging.errors import invalid_param
from rhenus.messaging.events import Notifier, client_event, stripped
from rhenus.messaging.models import (
    AccountData,
    DeviceListChange,
    Event,
    Receipt,
    Room,
    RoomState,
    ToDeviceMessage,
)
from rhenus.messaging.schemas import RoomEventFilter, SyncFilter
from rhenus.messaging.sync_rooms import MAX_LIMIT

# Tokens live in sync_tokens; web pages and other APIs reach them as ``sync.<name>``.
from rhenus.messaging.sync_tokens import SyncToken as SyncToken
from rhenus.messaging.sync_tokens import parse_sync_token as parse_sync_token
from rhenus.messaging.sync_tokens import parse_token as parse_token
from rhenus.messaging.sync_tokens import token as token
from rhenus.messaging.typing_notices import Typing

MAX_TIMEOUT_MS = 5 * 60 * 1000
# The user's rooms (every room they have a member event in), with each room's state position
# (``room_auth``): a membership change in a room moves its position, so a sync whose rooms'
# positions did not pass its token has no membership moves to read for ``device_lists``.
_MEMBERSHIPS = (
    select(RoomState.room_id, RoomState.membership, RoomState.stream_ordering, Room.state_position)
    .join(Room, Room.room_id == RoomState.room_id)
    .where(RoomState.type == authrules.MEMBER, RoomState.state_key == bindparam("user"))
)
_POSITIONS = select(
    select(func.max(Event.stream_ordering)).scalar_subquery(),
    select(func.max(DeviceListChange.position)).scalar_subquery(),
    select(func.max(AccountData.position)).scalar_subquery(),
    select(func.max(Receipt.position)).scalar_subquery(),
    select(func.max(ToDeviceMessage.position))
    .where(ToDeviceMessage.device_pk == bindparam("device_pk"))
    .scalar_subquery(),
)
_INVITE_STATE = {
    "m.room.create",
    "m.room.name",
    "m.room.avatar",
    "m.room.topic",
    "m.room.join_rules",
    "m.room.canonical_alias",
    "m.room.encryption",
}


# ---- sync ---------------------------------------------------------------------------------


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
    # Every stream's newest position in one statement; a stream that did not move since the
    # token is not read further (a woken sync reads what moved, and what it must always send).
    row = (await session.execute(_POSITIONS, {"device_pk": requester.device_pk})).one()
    upper, upper_devices, data, read, newest_inbox = (int(p or 0) for p in row)
    upper_account = max(data, read)
    memberships = await session.execute(_MEMBERSHIPS, {"user": user})
    join: dict[str, Any] = {}
    joined: dict[str, bool] = {}  # joined room → new to this sync
    invite: dict[str, Any] = {}
    leave: dict[str, Any] = {}
    state_moved = False
    for room_id, membership, changed_at, state_position in memberships.all():
        state_moved = state_moved or since is None or state_position > since
        if not filters.room_wanted(flt.room, room_id):
            continue
        changed = since is None or changed_at > since
        before = (
            None
            if since is None or not changed
            else await sync_rooms.membership_at(session, room_id, user, since)
        )
        if membership == "join":
            newly = since is None or (changed and before != "join")
            joined[room_id] = newly
            block = await sync_rooms.room_block(
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
                block["summary"] = await sync_rooms.summary(session, room_id)
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
            block = await sync_rooms.leave_block(
                session, room_id, user, since, before, changed_at, flt, device
            )
            leave[room_id] = block
    after_inbox = since_token.to_device if since_token is not None else 0
    inbox: list[dict[str, Any]] = []
    reached = after_inbox
    if newest_inbox > after_inbox:
        inbox, reached = await keys.pending(
            session, device_pk=requester.device_pk, after=after_inbox
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
            memberships_moved=state_moved,
        )
    extras = await sync_extras.collect(
        session,
        user=user,
        joined=joined,
        since_account=since_token.account if since_token is not None else None,
        since_typing=since_token.typing if since_token is not None else None,
        flt=flt,
        typing=typing,
        upper_account=upper_account,
    )
    news = bool(join or invite or leave or inbox or device_lists["changed"])
    news = news or bool(device_lists["left"]) or extras.news
    for room_id, sections in extras.rooms.items():
        if room_id not in join:  # nothing in its timeline: a block for these alone
            join[room_id] = {
                "timeline": {"events": [], "limited": False, "prev_batch": token(upper)},
                "state": {"events": []},
                "summary": await sync_rooms.summary(session, room_id),
                "unread_notifications": {"highlight_count": 0, "notification_count": 0},
            }
        join[room_id]["ephemeral"] = {"events": sections["ephemeral"]}
        join[room_id]["account_data"] = {"events": sections["account_data"]}
    key_counts, fallback_types = await keys.sync_key_counts(session, device_pk=requester.device_pk)
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
        "device_one_time_keys_count": key_counts,
        "device_unused_fallback_key_types": fallback_types,
    }
    return body, news


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
