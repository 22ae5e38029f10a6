"""Helpers of the web app's tests without a browser: an agent account, signing in, CSRF tokens,
publishing a dataset."""

from __future__ import annotations

import re

import httpx
import pytest

PASSWORD = "a-long-agent-password"
CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]{64})"')


def csrf_of(page: httpx.Response) -> str:
    found = CSRF.search(page.text)
    assert found, page.text[:500]
    return found.group(1)


async def sign_in(client: httpx.AsyncClient, username: str = "agent") -> httpx.Response:
    form = await client.get("/sign-in")
    return await client.post(
        "/sign-in",
        data={"username": username, "password": PASSWORD, "csrf_token": csrf_of(form)},
    )


async def publish(client: httpx.AsyncClient, token: str, metadata: dict, policy: dict) -> str:
    headers = {"Authorization": f"Bearer {token}"}
    created = await client.post("/api/v1/datasets", headers=headers, json=metadata)
    assert created.status_code == 201, created.text
    dataset_id = str(created.json()["id"])
    base = f"/api/v1/datasets/{dataset_id}"
    content = {**headers, "content-type": "text/csv"}
    filled = await client.put(f"{base}/content", content=b"a;b\n1;2\n", headers=content)
    assert filled.status_code == 200, filled.text
    added = await client.post(f"{base}/offers", headers=headers, json={"policy": policy})
    assert added.status_code == 201, added.text
    assert (await client.post(f"{base}/publish", headers=headers)).status_code == 200
    return dataset_id


@pytest.fixture
async def agent(client: httpx.AsyncClient, admin_token: str) -> str:
    response = await client.post(
        "/api/v1/users",
        headers={"Authorization": f"Bearer {admin_token}"},
        json={"username": "agent", "password": PASSWORD},
    )
    assert response.status_code == 201, response.text
    return "agent"
