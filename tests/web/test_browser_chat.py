"""Two agents chat live in two browsers (two contexts of Debian's Chromium) on a live node:
a room is created, the second agent invited, the invitation accepted, and each message and file
sent by one appears in the other's timeline without a reload — the node's Matrix sync feeding
Server-Sent Events — with axe-core finding no serious or critical violation on any page."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from rhenus.demo.web_sample import create_agent
from tests.web.conftest import AGENT, AGENT_PASSWORD, AXE, Live
from tests.web.test_browser import violations, watch_console

SECOND = "paul.martin"
SECOND_PASSWORD = "a-long-password-for-paul"


@pytest.fixture(scope="module")
def second_agent(live: Live) -> str:
    with httpx.Client(timeout=30) as http:
        create_agent(http, live.url, live.node.headers(), SECOND, SECOND_PASSWORD)
    return SECOND


def open_page(browser: Browser, locale: str = "en-GB") -> Page:
    context = browser.new_context(locale=locale, viewport={"width": 1280, "height": 900})
    context.add_init_script(path=str(AXE))
    opened = context.new_page()
    opened.set_default_timeout(15_000)
    return opened


@pytest.fixture
def paul_page(browser: Browser) -> Iterator[Page]:
    opened = open_page(browser)
    yield opened
    opened.context.close()


def sign_in_as(page: Page, live: Live, username: str, password: str, target: str) -> None:
    page.goto(f"{live.url}{target}")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(re.escape(target) + "$"))


def test_two_agents_chat_live_in_two_browsers(
    page: Page, paul_page: Page, live: Live, second_agent: str
) -> None:
    jeanne, paul = page, paul_page
    problems = watch_console(jeanne) + watch_console(paul)
    sign_in_as(jeanne, live, AGENT, AGENT_PASSWORD, "/chat")
    expect(jeanne.get_by_role("heading", name="Chat", level=1)).to_be_visible()
    assert violations(jeanne) == []

    jeanne.get_by_label("Name of the room").fill("Dossier <Mairie>")
    jeanne.get_by_role("button", name="Create the room").click()
    expect(jeanne.get_by_role("heading", name="Dossier <Mairie>", level=1)).to_be_visible()
    expect(jeanne.get_by_role("log")).to_contain_text(f"{AGENT} joined")
    assert violations(jeanne) == []

    jeanne.get_by_role("link", name="Room settings and invitations").click()
    expect(jeanne.get_by_role("heading", name="Room settings", level=1)).to_be_visible()
    expect(
        jeanne.get_by_label("Members of the organisation only (no external users)")
    ).to_be_checked()
    assert violations(jeanne) == []
    jeanne.get_by_label("Invite someone").fill(second_agent)
    jeanne.get_by_role("button", name="Invite", exact=True).click()
    expect(jeanne.get_by_role("status")).to_have_text("Invitation sent.")
    expect(jeanne.get_by_role("region", name="Members")).to_contain_text(f"{second_agent} Invited")

    sign_in_as(paul, live, SECOND, SECOND_PASSWORD, "/chat")
    rooms = paul.get_by_role("navigation", name="Rooms")
    expect(rooms).to_contain_text("Dossier <Mairie>")
    expect(rooms).to_contain_text("Invitation")
    rooms.get_by_role("link", name="Dossier <Mairie>").click()
    expect(paul.get_by_text(f"{AGENT} invites you to this room.")).to_be_visible()
    assert violations(paul) == []
    paul.get_by_role("button", name="Accept").click()
    expect(paul.get_by_role("heading", name="Dossier <Mairie>", level=1)).to_be_visible()

    jeanne.get_by_role("link", name="Dossier <Mairie>").first.click()
    expect(jeanne.get_by_role("log")).to_contain_text(f"{second_agent} joined")
    for opened in (jeanne, paul):
        opened.evaluate("() => { window.notReloaded = true }")

    # Jeanne writes; Paul's timeline shows it without a reload, escaped as text.
    jeanne.get_by_label("Message").fill("Bonjour Paul, <b>le dossier</b> est prêt ?")
    jeanne.get_by_label("Message").press("Enter")
    expect(paul.get_by_role("log")).to_contain_text("Bonjour Paul, <b>le dossier</b> est prêt ?")
    expect(jeanne.get_by_role("log")).to_contain_text("Bonjour Paul, <b>le dossier</b> est prêt ?")
    expect(jeanne.get_by_label("Message")).to_have_value("")
    expect(jeanne.get_by_label("Message")).to_be_focused()
    assert paul.locator("#timeline b").count() == 0

    paul.get_by_label("Message").fill("Oui, je l'envoie.")
    paul.get_by_role("button", name="Send", exact=True).click()
    expect(jeanne.get_by_role("log")).to_contain_text("Oui, je l'envoie.")

    paul.get_by_label("File").set_input_files(
        {
            "name": "compte-rendu.txt",
            "mimeType": "text/plain",
            "buffer": "Réunion du 3 décembre".encode(),
        }
    )
    paul.get_by_role("button", name="Send the file").click()
    expect(paul.get_by_role("status")).to_have_text("File sent.")
    link = jeanne.get_by_role("log").get_by_role("link", name="compte-rendu.txt")
    expect(link).to_be_visible()
    with jeanne.expect_download() as download:
        link.click()
    path = download.value.path()
    assert path is not None
    with open(path, encoding="utf-8") as saved:
        assert saved.read() == "Réunion du 3 décembre"

    for opened in (jeanne, paul):
        assert opened.evaluate("() => window.notReloaded") is True
        lines = opened.locator("#timeline li.line-text")
        expect(lines).to_have_count(2)
        assert violations(opened) == []
    assert problems == []

    # Paul's home page lists what is new in the room, newest first, the file by its name.
    paul.goto(f"{live.url}/")
    news = paul.get_by_role("region", name="Latest messages")
    expect(news.get_by_role("row").nth(1)).to_contain_text("File: compte-rendu.txt")
    expect(news).to_contain_text("Bonjour Paul, <b>le dossier</b> est prêt ?")
    expect(news.get_by_role("link", name="Dossier <Mairie>").first).to_be_visible()
    assert violations(paul) == []


def test_the_chat_speaks_german(page: Page, live: Live) -> None:
    sign_in_as(page, live, AGENT, AGENT_PASSWORD, "/chat")
    page.get_by_role("button", name="Deutsch").click()
    expect(page.get_by_role("heading", name="Neuer Raum")).to_be_visible()
    nav = page.get_by_role("navigation", name="Hauptnavigation")
    expect(nav.get_by_role("link", name="Chat")).to_have_attribute("aria-current", "page")
    expect(nav.get_by_role("link", name="Assistent")).to_be_visible()
    expect(page.get_by_label("Name des Raums")).to_be_visible()
    assert violations(page) == []
