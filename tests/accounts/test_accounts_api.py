"""Accounts over HTTP: one-time admin password, login tokens, API keys, roles, rate limit."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select

from rhenus.accounts.models import ApiKey, AuthToken, User
from rhenus.core.node import Node


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def login(client: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    return await client.post(
        "/api/v1/auth/login", json={"username": username, "password": password}
    )


async def test_one_time_password_must_be_changed_before_anything_else(
    client: httpx.AsyncClient, initialised: str
) -> None:
    response = await login(client, "admin", initialised)
    assert response.status_code == 200
    body = response.json()
    assert body["must_change_password"] is True
    token = body["access_token"]
    blocked = await client.get("/api/v1/users", headers=auth(token))
    assert blocked.status_code == 403
    assert "one-time password" in blocked.json()["detail"]
    changed = await client.post(
        "/api/v1/me/password",
        json={"current_password": initialised, "new_password": "correct horse battery"},
        headers=auth(token),
    )
    assert changed.status_code == 204
    assert (await client.get("/api/v1/users", headers=auth(token))).status_code == 200
    assert (await login(client, "admin", initialised)).status_code == 401


async def test_passwords_are_stored_as_argon2id_and_tokens_as_digests(
    client: httpx.AsyncClient, node: Node, admin_token: str
) -> None:
    async with node.db.session() as session:
        user = await session.scalar(select(User).where(User.username == "admin"))
        tokens = list(await session.scalars(select(AuthToken.token_hash)))
    assert user is not None
    assert user.password_hash.startswith("$argon2id$")
    assert admin_token not in tokens
    assert all(len(t) == 64 for t in tokens)


async def test_admin_creates_agent_who_cannot_administer(
    client: httpx.AsyncClient, admin_token: str
) -> None:
    created = await client.post(
        "/api/v1/users",
        json={
            "username": "marie.curie",
            "email": "marie.curie@interieur.gouv.fr",
            "password": "radium-and-polonium",
        },
        headers=auth(admin_token),
    )
    assert created.status_code == 201, created.text
    assert created.json()["role"] == "agent"
    assert created.json()["one_time_password"] is None
    token = (await login(client, "marie.curie", "radium-and-polonium")).json()["access_token"]
    me = await client.get("/api/v1/me", headers=auth(token))
    assert me.json()["email"] == "marie.curie@interieur.gouv.fr"
    denied = await client.post("/api/v1/users", json={"username": "eve"}, headers=auth(token))
    assert denied.status_code == 403
    assert denied.headers["content-type"] == "application/problem+json"


async def test_duplicate_username_is_a_conflict(
    client: httpx.AsyncClient, admin_token: str
) -> None:
    first = await client.post("/api/v1/users", json={"username": "bob"}, headers=auth(admin_token))
    assert first.status_code == 201
    assert len(first.json()["one_time_password"]) >= 16
    again = await client.post("/api/v1/users", json={"username": "bob"}, headers=auth(admin_token))
    assert again.status_code == 409
    assert again.json()["type"].endswith("/conflict")


async def test_logout_revokes_the_token(client: httpx.AsyncClient, admin_token: str) -> None:
    assert (await client.post("/api/v1/auth/logout", headers=auth(admin_token))).status_code == 204
    after = await client.get("/api/v1/me", headers=auth(admin_token))
    assert after.status_code == 401
    assert after.headers["www-authenticate"] == "Bearer"


async def test_api_key_is_shown_once_and_works_until_revoked(
    client: httpx.AsyncClient, node: Node, admin_token: str
) -> None:
    created = await client.post(
        "/api/v1/me/api-keys", json={"name": "etl"}, headers=auth(admin_token)
    )
    assert created.status_code == 201
    key = created.json()["key"]
    prefix = created.json()["prefix"]
    assert (await client.get("/api/v1/me", headers=auth(key))).json()["username"] == "admin"
    listed = (await client.get("/api/v1/me/api-keys", headers=auth(admin_token))).json()
    assert [k["prefix"] for k in listed] == [prefix]
    assert listed[0]["last_used_at"] is not None
    assert "key" not in listed[0]
    async with node.db.session() as session:
        stored = await session.scalar(select(ApiKey.key_hash))
    assert stored is not None
    assert key not in stored
    revoked = await client.delete(f"/api/v1/me/api-keys/{prefix}", headers=auth(admin_token))
    assert revoked.status_code == 204
    assert (await client.get("/api/v1/me", headers=auth(key))).status_code == 401


async def test_disabling_a_user_revokes_its_sessions(
    client: httpx.AsyncClient, admin_token: str
) -> None:
    await client.post(
        "/api/v1/users",
        json={"username": "leaver", "password": "leaving-soon-123"},
        headers=auth(admin_token),
    )
    token = (await login(client, "leaver", "leaving-soon-123")).json()["access_token"]
    disabled = await client.post("/api/v1/users/leaver/disable", headers=auth(admin_token))
    assert disabled.json()["disabled"] is True
    assert (await client.get("/api/v1/me", headers=auth(token))).status_code == 401
    assert (await login(client, "leaver", "leaving-soon-123")).status_code == 401


async def test_failed_logins_are_rate_limited_per_account(
    client: httpx.AsyncClient, initialised: str
) -> None:
    for _ in range(5):
        assert (await login(client, "admin", "wrong-guess")).status_code == 401
    limited = await login(client, "admin", initialised)
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) > 0


@pytest.mark.parametrize(
    "credential", ["", "Bearer ", "Basic YWRtaW46YWRtaW4=", "Bearer rhs_forged", "Bearer rhk_x_y"]
)
async def test_bad_credentials_are_refused(
    client: httpx.AsyncClient, node: Node, credential: str
) -> None:
    headers = {"Authorization": credential} if credential else {}
    response = await client.get("/api/v1/me", headers=headers)
    assert response.status_code == 401
    assert response.json()["status"] == 401
