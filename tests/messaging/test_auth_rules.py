"""Room version 11 authorisation rules, one test per rule: first on the rules alone, then through
the node's room services and API (refused events are never stored)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest
from sqlalchemy import func, select

from rhenus.core.node import Node
from rhenus.messaging.authrules import AuthState, Candidate, check
from rhenus.messaging.errors import MatrixError
from rhenus.messaging.models import Event
from tests.messaging.conftest import Register

CREATOR, MOD, USER, OTHER = "@c:x", "@m:x", "@u:x", "@o:x"


def room(**members: str) -> AuthState:
    levels = {"users": {CREATOR: 100, MOD: 50}, "state_default": 50, "events": {"m.room.name": 50}}
    return AuthState(
        create=Candidate("m.room.create", CREATOR, {}, ""),
        power_levels=levels,
        join_rule="invite",
        members={CREATOR: "join", MOD: "join", **members},
    )


def refused(event: Candidate, state: AuthState) -> str:
    with pytest.raises(MatrixError) as caught:
        check(event, state)
    return caught.value.errcode


def member(sender: str, target: str, membership: str) -> Candidate:
    return Candidate("m.room.member", sender, {"membership": membership}, target)


def test_v11_rule_1_a_second_create_event_is_refused() -> None:
    assert refused(Candidate("m.room.create", CREATOR, {}, ""), room()) == "M_FORBIDDEN"


def test_v11_rule_4_2_1_the_creator_joins_first_without_an_invite() -> None:
    state = AuthState(create=Candidate("m.room.create", CREATOR, {}, ""), only_create=True)
    check(member(CREATOR, CREATOR, "join"), state)
    assert refused(member(USER, USER, "join"), state) == "M_FORBIDDEN"


def test_v11_rule_4_2_joining_an_invite_only_room_needs_an_invite() -> None:
    assert refused(member(USER, USER, "join"), room()) == "M_FORBIDDEN"
    check(member(USER, USER, "join"), room(**{USER: "invite"}))


def test_v11_rule_4_2_a_public_room_is_open_to_anyone_not_banned() -> None:
    state = room(**{OTHER: "ban"})
    state.join_rule = "public"
    check(member(USER, USER, "join"), state)
    assert refused(member(OTHER, OTHER, "join"), state) == "M_FORBIDDEN"


def test_v11_rule_4_2_nobody_joins_for_someone_else() -> None:
    assert refused(member(CREATOR, USER, "join"), room(**{USER: "invite"})) == "M_FORBIDDEN"


def test_v11_rule_4_3_inviting_needs_the_sender_joined_and_the_target_not_banned() -> None:
    assert refused(member(OTHER, USER, "invite"), room()) == "M_FORBIDDEN"
    assert refused(member(CREATOR, USER, "invite"), room(**{USER: "ban"})) == "M_FORBIDDEN"
    check(member(MOD, USER, "invite"), room())


def test_v11_rule_4_3_inviting_needs_the_invite_power_level() -> None:
    state = room(**{USER: "join"})
    assert state.power_levels is not None
    state.power_levels["invite"] = 50
    assert refused(member(USER, OTHER, "invite"), state) == "M_FORBIDDEN"


def test_v11_rule_4_4_kicking_needs_a_higher_level_than_the_target() -> None:
    state = room(**{USER: "join"})
    check(member(MOD, USER, "leave"), state)
    assert refused(member(USER, MOD, "leave"), state) == "M_FORBIDDEN"
    assert refused(member(MOD, CREATOR, "leave"), state) == "M_FORBIDDEN"


def test_v11_rule_4_4_anyone_may_leave_or_reject_an_invite_but_not_leave_twice() -> None:
    check(member(USER, USER, "leave"), room(**{USER: "invite"}))
    assert refused(member(USER, USER, "leave"), room()) == "M_FORBIDDEN"


def test_v11_rule_4_5_banning_needs_the_ban_level_and_a_higher_level() -> None:
    state = room(**{USER: "join"})
    check(member(MOD, USER, "ban"), state)
    assert refused(member(USER, OTHER, "ban"), state) == "M_FORBIDDEN"


def test_v11_rule_5_the_sender_must_be_joined() -> None:
    message = Candidate("m.room.message", USER, {"body": "hi"})
    assert refused(message, room(**{USER: "invite"})) == "M_FORBIDDEN"
    assert refused(message, room(**{USER: "leave"})) == "M_FORBIDDEN"
    check(message, room(**{USER: "join"}))


def test_v11_rule_8_state_needs_the_event_or_state_default_level() -> None:
    state = room(**{USER: "join"})
    assert refused(Candidate("m.room.name", USER, {"name": "n"}, ""), state) == "M_FORBIDDEN"
    assert refused(Candidate("org.example", USER, {}, ""), state) == "M_FORBIDDEN"
    check(Candidate("m.room.name", MOD, {"name": "n"}, ""), state)


def test_v11_rule_9_a_user_id_state_key_must_be_the_senders() -> None:
    state = room()
    assert refused(Candidate("org.example", MOD, {}, CREATOR), state) == "M_FORBIDDEN"
    check(Candidate("org.example", MOD, {}, MOD), state)


def levels(state: AuthState, **change: Any) -> Candidate:
    assert state.power_levels is not None
    return Candidate("m.room.power_levels", MOD, {**state.power_levels, **change}, "")


def test_v11_rule_10_nobody_raises_anyone_above_their_own_level() -> None:
    state = room(**{USER: "join"})
    state.power_levels["events"]["m.room.power_levels"] = 50  # type: ignore[index]
    check(levels(state, users={CREATOR: 100, MOD: 50, USER: 50}), state)
    assert refused(levels(state, users={CREATOR: 100, MOD: 51}), state) == "M_FORBIDDEN"
    assert refused(levels(state, ban=60), state) == "M_FORBIDDEN"


def test_v11_rule_10_nobody_lowers_a_peer_at_or_above_their_level() -> None:
    state = room(**{OTHER: "join"})
    state.power_levels["users"][OTHER] = 50  # type: ignore[index]
    state.power_levels["events"]["m.room.power_levels"] = 50  # type: ignore[index]
    assert refused(levels(state, users={CREATOR: 100, MOD: 50, OTHER: 0}), state) == "M_FORBIDDEN"
    check(levels(state, users={CREATOR: 100, MOD: 0, OTHER: 50}), state)  # oneself: allowed


def test_v10_power_levels_must_be_integers() -> None:
    state = room()
    assert (
        refused(Candidate("m.room.power_levels", CREATOR, {"ban": "50"}, ""), state) == "M_BAD_JSON"
    )


# ---- through the node ---------------------------------------------------------------------


async def events_in(node: Node, room_id: str) -> int:
    async with node.db.session() as session:
        count = await session.scalar(
            select(func.count()).select_from(Event).where(Event.room_id == room_id)
        )
    return int(count or 0)


async def test_invite_only_join_is_refused_and_stores_nothing(
    new_user: Register, node: Node
) -> None:
    alice, mallory = await new_user("alice"), await new_user("mallory")
    room_id = await alice.create_room(preset="private_chat")
    before = await events_in(node, room_id)
    response = await mallory.call("POST", f"/join/{room_id}", json={})
    assert response.status_code == 403
    assert response.json()["errcode"] == "M_FORBIDDEN"
    assert await events_in(node, room_id) == before


async def test_public_chat_preset_lets_anyone_join_by_alias(new_user: Register) -> None:
    alice, bob = await new_user("alice"), await new_user("bob")
    room_id = await alice.create_room(preset="public_chat", room_alias_name="accueil")
    alias = quote(alice.user_id.replace("@alice", "#accueil"), safe="")
    assert (await bob.ok("GET", f"/directory/room/{alias}"))["room_id"] == room_id
    assert (await bob.ok("POST", f"/join/{alias}", json={}))["room_id"] == room_id
    assert room_id in (await bob.ok("GET", "/joined_rooms"))["joined_rooms"]


async def test_banned_user_can_neither_join_nor_send_nor_be_invited(new_user: Register) -> None:
    alice, bob = await new_user("alice"), await new_user("bob")
    room_id = await alice.create_room(preset="public_chat")
    await bob.ok("POST", f"/rooms/{room_id}/join", json={})
    await alice.ok("POST", f"/rooms/{room_id}/ban", json={"user_id": bob.user_id})
    for method, path, body in (
        ("POST", f"/rooms/{room_id}/join", {}),
        ("PUT", f"/rooms/{room_id}/send/m.room.message/1", {"body": "x"}),
    ):
        response = await bob.call(method, path, json=body)
        assert response.status_code == 403, response.text
    invite = await alice.call("POST", f"/rooms/{room_id}/invite", json={"user_id": bob.user_id})
    assert invite.json()["errcode"] == "M_FORBIDDEN"
    await alice.ok("POST", f"/rooms/{room_id}/unban", json={"user_id": bob.user_id})
    await bob.ok("POST", f"/rooms/{room_id}/join", json={})


async def test_non_members_cannot_read_or_send_and_leavers_read_only_until_they_left(
    new_user: Register,
) -> None:
    alice, bob, eve = await new_user("alice"), await new_user("bob"), await new_user("eve")
    room_id = await alice.create_room(invite=[bob.user_id])
    invited_read = await bob.call("GET", f"/rooms/{room_id}/messages")
    assert invited_read.status_code == 403
    await bob.ok("POST", f"/join/{room_id}", json={})
    await alice.send(room_id, "before bob leaves")
    await bob.ok("POST", f"/rooms/{room_id}/leave", json={})
    await alice.send(room_id, "after bob left")
    for path in ("/messages", "/state", "/members", "/joined_members", "/state/m.room.name"):
        response = await eve.call("GET", f"/rooms/{room_id}{path}")
        assert response.status_code == 403, path
        assert response.json()["errcode"] == "M_FORBIDDEN"
    sent = await eve.call("PUT", f"/rooms/{room_id}/send/m.room.message/1", json={"body": "x"})
    assert sent.json()["errcode"] == "M_FORBIDDEN"
    page = await bob.ok("GET", f"/rooms/{room_id}/messages", params={"limit": 50})
    bodies = [e["content"].get("body") for e in page["chunk"]]
    assert "before bob leaves" in bodies
    assert "after bob left" not in bodies
    assert (await bob.call("GET", f"/rooms/{room_id}/joined_members")).status_code == 403
    again = await bob.call("PUT", f"/rooms/{room_id}/send/m.room.message/2", json={"body": "x"})
    assert again.json()["errcode"] == "M_FORBIDDEN"


async def test_power_levels_guard_state_and_trusted_private_chat_promotes_invitees(
    new_user: Register,
) -> None:
    alice, bob, carol = await new_user("alice"), await new_user("bob"), await new_user("carol")
    room_id = await alice.create_room(invite=[bob.user_id, carol.user_id])
    await bob.ok("POST", f"/join/{room_id}", json={})
    renamed = await bob.call("PUT", f"/rooms/{room_id}/state/m.room.name", json={"name": "B"})
    assert renamed.status_code == 403
    assert renamed.json()["errcode"] == "M_FORBIDDEN"
    await alice.ok("PUT", f"/rooms/{room_id}/state/m.room.name", json={"name": "A"})
    assert (await bob.ok("GET", f"/rooms/{room_id}/state/m.room.name"))["name"] == "A"
    kick = await bob.call("POST", f"/rooms/{room_id}/kick", json={"user_id": alice.user_id})
    assert kick.status_code == 403
    trusted = await alice.create_room(preset="trusted_private_chat", invite=[bob.user_id])
    await bob.ok("POST", f"/join/{trusted}", json={})
    levels = await bob.ok("GET", f"/rooms/{trusted}/state/m.room.power_levels/")
    assert levels["users"][bob.user_id] == 100
    await bob.ok("PUT", f"/rooms/{trusted}/state/m.room.name/", json={"name": "B"})
