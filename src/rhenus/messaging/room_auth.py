"""Each room's auth state and sync audience, cached per process and checked against the database.

What the auth rules read of a room (create event, power levels, join and access rules, every
member's membership) and who a new event wakes (joined and invited members) change only with
the room's state. ``matrix_rooms.state_position`` is the stream position of the newest change
(a state event appended, or one redacted; :func:`state_changed`), so an entry read at that
position stays right as long as the database still says that position: a writer reads it (one
primary-key look-up, under the stream lock, so nothing can change it until the commit) and
reads the state itself only when its entry is missing or stale. The database decides, never
memory alone: a change committed by another worker (``rhenus run --workers N``, PostgreSQL) or
the CLI moves the position and the next writer here reloads.

Entries are stored only once their unit of work has committed: on SQLite a rolled-back
transaction gives its stream positions back, so a position read after the transaction's own
writes names that state only if it commits.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from rhenus.messaging import authrules
from rhenus.messaging.authrules import AuthState, Candidate
from rhenus.messaging.models import Event, Room, RoomState

MAX_ROOMS = 10_000
_SEEN = "matrix_room_auth"  # session.info: room → the entry this transaction validated

# Core statements on the tables, built once: no ORM compilation or statement building per use.
_rooms, _state, _events = (cast(Table, m.__table__) for m in (Room, RoomState, Event))
_POSITION = select(_rooms.c.state_position).where(_rooms.c.room_id == bindparam("room_id"))
_STATE_ROWS = select(_state.c.type, _state.c.state_key, _state.c.membership).where(
    _state.c.room_id == bindparam("room_id")
)
_AUTH_TYPES = (
    authrules.CREATE,
    authrules.POWER_LEVELS,
    authrules.JOIN_RULES,
    authrules.ACCESS_RULES,
)
_AUTH_EVENTS = (
    select(_events.c.type, _events.c.sender, _events.c.content)
    .join(_state, _state.c.stream_ordering == _events.c.stream_ordering)
    .where(
        _state.c.room_id == bindparam("room_id"),
        _state.c.state_key == "",
        _state.c.type.in_(_AUTH_TYPES),
    )
)
_MOVE = (
    update(_rooms)
    .where(_rooms.c.room_id == bindparam("room"))
    .values(state_position=bindparam("position"))
)


@dataclass(frozen=True)
class RoomAuth:
    """A room's auth state and audience at ``position`` (read-only: shared between requests)."""

    position: int
    create: Candidate | None
    power_levels: dict[str, Any] | None
    join_rule: str | None
    access_rule: str | None
    members: Mapping[str, str]  # every user with a member event → their membership
    state_rows: int
    audience: frozenset[str]  # joined and invited members: whom a new event wakes

    def state(self) -> AuthState:
        """A fresh :class:`AuthState` for one check (``access.complete`` adds to it)."""
        return AuthState(
            create=self.create,
            power_levels=self.power_levels,
            join_rule=self.join_rule,
            members=self.members,  # type: ignore[arg-type]  # read, never written, by the rules
            only_create=self.create is not None and self.state_rows == 1,
            access_rule=self.access_rule,
        )


_CACHE: dict[str, RoomAuth] = {}


def _store(entry: RoomAuth, room_id: str) -> None:
    known = _CACHE.get(room_id)
    if known is not None and known.position > entry.position:
        return  # a newer state was stored meanwhile
    if known is None and len(_CACHE) >= MAX_ROOMS:
        _CACHE.pop(next(iter(_CACHE)))  # the oldest
    _CACHE[room_id] = entry


def clear() -> None:
    """Forget every room (tests; nothing else needs to: entries are checked on each use)."""
    _CACHE.clear()


async def position(session: AsyncSession, *, room_id: str) -> int | None:
    """The room's state position now (None: no such room)."""
    found = await session.scalar(_POSITION, {"room_id": room_id})
    return None if found is None else int(found)


async def current(session: AsyncSession, *, room_id: str, at: int | None = None) -> RoomAuth | None:
    """The room's auth state as this transaction sees it; None if there is no such room.

    ``at`` is the room's :func:`position` if the caller read it already in this transaction.
    Writers call this under the stream lock, so the answer holds until their commit.
    """
    if at is None:
        at = await position(session, room_id=room_id)
        if at is None:
            return None
    entry = _CACHE.get(room_id)
    if entry is None or entry.position != at:
        entry = await _load(session, room_id, at)
        loaded = entry
        callbacks: list[Callable[[], None]] = session.info.setdefault("after_commit", [])
        callbacks.append(lambda: _store(loaded, room_id))
    session.info.setdefault(_SEEN, {})[room_id] = entry
    return entry


async def _load(session: AsyncSession, room_id: str, at: int) -> RoomAuth:
    members: dict[str, str] = {}
    rows = 0
    for type, state_key, membership in await session.execute(_STATE_ROWS, {"room_id": room_id}):
        rows += 1
        if type == authrules.MEMBER:
            members[state_key] = str(membership)
    create = power_levels = join_rule = access_rule = None
    for type, sender, content in await session.execute(_AUTH_EVENTS, {"room_id": room_id}):
        if type == authrules.CREATE:
            create = Candidate(type, sender, content, "")
        elif type == authrules.POWER_LEVELS:
            power_levels = content
        elif type == authrules.JOIN_RULES:
            join_rule = str(content.get("join_rule", "invite"))
        else:
            access_rule = str(content.get("rule", ""))
    audience = frozenset(u for u, m in members.items() if m in ("join", "invite"))
    return RoomAuth(at, create, power_levels, join_rule, access_rule, members, rows, audience)


async def state_changed(session: AsyncSession, *, room_id: str, position: int) -> None:
    """Record that the room's state changed at ``position`` (in this transaction)."""
    await session.execute(_MOVE, {"room": room_id, "position": position})
    session.info.setdefault(_SEEN, {})[room_id] = None


def audience(session: AsyncSession, room_id: str) -> frozenset[str] | None:
    """Whom an event of this transaction in the room wakes, if its state did not change since
    it was read here (else None: the caller reads the members)."""
    entry: RoomAuth | None = session.info.get(_SEEN, {}).get(room_id)
    return None if entry is None else entry.audience
