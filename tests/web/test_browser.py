"""An agent's first visit in a real browser: sign in, search the catalogue (htmx, under the
Content-Security-Policy), open a dataset and read its offer in plain words, switch to German,
sign out — with axe-core finding no serious or critical violation on any page."""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import ConsoleMessage, Page, expect

from tests.web.conftest import AGENT, AGENT_PASSWORD, Live

SERIOUS = {"serious", "critical"}


def violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on the page as it is now."""
    result = page.evaluate("() => axe.run(document, {resultTypes: ['violations']})")
    return [
        {"id": v["id"], "impact": v["impact"], "nodes": [n["html"] for n in v["nodes"]][:3]}
        for v in result["violations"]
        if v["impact"] in SERIOUS
    ]


def watch_console(page: Page) -> list[str]:
    problems: list[str] = []

    def seen(message: ConsoleMessage) -> None:
        if message.type == "error" or "Content Security Policy" in message.text:
            problems.append(message.text)

    page.on("console", seen)
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on(
        "response",
        lambda response: (
            problems.append(f"{response.status} {response.url}") if response.status >= 400 else None
        ),
    )
    return problems


def sign_in(page: Page, live: Live) -> None:
    page.goto(f"{live.url}/")
    expect(page).to_have_url(re.compile(r"/sign-in\?next=/$"))
    page.get_by_label("Username").fill(AGENT)
    page.get_by_label("Password").fill(AGENT_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="What's new", level=1)).to_be_visible()


def test_agent_signs_in_searches_reads_an_offer_in_german_and_signs_out(
    page: Page, live: Live
) -> None:
    problems = watch_console(page)
    page.goto(f"{live.url}/sign-in")
    assert violations(page) == []
    sign_in(page, live)
    expect(page.get_by_text(f"Signed in as {AGENT}")).to_be_visible()
    assert violations(page) == []

    page.get_by_role("navigation", name="Main navigation").get_by_role(
        "link", name="Catalogue"
    ).click()
    expect(page.get_by_role("heading", name="4 datasets", level=2)).to_be_visible()
    assert violations(page) == []

    # htmx swaps the results in place: a mark left on the window survives the search.
    page.evaluate("() => { window.notReloaded = true }")
    page.get_by_label("Search the catalogue").fill("Einwohner")
    page.get_by_label("Search the catalogue").press("Enter")
    expect(page.get_by_role("heading", name="1 dataset", level=2)).to_be_visible()
    expect(page).to_have_url(re.compile(r"/catalogue\?q=Einwohner"))
    assert page.evaluate("() => window.notReloaded") is True
    expect(page.get_by_role("status")).to_have_text("1 dataset found")

    # A facet narrows the search, keyboard focus staying on the box just ticked.
    page.get_by_label("Search the catalogue").fill("")
    page.get_by_label("Search the catalogue").press("Enter")
    expect(page.get_by_role("heading", name="4 datasets", level=2)).to_be_visible()
    transport = page.get_by_role("checkbox", name=re.compile(r"^Transport"))
    transport.focus()
    page.keyboard.press("Space")
    expect(page.get_by_role("heading", name="1 dataset", level=2)).to_be_visible()
    expect(page.get_by_role("link", name="Public transport stops")).to_be_visible()
    expect(page.get_by_role("checkbox", name=re.compile(r"^Transport"))).to_be_focused()
    assert page.evaluate("() => window.notReloaded") is True
    assert violations(page) == []

    page.get_by_role("checkbox", name=re.compile(r"^Transport")).uncheck()
    expect(page.get_by_role("heading", name="4 datasets", level=2)).to_be_visible()
    page.get_by_role("link", name="Residents by district").click()
    expect(page.get_by_role("heading", name="Residents by district", level=1)).to_be_visible()
    offer = page.get_by_role("article", name="Offer 1")
    expect(offer).to_contain_text(
        "Use: for statistics, EU only, until December 31, 2026, 10 downloads"
    )
    expect(offer).to_contain_text("Not allowed: Redistribution")
    expect(offer).to_contain_text("Required: credit the provider")
    assert violations(page) == []

    page.get_by_role("button", name="Deutsch").click()
    expect(page.locator("html")).to_have_attribute("lang", "de")
    expect(page.get_by_role("heading", name="Einwohner nach Bezirk", level=1)).to_be_visible()
    expect(page.get_by_role("heading", name="Wie Sie ihn nutzen dürfen")).to_be_visible()
    expect(page.get_by_role("article", name="Angebot 1")).to_contain_text(
        "Nutzung: für Statistik, nur EU, bis 31. Dezember 2026, 10 Downloads"
    )
    nav = page.get_by_role("navigation", name="Hauptnavigation")
    expect(nav.get_by_role("link", name="Katalog")).to_be_visible()
    expect(nav.get_by_role("link", name="Startseite")).to_be_visible()
    expect(page.get_by_role("button", name="Deutsch")).to_have_attribute("aria-pressed", "true")
    assert violations(page) == []

    page.get_by_role("button", name="Abmelden").click()
    expect(page.get_by_role("heading", name="Anmelden", level=1)).to_be_visible()
    assert violations(page) == []
    page.goto(f"{live.url}/catalogue")
    expect(page).to_have_url(re.compile(r"/sign-in\?next=/catalogue$"))
    assert problems == []


def test_skip_link_is_the_first_stop_and_moves_focus_to_main(page: Page, live: Live) -> None:
    page.goto(f"{live.url}/sign-in")
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to main content")
    expect(skip).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("main#main")).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.get_by_label("Username")).to_be_focused()


def test_wrong_password_is_announced(page: Page, live: Live) -> None:
    page.goto(f"{live.url}/sign-in")
    page.get_by_label("Username").fill(AGENT)
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("Wrong username or password.")
    assert violations(page) == []
