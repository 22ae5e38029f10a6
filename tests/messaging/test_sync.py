"""/sync and /messages: exact since tokens under concurrent senders, long-polls woken by new
events, timeline limits and pagination, invites, leaves, filters, full_state."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import select

from rhenus.core.node import Node
from rhenus.messaging.events import Notifier
from rhenus.messaging.models import Event
from tests.messaging.conftest import Mx, Register

BIG = '{"room": {"timeline": {"limit": 1000}}}'


def timeline(sync: dict[str, Any], room_id: str, section: str = "join") -> list[dict[str, Any]]:
    room = sync["rooms"][section].get(room_id)
    return list(room["timeline"]["events"]) if room else []


def bodies(events: list[dict[str, Any]]) -> list[str]:
    return [e["content"]["body"] for e in events if e["type"] == "m.room.message"]


@pytest.mark.parametrize(("senders", "each"), [(6, 12)])
async def test_incremental_syncs_see_every_event_of_concurrent_senders_exactly_once_in_order(
    new_user: Register, node: Node, senders: int, each: int
) -> None:
    """N users send at once while a reader syncs incrementally (long-polling): concatenated,
    the syncs' timelines are exactly the room's stream after the first token, in order."""
    owner = await new_user("owner")
    room_id = await owner.create_room(preset="public_chat")
    people = [await new_user(f"sender{i}") for i in range(senders)]
    for person in people:
        await person.ok("POST", f"/join/{room_id}", json={})
    since = (await owner.sync(filter=BIG))["next_batch"]
    start = int(since[1:].split("_")[0])

    async def talk(person: Mx) -> None:
        for n in range(each):
            await person.send(room_id, f"{person.user_id} {n}")

    seen: list[dict[str, Any]] = []
    sending = asyncio.gather(*(talk(p) for p in people))
    while True:
        answer = await owner.sync(
            since=since, timeout=2000 if not sending.done() else 0, filter=BIG
        )
        since = answer["next_batch"]
        got = timeline(answer, room_id)
        seen += got
        if sending.done() and not got:
            break
    await sending
    async with node.db.session() as session:
        stream = list(
            await session.scalars(
                select(Event.event_id)
                .where(Event.room_id == room_id, Event.stream_ordering > start)
                .order_by(Event.stream_ordering)
            )
        )
    assert [e["event_id"] for e in seen] == stream
    assert len(stream) == senders * each
    for person in people:  # and each sender's messages in the order they were sent
        assert [b for b in bodies(seen) if b.startswith(person.user_id + " ")] == [
            f"{person.user_id} {n}" for n in range(each)
        ]


async def test_a_waiting_sync_is_woken_by_a_message_in_one_of_its_rooms(
    new_user: Register, notifier: Notifier
) -> None:
    alice, bob = await new_user("alice"), await new_user("bob")
    room_id = await alice.create_room(invite=[bob.user_id])
    await bob.ok("POST", f"/join/{room_id}", json={})
    since = (await bob.sync())["next_batch"]
    waiting = asyncio.ensure_future(bob.sync(since=since, timeout=120_000))
    while notifier.waiting(bob.user_id) == 0:
        await asyncio.sleep(0.01)
    assert not waiting.done()
    await alice.send(room_id, "réveille-toi")
    woken = await waiting
    assert bodies(timeline(woken, room_id)) == ["réveille-toi"]
    assert notifier.waiting(bob.user_id) == 0


async def test_a_sync_with_nothing_new_keeps_the_token(new_user: Register) -> None:
    alice = await new_user("alice")
    await alice.create_room()
    since = (await alice.sync())["next_batch"]
    quiet = await alice.sync(since=since, timeout=50)
    assert quiet["next_batch"] == since
    assert quiet["rooms"]["join"] == {}


async def test_timeline_limit_marks_limited_and_messages_pages_back_to_the_start(
    new_user: Register,
) -> None:
    alice = await new_user("alice")
    room_id = await alice.create_room(name="Archives")
    for i in range(15):
        await alice.send(room_id, f"m{i}")
    initial = await alice.sync(filter='{"room": {"timeline": {"limit": 4}}}')
    room = initial["rooms"]["join"][room_id]
    assert room["timeline"]["limited"] is True
    assert bodies(room["timeline"]["events"]) == ["m11", "m12", "m13", "m14"]
    state_types = {e["type"] for e in room["state"]["events"]}
    assert {"m.room.create", "m.room.power_levels", "m.room.name", "m.room.member"} <= state_types
    older: list[dict[str, Any]] = []
    token: str | None = room["timeline"]["prev_batch"]
    while token:
        page = await alice.ok(
            "GET", f"/rooms/{room_id}/messages", params={"from": token, "dir": "b", "limit": 5}
        )
        older += page["chunk"]
        token = page.get("end")
    assert bodies(older) == [f"m{i}" for i in reversed(range(11))]
    assert older[-1]["type"] == "m.room.create"
    forward = await alice.ok("GET", f"/rooms/{room_id}/messages", params={"dir": "f", "limit": 100})
    assert [e["event_id"] for e in forward["chunk"]] == [e["event_id"] for e in reversed(older)] + [
        e["event_id"] for e in room["timeline"]["events"]
    ]
    assert "end" not in forward
    only = await alice.ok(
        "GET",
        f"/rooms/{room_id}/messages",
        params={"dir": "b", "filter": '{"types": ["m.room.name"]}'},
    )
    assert [e["type"] for e in only["chunk"]] == ["m.room.name"]


async def test_incremental_limited_sync_carries_the_state_changed_before_its_timeline(
    new_user: Register,
) -> None:
    alice = await new_user("alice")
    room_id = await alice.create_room()
    since = (await alice.sync())["next_batch"]
    await alice.ok("PUT", f"/rooms/{room_id}/state/m.room.topic", json={"topic": "crise"})
    for i in range(5):
        await alice.send(room_id, f"m{i}")
    answer = await alice.sync(since=since, filter='{"room": {"timeline": {"limit": 2}}}')
    room = answer["rooms"]["join"][room_id]
    assert room["timeline"]["limited"] is True
    assert [e["content"] for e in room["state"]["events"]] == [{"topic": "crise"}]


async def test_invites_leaves_and_kicks_appear_in_their_sections_and_outsiders_see_nothing(
    new_user: Register,
) -> None:
    alice, bob, carol, eve = [await new_user(n) for n in ("alice", "bob", "carol", "eve")]
    tokens = {p.user_id: (await p.sync())["next_batch"] for p in (bob, carol, eve)}
    room_id = await alice.create_room(name="Secret", invite=[bob.user_id, carol.user_id])
    await alice.send(room_id, "before anyone joins")
    invited = await bob.sync(since=tokens[bob.user_id])
    shown = invited["rooms"]["invite"][room_id]["invite_state"]["events"]
    assert {e["type"] for e in shown} >= {"m.room.create", "m.room.name", "m.room.member"}
    assert all(e["type"] != "m.room.message" for e in shown)
    mine = next(e for e in shown if e["type"] == "m.room.member")
    assert mine["content"]["membership"] == "invite"
    await carol.ok("POST", f"/rooms/{room_id}/leave", json={})  # rejects the invite
    rejected = await carol.sync(since=tokens[carol.user_id])
    assert [e["content"]["membership"] for e in timeline(rejected, room_id, "leave")] == ["leave"]
    await bob.ok("POST", f"/join/{room_id}", json={})
    since = (await bob.sync(since=invited["next_batch"]))["next_batch"]
    await alice.send(room_id, "bob, you are out")
    await alice.ok(
        "POST", f"/rooms/{room_id}/kick", json={"user_id": bob.user_id, "reason": "test"}
    )
    await alice.send(room_id, "after the kick")
    kicked = await bob.sync(since=since)
    left = timeline(kicked, room_id, "leave")
    assert bodies(left) == ["bob, you are out"]
    assert left[-1]["content"] == {"membership": "leave", "displayname": "bob", "reason": "test"}
    assert room_id not in kicked["rooms"]["join"]
    assert room_id not in (await bob.sync(since=kicked["next_batch"]))["rooms"]["leave"]
    outsider = await eve.sync(since=tokens[eve.user_id])
    assert all(room_id not in outsider["rooms"][s] for s in ("join", "invite", "leave"))
    full = await eve.sync(full_state="true")
    assert all(room_id not in full["rooms"][s] for s in ("join", "invite", "leave"))


async def test_uploaded_filters_apply_to_sync_and_full_state_resends_state(
    new_user: Register,
) -> None:
    alice, bob = await new_user("alice"), await new_user("bob")
    room_id = await alice.create_room()
    for i in range(3):
        await alice.send(room_id, f"m{i}")
    definition = {"room": {"timeline": {"limit": 1, "types": ["m.room.message"]}}}
    created = await alice.ok("POST", f"/user/{alice.user_id}/filter", json=definition)
    assert (
        await alice.ok("GET", f"/user/{alice.user_id}/filter/{created['filter_id']}") == definition
    )
    foreign = await bob.call("GET", f"/user/{alice.user_id}/filter/{created['filter_id']}")
    assert foreign.json()["errcode"] == "M_FORBIDDEN"
    answer = await alice.sync(filter=created["filter_id"])
    assert bodies(timeline(answer, room_id)) == ["m2"]
    since = answer["next_batch"]
    assert room_id not in (await alice.sync(since=since))["rooms"]["join"]
    full = await alice.sync(since=since, full_state="true")
    assert {e["type"] for e in full["rooms"]["join"][room_id]["state"]["events"]} >= {
        "m.room.create",
        "m.room.join_rules",
        "m.room.member",
    }
    missing = await alice.call("GET", "/sync", params={"filter": "999"})
    assert missing.json()["errcode"] == "M_NOT_FOUND"
