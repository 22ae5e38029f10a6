"""The web app without a browser: sessions, CSRF, security headers, cookie flags, escaping,
languages and the catalogue pages, against the node's app in-process."""

from __future__ import annotations

import re

import httpx

from rhenus.app import create_app
from rhenus.config import Settings
from rhenus.core.node import Node
from rhenus.demo.web_sample import SAMPLES
from rhenus.web.security import CONTENT_SECURITY_POLICY
from tests.web.support import PASSWORD, agent, csrf_of, publish, sign_in

__all__ = ["agent"]  # the fixture, shared with the other page tests


async def test_pages_need_a_session_and_send_to_sign_in(client: httpx.AsyncClient) -> None:
    response = await client.get("/catalogue?q=x")
    assert response.status_code == 303
    assert response.headers["location"] == "/sign-in?next=/catalogue%3Fq%3Dx"


async def test_sign_in_opens_a_session_and_sign_out_revokes_it(
    client: httpx.AsyncClient, agent: str
) -> None:
    signed = await sign_in(client)
    assert signed.status_code == 303
    assert signed.headers["location"] == "/"
    token = client.cookies["rhenus_session"]
    home = await client.get("/")
    assert home.status_code == 200
    assert "agent" in home.text
    out = await client.post("/sign-out", data={"csrf_token": csrf_of(home)})
    assert out.status_code == 303
    # The token itself is revoked, not only the cookie forgotten.
    me = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 401
    client.cookies.set("rhenus_session", token)
    assert (await client.get("/")).status_code == 303


async def test_wrong_password_is_told_without_a_session(
    client: httpx.AsyncClient, agent: str
) -> None:
    form = await client.get("/sign-in")
    response = await client.post(
        "/sign-in", data={"username": "agent", "password": "nope", "csrf_token": csrf_of(form)}
    )
    assert response.status_code == 401
    assert "Wrong username or password." in response.text
    assert "rhenus_session" not in client.cookies


async def test_form_post_without_csrf_token_is_403(client: httpx.AsyncClient, agent: str) -> None:
    await client.get("/sign-in")  # the browser has its pre-session secret, not the token
    response = await client.post("/sign-in", data={"username": "agent", "password": PASSWORD})
    assert response.status_code == 403
    assert "rhenus_session" not in client.cookies


async def test_form_post_with_another_browsers_token_is_403(
    client: httpx.AsyncClient, settings: Settings, node: Node, agent: str
) -> None:
    await sign_in(client)
    app = create_app(settings, node=node)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as other:
        await sign_in(other)
        theirs = csrf_of(await other.get("/"))
    # Another session's token does not fit this session's secret.
    response = await client.post("/sign-out", data={"csrf_token": theirs})
    assert response.status_code == 403
    assert (await client.get("/")).status_code == 200


async def test_csrf_token_in_the_htmx_header_is_accepted(
    client: httpx.AsyncClient, agent: str
) -> None:
    await sign_in(client)
    token = csrf_of(await client.get("/"))
    response = await client.post(
        "/language", data={"lang": "de"}, headers={"X-CSRF-Token": token, "HX-Request": "true"}
    )
    assert response.status_code == 204
    assert response.headers["HX-Redirect"] == "/"


async def test_pages_carry_a_csp_without_inline_scripts(client: httpx.AsyncClient) -> None:
    page = await client.get("/sign-in")
    csp = page.headers["content-security-policy"]
    assert csp == CONTENT_SECURITY_POLICY
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert "unsafe-eval" not in csp
    assert "frame-ancestors 'none'" in csp
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["cache-control"] == "no-store"
    # No inline script anywhere: every <script> has a src, and no on* handler attributes.
    assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", page.text) == []
    assert re.findall(r"\son[a-z]+=", page.text) == []


async def test_cookie_flags_over_http(client: httpx.AsyncClient, agent: str) -> None:
    signed = await sign_in(client)
    cookie = next(c for c in signed.headers.get_list("set-cookie") if "rhenus_session=" in c)
    flags = [part.strip().lower() for part in cookie.split(";")]
    assert "httponly" in flags
    assert "samesite=lax" in flags
    assert "path=/" in flags
    assert "secure" not in flags  # plain HTTP on loopback: a Secure cookie would not come back


async def test_cookie_flags_over_https(settings: Settings, node: Node, agent: str) -> None:
    app = create_app(settings, node=node)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as https:
        form = await https.get("/sign-in")
        presession = form.headers["set-cookie"]
        assert presession.startswith("__Host-rhenus_presession=")
        signed = await https.post(
            "/sign-in",
            data={"username": "agent", "password": PASSWORD, "csrf_token": csrf_of(form)},
        )
        assert signed.status_code == 303
        cookie = next(
            c
            for c in signed.headers.get_list("set-cookie")
            if c.startswith("__Host-rhenus_session=")
        )
        flags = [part.strip().lower() for part in cookie.split(";")]
        assert {"httponly", "secure", "samesite=lax", "path=/"} <= set(flags)
        assert not any(f.startswith("domain=") for f in flags)
        assert (await https.get("/")).status_code == 200


async def test_language_follows_the_browser_then_the_switch(
    client: httpx.AsyncClient, agent: str
) -> None:
    page = await client.get("/sign-in", headers={"Accept-Language": "fr-FR,fr;q=0.9,en;q=0.5"})
    assert '<html lang="fr">' in page.text
    assert "Se connecter" in page.text
    assert page.headers["content-language"] == "fr"
    switched = await client.post(
        "/language", data={"lang": "de", "next": "/sign-in", "csrf_token": csrf_of(page)}
    )
    assert switched.status_code == 303
    assert switched.headers["location"] == "/sign-in"
    again = await client.get("/sign-in", headers={"Accept-Language": "fr"})
    assert '<html lang="de">' in again.text
    assert "Anmelden" in again.text


async def test_language_switch_never_redirects_off_site(client: httpx.AsyncClient) -> None:
    page = await client.get("/sign-in")
    switched = await client.post(
        "/language",
        data={"lang": "en", "next": "//evil.example/", "csrf_token": csrf_of(page)},
    )
    assert switched.headers["location"] == "/"


async def test_catalogue_search_facets_and_dataset_page(
    client: httpx.AsyncClient, admin_token: str, agent: str
) -> None:
    metadata, _, _, offers = SAMPLES[0]
    dataset_id = await publish(client, admin_token, metadata, offers[0])
    await publish(client, admin_token, SAMPLES[2][0], SAMPLES[2][3][0])
    await sign_in(client)
    found = await client.get("/catalogue", params={"q": "Einwohner"})
    assert found.status_code == 200
    assert "Residents by district" in found.text
    assert "Public transport stops" not in found.text
    assert "Population and society" in found.text  # the theme facet, by its name
    narrowed = await client.get("/catalogue", params={"theme": "TRAN"})
    assert "Public transport stops" in narrowed.text
    assert "Residents by district" not in narrowed.text
    link = re.search(r'href="(/catalogue/dataset\?[^"]+)"', found.text)
    assert link
    page = await client.get(link.group(1).replace("&amp;", "&"))
    assert page.status_code == 200
    assert dataset_id in link.group(1).replace("%3A", ":")
    assert "Use: for statistics, EU only, until December 31, 2026, 10 downloads" in page.text
    assert "Not allowed: Redistribution" in page.text
    assert "Required: credit the provider" in page.text
    german = await client.get(
        link.group(1).replace("&amp;", "&"), headers={"Accept-Language": "de"}
    )
    assert "Nutzung: für Statistik, nur EU, bis 31. Dezember 2026, 10 Downloads" in german.text


async def test_htmx_search_gets_only_the_results(
    client: httpx.AsyncClient, admin_token: str, agent: str
) -> None:
    await publish(client, admin_token, SAMPLES[0][0], SAMPLES[0][3][0])
    await sign_in(client)
    part = await client.get(
        "/catalogue",
        params={"q": "residents"},
        headers={"HX-Request": "true", "HX-Target": "search-results"},
    )
    assert part.status_code == 200
    assert "<html" not in part.text
    assert 'id="search-results"' in part.text
    assert 'hx-swap-oob="innerHTML"' in part.text
    # The language switch will come back to this search, not to the page as first loaded.
    assert 'id="language-next" name="next" value="/catalogue?q=residents"' in part.text


async def test_dataset_text_is_escaped(
    client: httpx.AsyncClient, admin_token: str, agent: str
) -> None:
    metadata = {**SAMPLES[2][0], "title": {"en": "<script>alert(1)</script> stops"}}
    await publish(client, admin_token, metadata, {"permission": [{"action": "use"}]})
    await sign_in(client)
    found = await client.get("/catalogue", params={"q": "stops"})
    assert "&lt;script&gt;alert(1)&lt;/script&gt; stops" in found.text
    assert "<script>alert(1)" not in found.text


async def test_unknown_dataset_is_a_404_page(client: httpx.AsyncClient, agent: str) -> None:
    await sign_in(client)
    response = await client.get("/catalogue/dataset", params={"origin": "did:web:x", "id": "y"})
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "This page does not exist." in response.text


async def test_one_time_password_must_be_changed_first(
    client: httpx.AsyncClient, initialised: str
) -> None:
    form = await client.get("/sign-in")
    signed = await client.post(
        "/sign-in",
        data={"username": "admin", "password": initialised, "csrf_token": csrf_of(form)},
    )
    assert signed.headers["location"] == "/password"
    assert (await client.get("/catalogue")).headers["location"] == "/password"
    page = await client.get("/password")
    changed = await client.post(
        "/password",
        data={
            "current": initialised,
            "new": "my-own-long-password",
            "repeated": "my-own-long-password",
            "csrf_token": csrf_of(page),
        },
    )
    assert changed.status_code == 303
    assert (await client.get("/catalogue")).status_code == 200


async def test_api_errors_stay_problem_json(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/nothing-here")
    assert response.headers["content-type"] == "application/problem+json"
