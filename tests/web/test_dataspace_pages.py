"""The data space and administration pages without a browser: admin pages refuse agents (403
page), every form refuses a post without this browser's CSRF token, the audit viewer pages the
log and tells a verified chain from a broken one, users and peers are managed from the page."""

from __future__ import annotations

import re

import httpx
from sqlalchemy import select, update

from rhenus.accounts import service as accounts
from rhenus.core.audit import AuditEntry
from rhenus.core.db import utcnow
from rhenus.core.node import Node
from rhenus.dataspace.catalogue.models import CataloguePeer
from rhenus.dataspace.contracts.models import Negotiation
from rhenus.demo.web_sample import SAMPLES
from rhenus.trust.did import did_for_url
from tests.web.support import PASSWORD, csrf_of, publish
from tests.web.support import sign_in as sign_in_agent

ADMIN_PASSWORD = "a-good-long-password"  # the admin_token fixture sets it
OPEN = {"permission": [{"action": "use"}]}


async def sign_in_admin(client: httpx.AsyncClient, admin_token: str) -> None:
    form = await client.get("/sign-in")
    signed = await client.post(
        "/sign-in",
        data={"username": "admin", "password": ADMIN_PASSWORD, "csrf_token": csrf_of(form)},
    )
    assert signed.status_code == 303, signed.text


async def agent_account(client: httpx.AsyncClient, admin_token: str) -> None:
    created = await client.post(
        "/api/v1/users",
        headers={"Authorization": f"Bearer {admin_token}"},
        json={"username": "agent", "password": PASSWORD},
    )
    assert created.status_code == 201, created.text


async def test_admin_pages_answer_agents_with_the_403_page(
    client: httpx.AsyncClient, admin_token: str, node: Node
) -> None:
    await agent_account(client, admin_token)
    await sign_in_agent(client)
    home = await client.get("/")
    assert 'href="/agreements"' in home.text
    assert 'href="/admin"' not in home.text
    assert 'href="/audit"' not in home.text
    for path in ("/admin", "/audit"):
        page = await client.get(path)
        assert page.status_code == 403, path
        assert "You are not allowed to do this." in page.text
        assert page.headers["content-security-policy"].startswith("default-src 'none'")
    # A well-formed form from the agent's own session is still refused: the role decides.
    posted = await client.post(
        "/admin/users", data={"username": "intruder", "role": "admin", "csrf_token": csrf_of(home)}
    )
    assert posted.status_code == 403
    async with node.db.session() as session:
        assert "intruder" not in {u.username for u in await accounts.list_users(session)}


async def test_every_form_refuses_a_post_without_the_csrf_token(
    client: httpx.AsyncClient, admin_token: str, node: Node
) -> None:
    await sign_in_admin(client, admin_token)
    forms = {
        "/admin/users": {"username": "forged", "role": "admin"},
        "/admin/peers": {"url": "https://evil.example"},
        "/admin/peers/remove": {"did": "did:web:evil.example"},
        "/admin/peers/crawl": {},
        "/catalogue/request-access": {"origin": "did:web:x.example", "dataset_id": "d"},
        "/agreements/transfers": {"agreement_id": "urn:uuid:x"},
    }
    for path, data in forms.items():
        missing = await client.post(path, data=data)
        assert missing.status_code == 403, path
        assert "This form has expired" in missing.text
        wrong = await client.post(path, data={**data, "csrf_token": "0" * 64})
        assert wrong.status_code == 403, path
    async with node.db.session() as session:
        assert "forged" not in {u.username for u in await accounts.list_users(session)}
        assert (await session.scalars(select(CataloguePeer))).all() == []


async def test_admin_creates_an_account_whose_one_time_password_is_shown_once(
    client: httpx.AsyncClient, admin_token: str
) -> None:
    await sign_in_admin(client, admin_token)
    page = await client.get("/admin")
    assert page.status_code == 200
    created = await client.post(
        "/admin/users",
        data={
            "username": "marie.curie",
            "display_name": "Marie Curie",
            "role": "agent",
            "csrf_token": csrf_of(page),
        },
    )
    assert created.status_code == 200
    found = re.search(r'id="one-time-password">([^<]+)<', created.text)
    assert found, created.text
    login = await client.post(
        "/api/v1/auth/login", json={"username": "marie.curie", "password": found.group(1)}
    )
    assert login.status_code == 200
    assert login.json()["must_change_password"] is True
    again = await client.get("/admin")
    assert "marie.curie" in again.text
    assert found.group(1) not in again.text
    twice = await client.post(
        "/admin/users",
        data={"username": "marie.curie", "role": "agent", "csrf_token": csrf_of(page)},
    )
    assert twice.status_code == 409
    assert "already exists" in twice.text


async def test_admin_follows_and_stops_following_a_peer(
    client: httpx.AsyncClient, admin_token: str
) -> None:
    await sign_in_admin(client, admin_token)
    token = csrf_of(await client.get("/admin"))
    added = await client.post(
        "/admin/peers", data={"url": "https://berlin.example/", "csrf_token": token}
    )
    assert added.status_code == 303
    page = await client.get("/admin")
    assert "https://berlin.example" in page.text
    assert 'value="did:web:berlin.example"' in page.text
    refused = await client.post("/admin/peers", data={"url": "berlin", "csrf_token": token})
    assert refused.status_code == 422
    removed = await client.post(
        "/admin/peers/remove", data={"did": "did:web:berlin.example", "csrf_token": token}
    )
    assert removed.status_code == 303
    assert "https://berlin.example" not in (await client.get("/admin")).text


async def test_admin_page_shows_domains_read_only_and_the_trust_status(
    client: httpx.AsyncClient, admin_token: str
) -> None:
    await sign_in_admin(client, admin_token)
    page = await client.get("/admin", headers={"Accept-Language": "de"})
    assert "E-Mail-Domains" in page.text
    assert "RHENUS_MATRIX_ALLOWED_EMAIL_DOMAINS" in page.text
    assert 'name="domains"' not in page.text  # read-only: a setting, not changed at runtime
    assert "did:web:" in page.text
    assert "noch nicht" in page.text  # no compliance credential on a lone test node


async def test_audit_page_verifies_the_chain_and_names_the_first_broken_entry(
    client: httpx.AsyncClient, admin_token: str, node: Node
) -> None:
    await sign_in_admin(client, admin_token)
    async with node.db.transaction() as session:
        for number in range(120):
            await node.audit.record(session, actor="test", action=f"test.act.{number}")
    first = await client.get("/audit")
    assert first.status_code == 200
    assert 'data-verified="true"' in first.text
    seqs = [int(s) for s in re.findall(r"<tr>\s*<td>(\d+)</td>", first.text)]
    head = seqs[0]
    assert seqs == list(range(head, head - 50, -1))  # the newest 50, newest first
    pages = -(-head // 50)
    assert f"Page 1 of {pages}" in first.text
    last = await client.get(f"/audit?page={pages}")
    seqs = [int(s) for s in re.findall(r"<tr>\s*<td>(\d+)</td>", last.text)]
    assert seqs[-1] == 1
    assert 'rel="next"' not in last.text
    assert 'rel="prev"' in last.text

    async with node.db.transaction() as session:
        await session.execute(update(AuditEntry).where(AuditEntry.seq == 7).values(actor="x"))
    broken = await client.get("/audit")
    assert 'data-verified="false"' in broken.text
    assert "Chain broken at entry 7." in broken.text
    french = await client.get("/audit", headers={"Accept-Language": "fr"})
    assert "rompue" in french.text


async def test_request_access_to_our_own_dataset_is_refused(
    client: httpx.AsyncClient, admin_token: str, node: Node
) -> None:
    dataset_id = await publish(client, admin_token, SAMPLES[2][0], OPEN)
    await sign_in_admin(client, admin_token)
    page = await client.get("/agreements")
    assert page.status_code == 200
    assert "No agreements yet" in page.text
    own = node.settings.public_url
    dataset = await client.get(
        "/catalogue/dataset", params={"origin": did_for_url(own), "id": dataset_id}
    )
    assert dataset.status_code == 200
    assert "/catalogue/request-access" not in dataset.text  # no request form on our own data
    asked = await client.post(
        "/catalogue/request-access",
        data={"origin": did_for_url(own), "dataset_id": dataset_id, "csrf_token": csrf_of(page)},
    )
    assert asked.status_code == 409
    unreachable = await client.post(
        "/catalogue/request-access",
        data={"origin": "did:web:nowhere.invalid", "dataset_id": "d", "csrf_token": csrf_of(page)},
    )
    assert unreachable.status_code == 502
    assert "could not be reached" in unreachable.text
    not_a_node = await client.post(
        "/catalogue/request-access",
        data={"origin": "urn:x", "dataset_id": "d", "csrf_token": csrf_of(page)},
    )
    assert not_a_node.status_code == 422
    assert (await client.get("/negotiations/urn:uuid:none")).status_code == 404
    assert (await client.get("/transfers/urn:uuid:none/download")).status_code == 404


async def test_progress_is_polled_until_final_and_unchanged_polls_swap_nothing(
    client: httpx.AsyncClient, admin_token: str, node: Node
) -> None:
    now = utcnow()
    async with node.db.transaction() as session:
        session.add(
            Negotiation(
                id="urn:uuid:polled", role="consumer", provider_pid="urn:uuid:theirs",
                consumer_pid="urn:uuid:polled", counterparty="did:web:berlin.example",
                counterparty_country="", counterparty_address="https://berlin.example/dsp",
                dataset_id="urn:uuid:d", offer_id="urn:uuid:o", offer=OPEN, requested=OPEN,
                purpose="statistics", agreement_id=None, state="REQUESTED", reason=[],
                created_at=now, updated_at=now,
            )
        )  # fmt: skip
    await sign_in_admin(client, admin_token)
    full = await client.get("/negotiations/urn:uuid:polled")
    assert full.status_code == 200
    assert 'hx-trigger="every 1s"' in full.text
    assert 'hx-get="/negotiations/urn:uuid:polled?shown=REQUESTED"' in full.text
    poll = {"HX-Request": "true", "HX-Target": "negotiation-progress"}
    same = await client.get("/negotiations/urn:uuid:polled?shown=REQUESTED", headers=poll)
    assert same.status_code == 204
    assert same.content == b""
    async with node.db.transaction() as session:
        await session.execute(
            update(Negotiation)
            .where(Negotiation.id == "urn:uuid:polled")
            .values(state="TERMINATED", reason=["purpose eq statistics: not met"])
        )
    changed = await client.get("/negotiations/urn:uuid:polled?shown=REQUESTED", headers=poll)
    assert changed.status_code == 200
    assert "<html" not in changed.text  # the fragment alone
    assert 'data-state="TERMINATED"' in changed.text
    assert "purpose eq statistics: not met" in changed.text
    assert "hx-trigger" not in changed.text  # final: polling stops
