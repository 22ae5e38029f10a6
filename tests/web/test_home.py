"""The home page without a browser: the latest agreements, transfers, messages and invitations
of the signed-in agent, and only theirs."""

from __future__ import annotations

from urllib.parse import quote, unquote

import httpx
from sqlalchemy import select

from rhenus.accounts.models import User
from rhenus.accounts.service import Principal
from rhenus.core.node import Node
from rhenus.demo.web_sample import SAMPLES
from rhenus.web import chat, chat_news
from rhenus.web.chat_news import excerpt
from tests.web.support import PASSWORD, agent, csrf_of, publish, sign_in

__all__ = ["agent"]  # the fixture


async def test_home_shows_the_latest_agreements_and_transfers(
    client: httpx.AsyncClient, node: Node, admin_token: str, agent: str
) -> None:
    from rhenus.core.db import utcnow
    from rhenus.dataspace.contracts.agreements import seed_agreement
    from rhenus.dataspace.machine import Role
    from rhenus.dataspace.transfers.models import Transfer
    from rhenus.trust.did import did_for_url

    dataset_id = await publish(client, admin_token, SAMPLES[0][0], SAMPLES[0][3][0])
    ours = did_for_url(node.settings.public_url)
    partner = "did:web:paris.example.fr"
    async with node.db.transaction() as session:
        await seed_agreement(
            session,
            agreement_id="urn:uuid:agreement-1",
            role=Role.PROVIDER,
            dataset_id=dataset_id,
            provider=ours,
            consumer=partner,
            provider_address=node.settings.public_url,
        )
        now = utcnow()
        session.add(
            Transfer(
                id="urn:uuid:transfer-1",
                role="provider",
                counterparty=partner,
                agreement_id="urn:uuid:agreement-1",
                dataset_id=dataset_id,
                format="HttpData-PULL",
                state="STARTED",
                created_at=now,
                updated_at=now,
            )
        )
    await sign_in(client)
    home = await client.get("/", headers={"Accept-Language": "de"})
    assert home.status_code == 200
    assert home.text.count("Einwohner nach Bezirk") == 2  # the agreement's and the transfer's
    assert "paris.example.fr" in home.text
    assert "Wir stellen bereit" in home.text
    assert "Läuft" in home.text  # the transfer's state, in words


async def test_home_without_agreements_says_so(client: httpx.AsyncClient, agent: str) -> None:
    await sign_in(client)
    home = await client.get("/")
    assert "No agreements yet." in home.text
    assert "No transfers yet." in home.text


async def make_user(client: httpx.AsyncClient, admin_token: str, name: str) -> None:
    made = await client.post(
        "/api/v1/users",
        headers={"Authorization": f"Bearer {admin_token}"},
        json={"username": name, "password": PASSWORD},
    )
    assert made.status_code == 201, made.text


async def signed_in_as(client: httpx.AsyncClient, name: str) -> str:
    """Sign ``client`` in as ``name`` alone; the CSRF token of the new session."""
    client.cookies.clear()
    assert (await sign_in(client, name)).status_code == 303
    return csrf_of(await client.get("/"))


async def room_with_message(client: httpx.AsyncClient, csrf: str, name: str, body: str) -> str:
    made = await client.post(
        "/chat/rooms", data={"name": name, "access_rule": "restricted", "csrf_token": csrf}
    )
    assert made.status_code == 303, made.text
    room = unquote(made.headers["location"].removeprefix("/chat/rooms/"))
    sent = await client.post(
        f"/chat/rooms/{room}/messages", data={"body": body, "csrf_token": csrf}
    )
    assert sent.status_code == 303, sent.text
    return room


async def test_home_shows_the_latest_message_to_another_member_of_the_room(
    client: httpx.AsyncClient, admin_token: str, agent: str
) -> None:
    await make_user(client, admin_token, "bruno")
    csrf = await signed_in_as(client, "agent")
    room = await room_with_message(client, csrf, "Budget 2027", "first draft")
    invited = await client.post(
        f"/chat/rooms/{room}/invite", data={"invitee": "bruno", "csrf_token": csrf}
    )
    assert invited.status_code == 200, invited.text

    csrf = await signed_in_as(client, "bruno")
    home = await client.get("/")
    assert "Budget 2027" in home.text
    assert "agent invites you to this room." in home.text
    assert "first draft" not in home.text  # not readable before joining
    assert (
        await client.post(f"/chat/rooms/{room}/join", data={"csrf_token": csrf})
    ).status_code == 303

    await signed_in_as(client, "agent")
    csrf = csrf_of(await client.get("/"))
    long = "the figures for the second quarter are in " + "and they look fine " * 20
    await client.post(f"/chat/rooms/{room}/messages", data={"body": long, "csrf_token": csrf})
    await signed_in_as(client, "bruno")
    home = await client.get("/", headers={"Accept-Language": "fr"})
    assert "Derniers messages" in home.text
    assert f'href="/chat/rooms/{quote(room)}"' in home.text
    assert "vous invite" not in home.text  # the invitation is answered
    newest = home.text.index("the figures for the second quarter")
    assert newest < home.text.index("first draft")  # newest first
    assert long.strip() not in home.text  # only an excerpt of a long message
    assert f"<td>{excerpt(long)}</td>" in home.text
    assert excerpt(long).endswith(" fine…")  # cut at a word
    assert len(excerpt(long)) <= 121


async def test_home_shows_no_message_of_a_room_the_user_is_not_in(
    client: httpx.AsyncClient, admin_token: str, agent: str
) -> None:
    await make_user(client, admin_token, "carla")
    csrf = await signed_in_as(client, "agent")
    await room_with_message(client, csrf, "Cellule de crise", "the secret plan")
    assert "the secret plan" in (await client.get("/")).text  # the author sees their own
    await signed_in_as(client, "carla")
    home = await client.get("/")
    assert home.status_code == 200
    assert "the secret plan" not in home.text
    assert "Cellule de crise" not in home.text
    assert "No messages or invitations yet." in home.text


async def test_home_escapes_the_html_of_a_message(client: httpx.AsyncClient, agent: str) -> None:
    csrf = await signed_in_as(client, "agent")
    attack = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    await room_with_message(client, csrf, "<b>Bureau</b>", attack)
    home = await client.get("/")
    assert "<script>alert" not in home.text
    assert "<img src=x" not in home.text
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;" in (
        home.text
    )
    assert "&lt;b&gt;Bureau&lt;/b&gt;" in home.text


async def test_home_names_an_encrypted_message_without_its_content(
    client: httpx.AsyncClient, agent: str
) -> None:
    csrf = await signed_in_as(client, "agent")
    room = await room_with_message(client, csrf, "Chiffré", "in clear")
    login = await client.post(
        "/_matrix/client/v3/login",
        json={
            "type": "m.login.password",
            "identifier": {"type": "m.id.user", "user": "agent"},
            "password": PASSWORD,
        },
    )
    assert login.status_code == 200, login.text
    sent = await client.put(
        f"/_matrix/client/v3/rooms/{quote(room)}/send/m.room.encrypted/t1",
        headers={"Authorization": f"Bearer {login.json()['access_token']}"},
        json={"algorithm": "m.megolm.v1.aes-sha2", "ciphertext": "AwgAEnAC", "session_id": "s"},
    )
    assert sent.status_code == 200, sent.text
    home = await client.get("/", headers={"Accept-Language": "de"})
    assert "Verschlüsselte Nachricht" in home.text
    assert "AwgAEnAC" not in home.text
    assert home.text.index("Verschlüsselte Nachricht") < home.text.index("in clear")


async def test_home_news_of_a_user_in_many_rooms_is_the_newest_across_them(
    client: httpx.AsyncClient, node: Node, agent: str
) -> None:
    """Twelve rooms, read in one statement: the ten newest lines over all of them, newest
    first (rooms sent to last, and named so, that equal times sort the same way)."""
    csrf = await signed_in_as(client, "agent")
    sent: list[str] = []
    for number in range(12, 0, -1):
        room = await room_with_message(client, csrf, f"Room {number:02}", f"r{number:02} a")
        again = await client.post(
            f"/chat/rooms/{room}/messages", data={"body": f"r{number:02} b", "csrf_token": csrf}
        )
        assert again.status_code == 303, again.text
        sent += [f"r{number:02} a", f"r{number:02} b"]
    newest_first = sent[::-1]
    async with node.db.session() as session:
        account = await session.scalar(select(User).where(User.username == "agent"))
    assert account is not None
    requester = await chat.requester_for(
        node, Principal(account.id, account.username, account.role, False, "token")
    )
    news = await chat_news.latest(node, requester)
    assert [n.excerpt for n in news] == newest_first[:10]
    assert [n.room for n in news[:4]] == ["Room 01", "Room 01", "Room 02", "Room 02"]
    assert {n.kind for n in news} == {"text"}
    assert [n.excerpt for n in await chat_news.latest(node, requester, limit=3)] == (
        newest_first[:3]
    )
    home = (await client.get("/")).text
    shown = [home.index(f"<td>{body}</td>") for body in newest_first[:10]]
    assert shown == sorted(shown)
    assert "r06 b" not in home
