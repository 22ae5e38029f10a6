"""The process's cache of resolved access tokens: a revoked token is refused at once by the
process that revoked it, however recently it was resolved (logout, device deletion, a device's
new token, a disabled account), and a look-up that raced a revocation is not kept."""

from __future__ import annotations

import httpx

from rhenus.messaging.token_cache import Resolved, TokenCache
from tests.messaging.conftest import PASSWORD, Mx, Register


def errcode(response: httpx.Response) -> str:
    return str(response.json().get("errcode"))


async def _login(client: httpx.AsyncClient, username: str, device_id: str) -> Mx:
    body = {
        "type": "m.login.password",
        "identifier": {"type": "m.id.user", "user": username},
        "password": PASSWORD,
        "device_id": device_id,
    }
    answer = (await client.post("/_matrix/client/v3/login", json=body)).json()
    return Mx(client, answer["user_id"], answer["access_token"], answer["device_id"])


async def test_a_logged_out_token_is_refused_at_once_though_just_resolved(
    new_user: Register,
) -> None:
    alice = await new_user("alice")
    for _ in range(3):  # resolved, then answered from the cache
        await alice.ok("GET", "/account/whoami")
    await alice.ok("POST", "/logout")
    assert errcode(await alice.call("GET", "/account/whoami")) == "M_UNKNOWN_TOKEN"


async def test_a_deleted_device_token_is_refused_at_once_and_the_others_still_work(
    client: httpx.AsyncClient, new_user: Register
) -> None:
    alice = await new_user("alice")
    phone = await _login(client, "alice", "PHONE")
    await phone.ok("GET", "/account/whoami")
    challenge = (await alice.call("DELETE", "/devices/PHONE", json={})).json()
    auth = {"type": "m.login.password", "session": challenge["session"], "password": PASSWORD}
    await alice.ok("DELETE", "/devices/PHONE", json={"auth": auth})
    assert errcode(await phone.call("GET", "/account/whoami")) == "M_UNKNOWN_TOKEN"
    assert (await alice.ok("GET", "/account/whoami"))["device_id"] == alice.device_id


async def test_a_new_login_on_a_device_retires_its_previous_token_at_once(
    client: httpx.AsyncClient, new_user: Register
) -> None:
    await new_user("alice")
    first = await _login(client, "alice", "LAPTOP")
    await first.ok("GET", "/account/whoami")
    second = await _login(client, "alice", "LAPTOP")
    assert errcode(await first.call("GET", "/account/whoami")) == "M_UNKNOWN_TOKEN"
    assert (await second.ok("GET", "/account/whoami"))["device_id"] == "LAPTOP"


async def test_a_disabled_accounts_tokens_are_refused_at_once(
    client: httpx.AsyncClient, new_user: Register, admin_token: str
) -> None:
    carol = await new_user("carol")
    await carol.ok("GET", "/account/whoami")
    disabled = await client.post(
        "/api/v1/users/carol/disable", headers={"Authorization": f"Bearer {admin_token}"}
    )
    assert disabled.status_code == 200, disabled.text
    assert errcode(await carol.call("GET", "/account/whoami")) == "M_UNKNOWN_TOKEN"


def test_a_look_up_begun_before_a_revocation_is_not_kept() -> None:
    cache = TokenCache(ttl=60)
    resolved = Resolved("alice", account_id=1, device_pk=7, device_id="D")
    epoch = cache.epoch  # a look-up reads the database…
    cache.forget(account_id=1, device_pk=7)  # …while a logout commits
    cache.put("digest", resolved, epoch=epoch)
    assert cache.get("digest") is None
    cache.put("digest", resolved, epoch=cache.epoch)
    assert cache.get("digest") == resolved
    cache.forget(account_id=2)  # another account's revocation leaves it
    assert cache.get("digest") == resolved
    cache.forget(account_id=1)
    assert cache.get("digest") is None


def test_entries_expire_after_their_ttl() -> None:
    cache = TokenCache(ttl=-1)  # expired as soon as stored
    cache.put("digest", Resolved("alice", 1, 7, "D"), epoch=cache.epoch)
    assert cache.get("digest") is None
