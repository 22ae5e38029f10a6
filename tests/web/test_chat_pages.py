"""The chat and assistant pages without a browser, against the node's app in-process: who may
read a room, CSRF on every form, messages and file names escaped, invitations and the access
rule, the collections and the sealed question of the answer stream."""

from __future__ import annotations

import re
from urllib.parse import unquote

import httpx
import pytest
from markupsafe import Markup

from rhenus.web.assistant import Ask, Source, seal, unseal, with_citations
from tests.web.support import PASSWORD, csrf_of, sign_in

ROOM_LINK = re.compile(r'href="/chat/rooms/([^"/]+)"')


@pytest.fixture
async def agents(client: httpx.AsyncClient, admin_token: str) -> list[str]:
    names = ["agent", "bruno", "carla"]
    for name in names:
        made = await client.post(
            "/api/v1/users",
            headers={"Authorization": f"Bearer {admin_token}"},
            json={"username": name, "password": PASSWORD},
        )
        assert made.status_code == 201, made.text
    return names


async def as_user(client: httpx.AsyncClient, name: str) -> str:
    """Sign ``client`` in as ``name``; the CSRF token of the new session."""
    client.cookies.clear()
    signed = await sign_in(client, name)
    assert signed.status_code == 303, signed.text
    return csrf_of(await client.get("/chat"))


async def create_room(
    client: httpx.AsyncClient, csrf: str, name: str, rule: str = "restricted"
) -> str:
    made = await client.post(
        "/chat/rooms", data={"name": name, "access_rule": rule, "csrf_token": csrf}
    )
    assert made.status_code == 303, made.text
    return unquote(made.headers["location"].removeprefix("/chat/rooms/"))


async def test_chat_needs_a_session(client: httpx.AsyncClient) -> None:
    response = await client.get("/chat")
    assert response.status_code == 303
    assert response.headers["location"] == "/sign-in?next=/chat"


async def test_a_room_is_created_and_a_message_is_shown_escaped(
    client: httpx.AsyncClient, agents: list[str]
) -> None:
    csrf = await as_user(client, "agent")
    room = await create_room(client, csrf, "<b>Bureau</b>")
    attack = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    sent = await client.post(
        f"/chat/rooms/{room}/messages", data={"body": attack, "csrf_token": csrf}
    )
    assert sent.status_code == 303
    page = await client.get(f"/chat/rooms/{room}")
    assert page.status_code == 200
    assert "<script>alert" not in page.text
    assert "<img src=x" not in page.text
    assert (
        "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;"
        in page.text
    )
    assert "&lt;b&gt;Bureau&lt;/b&gt;" in page.text
    assert "<b>Bureau</b>" not in page.text


async def test_every_chat_form_needs_the_csrf_token(
    client: httpx.AsyncClient, agents: list[str]
) -> None:
    csrf = await as_user(client, "agent")
    room = await create_room(client, csrf, "Bureau")
    posts = [
        ("/chat/rooms", {"name": "Other"}),
        (f"/chat/rooms/{room}/messages", {"body": "hello"}),
        (f"/chat/rooms/{room}/invite", {"invitee": "bruno"}),
        (f"/chat/rooms/{room}/settings", {"name": "Renamed"}),
        (f"/chat/rooms/{room}/join", {}),
        (f"/chat/rooms/{room}/leave", {}),
        ("/assistant/ask", {"question": "Hello?"}),
        ("/assistant/collections", {"name": "Notes"}),
    ]
    for path, data in posts:
        refused = await client.post(path, data=data)
        assert refused.status_code == 403, path
        wrong = await client.post(path, data={**data, "csrf_token": "0" * 64})
        assert wrong.status_code == 403, path
    files = await client.post(
        f"/chat/rooms/{room}/files", files={"file": ("a.txt", b"x", "text/plain")}
    )
    assert files.status_code == 403
    page = await client.get(f"/chat/rooms/{room}")
    assert "hello" not in page.text
    assert "Renamed" not in page.text


async def test_a_user_not_in_the_room_cannot_read_it_nor_follow_it(
    client: httpx.AsyncClient, agents: list[str]
) -> None:
    csrf = await as_user(client, "agent")
    room = await create_room(client, csrf, "Secret room")
    await client.post(
        f"/chat/rooms/{room}/messages", data={"body": "the secret plan", "csrf_token": csrf}
    )
    csrf = await as_user(client, "bruno")
    page = await client.get(f"/chat/rooms/{room}")
    assert page.status_code == 403
    assert "the secret plan" not in page.text
    assert (await client.get(f"/chat/rooms/{room}/events?since=s0")).status_code == 403
    assert (await client.get(f"/chat/rooms/{room}/settings")).status_code == 403
    posted = await client.post(
        f"/chat/rooms/{room}/messages", data={"body": "let me in", "csrf_token": csrf}
    )
    assert posted.status_code == 403
    stored = await client.post(
        f"/chat/rooms/{room}/files",
        data={"csrf_token": csrf},
        files={"file": ("a.txt", b"x", "text/plain")},
    )
    assert stored.status_code == 403
    listing = await client.get("/chat")
    assert "Secret room" not in listing.text


async def test_an_invitation_is_accepted_and_the_invitee_reads_the_room(
    client: httpx.AsyncClient, agents: list[str]
) -> None:
    csrf = await as_user(client, "agent")
    room = await create_room(client, csrf, "Projet")
    await client.post(
        f"/chat/rooms/{room}/messages", data={"body": "bienvenue", "csrf_token": csrf}
    )
    invited = await client.post(
        f"/chat/rooms/{room}/invite", data={"invitee": "bruno", "csrf_token": csrf}
    )
    assert invited.status_code == 200
    assert "Invitation sent." in invited.text
    unknown = await client.post(
        f"/chat/rooms/{room}/invite", data={"invitee": "nobody", "csrf_token": csrf}
    )
    assert unknown.status_code == 400
    assert "There is no user with this name on this node." in unknown.text

    csrf = await as_user(client, "bruno")
    listing = await client.get("/chat")
    assert "Projet" in listing.text
    assert "Invitation" in listing.text
    offer = await client.get(f"/chat/rooms/{room}")
    assert "agent invites you to this room." in offer.text
    assert "bienvenue" not in offer.text
    accepted = await client.post(f"/chat/rooms/{room}/join", data={"csrf_token": csrf})
    assert accepted.status_code == 303
    page = await client.get(f"/chat/rooms/{room}")
    assert "bienvenue" in page.text
    assert "bruno joined" in page.text

    csrf = await as_user(client, "carla")
    await as_user(client, "agent")
    csrf = csrf_of(await client.get("/chat"))
    await client.post(f"/chat/rooms/{room}/invite", data={"invitee": "carla", "csrf_token": csrf})
    csrf = await as_user(client, "carla")
    declined = await client.post(f"/chat/rooms/{room}/leave", data={"csrf_token": csrf})
    assert declined.status_code == 303
    assert "Projet" not in (await client.get("/chat")).text


async def test_room_settings_open_the_room_to_external_users_but_never_back(
    client: httpx.AsyncClient, agents: list[str]
) -> None:
    csrf = await as_user(client, "agent")
    room = await create_room(client, csrf, "Réunion")
    settings = await client.get(f"/chat/rooms/{room}/settings")
    assert re.search(r'value="restricted" checked', settings.text)
    opened = await client.post(
        f"/chat/rooms/{room}/settings",
        data={
            "name": "Réunion",
            "topic": "Budget",
            "access_rule": "unrestricted",
            "csrf_token": csrf,
        },
    )
    assert opened.status_code == 200
    assert "Settings saved." in opened.text
    assert re.search(r'value="unrestricted" checked', opened.text)
    back = await client.post(
        f"/chat/rooms/{room}/settings",
        data={
            "name": "Réunion",
            "topic": "Budget",
            "access_rule": "restricted",
            "csrf_token": csrf,
        },
    )
    assert back.status_code == 403
    assert "This change is not allowed in this room." in back.text
    state = await client.get(f"/chat/rooms/{room}/settings")
    assert re.search(r'value="unrestricted" checked', state.text)
    assert 'value="Budget"' in state.text


async def test_a_file_is_stored_in_the_media_repository_and_linked(
    client: httpx.AsyncClient, agents: list[str]
) -> None:
    csrf = await as_user(client, "agent")
    room = await create_room(client, csrf, "Fichiers")
    sent = await client.post(
        f"/chat/rooms/{room}/files",
        data={"csrf_token": csrf},
        files={"file": ("<i>note</i>.html", b"<script>alert(1)</script>", "text/html")},
        headers={"HX-Request": "true"},
    )
    assert sent.status_code == 200
    assert "File sent." in sent.text
    page = await client.get(f"/chat/rooms/{room}")
    link = re.search(
        r'href="(/chat/media/[^"]+)" download>&lt;i&gt;note&lt;/i&gt;.html<', page.text
    )
    assert link, page.text
    got = await client.get(link.group(1))
    assert got.status_code == 200
    assert got.content == b"<script>alert(1)</script>"
    # Never served as a page of the node.
    assert got.headers["content-type"] == "application/octet-stream"
    assert got.headers["content-disposition"].startswith("attachment;")
    client.cookies.clear()
    assert (await client.get(link.group(1))).status_code == 303


async def test_collections_are_created_and_listed(
    client: httpx.AsyncClient, agents: list[str]
) -> None:
    csrf = await as_user(client, "agent")
    made = await client.post(
        "/assistant/collections",
        data={"name": "<em>Notes</em>", "visibility": "private", "csrf_token": csrf},
    )
    assert made.status_code == 303
    page = await client.get(made.headers["location"])
    assert page.status_code == 200
    assert "&lt;em&gt;Notes&lt;/em&gt;" in page.text
    assert "No document yet." in page.text
    csrf = await as_user(client, "bruno")
    assert "Notes" not in (await client.get("/assistant/collections")).text
    assert (await client.get(made.headers["location"])).status_code == 404


def test_a_sealed_question_opens_only_with_its_session() -> None:
    asked = Ask([{"role": "user", "content": "Quel délai ?"}], 3)
    sealed = seal(asked, "secret-one")
    assert unseal(sealed, "secret-one") == asked
    assert unseal(sealed, "secret-two") is None
    payload, _, mac = sealed.rpartition(".")
    assert unseal(payload[:-2] + "AA." + mac, "secret-one") is None


async def test_the_answer_stream_refuses_a_question_of_another_session(
    client: httpx.AsyncClient, agents: list[str]
) -> None:
    await as_user(client, "agent")
    forged = seal(Ask([{"role": "user", "content": "hi"}]), "not-this-session")
    assert (await client.get(f"/assistant/answer?ask={forged}")).status_code == 403


def test_an_answer_is_escaped_and_only_its_known_sources_become_links() -> None:
    source = Source(1, 7, 3, "guide.pdf", 2, "86 euros")

    def link(s: Source) -> Markup:
        return Markup('<a href="/assistant/sources/{id}">[{n}]</a>').format(
            id=s.chunk_id, n=s.number
        )

    shown = with_citations("<script>x</script> 86 euros [1], not [2] <b>", [source], link)
    assert str(shown) == (
        '&lt;script&gt;x&lt;/script&gt; 86 euros <a href="/assistant/sources/7">[1]</a>, '
        "not [2] &lt;b&gt;"
    )
