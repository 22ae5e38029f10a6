"""A live node (``rhenus run``) driven by matrix-js-sdk under Node.js (``tests/e2e/js/talk.mjs``,
the SDK pinned in ``tests/e2e/js/package-lock.json``): the js user logs in with a password,
starts the client and waits for its first sync, joins the room it was invited to, sends a
message and sees its remote echo, then receives the reply of a second user driven from Python.

In a plain room the second user speaks plain HTTP and reads both messages back from
``/messages``, with the ids, senders and bodies the js client reported. In an encrypted room
the js client runs the SDK's rust crypto and the second user is matrix-nio with its olm: each
decrypts the other's message, and the node's ``/messages`` holds ciphertext only. On both
engines.

``make test`` installs the SDK (``npm ci --prefix tests/e2e/js``); without it these tests fail.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from nio import (
    AsyncClient,
    AsyncClientConfig,
    LoginResponse,
    RoomCreateResponse,
    RoomMessageText,
    RoomSendResponse,
)

from rhenus.demo.nodes import LiveNode
from tests.e2e.test_live_messaging import ENCRYPTION, live, settle
from tests.messaging.conftest import PASSWORD, Mx, register

__all__ = ["live"]  # the fixture, shared with the nio test

JS = Path(__file__).parent / "js"
HELLO = "Bonjour depuis matrix-js-sdk"
REPLY = "Bien reçu, ici Python."
TIMEOUT = 60  # seconds, for the js client as a whole
# (event id, sender, body) of the messages a poll of the Python user's syncs found.
Poll = Callable[[], Awaitable[list[tuple[str, str, str]]]]


@pytest.fixture
def talk() -> list[str]:
    """``node talk.mjs``, once Node.js and the SDK are there (a failure, never a skip: checked
    before the node starts)."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("Node.js is not installed: the matrix-js-sdk test needs node 20 or later")
    if not (JS / "node_modules" / "matrix-js-sdk" / "package.json").is_file():
        pytest.fail(
            f"matrix-js-sdk is not installed in {JS}/node_modules: run `make test` "
            "(it runs `npm ci --prefix tests/e2e/js`)"
        )
    return [node, str(JS / "talk.mjs")]


async def converse(
    talk: list[str],
    node: LiveNode,
    room_id: str,
    js_user: str,
    other: str,
    *,
    poll: Poll,
    reply: Callable[[], Awaitable[object]],
    logs: Path,
    crypto: bool = False,
) -> dict[str, Any]:
    """Run the js client as ``js_user`` in ``room_id``; poll until its message reaches the
    other user, then ``reply``. Returns what the js client printed, checked against the poll."""
    log = logs / "talk.stderr"
    with log.open("w") as stderr:
        client = await asyncio.create_subprocess_exec(
            *talk,
            *("--base-url", node.url, "--user", js_user, "--room", room_id),
            *("--send", HELLO, "--from", other, "--expect", REPLY),
            *("--timeout", str(TIMEOUT * 1000), *(["--crypto"] if crypto else [])),
            env={**os.environ, "MATRIX_PASSWORD": PASSWORD},
            stdout=asyncio.subprocess.PIPE,
            stderr=stderr,
        )
        try:
            hello = None
            deadline = time.monotonic() + TIMEOUT
            while hello is None and client.returncode is None and time.monotonic() < deadline:
                hello = next((m for m in await poll() if m[1] == js_user), None)
            if hello is not None:
                await reply()
            out, _ = await asyncio.wait_for(client.communicate(), TIMEOUT + 10)
        finally:
            if client.returncode is None:
                client.kill()
                await client.wait()
    lines = out.decode().splitlines()
    result: dict[str, Any] = json.loads(lines[-1]) if lines else {}
    assert client.returncode == 0, (result, log.read_text()[-4000:])
    assert hello is not None
    assert result["user_id"] == result["whoami"] == js_user
    assert result["login_flows"] == ["m.login.password"]
    assert result["sync_state"] == "PREPARED"
    assert result["invited_by"] == other
    assert result["room_id"] == room_id
    assert result["membership"] == "join"
    assert result["joined_members"] == sorted([js_user, other])
    assert result["sent"]["event_id"] == hello[0]
    assert (result["sent"]["echo_sender"], result["sent"]["echo_body"]) == (js_user, HELLO)
    assert hello[2] == HELLO
    received = result["received"]
    assert (received["sender"], received["type"], received["body"]) == (
        other,
        "m.room.message",
        REPLY,
    )
    return result


async def history(mx: Mx, room_id: str) -> list[dict[str, Any]]:
    """The room's messages as the node serves them, newest first."""
    page = await mx.ok("GET", f"/rooms/{room_id}/messages", params={"dir": "b"})
    return [e for e in page["chunk"] if e["type"] in ("m.room.message", "m.room.encrypted")]


async def test_matrix_js_sdk_logs_in_syncs_sends_and_receives(
    talk: list[str], live: tuple[LiveNode, str], tmp_path: Path
) -> None:
    node, token = live
    async with httpx.AsyncClient(base_url=node.url, timeout=30) as http:
        js_user = await register(http, "alice", token)  # the js client logs in on its own
        bob = await register(http, "bob", token)
        room_id = await bob.create_room(name="Cellule de crise", invite=[js_user.user_id])
        since = (await bob.sync())["next_batch"]

        async def poll() -> list[tuple[str, str, str]]:
            nonlocal since
            sync = await bob.sync(since=since, timeout=2_000)
            since = sync["next_batch"]
            room = sync.get("rooms", {}).get("join", {}).get(room_id, {})
            events = room.get("timeline", {}).get("events", [])
            messages = [e for e in events if e["type"] == "m.room.message"]
            return [(e["event_id"], e["sender"], e["content"]["body"]) for e in messages]

        async def reply() -> None:
            await bob.send(room_id, REPLY)

        result = await converse(
            talk, node, room_id, js_user.user_id, bob.user_id, poll=poll, reply=reply, logs=tmp_path
        )
        assert result["device_id"] != js_user.device_id  # its own login, a new device
        assert result["room_name"] == "Cellule de crise"
        assert result["crypto"] is None
        assert result["room_encrypted"] is False
        assert result["sent"]["encrypted"] is result["received"]["encrypted"] is False

        # The node's side: the history bob reads back is what the js client said it did.
        assert [
            (e["event_id"], e["sender"], e["content"]) for e in await history(bob, room_id)
        ] == [
            (result["received"]["event_id"], bob.user_id, {"msgtype": "m.text", "body": REPLY}),
            (result["sent"]["event_id"], js_user.user_id, {"msgtype": "m.text", "body": HELLO}),
        ]
        members = await bob.ok("GET", f"/rooms/{room_id}/joined_members")
        assert set(members["joined"]) == {js_user.user_id, bob.user_id}


async def test_matrix_js_sdk_rust_crypto_and_nio_decrypt_each_other(
    talk: list[str], live: tuple[LiveNode, str], tmp_path: Path
) -> None:
    node, token = live
    async with httpx.AsyncClient(base_url=node.url, timeout=30) as http:
        js_user = await register(http, "alice", token)
        await register(http, "bob", token)
        (tmp_path / "bob").mkdir()
        config = AsyncClientConfig(encryption_enabled=True, store_sync_tokens=False)
        bob = AsyncClient(node.url, "bob", store_path=str(tmp_path / "bob"), config=config)
        try:
            assert isinstance(await bob.login(PASSWORD, device_name="nio"), LoginResponse)
            await settle(bob)
            created = await bob.room_create(
                name="Cellule chiffrée", invite=[js_user.user_id], initial_state=[ENCRYPTION]
            )
            assert isinstance(created, RoomCreateResponse), created
            room_id = created.room_id
            await settle(bob)

            async def poll() -> list[tuple[str, str, str]]:
                room = (await settle(bob, timeout=2_000)).rooms.join.get(room_id)
                events = room.timeline.events if room else []
                texts = [e for e in events if isinstance(e, RoomMessageText) and e.decrypted]
                return [(e.event_id, e.sender, e.body) for e in texts]

            async def reply() -> None:
                await settle(bob)  # the js device's keys: queried, a one-time key claimed
                content = {"msgtype": "m.text", "body": REPLY}
                sent = await bob.room_send(
                    room_id, "m.room.message", content, ignore_unverified_devices=True
                )
                assert isinstance(sent, RoomSendResponse), sent

            result = await converse(
                talk,
                node,
                room_id,
                js_user.user_id,
                bob.user_id,
                poll=poll,
                reply=reply,
                logs=tmp_path,
                crypto=True,
            )
            assert result["crypto"].startswith("Rust SDK")
            assert result["room_encrypted"] is True
            assert result["sent"]["encrypted"] is result["received"]["encrypted"] is True

            # The node's side: megolm ciphertext from both devices, never the plaintext.
            mx = Mx(http, bob.user_id, bob.access_token, bob.device_id)
            stored = await history(mx, room_id)
            assert [(e["event_id"], e["type"], e["sender"]) for e in stored] == [
                (result["received"]["event_id"], "m.room.encrypted", bob.user_id),
                (result["sent"]["event_id"], "m.room.encrypted", js_user.user_id),
            ]
            assert {e["content"]["algorithm"] for e in stored} == {"m.megolm.v1.aes-sha2"}
            assert {e["content"]["device_id"] for e in stored} == {
                bob.device_id,
                result["device_id"],
            }
            assert HELLO not in json.dumps(stored)
            assert REPLY not in json.dumps(stored)
        finally:
            await bob.close()
