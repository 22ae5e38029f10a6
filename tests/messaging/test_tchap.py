"""Tchap's rules for public agents: room access rules (``restricted``, ``unrestricted``,
``direct``), external users invited by e-mail, and account expiry with renewal — through a real
SMTP server on loopback, each link followed from the mail."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from rhenus.config import Settings
from rhenus.core.db import utcnow
from rhenus.core.node import Node
from rhenus.messaging import threepids, validity
from rhenus.messaging.events import Notifier
from tests.cli_support import rhenus
from tests.messaging.conftest import (
    Mailbox,
    Mx,
    Register,
    mail_settings,
    register,
    register_by_email,
)
from tests.support.smtp import body, links, path_of

ACCESS = "im.vector.room.access_rules"
SERVER = "127.0.0.1:8080"


@pytest.fixture
def settings(tmp_path: Path, db_url: str, mailbox: Mailbox) -> Settings:
    return mail_settings(tmp_path, db_url, mailbox, matrix_account_validity_days=30)


def refused(response: httpx.Response, words: str, errcode: str = "M_FORBIDDEN") -> None:
    assert response.status_code == (403 if errcode == "M_FORBIDDEN" else 400), response.text
    assert response.json()["errcode"] == errcode
    assert words in response.json()["error"]


async def rule_of(member: Mx, room_id: str) -> str:
    return str((await member.ok("GET", f"/rooms/{room_id}/state/{ACCESS}"))["rule"])


async def unrestricted_room(agent: Mx, **body: Any) -> str:
    room_id = await agent.create_room(**body)
    await agent.ok("PUT", f"/rooms/{room_id}/state/{ACCESS}", json={"rule": "unrestricted"})
    return room_id


async def invite_by_email(
    agent: Mx, mailbox: Mailbox, room_id: str, address: str, username: str
) -> Mx:
    """Invite ``address``, then register as the invitee with the token of the mail's link."""
    invited = await agent.call(
        "POST", f"/rooms/{room_id}/invite", json={"medium": "email", "address": address}
    )
    assert invited.status_code == 200, invited.text
    message = await mailbox.last_to(threepids.canonical_email(address))
    (link,) = [found for found in links(message) if "token=" in found]
    followed = await agent.http.get(path_of(link))
    assert followed.json() == {"valid": True}
    token = re.search(r"token=([A-Za-z0-9_-]+)", link)
    assert token is not None
    assert token.group(1) in body(message)
    return await register(agent.http, username, token.group(1))


# ---- access rules --------------------------------------------------------------------------


async def test_rooms_are_restricted_by_default_direct_chats_direct_and_the_rule_only_opens(
    new_user: Register,
) -> None:
    alice, bob = await new_user("alice"), await new_user("bob")
    room_id = await alice.create_room(name="Cellule")
    assert await rule_of(alice, room_id) == "restricted"
    direct = await alice.create_room(invite=[bob.user_id], is_direct=True)
    assert await rule_of(alice, direct) == "direct"

    refused(
        await alice.call("POST", "/createRoom", json={"is_direct": True, "preset": "public_chat"}),
        "cannot be public",
        "M_INVALID_PARAM",
    )
    bad_state = {"initial_state": [{"type": ACCESS, "content": {"rule": "direct"}}]}
    refused(await alice.call("POST", "/createRoom", json=bad_state), "is_direct", "M_INVALID_PARAM")
    open_room = await alice.create_room(
        initial_state=[{"type": ACCESS, "content": {"rule": "unrestricted"}}]
    )
    assert await rule_of(alice, open_room) == "unrestricted"

    state = f"/rooms/{room_id}/state/{ACCESS}"
    await alice.ok("PUT", state, json={"rule": "unrestricted"})
    refused(await alice.call("PUT", state, json={"rule": "restricted"}), "only change from")
    refused(await alice.call("PUT", state, json={"rule": "direct"}), "only change from")
    refused(await alice.call("PUT", state, json={"rule": "open"}), "must be one of")
    refused(
        await alice.call("PUT", f"/rooms/{direct}/state/{ACCESS}", json={"rule": "unrestricted"}),
        "only change from",
    )
    refused(
        await alice.call(
            "PUT", f"/rooms/{direct}/state/m.room.join_rules", json={"join_rule": "public"}
        ),
        "cannot be public",
    )


async def test_a_third_member_can_neither_be_invited_to_nor_join_a_direct_room(
    new_user: Register, mailbox: Mailbox
) -> None:
    alice, bob, carol = [await new_user(n) for n in ("alice", "bob", "carol")]
    refused(
        await alice.call(
            "POST", "/createRoom", json={"is_direct": True, "invite": [bob.user_id, carol.user_id]}
        ),
        "two members at most",
    )
    room_id = await alice.create_room(invite=[bob.user_id], is_direct=True)
    await bob.ok("POST", f"/rooms/{room_id}/join", json={})
    refused(
        await alice.call("POST", f"/rooms/{room_id}/invite", json={"user_id": carol.user_id}),
        "two members at most",
    )
    refused(await carol.call("POST", f"/rooms/{room_id}/join", json={}), "invite-only")
    refused(
        await alice.call(
            "POST",
            f"/rooms/{room_id}/invite",
            json={"medium": "email", "address": "carole@interieur.gouv.fr"},
        ),
        "two members at most",
    )
    assert mailbox.messages == []
    # The two members may come and go: bob leaves, and is invited back.
    await bob.ok("POST", f"/rooms/{room_id}/leave", json={})
    await alice.ok("POST", f"/rooms/{room_id}/invite", json={"user_id": bob.user_id})
    refused(
        await alice.call("POST", f"/rooms/{room_id}/invite", json={"user_id": carol.user_id}),
        "two members at most",
    )


# ---- external users --------------------------------------------------------------------------


async def test_an_external_address_cannot_be_invited_to_a_restricted_room(
    new_user: Register, mailbox: Mailbox
) -> None:
    alice = await new_user("alice")
    room_id = await alice.create_room(name="Restreint")
    refused(
        await alice.call(
            "POST",
            f"/rooms/{room_id}/invite",
            json={"medium": "email", "address": "consultant@example.com"},
        ),
        "restricted (no external users)",
    )
    assert mailbox.messages == []


async def test_an_external_invited_by_email_registers_and_joins_an_unrestricted_room(
    new_user: Register, mailbox: Mailbox, client: httpx.AsyncClient, notifier: Notifier
) -> None:
    alice = await new_user("alice")
    room_id = await unrestricted_room(alice, name="Projet avec un prestataire")
    ext = await invite_by_email(alice, mailbox, room_id, "Consultant@Example.com", "consultant")
    message = await mailbox.last_to("consultant@example.com")
    assert "external user" in body(message)
    assert "alice" in body(message)

    profile = await alice.ok("GET", f"/profile/{ext.user_id}")
    assert profile["eu.rhenus.external"] is True
    bound = await ext.ok("GET", "/account/3pid")
    assert [t["address"] for t in bound["threepids"]] == ["consultant@example.com"]
    synced = await ext.sync()
    assert room_id in synced["rooms"]["invite"]
    await ext.ok("POST", f"/rooms/{room_id}/join", json={})
    await ext.send(room_id, "Bonjour, voici le livrable.")
    members = await alice.ok("GET", f"/rooms/{room_id}/joined_members")
    assert set(members["joined"]) == {alice.user_id, ext.user_id}

    # The invitation's token was single use; the external user has no access to the node's API.
    (link,) = [found for found in links(message) if "token=" in found]
    assert (await client.get(path_of(link))).json() == {"valid": False}
    node_login = await client.post(
        "/api/v1/auth/login", json={"username": "consultant", "password": "a-long-matrix-password"}
    )
    token = node_login.json()["access_token"]
    me = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 403
    assert "Matrix account only" in me.json()["detail"]


async def test_an_external_cannot_join_restricted_rooms_nor_public_ones_uninvited(
    new_user: Register, mailbox: Mailbox
) -> None:
    alice, bob = await new_user("alice"), await new_user("bob")
    shared = await unrestricted_room(alice)
    ext = await invite_by_email(alice, mailbox, shared, "expert@example.org", "expert")

    restricted = await alice.create_room(preset="public_chat", room_alias_name="agents")
    refused(
        await alice.call("POST", f"/rooms/{restricted}/invite", json={"user_id": ext.user_id}),
        "external user",
    )
    refused(await ext.call("POST", f"/join/%23agents:{SERVER}", json={}), "restricted")

    public = await unrestricted_room(alice, preset="public_chat", room_alias_name="ouvert")
    await bob.ok("POST", f"/join/%23ouvert:{SERVER}", json={})  # agents join public rooms
    refused(
        await ext.call("POST", f"/join/%23ouvert:{SERVER}", json={}), "rooms they were invited to"
    )
    refused(await ext.call("POST", f"/rooms/{public}/join", json={}), "rooms they were invited to")
    await alice.ok("POST", f"/rooms/{public}/invite", json={"user_id": ext.user_id})
    await ext.ok("POST", f"/rooms/{public}/join", json={})

    # External users do not invite by e-mail, and make no restricted room.
    refused(
        await ext.call(
            "POST",
            f"/rooms/{public}/invite",
            json={"medium": "email", "address": "friend@example.org"},
        ),
        "external users cannot invite by e-mail",
    )
    refused(await ext.call("POST", "/createRoom", json={}), "cannot create restricted rooms")
    assert await ext.create_room(is_direct=True, invite=[alice.user_id])


async def test_inviting_the_address_of_an_account_invites_that_account(
    new_user: Register, mailbox: Mailbox, client: httpx.AsyncClient
) -> None:
    alice = await new_user("alice")
    jean = await register_by_email(client, mailbox, "jean", "jean@interieur.gouv.fr")
    mails = len(mailbox.messages)
    room_id = await alice.create_room()
    await alice.ok(
        "POST",
        f"/rooms/{room_id}/invite",
        json={"medium": "email", "address": "JEAN@interieur.gouv.fr"},
    )
    assert len(mailbox.messages) == mails  # an ordinary invite, no mail
    assert room_id in (await jean.sync())["rooms"]["invite"]


async def test_an_agent_invited_by_email_registers_as_an_agent(
    new_user: Register, mailbox: Mailbox
) -> None:
    alice = await new_user("alice")
    room_id = await alice.create_room()  # restricted: only agents
    paul = await invite_by_email(alice, mailbox, room_id, "paul@prefecture.gouv.fr", "paul")
    assert "eu.rhenus.external" not in await alice.ok("GET", f"/profile/{paul.user_id}")
    await paul.ok("POST", f"/rooms/{room_id}/join", json={})


# ---- account expiry ----------------------------------------------------------------------------


async def test_an_expired_account_is_refused_until_renewed_by_the_mailed_link(
    client: httpx.AsyncClient, mailbox: Mailbox, admin_token: str
) -> None:
    jean = await register_by_email(client, mailbox, "jean", "jean@interieur.gouv.fr")
    admin = {"Authorization": f"Bearer {admin_token}"}
    renewed = await client.post("/api/v1/messaging/accounts/jean/renew", headers=admin)
    assert renewed.status_code == 200, renewed.text
    assert renewed.json()["user_id"] == jean.user_id
    past = (utcnow() - timedelta(minutes=1)).isoformat()
    expired = await client.post(
        "/api/v1/messaging/accounts/jean/renew", json={"expires_at": past}, headers=admin
    )
    assert expired.status_code == 200, expired.text

    refusal = await jean.call("GET", "/account/whoami")
    assert refusal.status_code == 403
    assert refusal.json() == {
        "errcode": "ORG_MATRIX_EXPIRED_ACCOUNT",
        "error": "User account has expired",
    }
    assert (await jean.call("GET", "/sync")).status_code == 403

    await jean.ok("POST", "/_matrix/client/unstable/account_validity/send_mail")
    again = await jean.call("POST", "/_matrix/client/unstable/account_validity/send_mail")
    assert again.status_code == 429
    message = await mailbox.last_to("jean@interieur.gouv.fr")
    assert "expired on" in body(message)
    (link,) = links(message)
    assert "/_matrix/client/unstable/account_validity/renew?token=" in link
    page = await client.get(path_of(link))
    assert page.status_code == 200
    assert "renewed until" in page.text
    assert (await jean.ok("GET", "/account/whoami"))["user_id"] == jean.user_id
    assert (await client.get(path_of(link))).status_code == 404  # single use


async def test_renewal_notices_go_out_ahead_of_expiry_once_and_admins_renew_from_the_shell(
    client: httpx.AsyncClient, mailbox: Mailbox, node: Node, settings: Settings
) -> None:
    await register_by_email(client, mailbox, "jean", "jean@interieur.gouv.fr")
    before = len(mailbox.messages)
    assert await validity.send_due_notices(node) == 0  # 30 days left, notices at 7
    code, output = await asyncio.to_thread(
        rhenus,
        settings,
        "messaging",
        "accounts",
        "renew",
        "jean",
        "--until",
        (utcnow() + timedelta(days=2)).strftime("%Y-%m-%d %H:%M:%S"),
    )
    assert code == 0, output
    assert "jean is valid until" in output
    assert await validity.send_due_notices(node) == 1
    assert await validity.send_due_notices(node) == 0  # told once
    notice = mailbox.messages[-1]
    assert len(mailbox.messages) == before + 1
    assert "expires on" in body(notice)
    assert (await client.get(path_of(links(notice)[0]))).status_code == 200
    code, output = await asyncio.to_thread(
        rhenus, settings, "messaging", "accounts", "renew", "nobody"
    )
    assert code == 1
