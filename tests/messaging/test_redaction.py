"""Redactions: the v11 algorithm, idempotent per txnId, who may redact, the content gone from
every read path (and from the database), single events, and what non-members get."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from rhenus.core.node import Node
from rhenus.messaging.models import Event
from rhenus.messaging.redaction import pruned_content
from tests.messaging.conftest import Mx, Register

SECRET = "le code du coffre est 4711"


def find(events: list[dict[str, Any]], event_id: str) -> dict[str, Any]:
    return next(e for e in events if e["event_id"] == event_id)


async def test_pruned_content_follows_room_version_11() -> None:
    levels = {
        "ban": 50,
        "events": {"m.room.name": 50},
        "events_default": 0,
        "invite": 0,
        "kick": 50,
        "redact": 50,
        "state_default": 50,
        "users": {"@a:x": 100},
        "users_default": 0,
        "notifications": {"room": 50},
        "historical": 100,
    }
    assert pruned_content("m.room.power_levels", levels) == {
        k: v for k, v in levels.items() if k not in ("notifications", "historical")
    }
    assert pruned_content(
        "m.room.member",
        {
            "membership": "join",
            "displayname": "Alice",
            "third_party_invite": {"display_name": "a", "signed": {"token": "t"}},
        },
    ) == {"membership": "join", "third_party_invite": {"signed": {"token": "t"}}}
    create = {"room_version": "11", "m.federate": False, "type": "m.space"}
    assert pruned_content("m.room.create", create) == create
    assert pruned_content(
        "m.room.join_rules", {"join_rule": "restricted", "allow": [], "x": 1}
    ) == {
        "join_rule": "restricted",
        "allow": [],
    }
    assert pruned_content(
        "m.room.history_visibility", {"history_visibility": "shared", "x": 1}
    ) == {"history_visibility": "shared"}
    assert pruned_content("m.room.redaction", {"redacts": "$e", "reason": "spam"}) == {
        "redacts": "$e"
    }
    assert pruned_content("m.room.message", {"msgtype": "m.text", "body": "hi"}) == {}
    assert pruned_content("m.room.name", {"name": "Archives"}) == {}


async def test_a_redacted_message_is_stripped_on_every_read_path_and_in_the_database(
    new_user: Register, node: Node
) -> None:
    alice, bob = await new_user("alice"), await new_user("bob")
    room_id = await alice.create_room(invite=[bob.user_id])
    await bob.ok("POST", f"/join/{room_id}", json={})
    before = await alice.send(room_id, "avant")
    secret = await alice.send(room_id, SECRET)
    after = await alice.send(room_id, "après")
    since = (await bob.sync())["next_batch"]

    path = f"/rooms/{room_id}/redact/{secret}/r1"
    redaction_id = (await alice.ok("PUT", path, json={"reason": "oups"}))["event_id"]
    assert (await alice.ok("PUT", path, json={"reason": "oups"}))["event_id"] == redaction_id

    # The redaction reaches an incremental sync, with `redacts` in content and at the top.
    news = (await bob.sync(since=since))["rooms"]["join"][room_id]["timeline"]["events"]
    assert [e["event_id"] for e in news] == [redaction_id]
    assert news[0]["type"] == "m.room.redaction"
    assert news[0]["content"] == {"redacts": secret, "reason": "oups"}
    assert news[0]["redacts"] == secret

    def check(event: dict[str, Any]) -> None:
        assert event["content"] == {}
        because = event["unsigned"]["redacted_because"]
        assert because["event_id"] == redaction_id
        assert because["sender"] == alice.user_id
        assert because["content"] == {"redacts": secret, "reason": "oups"}

    initial = await bob.sync(filter='{"room": {"timeline": {"limit": 50}}}')
    check(find(initial["rooms"]["join"][room_id]["timeline"]["events"], secret))
    page = await bob.ok("GET", f"/rooms/{room_id}/messages", params={"limit": 50})
    check(find(page["chunk"], secret))
    check(await bob.ok("GET", f"/rooms/{room_id}/event/{secret}"))
    around = await bob.ok("GET", f"/rooms/{room_id}/context/{secret}", params={"limit": 4})
    check(around["event"])
    assert around["events_before"][0]["event_id"] == before
    assert around["events_after"][0]["event_id"] == after
    context_of_next = await bob.ok("GET", f"/rooms/{room_id}/context/{after}")
    check(find(context_of_next["events_before"], secret))
    async with node.db.session() as session:
        contents = (await session.scalars(select(Event.content))).all()
    assert all(SECRET not in str(c) for c in contents)


async def test_only_the_sender_or_the_redact_power_level_may_redact(new_user: Register) -> None:
    alice, bob = await new_user("alice"), await new_user("bob")
    room_id = await alice.create_room(preset="public_chat")
    await bob.ok("POST", f"/join/{room_id}", json={})
    mine = await alice.send(room_id, "alice speaks")
    his = await bob.send(room_id, "bob speaks")
    refused = await bob.call("PUT", f"/rooms/{room_id}/redact/{mine}/x1", json={})
    assert refused.status_code == 403
    assert refused.json()["errcode"] == "M_FORBIDDEN"
    await bob.ok("PUT", f"/rooms/{room_id}/redact/{his}/x2", json={})  # his own
    other = await bob.send(room_id, "bob again")
    await alice.ok("PUT", f"/rooms/{room_id}/redact/{other}/x3", json={})  # power 100 ≥ 50
    assert (await bob.ok("GET", f"/rooms/{room_id}/event/{other}"))["content"] == {}
    assert (await bob.ok("GET", f"/rooms/{room_id}/event/{mine}"))["content"]["body"] == (
        "alice speaks"
    )
    missing = await alice.call("PUT", f"/rooms/{room_id}/redact/$nope/x4", json={})
    assert missing.status_code == 404
    assert missing.json()["errcode"] == "M_NOT_FOUND"


async def test_redacting_state_strips_it_from_the_room_state(new_user: Register) -> None:
    alice = await new_user("alice")
    room_id = await alice.create_room(name="Cellule de crise", topic="confidentiel")
    state = await alice.ok("GET", f"/rooms/{room_id}/state")
    name = next(e for e in state if e["type"] == "m.room.name")
    member = next(e for e in state if e["type"] == "m.room.member")
    await alice.ok("PUT", f"/rooms/{room_id}/redact/{name['event_id']}/s1", json={})
    await alice.ok("PUT", f"/rooms/{room_id}/redact/{member['event_id']}/s2", json={})
    state = await alice.ok("GET", f"/rooms/{room_id}/state")
    assert next(e for e in state if e["type"] == "m.room.name")["content"] == {}
    assert next(e for e in state if e["type"] == "m.room.member")["content"] == {
        "membership": "join"
    }
    assert await alice.ok("GET", f"/rooms/{room_id}/state/m.room.name") == {}
    # Still a member: the membership survived the redaction.
    await alice.send(room_id, "still here")


async def test_a_redacted_redaction_keeps_only_redacts(new_user: Register) -> None:
    alice = await new_user("alice")
    room_id = await alice.create_room()
    message = await alice.send(room_id, "first")
    redaction_id = (
        await alice.ok("PUT", f"/rooms/{room_id}/redact/{message}/a", json={"reason": "why"})
    )["event_id"]
    await alice.ok("PUT", f"/rooms/{room_id}/redact/{redaction_id}/b", json={})
    redacted = await alice.ok("GET", f"/rooms/{room_id}/event/{redaction_id}")
    assert redacted["content"] == {"redacts": message}
    struck = await alice.ok("GET", f"/rooms/{room_id}/event/{message}")
    assert struck["unsigned"]["redacted_because"]["content"] == {"redacts": message}


@pytest.mark.parametrize("what", ["event", "context", "redact"])
async def test_a_non_member_gets_nothing_of_an_event(new_user: Register, what: str) -> None:
    alice, eve = await new_user("alice"), await new_user("eve")
    room_id = await alice.create_room(preset="public_chat")
    secret = await alice.send(room_id, SECRET)

    async def ask(who: Mx, event_id: str) -> Any:
        if what == "redact":
            return await who.call("PUT", f"/rooms/{room_id}/redact/{event_id}/e1", json={})
        return await who.call("GET", f"/rooms/{room_id}/{what}/{event_id}")

    for event_id in (secret, "$doesnotexist"):  # the same answer: existence does not leak
        answer = await ask(eve, event_id)
        assert answer.status_code == 403, answer.text
        assert answer.json()["errcode"] == "M_FORBIDDEN"
        assert SECRET not in answer.text
    assert (await alice.ok("GET", f"/rooms/{room_id}/event/{secret}"))["content"]["body"] == SECRET


async def test_a_former_member_reads_events_up_to_their_departure_only(new_user: Register) -> None:
    alice, bob = await new_user("alice"), await new_user("bob")
    room_id = await alice.create_room(preset="public_chat")
    await bob.ok("POST", f"/join/{room_id}", json={})
    seen = await alice.send(room_id, "while bob is here")
    await bob.ok("POST", f"/rooms/{room_id}/leave", json={})
    unseen = await alice.send(room_id, "after bob left")
    assert (await bob.ok("GET", f"/rooms/{room_id}/event/{seen}"))["event_id"] == seen
    gone = await bob.call("GET", f"/rooms/{room_id}/event/{unseen}")
    assert gone.status_code == 404
    assert gone.json()["errcode"] == "M_NOT_FOUND"
    around = await bob.ok("GET", f"/rooms/{room_id}/context/{seen}", params={"limit": 10})
    after = [e["event_id"] for e in around["events_after"]]
    assert unseen not in after
    assert around["events_after"][-1]["content"]["membership"] == "leave"
    refused = await bob.call("PUT", f"/rooms/{room_id}/redact/{seen}/z", json={})
    assert refused.status_code == 403
