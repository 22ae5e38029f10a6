"""Devices and the device-list stream (spec: "Device Management", and "End-to-End Encryption"
→ "Tracking the device list for a user").

A change of a user's devices (a new device, new device keys, a deleted device) is a row of
``matrix_device_list_changes``, appended under the stream lock. Syncs and ``keys/changes``
report ``changed`` for users who share a room with the reader and changed in the window, or
who newly share one; ``left`` for users who shared a room and share none any more. The users
who must hear of a change are woken through the unit of work (``events.wake_users``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import bindparam, delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from rhenus.messaging import authrules, events, token_cache
from rhenus.messaging.errors import not_found
from rhenus.messaging.models import Device, DeviceListChange, Event, RoomState


async def joined_rooms(session: AsyncSession, user: str) -> list[str]:
    rows = await session.scalars(
        select(RoomState.room_id).where(
            RoomState.type == authrules.MEMBER,
            RoomState.state_key == user,
            RoomState.membership == "join",
        )
    )
    return list(rows.all())


async def room_mates(session: AsyncSession, user: str) -> set[str]:
    """The users who share a joined room with ``user`` now, ``user`` included."""
    rooms = await joined_rooms(session, user)
    if not rooms:
        return {user}
    rows = await session.scalars(
        select(RoomState.state_key).where(
            RoomState.room_id.in_(rooms),
            RoomState.type == authrules.MEMBER,
            RoomState.membership == "join",
        )
    )
    return {user, *rows.all()}


async def record_change(session: AsyncSession, *, user: str) -> None:
    """Append a change of ``user``'s devices and wake their room-mates after the commit."""
    await events.lock_stream(session)
    session.add(DeviceListChange(user_id=user))
    await session.flush()
    events.wake_users(session, await room_mates(session, user))


# Membership changes in the rooms the user is or was in, within a window (built once: every
# sync woken by an event reads it). The current state keeps a member row for every room the
# user was ever in (indexed).
_MOVES = (
    select(Event.room_id, Event.state_key, Event.content)
    .where(
        Event.type == authrules.MEMBER,
        Event.room_id.in_(
            select(RoomState.room_id).where(
                RoomState.type == authrules.MEMBER, RoomState.state_key == bindparam("user")
            )
        ),
        Event.stream_ordering > bindparam("lower"),
        Event.stream_ordering <= bindparam("upper"),
    )
    .order_by(Event.stream_ordering)
)


async def changes(
    session: AsyncSession,
    *,
    user: str,
    since_events: int,
    since_devices: int,
    upper_events: int,
    upper_devices: int,
    memberships_moved: bool = True,
) -> dict[str, list[str]]:
    """``device_lists`` for ``user`` between two cuts of the streams: ``changed`` and ``left``.

    A stream that did not move in the window is not read (a woken sync reads only what moved);
    ``memberships_moved`` False says that no room of the user had a state change in it.
    """
    changed: set[str] = set()
    if upper_devices > since_devices:
        rows = await session.scalars(
            select(DeviceListChange.user_id)
            .where(
                DeviceListChange.position > since_devices,
                DeviceListChange.position <= upper_devices,
            )
            .distinct()
        )
        changed.update(rows.all())
    moved: list[Any] = []
    if upper_events > since_events and memberships_moved:
        moves = await session.execute(
            _MOVES, {"user": user, "lower": since_events, "upper": upper_events}
        )
        moved = list(moves.all())
    if not changed and not moved:
        return {"changed": [], "left": []}
    mates = await room_mates(session, user)
    gone: set[str] = set()
    for room_id, member, content in moved:
        membership = content.get("membership")
        if member == user:
            room_members = await _members_of(session, room_id)
            (changed if membership == "join" else gone).update(room_members)
        elif membership == "join":
            changed.add(str(member))
        elif membership in ("leave", "ban"):
            gone.add(str(member))
    left = {u for u in gone if u not in mates}
    changed = {u for u in changed if u in mates}
    return {"changed": sorted(changed), "left": sorted(left - {user})}


async def _members_of(session: AsyncSession, room_id: str) -> set[str]:
    rows = await session.scalars(
        select(RoomState.state_key).where(
            RoomState.room_id == room_id,
            RoomState.type == authrules.MEMBER,
            RoomState.membership == "join",
        )
    )
    return set(rows.all())


# ---- devices (spec: "Device Management") ---------------------------------------------------


def device_body(device: Device) -> dict[str, Any]:
    return {
        "device_id": device.device_id,
        "display_name": device.display_name or None,
        "last_seen_ip": None,
        "last_seen_ts": None,
    }


async def list_devices(session: AsyncSession, *, account_id: int) -> list[Device]:
    rows = await session.scalars(
        select(Device).where(Device.user_id == account_id).order_by(Device.id)
    )
    return list(rows.all())


async def get_device(session: AsyncSession, *, account_id: int, device_id: str) -> Device:
    device = await session.scalar(
        select(Device).where(Device.user_id == account_id, Device.device_id == device_id)
    )
    if device is None:
        raise not_found(f"no device {device_id}")
    return device


async def delete_devices(
    session: AsyncSession, *, user: str, account_id: int, device_ids: Iterable[str]
) -> None:
    """Delete devices (their tokens, keys and to-device messages go with them)."""
    wanted = list(device_ids)
    if not wanted:
        return
    # Which of the account's devices go is the DELETE's business: drop all its cached tokens.
    token_cache.revoke(session, account_id=account_id)
    await session.execute(
        delete(Device).where(Device.user_id == account_id, Device.device_id.in_(wanted))
    )
    await record_change(session, user=user)
