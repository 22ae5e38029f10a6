"""The per-process cache of rooms' auth state (``room_auth``): checked against the room's state
position in the database on every use, so a change another worker made (here: the entry this
process held before it, put back as if the change had happened elsewhere) is never missed."""

from __future__ import annotations

from sqlalchemy import select

from rhenus.core.node import Node
from rhenus.messaging import room_auth
from rhenus.messaging.models import Room
from tests.messaging.conftest import Mx, Register


async def _room_of_two(new_user: Register) -> tuple[Mx, Mx, str]:
    alice, bob = await new_user("alice"), await new_user("bob")
    room = await alice.create_room(preset="private_chat", invite=[bob.user_id])
    await bob.ok("POST", f"/join/{room}")
    await bob.send(room, "hello")  # the room's entry is cached now
    return alice, bob, room


async def test_a_stale_entry_is_not_trusted_after_a_kick_elsewhere(
    new_user: Register, node: Node
) -> None:
    alice, bob, room = await _room_of_two(new_user)
    before = room_auth._CACHE[room]
    await alice.ok("POST", f"/rooms/{room}/kick", json={"user_id": bob.user_id})
    room_auth._CACHE[room] = before  # as if the kick had been made by another worker
    refused = await bob.call(
        "PUT", f"/rooms/{room}/send/m.room.message/after-kick", json={"body": "still here?"}
    )
    assert refused.status_code == 403, refused.text
    assert refused.json()["errcode"] == "M_FORBIDDEN"


async def test_a_stale_entry_is_not_trusted_after_power_levels_change_elsewhere(
    new_user: Register,
) -> None:
    alice, bob, room = await _room_of_two(new_user)
    before = room_auth._CACHE[room]
    levels = await alice.ok("GET", f"/rooms/{room}/state/m.room.power_levels")
    levels["events_default"] = 50
    await alice.ok("PUT", f"/rooms/{room}/state/m.room.power_levels", json=levels)
    room_auth._CACHE[room] = before
    refused = await bob.call(
        "PUT", f"/rooms/{room}/send/m.room.message/muted", json={"body": "muted?"}
    )
    assert refused.status_code == 403, refused.text
    await alice.send(room, "alice still speaks")


async def test_the_state_position_moves_with_each_state_event_only(
    new_user: Register, node: Node
) -> None:
    alice, _, room = await _room_of_two(new_user)

    async def position() -> int:
        async with node.db.session() as session:
            return int(
                await session.scalar(select(Room.state_position).where(Room.room_id == room))
            )

    start = await position()
    await alice.send(room, "a message")
    assert await position() == start
    await alice.ok("PUT", f"/rooms/{room}/state/m.room.topic", json={"topic": "news"})
    assert await position() > start


async def test_redacting_a_state_event_moves_the_state_position(
    new_user: Register, node: Node
) -> None:
    alice, _, room = await _room_of_two(new_user)
    topic = await alice.ok("PUT", f"/rooms/{room}/state/m.room.topic", json={"topic": "old"})
    async with node.db.session() as session:
        start = await room_auth.position(session, room_id=room)
    await alice.ok("PUT", f"/rooms/{room}/redact/{topic['event_id']}/r1", json={})
    async with node.db.session() as session:
        assert (await room_auth.position(session, room_id=room) or 0) > (start or 0)
