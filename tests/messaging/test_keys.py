"""End-to-end encryption key exchange and to-device messages (spec: "End-to-End Encryption"):
uploads and counts, queries as signed, one-time keys claimed at most once, fallback keys,
to-device messages delivered once, device lists reported to room-mates only. On both engines."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import func, select

from rhenus.core.node import Node
from rhenus.messaging.events import Notifier
from rhenus.messaging.models import ToDeviceMessage
from tests.messaging.conftest import Mx, Register

SIGNED = "signed_curve25519"


def device_keys(mx: Mx) -> dict[str, Any]:
    return {
        "user_id": mx.user_id,
        "device_id": mx.device_id,
        "algorithms": ["m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"],
        "keys": {
            f"curve25519:{mx.device_id}": f"curve-{mx.device_id}",
            f"ed25519:{mx.device_id}": f"ed-{mx.device_id}",
        },
        "signatures": {mx.user_id: {f"ed25519:{mx.device_id}": f"sig-{mx.device_id}"}},
    }


def one_time_keys(mx: Mx, n: int, prefix: str = "k") -> dict[str, Any]:
    return {
        f"{SIGNED}:{prefix}{i}": {
            "key": f"otk-{prefix}{i}",
            "signatures": {mx.user_id: {f"ed25519:{mx.device_id}": f"s{i}"}},
        }
        for i in range(n)
    }


async def test_upload_answers_the_one_time_key_counts_and_sync_reports_them(
    new_user: Register,
) -> None:
    alice = await new_user("alice")
    answer = await alice.ok(
        "POST",
        "/keys/upload",
        json={
            "device_keys": device_keys(alice),
            "one_time_keys": one_time_keys(alice, 3),
            "fallback_keys": {f"{SIGNED}:fb": {"key": "fallback", "fallback": True}},
        },
    )
    assert answer == {"one_time_key_counts": {SIGNED: 3}}
    again = await alice.ok("POST", "/keys/upload", json={"one_time_keys": one_time_keys(alice, 3)})
    assert again == {"one_time_key_counts": {SIGNED: 3}}  # the same keys again change nothing
    synced = await alice.sync()
    assert synced["device_one_time_keys_count"] == {SIGNED: 3}
    assert synced["device_unused_fallback_key_types"] == [SIGNED]


async def test_upload_of_another_users_device_keys_is_refused(new_user: Register) -> None:
    alice, bob = await new_user("alice"), await new_user("bob")
    refused = await alice.call("POST", "/keys/upload", json={"device_keys": device_keys(bob)})
    assert refused.status_code == 400
    assert refused.json()["errcode"] == "M_INVALID_PARAM"


async def test_a_one_time_key_id_is_not_reused_for_another_key(new_user: Register) -> None:
    alice = await new_user("alice")
    await alice.ok("POST", "/keys/upload", json={"one_time_keys": one_time_keys(alice, 1)})
    other = {f"{SIGNED}:k0": {"key": "something else"}}
    refused = await alice.call("POST", "/keys/upload", json={"one_time_keys": other})
    assert refused.status_code == 400


async def test_query_answers_device_keys_with_their_signatures_as_uploaded(
    new_user: Register,
) -> None:
    alice, bob = await new_user("alice"), await new_user("bob")
    await alice.ok("PUT", f"/devices/{alice.device_id}", json={"display_name": "poste 12"})
    await alice.ok("POST", "/keys/upload", json={"device_keys": device_keys(alice)})
    answer = await bob.ok("POST", "/keys/query", json={"device_keys": {alice.user_id: []}})
    got = answer["device_keys"][alice.user_id][alice.device_id]
    assert got["signatures"] == device_keys(alice)["signatures"]
    assert got["keys"] == device_keys(alice)["keys"]
    assert got["unsigned"] == {"device_display_name": "poste 12"}
    none = await bob.ok("POST", "/keys/query", json={"device_keys": {alice.user_id: ["OTHER"]}})
    assert none["device_keys"][alice.user_id] == {}


async def test_a_one_time_key_is_claimed_only_once_under_concurrency_then_the_fallback(
    new_user: Register,
) -> None:
    alice = await new_user("alice")
    claimers = [await new_user(f"claimer{i}") for i in range(8)]
    uploaded = one_time_keys(alice, 5)
    await alice.ok(
        "POST",
        "/keys/upload",
        json={
            "device_keys": device_keys(alice),
            "one_time_keys": uploaded,
            "fallback_keys": {f"{SIGNED}:fb": {"key": "fallback", "fallback": True}},
        },
    )
    wanted = {"one_time_keys": {alice.user_id: {alice.device_id: SIGNED}}}
    answers = await asyncio.gather(
        *(c.ok("POST", "/keys/claim", json=wanted) for c in claimers + claimers)
    )
    claimed = [a["one_time_keys"][alice.user_id][alice.device_id] for a in answers]
    one_time = [k for c in claimed for k in c if k != f"{SIGNED}:fb"]
    assert sorted(one_time) == sorted(uploaded)  # each key once, none lost
    assert sum(f"{SIGNED}:fb" in c for c in claimed) == len(answers) - len(uploaded)
    synced = await alice.sync()
    assert synced["device_one_time_keys_count"] == {SIGNED: 0}
    assert synced["device_unused_fallback_key_types"] == []


async def test_to_device_messages_are_delivered_once_and_deleted_when_acknowledged(
    new_user: Register, node: Node, notifier: Notifier
) -> None:
    alice, bob = await new_user("alice"), await new_user("bob")
    since = (await alice.sync())["next_batch"]
    waiting = asyncio.ensure_future(alice.sync(since=since, timeout=120_000))
    while notifier.waiting(alice.user_id) == 0:
        await asyncio.sleep(0.01)
    message = {"messages": {alice.user_id: {alice.device_id: {"ciphertext": "secret"}}}}
    for _ in range(2):  # the same transaction twice: sent once
        await bob.ok("PUT", "/sendToDevice/m.room.encrypted/txn1", json=message)
    first = await waiting
    assert first["to_device"]["events"] == [
        {"sender": bob.user_id, "type": "m.room.encrypted", "content": {"ciphertext": "secret"}}
    ]
    retried = await alice.sync(since=since)  # not acknowledged yet: a retry gets it again
    assert retried["to_device"]["events"] == first["to_device"]["events"]
    after = await alice.sync(since=first["next_batch"])
    assert after["to_device"]["events"] == []
    async with node.db.session() as session:
        assert await session.scalar(select(func.count()).select_from(ToDeviceMessage)) == 0


async def test_to_device_star_reaches_every_device_of_the_user(
    new_user: Register, client: Any
) -> None:
    alice, bob = await new_user("alice"), await new_user("bob")
    login = {
        "type": "m.login.password",
        "identifier": {"type": "m.id.user", "user": "alice"},
        "password": "a-long-matrix-password",
    }
    second = (await client.post("/_matrix/client/v3/login", json=login)).json()
    alice2 = Mx(client, alice.user_id, second["access_token"], second["device_id"])
    message = {"messages": {alice.user_id: {"*": {"body": "à tous"}}}}
    await bob.ok("PUT", "/sendToDevice/m.example/t1", json=message)
    for device in (alice, alice2):
        assert [e["content"] for e in (await device.sync())["to_device"]["events"]] == [
            {"body": "à tous"}
        ]


async def test_device_list_changes_are_reported_to_room_mates_only(
    new_user: Register, notifier: Notifier
) -> None:
    alice, bob, eve = await new_user("alice"), await new_user("bob"), await new_user("eve")
    room_id = await alice.create_room(invite=[bob.user_id])
    await bob.ok("POST", f"/join/{room_id}", json={})
    bob_since = (await bob.sync())["next_batch"]
    eve_since = (await eve.sync())["next_batch"]
    waiting = asyncio.ensure_future(bob.sync(since=bob_since, timeout=120_000))
    while notifier.waiting(bob.user_id) == 0:
        await asyncio.sleep(0.01)
    await alice.ok("POST", "/keys/upload", json={"device_keys": device_keys(alice)})
    woken = await waiting  # the upload woke bob's sync
    assert woken["device_lists"]["changed"] == [alice.user_id]
    changes = await bob.ok(
        "GET", "/keys/changes", params={"from": bob_since, "to": woken["next_batch"]}
    )
    assert changes == {"changed": [alice.user_id], "left": []}
    outsider = await eve.sync(since=eve_since)
    assert outsider["device_lists"] == {"changed": [], "left": []}

    await alice.ok("POST", f"/rooms/{room_id}/leave", json={})
    gone = await bob.sync(since=woken["next_batch"])
    assert gone["device_lists"]["left"] == [alice.user_id]


async def test_a_new_member_is_reported_changed_to_the_room(new_user: Register) -> None:
    alice, bob = await new_user("alice"), await new_user("bob")
    room_id = await alice.create_room(invite=[bob.user_id])
    since = (await alice.sync())["next_batch"]
    await bob.ok("POST", f"/join/{room_id}", json={})
    assert (await alice.sync(since=since))["device_lists"]["changed"] == [bob.user_id]


async def test_devices_are_listed_renamed_and_deleted_with_the_password(
    new_user: Register, client: Any
) -> None:
    alice = await new_user("alice")
    login = {
        "type": "m.login.password",
        "identifier": {"type": "m.id.user", "user": "alice"},
        "password": "a-long-matrix-password",
        "device_id": "PHONE",
    }
    assert (await client.post("/_matrix/client/v3/login", json=login)).status_code == 200
    await alice.ok("PUT", "/devices/PHONE", json={"display_name": "téléphone"})
    listed = await alice.ok("GET", "/devices")
    assert {d["device_id"] for d in listed["devices"]} == {alice.device_id, "PHONE"}
    assert (await alice.ok("GET", "/devices/PHONE"))["display_name"] == "téléphone"
    challenge = await alice.call("DELETE", "/devices/PHONE", json={})
    assert challenge.status_code == 401
    assert challenge.json()["flows"] == [{"stages": ["m.login.password"]}]
    session = challenge.json()["session"]
    auth = {"type": "m.login.password", "session": session, "password": "wrong-password-here"}
    wrong = await alice.call("DELETE", "/devices/PHONE", json={"auth": auth})
    assert wrong.status_code == 401
    assert wrong.json()["errcode"] == "M_FORBIDDEN"
    auth["password"] = "a-long-matrix-password"
    await alice.ok("DELETE", "/devices/PHONE", json={"auth": auth})
    missing = await alice.call("GET", "/devices/PHONE")
    assert missing.status_code == 404
    assert missing.json()["errcode"] == "M_NOT_FOUND"
