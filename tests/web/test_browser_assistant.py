"""The assistant in a real browser, on a live node with its local models: a collection is
created, a PDF uploaded and its ingest followed until indexed (htmx polling), then a question
is asked from it — the answer streams in over Server-Sent Events — and a source is clicked to
read its passage (document and page); axe-core finds no serious or critical violation."""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from rhenus.demo.nodes import Fleet
from rhenus.demo.web_sample import create_agent
from tests.assistant import files
from tests.web.conftest import Live
from tests.web.test_browser import violations, watch_console

AGENT = "claire.petit"
PASSWORD = "a-long-password-for-claire"
PAGES = [
    [
        "Accueil du public",
        "Le guichet est ouvert du lundi au vendredi de neuf heures à seize heures.",
    ],
    [
        "Passeport biométrique",
        "Le délai de délivrance d'un passeport est de trois semaines après le dépôt.",
        "Le timbre fiscal d'un passeport pour un adulte coûte 86 euros.",
    ],
]


@pytest.fixture(scope="module")
def live_assistant() -> Iterator[Live]:
    """A node whose answers on the web page are short (the model is small and the CPU shared)."""
    with tempfile.TemporaryDirectory() as root, Fleet() as fleet:
        node = fleet.start(
            "fr-prefecture",
            "Préfecture du Rhône",
            Path(root) / "lyon",
            extra_env={"RHENUS_WEB_ASSISTANT_MAX_TOKENS": "24"},
        )
        with httpx.Client(timeout=30) as http:
            node.sign_in(http, "an-admin-password-long-enough")
            create_agent(http, node.url, node.headers(), AGENT, PASSWORD)
        yield Live(node, [])


def test_ask_from_an_uploaded_document_and_read_the_cited_source(
    page: Page, live_assistant: Live
) -> None:
    live = live_assistant
    problems = watch_console(page)
    page.goto(f"{live.url}/assistant/collections")
    page.get_by_label("Username").fill(AGENT)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Collections", level=1)).to_be_visible()
    assert violations(page) == []

    page.get_by_label("Name").fill("Guides de la préfecture")
    page.get_by_role("button", name="Create the collection").click()
    expect(page.get_by_role("heading", name="Guides de la préfecture", level=1)).to_be_visible()
    assert violations(page) == []
    page.get_by_label("File").set_input_files(
        {"name": "guide-passeport.pdf", "mimeType": "application/pdf", "buffer": files.pdf(PAGES)}
    )
    page.get_by_role("button", name="Upload").click()
    row = page.get_by_role("row", name=re.compile("guide-passeport.pdf"))
    expect(row).to_be_visible()
    # htmx asks for the status every second until the ingest has ended.
    expect(row).to_contain_text(re.compile(r"Indexed: \d+ passages?"), timeout=120_000)
    assert violations(page) == []

    page.get_by_role("link", name="Ask the assistant").click()
    expect(page.get_by_role("heading", name="Assistant", level=1)).to_be_visible()
    assert violations(page) == []
    page.evaluate(
        """() => {
          window.notReloaded = true;
          window.pieces = 0;
          document.body.addEventListener('htmx:sseMessage', (e) => {
            if (e.detail.type === 'token') { window.pieces += 1; }
          });
        }"""
    )
    page.get_by_label("Your question").fill("Combien coûte le timbre fiscal d'un passeport ?")
    page.get_by_label("Answer from").select_option(
        label="The documents of “Guides de la préfecture”"
    )
    page.get_by_role("button", name="Ask").click()
    conversation = page.locator("#conversation")
    expect(conversation).to_contain_text("Combien coûte le timbre fiscal d'un passeport ?")
    answer = conversation.locator(".answer[aria-busy='false']")
    expect(answer).to_be_visible(timeout=120_000)
    assert page.evaluate("() => window.pieces") >= 1  # the answer came in pieces, streamed
    expect(answer.locator(".answer-text")).not_to_be_empty()
    expect(page.get_by_label("Your question")).to_have_value("")

    source = answer.get_by_role("link", name="[1] guide-passeport.pdf, page 2")
    expect(source).to_be_visible()
    source.click()
    panel = page.locator("#source-panel")
    expect(panel).to_contain_text("guide-passeport.pdf")
    expect(panel).to_contain_text("page 2")
    expect(panel).to_contain_text("86 euros")
    assert page.evaluate("() => window.notReloaded") is True
    assert violations(page) == []

    # A second question carries the conversation so far.
    history = page.locator("#history").input_value()
    assert "timbre fiscal" in history
    assert '"assistant"' in history
    assert problems == []
