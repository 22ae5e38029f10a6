"""Events: ids, the global stream, appending under the auth rules, and waking long-polls.

Stream exactness (what makes a ``since`` token an exact cut): every transaction that appends
events first takes the stream lock (:func:`lock_stream`) — SQLite write transactions already hold
the database's write lock (``BEGIN IMMEDIATE``, see ``core.db``), and on PostgreSQL an advisory
transaction lock serialises them — then inserts, so ``stream_ordering`` values are allocated and
committed in the same order and any snapshot sees a prefix of the stream. Readers of the stream
(:func:`snapshot`) read in one snapshot (REPEATABLE READ on PostgreSQL; a WAL read transaction
on SQLite), so the position they report and what they read agree.
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any, cast

from sqlalchemy import Table, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from rhenus.core.db import Database
from rhenus.messaging import access, authrules, room_auth
from rhenus.messaging.authrules import AuthState, Candidate
from rhenus.messaging.errors import MatrixError
from rhenus.messaging.models import Event, RoomState
from rhenus.messaging.schemas import MAX_EVENT_BYTES

# Arbitrary constant naming "the Matrix event stream" among PostgreSQL advisory locks.
_PG_STREAM_LOCK = 0x4D5852484E53  # "MXRHNS"
_TOUCHED = "matrix_touched_rooms"
_INSERT = cast(Table, Event.__table__).insert().returning(Event.__table__.c.stream_ordering)


def new_event_id() -> str:
    """``$`` + 43 url-safe base64 characters (the shape of room v4+ event ids).

    Not yet the reference hash of a signed PDU: that comes with federation.
    """
    return "$" + base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")


def now_ms() -> int:
    return int(time.time() * 1000)


class Notifier:
    """Wakes the long-polling syncs of users who may have something new.

    Syncs of this process are woken at once. When the node runs several worker processes
    (``RHENUS_REDIS_URL``, :mod:`rhenus.messaging.fanout`), every wake-up is also handed to the
    ``relay``, which publishes it to the other workers; the wake-ups they publish arrive through
    :meth:`wake_local`. Whatever wakes users (room events, to-device messages, device lists,
    typing, receipts, account data) calls :meth:`wake`, so it reaches every worker.
    """

    def __init__(self) -> None:
        self._waiting: dict[str, set[asyncio.Event]] = defaultdict(set)
        # Called with each wake-up's users after the local syncs are woken; must not block or
        # raise (``fanout`` queues the wake-up for a background publisher).
        self.relay: Callable[[frozenset[str]], None] | None = None

    @contextmanager
    def listen(self, user: str) -> Iterator[asyncio.Event]:
        """An event set whenever ``user`` may have something new; listen before reading."""
        woken = asyncio.Event()
        self._waiting[user].add(woken)
        try:
            yield woken
        finally:
            self._waiting[user].discard(woken)
            if not self._waiting[user]:
                del self._waiting[user]

    def waiting(self, user: str) -> int:
        """How many syncs of ``user`` are waiting in this process now."""
        return len(self._waiting.get(user, ()))

    def parked(self) -> int:
        """How many syncs are waiting in this process now (all users)."""
        return sum(len(waits) for waits in self._waiting.values())

    def wake(self, users: Iterable[str]) -> None:
        """Set the events of every waiting sync of these users, in every worker."""
        audience = frozenset(users)
        if not audience:
            return
        self.wake_local(audience)
        if self.relay is not None:
            self.relay(audience)

    def wake_local(self, users: Iterable[str]) -> None:
        """Set the events of the waiting syncs of these users in this process only."""
        for user in users:
            for woken in self._waiting.get(user, ()):
                woken.set()

    def wake_all_local(self) -> None:
        """Wake every sync waiting in this process (after wake-ups may have been lost)."""
        for waits in self._waiting.values():
            for woken in waits:
                woken.set()


async def lock_stream(session: AsyncSession) -> None:
    """Serialise appends (idempotent within a transaction)."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_STREAM_LOCK})


def wake_users(session: AsyncSession, users: Iterable[str]) -> None:
    """Wake these users' syncs once the unit of work (:func:`writing`) has committed."""
    session.info.setdefault(_TOUCHED + "_users", set()).update(users)


@asynccontextmanager
async def writing(db: Database, notifier: Notifier) -> AsyncIterator[AsyncSession]:
    """A unit of work that may append events; after it commits, the rooms' members are woken."""
    async with db.transaction() as session:
        yield session
        rooms: set[str] = session.info.get(_TOUCHED, set())
        audience: set[str] = set(session.info.get(_TOUCHED + "_users", set()))
        unknown = set()
        for room_id in rooms:
            # The room's members as validated in this transaction (``room_auth``), unless its
            # state changed since: then read them.
            known = room_auth.audience(session, room_id)
            if known is None:
                unknown.add(room_id)
            else:
                audience.update(known)
        if unknown:
            rows = await session.scalars(
                select(RoomState.state_key).where(
                    RoomState.room_id.in_(unknown),
                    RoomState.type == authrules.MEMBER,
                    RoomState.membership.in_(("join", "invite")),
                )
            )
            audience.update(rows.all())
    notifier.wake(audience)


@asynccontextmanager
async def snapshot(db: Database) -> AsyncIterator[AsyncSession]:
    """A read session whose statements all see one snapshot of the database."""
    async with db.session() as session:
        if not db.is_sqlite:
            await session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        yield session


async def stream_position(session: AsyncSession) -> int:
    """The position of the newest event (0 before any)."""
    return int(await session.scalar(select(func.max(Event.stream_ordering))) or 0)


async def auth_state(session: AsyncSession, *, room_id: str, at: int | None = None) -> AuthState:
    """What the auth rules need of the room's current state (``room_auth``; empty: no room);
    ``at`` is the room's state position if the caller read it already."""
    room = await room_auth.current(session, room_id=room_id, at=at)
    return room.state() if room is not None else AuthState()


async def current_state_event(
    session: AsyncSession, *, room_id: str, type: str, state_key: str
) -> Event | None:
    return await session.scalar(
        select(Event)
        .join(RoomState, RoomState.stream_ordering == Event.stream_ordering)
        .where(
            RoomState.room_id == room_id, RoomState.type == type, RoomState.state_key == state_key
        )
    )


async def append(
    session: AsyncSession,
    *,
    room_id: str,
    type: str,
    sender: str,
    content: dict[str, Any],
    state_key: str | None = None,
    txn: tuple[str, str] | None = None,
    state_position: int | None = None,
) -> Event:
    """Check ``event`` against the auth rules on the room's current state and append it.

    ``txn`` is the sending device and client transaction id of a ``send``;
    ``state_position`` the room's :func:`room_auth.position`, if the caller read it already
    under the stream lock.
    """
    await lock_stream(session)
    candidate = Candidate(type, sender, content, state_key)
    state = await auth_state(session, room_id=room_id, at=state_position)
    await access.complete(session, state, candidate, room_id=room_id)  # Tchap's access rules
    authrules.check(candidate, state)
    event = Event(
        event_id=new_event_id(),
        room_id=room_id,
        type=type,
        state_key=state_key,
        sender=sender,
        content=content,
        origin_server_ts=now_ms(),
        txn_device=txn[0] if txn else None,
        txn_id=txn[1] if txn else None,
    )
    if len(json.dumps(client_event(event), separators=(",", ":")).encode()) > MAX_EVENT_BYTES:
        raise MatrixError(413, "M_TOO_LARGE", f"an event is limited to {MAX_EVENT_BYTES} bytes")
    # A Core INSERT: the stream position comes back from the database, under the stream lock.
    event.stream_ordering = (
        await session.execute(
            _INSERT,
            {
                "event_id": event.event_id,
                "room_id": room_id,
                "type": type,
                "state_key": state_key,
                "sender": sender,
                "content": content,
                "origin_server_ts": event.origin_server_ts,
                "txn_device": event.txn_device,
                "txn_id": event.txn_id,
            },
        )
    ).scalar_one()
    if state_key is not None:
        row = await session.get(RoomState, (room_id, type, state_key))
        membership = str(content.get("membership")) if type == authrules.MEMBER else None
        if row is None:
            session.add(
                RoomState(
                    room_id=room_id,
                    type=type,
                    state_key=state_key,
                    stream_ordering=event.stream_ordering,
                    membership=membership,
                )
            )
        else:
            row.stream_ordering = event.stream_ordering
            row.membership = membership
        await session.flush()
        await room_auth.state_changed(session, room_id=room_id, position=event.stream_ordering)
    session.info.setdefault(_TOUCHED, set()).add(room_id)
    if type == authrules.MEMBER and state_key:
        # A user who just left or was kicked is no longer a member, but must hear of it.
        wake_users(session, [state_key])
    return event


def client_event(
    event: Event, *, with_room_id: bool = True, device: tuple[str, str] | None = None
) -> dict[str, Any]:
    """The client format of an event (spec: "Room Events" → ClientEvent).

    ``device`` (user id, device id) is the reader's: its own sends carry their transaction id.
    """
    out: dict[str, Any] = {
        "type": event.type,
        "content": event.content,
        "event_id": event.event_id,
        "sender": event.sender,
        "origin_server_ts": event.origin_server_ts,
        "unsigned": {"age": max(0, now_ms() - event.origin_server_ts)},
    }
    if with_room_id:
        out["room_id"] = event.room_id
    if event.state_key is not None:
        out["state_key"] = event.state_key
    if device is not None and event.txn_id and (event.sender, event.txn_device) == device:
        out["unsigned"]["transaction_id"] = event.txn_id
    if event.type == "m.room.redaction" and "redacts" in event.content:
        # Room v11 moved ``redacts`` into the content; mirrored at the top for older clients
        # (as Synapse does: matrix-nio still reads it there).
        out["redacts"] = event.content["redacts"]
    if event.redacted_because is not None:
        because = dict(event.redacted_because)
        if not with_room_id:
            because.pop("room_id", None)
        if "redacts" in because.get("content", {}):
            because["redacts"] = because["content"]["redacts"]
        because["unsigned"] = {"age": max(0, now_ms() - int(because["origin_server_ts"]))}
        out["unsigned"]["redacted_because"] = because
    return out


def stripped(event: Event) -> dict[str, Any]:
    """Stripped state (spec: "Stripped state"), as shown to invitees."""
    return {
        "type": event.type,
        "state_key": event.state_key,
        "content": event.content,
        "sender": event.sender,
    }


async def state_at(session: AsyncSession, *, room_id: str, before: int) -> list[Event]:
    """The room's state just before stream position ``before`` (the latest event per key)."""
    latest = (
        select(func.max(Event.stream_ordering).label("pos"))
        .where(
            Event.room_id == room_id,
            Event.state_key.is_not(None),
            Event.stream_ordering < before,
        )
        .group_by(Event.type, Event.state_key)
        .subquery()
    )
    rows = await session.scalars(
        select(Event)
        .join(latest, Event.stream_ordering == latest.c.pos)
        .order_by(Event.stream_ordering)
    )
    return list(rows.all())
