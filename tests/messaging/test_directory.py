"""POST /user_directory/search: Synapse's default scope (room-mates and members of public
rooms), case-insensitive prefix matching on localpart and display name words, limit, disabled
accounts."""

from __future__ import annotations

import httpx

from tests.messaging.conftest import Mx, Register


async def search(who: Mx, term: str, limit: int | None = None) -> tuple[list[str], bool]:
    body: dict[str, object] = {"search_term": term}
    if limit is not None:
        body["limit"] = limit
    answer = await who.ok("POST", "/user_directory/search", json=body)
    return [r["user_id"] for r in answer["results"]], answer["limited"]


async def test_the_directory_finds_room_mates_and_public_room_members_by_word_prefixes(
    new_user: Register, client: httpx.AsyncClient, admin_token: str
) -> None:
    alice, bob, carol, dave, erin, jean = [
        await new_user(n) for n in ("alice", "bob", "carol", "dave", "erin", "jean.dupont")
    ]
    private = await alice.create_room(invite=[bob.user_id, jean.user_id])
    await bob.ok("POST", f"/join/{private}", json={})
    await jean.ok("POST", f"/join/{private}", json={})
    public = await carol.create_room(preset="public_chat")
    hidden = await dave.create_room(invite=[erin.user_id])
    await erin.ok("POST", f"/join/{hidden}", json={})
    await bob.ok(
        "PUT", f"/profile/{bob.user_id}/displayname", json={"displayname": "Élodie Martin"}
    )

    assert (await search(alice, "car"))[0] == [carol.user_id]  # in a public room
    assert (await search(alice, "dav"))[0] == []  # shares nothing with alice
    assert (await search(alice, "eri"))[0] == []  # neither
    assert (await search(alice, "ali"))[0] == []  # herself, in private rooms only
    assert (await search(dave, "car"))[0] == [carol.user_id]
    assert (await search(dave, "bob"))[0] == []
    assert (await search(dave, "eri"))[0] == [erin.user_id]

    for term in ("élo", "ÉLODIE", "mart", "Élodie Ma", "bo"):
        assert (await search(alice, term))[0] == [bob.user_id], term
    for term in ("odie", "lodie", "martine", "élodie x"):
        assert (await search(alice, term))[0] == [], term
    for term in ("dup", "jean d", "JEAN", "@jean.d", jean.user_id):
        assert (await search(alice, term))[0] == [jean.user_id], term
    assert (await search(alice, "  "))[0] == []

    # A public room makes its members findable by everyone; limit and limited.
    await bob.ok("POST", f"/join/{public}", json={})
    await jean.ok("POST", f"/join/{public}", json={})
    await carol.ok("PUT", f"/profile/{carol.user_id}/displayname", json={"displayname": "Eyraud"})
    assert (await search(dave, "e")) == ([erin.user_id, carol.user_id], False)  # by name
    assert (await search(dave, "e", limit=1)) == ([erin.user_id], True)
    answer = await dave.ok("POST", "/user_directory/search", json={"search_term": "élo"})
    assert answer == {
        "results": [{"user_id": bob.user_id, "display_name": "Élodie Martin"}],
        "limited": False,
    }

    # A disabled account is never found.
    disabled = await client.post(
        "/api/v1/users/carol/disable", headers={"Authorization": f"Bearer {admin_token}"}
    )
    assert disabled.status_code == 200, disabled.text
    assert (await search(alice, "carol"))[0] == []
