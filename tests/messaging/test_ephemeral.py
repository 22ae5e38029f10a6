"""Typing notifications and receipts: delivered as ephemeral events of /sync, waking the
long-polls of the room's members (private receipts: their user only), expiry, read markers,
the ephemeral filter, and tokens of the older format."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from rhenus.messaging.events import Notifier
from tests.messaging.conftest import Mx, Register


def ephemeral(sync: dict[str, Any], room_id: str, type: str) -> list[dict[str, Any]]:
    room = sync["rooms"]["join"].get(room_id)
    found = room["ephemeral"]["events"] if room else []
    return [e["content"] for e in found if e["type"] == type]


async def pair(new_user: Register) -> tuple[Mx, Mx, str]:
    alice, bob = await new_user("alice"), await new_user("bob")
    room_id = await alice.create_room(invite=[bob.user_id])
    await bob.ok("POST", f"/join/{room_id}", json={})
    return alice, bob, room_id


async def long_poll(who: Mx, notifier: Notifier, since: str) -> asyncio.Future[dict[str, Any]]:
    """A sync of ``who`` waiting (up to two minutes) from ``since``."""
    waiting = asyncio.ensure_future(who.sync(since=since, timeout=120_000))
    while notifier.waiting(who.user_id) == 0:
        await asyncio.sleep(0.01)
    assert not waiting.done()
    return waiting


async def test_typing_wakes_a_long_poll_and_its_expiry_wakes_the_next(
    new_user: Register, notifier: Notifier
) -> None:
    alice, bob, room_id = await pair(new_user)
    since = (await bob.sync())["next_batch"]
    waiting = await long_poll(bob, notifier, since)
    typing = f"/rooms/{room_id}/typing/{alice.user_id}"
    await alice.ok("PUT", typing, json={"typing": True, "timeout": 5000})
    woken = await asyncio.wait_for(waiting, 10)
    assert ephemeral(woken, room_id, "m.typing") == [{"user_ids": [alice.user_id]}]
    assert woken["rooms"]["join"][room_id]["timeline"]["events"] == []
    # Typing again within the timeout changes nothing for the others: still waiting after it.
    waiting = await long_poll(bob, notifier, woken["next_batch"])
    await alice.ok("PUT", typing, json={"typing": True, "timeout": 300})
    expired = await asyncio.wait_for(waiting, 10)  # woken by the expiry, not the refresh
    assert ephemeral(expired, room_id, "m.typing") == [{"user_ids": []}]
    quiet = await bob.sync(since=expired["next_batch"])
    assert room_id not in quiet["rooms"]["join"]
    # Stopping explicitly is a change too.
    await alice.ok("PUT", typing, json={"typing": True, "timeout": 30_000})
    started = await bob.sync(since=quiet["next_batch"])
    assert ephemeral(started, room_id, "m.typing") == [{"user_ids": [alice.user_id]}]
    assert ephemeral(await bob.sync(), room_id, "m.typing") == [{"user_ids": [alice.user_id]}]
    await alice.ok("PUT", typing, json={"typing": False})
    stopped = await bob.sync(since=started["next_batch"])
    assert ephemeral(stopped, room_id, "m.typing") == [{"user_ids": []}]


async def test_typing_is_for_oneself_and_members_only(new_user: Register) -> None:
    alice, bob, room_id = await pair(new_user)
    eve = await new_user("eve")
    other = await alice.call("PUT", f"/rooms/{room_id}/typing/{bob.user_id}", json={"typing": True})
    assert other.status_code == 403
    outsider = await eve.call(
        "PUT", f"/rooms/{room_id}/typing/{eve.user_id}", json={"typing": True}
    )
    assert outsider.status_code == 403
    assert outsider.json()["errcode"] == "M_FORBIDDEN"


async def test_a_receipt_wakes_a_long_poll_and_private_ones_stay_private(
    new_user: Register, notifier: Notifier
) -> None:
    alice, bob, room_id = await pair(new_user)
    first = await bob.send(room_id, "un")
    second = await bob.send(room_id, "deux")
    since = (await bob.sync())["next_batch"]
    waiting = await long_poll(bob, notifier, since)
    await alice.ok("POST", f"/rooms/{room_id}/receipt/m.read/{second}", json={})
    woken = await asyncio.wait_for(waiting, 10)
    [receipt] = ephemeral(woken, room_id, "m.receipt")
    assert list(receipt) == [second]
    assert set(receipt[second]["m.read"]) == {alice.user_id}
    assert isinstance(receipt[second]["m.read"][alice.user_id]["ts"], int)

    # An older event: ignored (receipts never move back).
    await alice.ok("POST", f"/rooms/{room_id}/receipt/m.read/{first}", json={})
    assert room_id not in (await bob.sync(since=woken["next_batch"]))["rooms"]["join"]

    # A private receipt: alice sees it, bob neither sees it nor is woken by it.
    alice_since = (await alice.sync())["next_batch"]
    waiting = await long_poll(bob, notifier, woken["next_batch"])
    await alice.ok("POST", f"/rooms/{room_id}/receipt/m.read.private/{second}", json={})
    mine = await alice.sync(since=alice_since)
    [own] = ephemeral(mine, room_id, "m.receipt")
    assert {e: set(r) for e, r in own.items()} == {second: {"m.read.private"}}
    assert set(own[second]["m.read.private"]) == {alice.user_id}
    await asyncio.sleep(0.3)
    assert not waiting.done()
    waiting.cancel()
    assert room_id not in (await bob.sync(since=woken["next_batch"]))["rooms"]["join"]

    # Threaded receipts carry their thread; the initial sync has every receipt of the room.
    await bob.ok("POST", f"/rooms/{room_id}/receipt/m.read/{second}", json={"thread_id": "main"})
    initial = ephemeral(await bob.sync(), room_id, "m.receipt")
    assert initial[0][second]["m.read"][bob.user_id]["thread_id"] == "main"
    assert alice.user_id in initial[0][second]["m.read"]
    assert "m.read.private" not in initial[0][second]


async def test_receipts_need_a_member_and_an_event_of_the_room(new_user: Register) -> None:
    alice, bob, room_id = await pair(new_user)
    eve = await new_user("eve")
    message = await alice.send(room_id, "lu ?")
    outsider = await eve.call("POST", f"/rooms/{room_id}/receipt/m.read/{message}", json={})
    assert outsider.status_code == 403
    missing = await bob.call("POST", f"/rooms/{room_id}/receipt/m.read/$nope", json={})
    assert missing.status_code == 404
    odd = await bob.call("POST", f"/rooms/{room_id}/receipt/m.seen/{message}", json={})
    assert odd.status_code == 400
    assert odd.json()["errcode"] == "M_INVALID_PARAM"


async def test_read_markers_set_fully_read_and_receipts(new_user: Register) -> None:
    alice, bob, room_id = await pair(new_user)
    first = await alice.send(room_id, "un")
    second = await alice.send(room_id, "deux")
    since = (await bob.sync())["next_batch"]
    await bob.ok(
        "POST",
        f"/rooms/{room_id}/read_markers",
        json={"m.fully_read": second, "m.read": second, "m.read.private": first},
    )
    answer = await bob.sync(since=since)
    room = answer["rooms"]["join"][room_id]
    assert room["account_data"]["events"] == [
        {"type": "m.fully_read", "content": {"event_id": second}}
    ]
    [receipt] = ephemeral(answer, room_id, "m.receipt")
    assert set(receipt) == {first, second}
    assert set(receipt[second]["m.read"]) == {bob.user_id}
    assert set(receipt[first]["m.read.private"]) == {bob.user_id}
    marker = f"/user/{bob.user_id}/rooms/{room_id}/account_data/m.fully_read"
    assert await bob.ok("GET", marker) == {"event_id": second}
    # The marker only moves forward; and clients may not set it as account data.
    await bob.ok("POST", f"/rooms/{room_id}/read_markers", json={"m.fully_read": first})
    assert await bob.ok("GET", marker) == {"event_id": second}
    refused = await bob.call("PUT", marker, json={"event_id": first})
    assert refused.status_code == 405
    assert refused.json()["errcode"] == "M_BAD_JSON"
    await bob.ok("POST", f"/rooms/{room_id}/receipt/m.fully_read/{second}", json={})


async def test_the_ephemeral_filter_and_tokens_of_the_older_format(new_user: Register) -> None:
    alice, bob, room_id = await pair(new_user)
    message = await alice.send(room_id, "filtré")
    since = (await bob.sync())["next_batch"]
    await alice.ok(
        "PUT", f"/rooms/{room_id}/typing/{alice.user_id}", json={"typing": True, "timeout": 30_000}
    )
    await alice.ok("POST", f"/rooms/{room_id}/receipt/m.read/{message}", json={})
    no_typing = await bob.sync(
        since=since, filter='{"room": {"ephemeral": {"not_types": ["m.typing"]}}}'
    )
    assert ephemeral(no_typing, room_id, "m.typing") == []
    assert len(ephemeral(no_typing, room_id, "m.receipt")) == 1
    only_typing = await bob.sync(since=since, filter='{"room": {"ephemeral": {"limit": 1}}}')
    assert [e["type"] for e in only_typing["rooms"]["join"][room_id]["ephemeral"]["events"]] == [
        "m.typing"
    ]
    elsewhere = await bob.sync(
        since=since, filter=json.dumps({"room": {"ephemeral": {"not_rooms": [room_id]}}})
    )
    assert room_id not in elsewhere["rooms"]["join"]
    # A token as issued before account data and typing existed: everything current, once.
    events_part, devices_part, inbox_part = since[1:].split("_")[:3]
    old = f"s{events_part}_{devices_part}_{inbox_part}"
    caught_up = await bob.sync(since=old)
    assert ephemeral(caught_up, room_id, "m.typing") == [{"user_ids": [alice.user_id]}]
    assert len(ephemeral(caught_up, room_id, "m.receipt")) == 1
    assert len(caught_up["next_batch"].split("_")) == 5
    assert room_id not in (await bob.sync(since=caught_up["next_batch"]))["rooms"]["join"]
    assert (await bob.sync(since=f"s{events_part}"))["next_batch"]
    # A typing part from another run (or worker) is answered, but does not end a wait early.
    parts = caught_up["next_batch"].split("_")
    parts[4] = "1"
    started = time.monotonic()
    waited = await bob.sync(since="_".join(parts), timeout=300)
    assert time.monotonic() - started >= 0.25
    assert ephemeral(waited, room_id, "m.typing") == [{"user_ids": [alice.user_id]}]
