"""Matrix accounts over HTTP: registration (UIA + registration tokens), login, devices and
tokens, logout, profiles, transaction ids, and the Matrix error shape on every /_matrix route."""

from __future__ import annotations

import asyncio

import httpx
from sqlalchemy import select
from typer.testing import CliRunner

from rhenus.cli import app
from rhenus.config import Settings
from rhenus.core.node import Node
from rhenus.messaging.models import Device, Event, RegistrationToken
from tests.messaging.conftest import PASSWORD, Mx, Register, create_registration_token, register

REGISTER = "/_matrix/client/v3/register"


def errcode(response: httpx.Response) -> str:
    body = response.json()
    assert set(body) >= {"errcode", "error"}, body
    return str(body["errcode"])


async def test_versions_login_flows_and_capabilities(
    client: httpx.AsyncClient, new_user: Register
) -> None:
    versions = (await client.get("/_matrix/client/versions")).json()
    assert "v1.6" in versions["versions"]
    flows = (await client.get("/_matrix/client/v3/login")).json()
    assert flows == {"flows": [{"type": "m.login.password"}]}
    alice = await new_user("alice")
    capabilities = (await alice.ok("GET", "/capabilities"))["capabilities"]
    assert capabilities["m.room_versions"]["default"] == "11"
    assert (await client.get("/.well-known/matrix/client")).json()["m.homeserver"]["base_url"]


async def test_registration_needs_a_valid_token_and_the_flow_in_order(
    client: httpx.AsyncClient, admin_token: str
) -> None:
    token = await create_registration_token(client, admin_token, uses_allowed=1)
    body = {"username": "alice", "password": PASSWORD}
    first = await client.post(REGISTER, json=body)
    assert first.status_code == 401
    challenge = first.json()
    assert challenge["flows"] == [{"stages": ["m.login.registration_token", "m.login.dummy"]}]
    assert challenge["completed"] == []
    session = challenge["session"]
    dummy_first = await client.post(
        REGISTER, json={**body, "auth": {"type": "m.login.dummy", "session": session}}
    )
    assert dummy_first.status_code == 401  # the token stage is still missing
    wrong = {"type": "m.login.registration_token", "token": "nope", "session": session}
    refused = await client.post(REGISTER, json={**body, "auth": wrong})
    assert refused.status_code == 401
    assert refused.json()["errcode"] == "M_FORBIDDEN"
    validity = await client.get(
        "/_matrix/client/v1/register/m.login.registration_token/validity", params={"token": token}
    )
    assert validity.json() == {"valid": True}
    good = {"type": "m.login.registration_token", "token": token, "session": session}
    done = await client.post(REGISTER, json={**body, "auth": good})
    assert done.status_code == 200, done.text
    assert done.json()["user_id"].startswith("@alice:")
    assert done.json()["access_token"].startswith("rhm_")
    # The token allowed one registration: it is spent.
    again = await client.post(REGISTER, json={"username": "bob", "password": PASSWORD})
    spent = {
        "type": "m.login.registration_token",
        "token": token,
        "session": again.json()["session"],
    }
    second = await client.post(
        REGISTER, json={"username": "bob", "password": PASSWORD, "auth": spent}
    )
    assert second.status_code == 401
    assert second.json()["errcode"] == "M_FORBIDDEN"


async def test_registration_refuses_taken_invalid_and_weak_usernames_and_passwords(
    client: httpx.AsyncClient, new_user: Register
) -> None:
    await new_user("alice")
    taken = await client.post(REGISTER, json={"username": "alice", "password": PASSWORD})
    assert (taken.status_code, errcode(taken)) == (400, "M_USER_IN_USE")
    assert (
        errcode(await client.get(f"{REGISTER}/available", params={"username": "alice"}))
        == "M_USER_IN_USE"
    )
    invalid = await client.post(REGISTER, json={"username": "Alice!", "password": PASSWORD})
    assert (invalid.status_code, errcode(invalid)) == (400, "M_INVALID_USERNAME")
    weak = await client.post(REGISTER, json={"username": "bob", "password": "short"})
    assert errcode(weak) == "M_WEAK_PASSWORD"
    guest = await client.post(REGISTER, params={"kind": "guest"}, json={})
    assert errcode(guest) == "M_GUEST_ACCESS_FORBIDDEN"


async def test_login_with_password_gives_a_device_token_stored_as_a_digest(
    client: httpx.AsyncClient, new_user: Register, node: Node
) -> None:
    alice = await new_user("alice")
    body = {
        "type": "m.login.password",
        "identifier": {"type": "m.id.user", "user": alice.user_id},
        "password": PASSWORD,
        "device_id": "LAPTOP",
    }
    login = await client.post("/_matrix/client/v3/login", json=body)
    assert login.status_code == 200, login.text
    token = login.json()["access_token"]
    assert login.json()["device_id"] == "LAPTOP"
    laptop = Mx(client, alice.user_id, token, "LAPTOP")
    assert (await laptop.ok("GET", "/account/whoami"))["device_id"] == "LAPTOP"
    relogin = await client.post("/_matrix/client/v3/login", json=body)
    assert (await laptop.call("GET", "/account/whoami")).status_code == 401  # replaced
    assert relogin.json()["device_id"] == "LAPTOP"
    async with node.db.session() as session:
        hashes = list(await session.scalars(select(Device.token_hash)))
    assert token not in hashes
    assert all(len(h) == 64 for h in hashes)


async def test_wrong_passwords_are_forbidden_then_rate_limited(
    client: httpx.AsyncClient, new_user: Register
) -> None:
    alice = await new_user("alice")
    body = {"type": "m.login.password", "user": "alice", "password": "wrong-password-here"}
    first = await client.post("/_matrix/client/v3/login", json=body)
    assert (first.status_code, errcode(first)) == (403, "M_FORBIDDEN")
    for _ in range(10):
        last = await client.post("/_matrix/client/v3/login", json=body)
    assert (last.status_code, errcode(last)) == (429, "M_LIMIT_EXCEEDED")
    assert last.json()["retry_after_ms"] > 0
    assert (await alice.call("GET", "/account/whoami")).status_code == 200


async def test_missing_unknown_and_logged_out_tokens(
    client: httpx.AsyncClient, new_user: Register
) -> None:
    missing = await client.get("/_matrix/client/v3/account/whoami")
    assert (missing.status_code, errcode(missing)) == (401, "M_MISSING_TOKEN")
    unknown = await client.get(
        "/_matrix/client/v3/account/whoami", headers={"Authorization": "Bearer rhm_x"}
    )
    assert (unknown.status_code, errcode(unknown)) == (401, "M_UNKNOWN_TOKEN")
    alice = await new_user("alice")
    via_query = await client.get(
        "/_matrix/client/v3/account/whoami", params={"access_token": alice.token}
    )
    assert via_query.status_code == 200
    await alice.ok("POST", "/logout")
    gone = await alice.call("GET", "/account/whoami")
    assert (gone.status_code, errcode(gone)) == (401, "M_UNKNOWN_TOKEN")


async def test_logout_all_ends_every_device(client: httpx.AsyncClient, new_user: Register) -> None:
    alice = await new_user("alice")
    body = {"type": "m.login.password", "user": "alice", "password": PASSWORD}
    other = Mx(
        client,
        alice.user_id,
        (await client.post("/_matrix/client/v3/login", json=body)).json()["access_token"],
        "",
    )
    await other.ok("POST", "/logout/all")
    for device in (alice, other):
        assert errcode(await device.call("GET", "/account/whoami")) == "M_UNKNOWN_TOKEN"


async def test_profile_displayname_changes_reach_joined_rooms(new_user: Register) -> None:
    alice, bob = await new_user("alice"), await new_user("bob")
    room_id = await alice.create_room(invite=[bob.user_id])
    await bob.ok("POST", f"/join/{room_id}", json={})
    await bob.ok("PUT", f"/profile/{bob.user_id}/displayname", json={"displayname": "Bob (Berlin)"})
    await bob.ok("PUT", f"/profile/{bob.user_id}/avatar_url", json={"avatar_url": "mxc://x/y"})
    assert await alice.ok("GET", f"/profile/{bob.user_id}") == {
        "displayname": "Bob (Berlin)",
        "avatar_url": "mxc://x/y",
    }
    joined = (await alice.ok("GET", f"/rooms/{room_id}/joined_members"))["joined"]
    assert joined[bob.user_id] == {"displayname": "Bob (Berlin)", "avatar_url": "mxc://x/y"}
    other = await alice.call(
        "PUT", f"/profile/{bob.user_id}/displayname", json={"displayname": "x"}
    )
    assert errcode(other) == "M_FORBIDDEN"
    assert errcode(await alice.call("GET", "/profile/@nobody:nowhere")) == "M_NOT_FOUND"


async def test_a_retried_transaction_gives_the_same_event_once(
    new_user: Register, node: Node, client: httpx.AsyncClient
) -> None:
    alice = await new_user("alice")
    room_id = await alice.create_room()
    path = f"/rooms/{room_id}/send/m.room.message/txn-1"
    answers = await asyncio.gather(
        *(alice.ok("PUT", path, json={"body": "once"}) for _ in range(5))
    )
    assert len({a["event_id"] for a in answers}) == 1
    body = {"type": "m.login.password", "user": "alice", "password": PASSWORD}
    login = (await client.post("/_matrix/client/v3/login", json=body)).json()
    phone = Mx(client, alice.user_id, login["access_token"], login["device_id"])
    other = await phone.ok("PUT", path, json={"body": "once"})
    assert other["event_id"] != answers[0]["event_id"]  # another device, another transaction
    async with node.db.session() as session:
        bodies = list(
            await session.scalars(select(Event.content).where(Event.type == "m.room.message"))
        )
    assert bodies == [{"body": "once"}, {"body": "once"}]
    timeline = (await alice.sync())["rooms"]["join"][room_id]["timeline"]["events"]
    mine = [e for e in timeline if e["type"] == "m.room.message"]
    assert [e["unsigned"].get("transaction_id") for e in mine] == ["txn-1", None]


async def test_errors_on_matrix_routes_have_the_matrix_shape(
    client: httpx.AsyncClient, new_user: Register, settings: Settings
) -> None:
    alice = await new_user("alice")
    unknown = await alice.call("GET", "/no/such/endpoint")
    assert (unknown.status_code, errcode(unknown)) == (404, "M_UNRECOGNIZED")
    wrong_method = await alice.call("DELETE", "/account/whoami")
    assert (wrong_method.status_code, errcode(wrong_method)) == (405, "M_UNRECOGNIZED")
    room_id = await alice.create_room()
    send = f"/rooms/{room_id}/send/m.room.message/e1"
    not_json = await alice.call(
        "PUT", send, content=b"{nope", headers={"Content-Type": "application/json"}
    )
    assert (not_json.status_code, errcode(not_json)) == (400, "M_NOT_JSON")
    not_object = await alice.call("PUT", send, json=[1, 2])
    assert (not_object.status_code, errcode(not_object)) == (400, "M_BAD_JSON")
    text = await alice.call("PUT", send, content=b"hi", headers={"Content-Type": "text/plain"})
    assert errcode(text) == "M_NOT_JSON"
    too_large = await alice.call(
        "PUT",
        send,
        content=b"{" + b" " * settings.max_body_bytes + b"}",
        headers={"Content-Type": "application/json"},
    )
    assert (too_large.status_code, errcode(too_large)) == (413, "M_TOO_LARGE")
    big_event = await alice.call("PUT", send, json={"body": "x" * 70_000})
    assert (big_event.status_code, errcode(big_event)) == (413, "M_TOO_LARGE")
    bad_param = await alice.call("GET", f"/rooms/{room_id}/messages", params={"limit": "many"})
    assert (bad_param.status_code, errcode(bad_param)) == (400, "M_INVALID_PARAM")
    no_room = await alice.call("POST", "/join/!nowhere:elsewhere", json={})
    assert (no_room.status_code, errcode(no_room)) == (404, "M_NOT_FOUND")
    # Outside /_matrix, the node's problem documents as before.
    problem = await client.get("/api/v1/messaging/registration-tokens")
    assert problem.headers["content-type"].startswith("application/problem+json")


async def test_only_admins_create_registration_tokens_over_the_api(
    client: httpx.AsyncClient, admin_token: str, node: Node
) -> None:
    token = await create_registration_token(
        client, admin_token, token="rennes-2026", uses_allowed=2
    )
    assert token == "rennes-2026"
    alice = await register(client, "alice", token)
    body = {"type": "m.login.password", "user": "alice", "password": PASSWORD}
    assert (await client.post("/_matrix/client/v3/login", json=body)).status_code == 200
    listed = await client.get(
        "/api/v1/messaging/registration-tokens", headers={"Authorization": f"Bearer {admin_token}"}
    )
    assert [(t["hint"], t["completed"], t["uses_allowed"]) for t in listed.json()] == [
        ("renn", 1, 2)
    ]
    async with node.db.session() as session:
        stored = list(await session.scalars(select(RegistrationToken.token_hash)))
    assert token not in stored
    agent = await client.post(
        "/api/v1/auth/login", json={"username": "alice", "password": PASSWORD}
    )
    headers = {"Authorization": f"Bearer {agent.json()['access_token']}"}
    refused = await client.post("/api/v1/messaging/registration-tokens", json={}, headers=headers)
    assert refused.status_code == 403
    assert alice.user_id.startswith("@alice:")


def test_cli_creates_and_lists_registration_tokens(settings: Settings, initialised: str) -> None:
    env = {
        "RHENUS_HOME": str(settings.home),
        "RHENUS_DATABASE_URL": settings.database_url.get_secret_value(),
    }
    created = CliRunner().invoke(
        app, ["messaging", "tokens", "create", "--uses", "5", "--days", "7"], env=env
    )
    assert created.exit_code == 0, created.output
    assert "Registration token:" in created.output
    listed = CliRunner().invoke(app, ["messaging", "tokens", "list"], env={**env, "COLUMNS": "200"})
    assert listed.exit_code == 0, listed.output
    assert "0/5" in listed.output
    assert "cli" in listed.output
