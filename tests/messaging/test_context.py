"""GET /rooms/{roomId}/context/{eventId}: the limit split around the event, its tokens going on
with /messages, the filter and the state."""

from __future__ import annotations

from tests.messaging.conftest import Register
from tests.messaging.test_sync import bodies


async def test_context_splits_the_limit_and_its_tokens_paginate_on(new_user: Register) -> None:
    alice = await new_user("alice")
    room_id = await alice.create_room(name="Contexte")
    ids = [await alice.send(room_id, f"m{i}") for i in range(10)]
    around = await alice.ok("GET", f"/rooms/{room_id}/context/{ids[5]}", params={"limit": 4})
    assert around["event"]["event_id"] == ids[5]
    assert bodies(around["events_before"]) == ["m4", "m3"]  # newest first
    assert bodies(around["events_after"]) == ["m6", "m7"]
    older = await alice.ok(
        "GET",
        f"/rooms/{room_id}/messages",
        params={"from": around["start"], "dir": "b", "limit": 3},
    )
    assert bodies(older["chunk"]) == ["m2", "m1", "m0"]
    newer = await alice.ok(
        "GET",
        f"/rooms/{room_id}/messages",
        params={"from": around["end"], "dir": "f", "limit": 10},
    )
    assert bodies(newer["chunk"]) == ["m8", "m9"]
    state = {e["type"] for e in around["state"]}
    assert {"m.room.create", "m.room.member", "m.room.power_levels", "m.room.name"} <= state

    only_names = await alice.ok(
        "GET",
        f"/rooms/{room_id}/context/{ids[0]}",
        params={"limit": 6, "filter": '{"types": ["m.room.name"]}'},
    )
    assert [e["type"] for e in only_names["events_before"]] == ["m.room.name"]
    assert only_names["events_after"] == []
    alone = await alice.ok("GET", f"/rooms/{room_id}/context/{ids[9]}", params={"limit": 0})
    assert alone["events_before"] == alone["events_after"] == []
    unknown = await alice.call("GET", f"/rooms/{room_id}/context/$nothing")
    assert unknown.status_code == 404
