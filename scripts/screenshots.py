"""The README's screenshots (``make screenshots``): a live node with the sample catalogue, an
agent signed in, and headless Debian Chromium saving ``docs/img/*.png``.

The catalogue search, a dataset's page, and a chat room where two agents have talked.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import httpx
from playwright.sync_api import Browser, Page, sync_playwright

from rhenus.demo.nodes import Fleet
from rhenus.demo.web_sample import create_agent, publish_samples

ROOT = Path(__file__).resolve().parents[1]
IMAGES = ROOT / "docs" / "img"
CHROMIUM = "/usr/bin/chromium"
AGENT, PASSWORD = "max.mustermann", "a-long-password-for-max"
COLLEAGUE, COLLEAGUE_PASSWORD = "erika.schmidt", "a-long-password-for-erika"
CONVERSATION = [
    (AGENT, "Guten Morgen! Die Einwohnerzahlen nach Bezirk sind jetzt im Katalog."),
    (COLLEAGUE, "Danke! Gilt das Angebot auch für das Amt für Statistik Brandenburg?"),
    (AGENT, "Ja: nur für Statistik, nur in der EU, bis Ende 2026."),
]


def main() -> int:
    IMAGES.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as home, Fleet() as fleet:
        node = fleet.start("de-berlin", "Land Berlin", Path(home) / "berlin")
        with httpx.Client(timeout=30) as http:
            node.sign_in(http, "an-admin-password-long-enough")
            publish_samples(http, node.url, node.headers())
            create_agent(http, node.url, node.headers(), AGENT, PASSWORD)
            create_agent(http, node.url, node.headers(), COLLEAGUE, COLLEAGUE_PASSWORD)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
            context = browser.new_context(
                locale="en-GB", viewport={"width": 1280, "height": 860}, device_scale_factor=1
            )
            page = context.new_page()
            sign_in(page, node.url, AGENT, PASSWORD)
            page.goto(f"{node.url}/catalogue?q=Berlin")
            page.screenshot(path=IMAGES / "catalogue.png")
            page.get_by_role("link", name="Residents by district").click()
            page.wait_for_selector("article.offer")
            page.screenshot(path=IMAGES / "dataset.png")
            chat(browser, page, node.url)
            page.screenshot(path=IMAGES / "chat.png")
            browser.close()
    for name in ("catalogue.png", "dataset.png", "chat.png"):
        print(f"saved {(IMAGES / name).relative_to(ROOT)}")
    return 0


def sign_in(page: Page, url: str, username: str, password: str) -> None:
    page.goto(f"{url}/sign-in")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{url}/")


def chat(browser: Browser, page: Page, url: str) -> None:
    """A room of the agent's where a colleague, invited, has answered (in a browser of hers)."""
    page.goto(f"{url}/chat")
    page.get_by_label("Name of the room").fill("Statistik-Team")
    page.get_by_role("button", name="Create the room").click()
    page.get_by_role("link", name="Room settings and invitations").click()
    page.get_by_label("Invite someone").fill(COLLEAGUE)
    page.get_by_role("button", name="Invite", exact=True).click()
    page.wait_for_selector("text=Invitation sent.")
    other = browser.new_context(locale="en-GB").new_page()
    sign_in(other, url, COLLEAGUE, COLLEAGUE_PASSWORD)
    other.goto(f"{url}/chat")
    other.get_by_role("link", name="Statistik-Team").click()
    other.get_by_role("button", name="Accept").click()
    page.get_by_role("link", name="Statistik-Team").first.click()
    page.wait_for_selector(f"text={COLLEAGUE} joined")
    for number, (who, text) in enumerate(CONVERSATION, start=1):
        writer = page if who == AGENT else other
        writer.get_by_label("Message").fill(text)
        writer.get_by_label("Message").press("Enter")
        page.wait_for_function(
            "n => document.querySelectorAll('#timeline li.line-text').length >= n", arg=number
        )
    other.get_by_label("File").set_input_files(
        {"name": "bezirke-2026.csv", "mimeType": "text/csv", "buffer": b"Bezirk;Einwohner\n"}
    )
    other.get_by_role("button", name="Send the file").click()
    page.wait_for_selector("#timeline a[href^='/chat/media/']")
    other.context.close()


if __name__ == "__main__":
    sys.exit(main())
