"""What a sync carries beside rooms' timelines: account data (top-level and per room) and the
rooms' ephemeral events (``m.typing``, ``m.receipt``), filtered by the sync filter's
``account_data``, ``room.account_data`` and ``room.ephemeral`` (``types``, ``not_types``,
``limit``, ``rooms``, ``not_rooms``).

Account data and receipts are read in the sync's snapshot up to the account stream's newest
position (the token's fourth part); typing from memory up to its serial (the fifth). A room new
to the sync (initial sync, or newly joined) gets all of its account data and receipts; others
what changed since the token.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from sqlalchemy.ext.asyncio import AsyncSession

from rhenus.messaging import account_data, filters, receipts
from rhenus.messaging.schemas import SyncFilter
from rhenus.messaging.typing_notices import Typing


class Extras(NamedTuple):
    account_position: int
    typing_serial: int
    account_data: list[dict[str, Any]]  # the top-level account_data events
    rooms: dict[str, dict[str, list[dict[str, Any]]]]  # room → ephemeral, account_data events
    news: bool  # whether any of it may end a long-poll (see ``typing_notices``)


async def collect(
    session: AsyncSession,
    *,
    user: str,
    joined: dict[str, bool],
    since_account: int | None,
    since_typing: int | None,
    flt: SyncFilter,
    typing: Typing | None,
    upper_account: int,
) -> Extras:
    """``joined``: the joined rooms the filter wants, each with whether it is new to the sync.

    ``since_account`` / ``since_typing`` are the token's parts (None: an initial sync);
    ``upper_account`` the account stream's newest position (account data and receipts)."""
    upper = upper_account
    lower = since_account or 0

    def start(new: bool) -> int:
        return 0 if new else lower

    ephemeral_rooms = {
        r: new for r, new in joined.items() if filters.section_wants_room(flt.room.ephemeral, r)
    }
    data_rooms = {
        r: start(new)
        for r, new in joined.items()
        if filters.section_wants_room(flt.room.account_data, r)
    }
    data = await account_data.changed(
        session, user=user, after={account_data.GLOBAL: lower, **data_rooms}, upper=upper
    )
    read = await receipts.for_sync(
        session, user=user, after={r: start(new) for r, new in ephemeral_rooms.items()}, upper=upper
    )
    serial = typing.serial if typing is not None else (since_typing or 0)
    typed = (
        typing.for_sync(rooms=ephemeral_rooms, since=since_typing, upper=serial)
        if typing is not None
        else {}
    )
    foreign = typing is not None and typing.foreign(since_typing, serial)
    rooms: dict[str, dict[str, list[dict[str, Any]]]] = {}
    news = False
    for room_id in joined:
        ephemeral = [e for e in (typed.get(room_id), read.get(room_id)) if e is not None]
        ephemeral = filters.apply(flt.room.ephemeral, ephemeral)
        room_data = filters.apply(flt.room.account_data, data.get(room_id, []))
        if ephemeral or room_data:
            rooms[room_id] = {"ephemeral": ephemeral, "account_data": room_data}
            news = (
                news
                or bool(room_data)
                or any(e["type"] != "m.typing" or not foreign for e in ephemeral)
            )
    top = filters.apply(flt.account_data, data.get(account_data.GLOBAL, []))
    return Extras(upper, serial, top, rooms, news or bool(top))
