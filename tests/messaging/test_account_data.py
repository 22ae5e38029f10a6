"""Account data, global and per room: the routes, initial and incremental sync (exact under
concurrent writers), the long-poll it wakes, and the account_data filters."""

from __future__ import annotations

import asyncio
from typing import Any

from rhenus.messaging.events import Notifier
from tests.messaging.conftest import Mx, Register


def top(sync: dict[str, Any]) -> dict[str, Any]:
    return {e["type"]: e["content"] for e in sync["account_data"]["events"]}


def of_room(sync: dict[str, Any], room_id: str) -> dict[str, Any]:
    room = sync["rooms"]["join"].get(room_id)
    return {e["type"]: e["content"] for e in room["account_data"]["events"]} if room else {}


async def test_account_data_routes(new_user: Register) -> None:
    alice, bob = await new_user("alice"), await new_user("bob")
    room_id = await alice.create_room()
    mine = f"/user/{alice.user_id}/account_data/m.direct"
    await alice.ok("PUT", mine, json={bob.user_id: [room_id]})
    assert await alice.ok("GET", mine) == {bob.user_id: [room_id]}
    in_room = f"/user/{alice.user_id}/rooms/{room_id}/account_data/m.tag"
    await alice.ok("PUT", in_room, json={"tags": {"u.travail": {"order": 0.5}}})
    assert await alice.ok("GET", in_room) == {"tags": {"u.travail": {"order": 0.5}}}
    missing = await alice.call("GET", f"/user/{alice.user_id}/account_data/org.example.none")
    assert missing.status_code == 404
    assert missing.json()["errcode"] == "M_NOT_FOUND"
    assert (
        await alice.call("GET", f"/user/{alice.user_id}/rooms/{room_id}/account_data/m.direct")
    ).status_code == 404
    for method, kwargs in (("GET", {}), ("PUT", {"json": {}})):
        foreign = await bob.call(method, mine, **kwargs)
        assert foreign.status_code == 403
        assert foreign.json()["errcode"] == "M_FORBIDDEN"
    for server_kept in ("m.fully_read", "m.push_rules"):
        refused = await alice.call(
            "PUT", f"/user/{alice.user_id}/account_data/{server_kept}", json={}
        )
        assert refused.status_code == 405, server_kept
    bad_room = await alice.call("PUT", f"/user/{alice.user_id}/rooms/nope/account_data/x", json={})
    assert bad_room.status_code == 400
    not_object = await alice.call("PUT", mine, json=[1, 2])
    assert not_object.status_code == 400


async def test_initial_and_incremental_sync_carry_exactly_what_changed(
    new_user: Register, notifier: Notifier
) -> None:
    alice = await new_user("alice")
    room_id = await alice.create_room()
    await alice.ok("PUT", f"/user/{alice.user_id}/account_data/org.example.a", json={"v": 1})
    await alice.ok(
        "PUT", f"/user/{alice.user_id}/rooms/{room_id}/account_data/m.tag", json={"tags": {}}
    )
    initial = await alice.sync()
    assert top(initial) == {"org.example.a": {"v": 1}}
    assert of_room(initial, room_id) == {"m.tag": {"tags": {}}}
    since = initial["next_batch"]
    assert top(await alice.sync(since=since)) == {}

    # A change wakes the user's waiting sync, which carries that change only.
    waiting = asyncio.ensure_future(alice.sync(since=since, timeout=120_000))
    while notifier.waiting(alice.user_id) == 0:
        await asyncio.sleep(0.01)
    await alice.ok("PUT", f"/user/{alice.user_id}/account_data/org.example.b", json={"v": 2})
    woken = await asyncio.wait_for(waiting, 10)
    assert top(woken) == {"org.example.b": {"v": 2}}
    assert room_id not in woken["rooms"]["join"]

    # The same content again is no change; a room's account data alone brings the room.
    since = woken["next_batch"]
    await alice.ok("PUT", f"/user/{alice.user_id}/account_data/org.example.b", json={"v": 2})
    assert (await alice.sync(since=since, timeout=50))["next_batch"] == since
    await alice.ok(
        "PUT",
        f"/user/{alice.user_id}/rooms/{room_id}/account_data/m.tag",
        json={"tags": {"m.favourite": {}}},
    )
    answer = await alice.sync(since=since)
    assert top(answer) == {}
    room = answer["rooms"]["join"][room_id]
    assert of_room(answer, room_id) == {"m.tag": {"tags": {"m.favourite": {}}}}
    assert room["timeline"]["events"] == []
    assert room["timeline"]["limited"] is False


async def test_incremental_syncs_see_each_account_data_change_once_under_concurrent_writers(
    new_user: Register,
) -> None:
    """Writers change their types (and send receipts) while the reader syncs incrementally:
    the values each type shows go strictly up (no change twice) and end at the last one."""
    alice = await new_user("alice")
    helper = await new_user("helper")
    room_id = await alice.create_room(invite=[helper.user_id])
    await helper.ok("POST", f"/join/{room_id}", json={})
    writers, each = 5, 8
    last: list[str] = []
    since = (await alice.sync())["next_batch"]

    async def write(k: int) -> None:
        for n in range(each):
            await alice.ok(
                "PUT", f"/user/{alice.user_id}/account_data/org.example.t{k}", json={"n": n}
            )
            if k == 0:  # receipts take positions of the same stream in between
                last.append(await helper.send(room_id, f"lu {n}"))
                await helper.ok("POST", f"/rooms/{room_id}/read_markers", json={"m.read": last[-1]})

    seen: dict[str, list[int]] = {}
    read: list[str] = []
    writing = asyncio.gather(*(write(k) for k in range(writers)))
    while True:
        answer = await alice.sync(since=since, timeout=2000 if not writing.done() else 0)
        since = answer["next_batch"]
        got = top(answer)
        for type, content in got.items():
            seen.setdefault(type, []).append(content["n"])
        room = answer["rooms"]["join"].get(room_id, {"ephemeral": {"events": []}})
        read += [
            r for e in room["ephemeral"]["events"] if e["type"] == "m.receipt" for r in e["content"]
        ]
        if writing.done() and not got and room_id not in answer["rooms"]["join"]:
            break
    await writing
    assert set(seen) == {f"org.example.t{k}" for k in range(writers)}
    for values in seen.values():
        assert values == sorted(set(values)), values
        assert values[-1] == each - 1
    assert read == sorted(set(read), key=last.index)
    assert read[-1] == last[-1]


async def test_account_data_filters(new_user: Register) -> None:
    alice: Mx = await new_user("alice")
    room_id = await alice.create_room()
    for type in ("org.example.keep", "org.example.drop", "im.other"):
        await alice.ok("PUT", f"/user/{alice.user_id}/account_data/{type}", json={})
        await alice.ok("PUT", f"/user/{alice.user_id}/rooms/{room_id}/account_data/{type}", json={})
    answer = await alice.sync(
        filter=(
            '{"account_data": {"types": ["org.example.*"], "not_types": ["org.example.drop"]},'
            ' "room": {"account_data": {"not_types": ["im.*"]}}}'
        )
    )
    assert set(top(answer)) == {"org.example.keep"}
    assert set(of_room(answer, room_id)) == {"org.example.keep", "org.example.drop"}
    limited = await alice.sync(filter='{"account_data": {"limit": 1}}')
    assert len(top(limited)) == 1
    nothing = await alice.sync(filter='{"room": {"account_data": {"rooms": []}}}')
    assert of_room(nothing, room_id) == {}
