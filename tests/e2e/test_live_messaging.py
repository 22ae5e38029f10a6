"""A live node (``rhenus run``, plain http on loopback) driven by the real Matrix client
matrix-nio: registration with a token made by the CLI, and by e-mail (the node mails the link
through an SMTP server on loopback), login, a private room, invitations,
messages received through long-polling syncs, history paged back, and an outsider who sees
nothing of the room; then the same with end-to-end encryption (matrix-nio's olm/megolm on
vodozemac): keys exchanged through nio's own upload/query/claim flow, messages and a file that
only the other member decrypts. On both engines."""

from __future__ import annotations

import asyncio
import io
import os
import re
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import TypeVar

import httpx
import pytest
from nio import (
    AsyncClient,
    AsyncClientConfig,
    DownloadResponse,
    InviteMemberEvent,
    JoinedMembersResponse,
    JoinResponse,
    LoginResponse,
    MessageDirection,
    RegisterResponse,
    RoomCreateResponse,
    RoomEncryptedFile,
    RoomMessagesError,
    RoomMessagesResponse,
    RoomMessageText,
    RoomSendResponse,
    SyncResponse,
    UploadResponse,
)
from nio.crypto.attachments import decrypt_attachment
from nio.responses import RegisterInteractiveResponse
from typer.testing import CliRunner

from rhenus.cli import app
from rhenus.demo.nodes import Fleet, LiveNode
from tests.support.smtp import Mailbox, links

PASSWORD = "correct-horse-battery-staple"


@pytest.fixture
def live(db_url: str, mailbox: Mailbox) -> Iterator[tuple[LiveNode, str]]:
    """A running node on the parametrized engine, mailing through ``mailbox`` and letting
    interieur.gouv.fr register by e-mail, and a registration token for three people."""
    with ExitStack() as stack:
        root = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        fleet = stack.enter_context(Fleet())
        node = fleet.start(
            "fr-mininterieur",
            "Ministère",
            root / "paris",
            extra_env={
                "RHENUS_DATABASE_URL": db_url,
                "RHENUS_SMTP_HOST": "127.0.0.1",
                "RHENUS_SMTP_PORT": str(mailbox.port),
                "RHENUS_SMTP_SECURITY": "none",
                "RHENUS_SMTP_FROM": "matrix@interieur.gouv.fr",
                "RHENUS_MATRIX_ALLOWED_EMAIL_DOMAINS": '["interieur.gouv.fr"]',
            },
        )
        result = CliRunner().invoke(
            app, ["messaging", "tokens", "create", "--uses", "3"], env=node.env
        )
        assert result.exit_code == 0, result.output
        match = re.search(r"Registration token: (\S+)", result.output)
        assert match is not None
        yield node, match.group(1)


async def register_by_email(
    node: LiveNode, mailbox: Mailbox, client: AsyncClient, name: str, address: str
) -> RegisterResponse:
    """The e-mail flow: requestToken (nio has no call for it), the mailed link, then nio's
    User-Interactive Auth with the raw ``m.login.email.identity`` stage and the dummy one."""
    creds = {"client_secret": f"{name}-secret-1"}
    async with httpx.AsyncClient(base_url=node.url) as http:
        asked = await http.post(
            "/_matrix/client/v3/register/email/requestToken",
            json={**creds, "email": address, "send_attempt": 1},
        )
        assert asked.status_code == 200, asked.text
        creds["sid"] = asked.json()["sid"]
        (link,) = links(await mailbox.last_to(address))
        assert (await http.get(link)).status_code == 200
    # An auth dict without a stage, as nio's register_with_token starts (an empty one would be
    # sent as m.login.dummy).
    opening = {"initial_device_display_name": "matrix-nio"}
    started = await client.register_interactive(name, PASSWORD, auth_dict=opening)
    assert isinstance(started, RegisterInteractiveResponse), started
    assert started.stages == ["m.login.email.identity", "m.login.dummy"]  # nio keeps the last flow
    stage = {"type": "m.login.email.identity", "threepid_creds": creds, "session": started.session}
    proven = await client.register_interactive(name, PASSWORD, auth_dict=stage)
    assert isinstance(proven, RegisterInteractiveResponse), proven
    assert proven.completed == ["m.login.email.identity"]
    registered = await client.register(name, PASSWORD, session_token=started.session)
    assert isinstance(registered, RegisterResponse), registered
    return registered


@pytest.fixture
async def clients(
    live: tuple[LiveNode, str], mailbox: Mailbox
) -> AsyncIterator[dict[str, AsyncClient]]:
    """alice (by e-mail), bob and eve (with the token), then logged in on a second device."""
    node, token = live
    opened: dict[str, AsyncClient] = {}
    try:
        for name in ("alice", "bob", "eve"):
            registering = AsyncClient(node.url, name)
            if name == "alice":
                registered = await register_by_email(
                    node, mailbox, registering, name, "alice@interieur.gouv.fr"
                )
            else:
                registered = await registering.register_with_token(name, PASSWORD, token)
            assert isinstance(registered, RegisterResponse), registered
            await registering.close()
            client = AsyncClient(node.url, name)
            login = await client.login(PASSWORD, device_name=f"{name}'s laptop")
            assert isinstance(login, LoginResponse), login
            assert client.user_id == registered.user_id
            opened[name] = client
        yield opened
    finally:
        for client in opened.values():
            await client.close()


def texts(sync: SyncResponse, room_id: str, sender: str) -> list[str]:
    room = sync.rooms.join.get(room_id)
    events = room.timeline.events if room else []
    return [e.body for e in events if isinstance(e, RoomMessageText) and e.sender == sender]


async def receive(
    client: AsyncClient, room_id: str, sender: AsyncClient, send: asyncio.Future[object]
) -> list[str]:
    """Long-poll until ``sender``'s next messages arrive (the send runs while the sync waits)."""
    while True:
        sync = await client.sync(timeout=30_000)
        assert isinstance(sync, SyncResponse), sync
        await send
        if received := texts(sync, room_id, sender.user_id):
            return received


async def test_two_agents_talk_in_a_private_room_and_an_outsider_sees_nothing(
    clients: dict[str, AsyncClient],
) -> None:
    alice, bob, eve = clients["alice"], clients["bob"], clients["eve"]
    for client in clients.values():
        assert isinstance(await client.sync(timeout=0), SyncResponse)

    created = await alice.room_create(name="Préfecture — cellule de crise", invite=[bob.user_id])
    assert isinstance(created, RoomCreateResponse), created
    room_id = created.room_id
    invited = await bob.sync(timeout=30_000)
    assert isinstance(invited, SyncResponse)
    assert room_id in invited.rooms.invite
    invite_events = invited.rooms.invite[room_id].invite_state
    assert any(
        isinstance(e, InviteMemberEvent) and e.sender == alice.user_id for e in invite_events
    )
    assert isinstance(await bob.join(room_id), JoinResponse)

    async def say(client: AsyncClient, body: str) -> object:
        sent = await client.room_send(
            room_id, "m.room.message", {"msgtype": "m.text", "body": body}
        )
        assert isinstance(sent, RoomSendResponse), sent
        return sent

    await alice.sync(timeout=0)
    await bob.sync(timeout=0)
    hello = asyncio.ensure_future(say(alice, "Bonjour Berlin, point de situation ?"))
    assert await receive(bob, room_id, alice, hello) == ["Bonjour Berlin, point de situation ?"]
    reply = asyncio.ensure_future(say(bob, "Alles ruhig hier."))
    assert await receive(alice, room_id, bob, reply) == ["Alles ruhig hier."]

    members = await alice.joined_members(room_id)
    assert isinstance(members, JoinedMembersResponse)
    assert {m.user_id for m in members.members} == {alice.user_id, bob.user_id}

    for i in range(25):
        await say(alice, f"rapport {i}")
    history: list[str] = []
    start = (await bob.sync(timeout=0)).next_batch
    while start:
        page = await bob.room_messages(room_id, start, direction=MessageDirection.back, limit=10)
        assert isinstance(page, RoomMessagesResponse), page
        history += [e.body for e in page.chunk if isinstance(e, RoomMessageText)]
        start = page.end
    expected = [f"rapport {i}" for i in range(25)]
    assert history == [
        *reversed(expected),
        "Alles ruhig hier.",
        "Bonjour Berlin, point de situation ?",
    ]

    outsider = await eve.sync(timeout=0, full_state=True)
    assert isinstance(outsider, SyncResponse)
    assert room_id not in outsider.rooms.join
    assert room_id not in outsider.rooms.invite
    assert room_id not in outsider.rooms.leave
    assert room_id not in eve.rooms
    refused = await eve.room_messages(room_id, outsider.next_batch)
    assert isinstance(refused, RoomMessagesError)
    assert refused.status_code == "M_FORBIDDEN"


# ---- end-to-end encryption ----------------------------------------------------------------

Received = TypeVar("Received")
ENCRYPTION = {
    "type": "m.room.encryption",
    "state_key": "",
    "content": {"algorithm": "m.megolm.v1.aes-sha2"},
}


@pytest.fixture
async def e2ee_clients(
    live: tuple[LiveNode, str], tmp_path: Path
) -> AsyncIterator[dict[str, AsyncClient]]:
    """alice, bob and eve with encryption on: each device keeps its olm store in a tmp dir."""
    node, token = live
    config = AsyncClientConfig(encryption_enabled=True, store_sync_tokens=False)
    opened: dict[str, AsyncClient] = {}
    try:
        for name in ("alice", "bob", "eve"):
            registering = AsyncClient(node.url, name)
            registered = await registering.register_with_token(name, PASSWORD, token)
            assert isinstance(registered, RegisterResponse), registered
            await registering.close()
            store = tmp_path / name
            store.mkdir()
            client = AsyncClient(node.url, name, store_path=str(store), config=config)
            login = await client.login(PASSWORD, device_name=f"{name}'s laptop")
            assert isinstance(login, LoginResponse), login
            assert client.olm is not None  # the store is loaded: this device can encrypt
            opened[name] = client
        yield opened
    finally:
        for client in opened.values():
            await client.close()


async def settle(client: AsyncClient, timeout: int = 0) -> SyncResponse:
    """One sync, then the key traffic nio's ``sync_forever`` would do after it."""
    sync = await client.sync(timeout=timeout)
    assert isinstance(sync, SyncResponse), sync
    if client.should_upload_keys:
        await client.keys_upload()
    if client.should_query_keys:
        await client.keys_query()
    if client.should_claim_keys:
        await client.keys_claim(client.get_users_for_key_claiming())
    return sync


async def decrypted(
    client: AsyncClient, room_id: str, sender: AsyncClient, kind: type[Received]
) -> list[Received]:
    """Sync until ``sender``'s next decrypted events of ``kind`` arrive in ``room_id``."""
    while True:
        sync = await settle(client, timeout=30_000)
        room = sync.rooms.join.get(room_id)
        found = [
            e
            for e in (room.timeline.events if room else [])
            if isinstance(e, kind) and getattr(e, "sender", None) == sender.user_id
        ]
        if found:
            return found


async def test_an_encrypted_room_messages_and_file_are_decrypted_by_the_other_member_only(
    e2ee_clients: dict[str, AsyncClient],
) -> None:
    alice, bob, eve = e2ee_clients["alice"], e2ee_clients["bob"], e2ee_clients["eve"]
    for client in e2ee_clients.values():
        await settle(client)
        assert not client.should_upload_keys  # device keys and one-time keys are up

    created = await alice.room_create(
        name="Cellule chiffrée", invite=[bob.user_id], initial_state=[ENCRYPTION]
    )
    assert isinstance(created, RoomCreateResponse), created
    room_id = created.room_id
    while room_id not in (await settle(bob)).rooms.invite:
        await asyncio.sleep(0.05)
    assert isinstance(await bob.join(room_id), JoinResponse)
    await settle(bob)
    await settle(alice)
    assert alice.rooms[room_id].encrypted

    async def say(client: AsyncClient, content: dict[str, object]) -> object:
        sent = await client.room_send(
            room_id, "m.room.message", content, ignore_unverified_devices=True
        )
        assert isinstance(sent, RoomSendResponse), sent
        return sent

    secret = "Le plan de continuité est activé."
    sent = asyncio.ensure_future(say(alice, {"msgtype": "m.text", "body": secret}))
    got = await decrypted(bob, room_id, alice, RoomMessageText)
    await sent
    assert [(e.body, e.decrypted) for e in got] == [(secret, True)]

    reply = "Verstanden, wir übernehmen."
    sent = asyncio.ensure_future(say(bob, {"msgtype": "m.text", "body": reply}))
    got = await decrypted(alice, room_id, bob, RoomMessageText)
    await sent
    assert [(e.body, e.decrypted) for e in got] == [(reply, True)]

    data = os.urandom(300_000)
    uploaded, keys = await alice.upload(
        io.BytesIO(data),
        content_type="application/octet-stream",
        filename="annexe.bin",
        encrypt=True,
        filesize=len(data),
    )
    assert isinstance(uploaded, UploadResponse), uploaded
    assert keys is not None
    file_info = {"url": uploaded.content_uri, **keys, "mimetype": "application/octet-stream"}
    content = {"msgtype": "m.file", "body": "annexe.bin", "file": file_info}
    sent = asyncio.ensure_future(say(alice, content))
    files = await decrypted(bob, room_id, alice, RoomEncryptedFile)
    await sent
    (event,) = files
    downloaded = await bob.download(mxc=event.url)
    assert isinstance(downloaded, DownloadResponse), downloaded
    assert downloaded.body != data  # the node only ever held the ciphertext
    plain = decrypt_attachment(downloaded.body, event.key["k"], event.hashes["sha256"], event.iv)
    assert plain == data

    outsider = await eve.sync(timeout=0, full_state=True)
    assert isinstance(outsider, SyncResponse)
    assert room_id not in outsider.rooms.join
    assert room_id not in outsider.rooms.invite
    assert room_id not in eve.rooms
    refused = await eve.room_messages(room_id, outsider.next_batch)
    assert isinstance(refused, RoomMessagesError)
    assert refused.status_code == "M_FORBIDDEN"
