"""An agent of Paris gets data Berlin offers, in a real browser against two live nodes certified
by a trust anchor: search Paris's catalogue, open Berlin's dataset, request access, watch the
negotiation reach FINALIZED without reloading, download the data through Paris and find the
published bytes; then Paris's administrator sees a verified audit log and the admin page —
with axe-core finding no serious or critical violation on any of these pages."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from rhenus.demo.web_sample import SAMPLES
from tests.web.conftest import AGENT, AGENT_PASSWORD, AXE, PARIS_ADMIN_PASSWORD, Dataspace
from tests.web.test_browser import violations, watch_console


@pytest.fixture
def tls_page(browser: Browser) -> Iterator[Page]:
    """A fresh profile, as the ``page`` fixture, that accepts the nodes' development CA."""
    context = browser.new_context(
        locale="en-GB",
        viewport={"width": 1280, "height": 900},
        ignore_https_errors=True,
        accept_downloads=True,
    )
    context.add_init_script(path=str(AXE))
    opened = context.new_page()
    opened.set_default_timeout(20_000)
    yield opened
    context.close()


def sign_in(page: Page, url: str, username: str, password: str) -> None:
    page.goto(f"{url}/sign-in")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="What's new", level=1)).to_be_visible()


def test_agent_requests_access_to_berlins_dataset_and_downloads_it(
    tls_page: Page, dataspace: Dataspace, tmp_path: Path
) -> None:
    page, paris = tls_page, dataspace.paris
    problems = watch_console(page)
    sign_in(page, paris.url, AGENT, AGENT_PASSWORD)

    page.get_by_role("navigation", name="Main navigation").get_by_role(
        "link", name="Catalogue"
    ).click()
    page.get_by_label("Search the catalogue").fill("Einwohner")
    page.get_by_label("Search the catalogue").press("Enter")
    expect(page.get_by_role("heading", name="1 dataset", level=2)).to_be_visible()
    page.get_by_role("link", name="Residents by district").click()
    expect(page.get_by_role("heading", name="Residents by district", level=1)).to_be_visible()
    berlin_host = dataspace.berlin.url.removeprefix("https://")
    expect(page.locator(".facts")).to_contain_text(berlin_host)
    request = page.get_by_role("region", name="Request access")
    expect(request.get_by_label("Purpose")).to_have_value("statistics")
    assert violations(page) == []

    request.get_by_role("button", name="Request access").click()
    expect(page.get_by_role("heading", name="Request for Residents by district")).to_be_visible()
    # htmx polls the state in place: a mark left on the window survives until FINALIZED.
    page.evaluate("() => { window.notReloaded = true }")
    expect(page.locator("#negotiation-progress .state")).to_have_attribute(
        "data-state", "FINALIZED", timeout=30_000
    )
    expect(page.get_by_role("status")).to_contain_text("State: Finalised")
    assert page.evaluate("() => window.notReloaded") is True
    assert violations(page) == []

    page.get_by_role("button", name="Get the data").click()
    expect(page.get_by_role("heading", name="Transfer of Residents by district")).to_be_visible()
    link = page.get_by_role("link", name="Download the data")
    expect(link).to_be_visible(timeout=30_000)
    assert violations(page) == []
    with page.expect_download() as started:
        link.click()
    download = started.value
    assert download.suggested_filename == "Residents-by-district.csv"
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    assert saved.read_bytes() == SAMPLES[0][1]
    expect(page.locator("#transfer-progress .state")).to_have_attribute(
        "data-state", "COMPLETED", timeout=30_000
    )
    expect(page.get_by_role("status")).to_contain_text("The data arrived complete.")

    page.get_by_role("navigation", name="Main navigation").get_by_role(
        "link", name="Agreements and transfers"
    ).click()
    agreements = page.get_by_role("region", name="Agreements")
    row = agreements.get_by_role("row", name=re.compile("Residents by district"))
    expect(row).to_contain_text("Use: for statistics, EU only, until December 31, 2026")
    expect(row).to_contain_text("Finalised")
    expect(row).to_contain_text("We receive")
    transfers = page.get_by_role("region", name="Transfers")
    expect(transfers.get_by_role("row", name=re.compile("Residents by district"))).to_contain_text(
        "Completed"
    )
    assert violations(page) == []
    assert page.get_by_role("link", name="Administration").count() == 0
    assert problems == []


def test_paris_admin_sees_a_verified_audit_log_and_the_admin_page(
    tls_page: Page, dataspace: Dataspace
) -> None:
    page, paris = tls_page, dataspace.paris
    problems = watch_console(page)
    sign_in(page, paris.url, "admin", PARIS_ADMIN_PASSWORD)
    nav = page.get_by_role("navigation", name="Main navigation")

    nav.get_by_role("link", name="Audit log").click()
    expect(page.get_by_role("heading", name="Audit log", level=1)).to_be_visible()
    expect(page.locator("#audit-verdict")).to_have_attribute("data-verified", "true")
    expect(page.locator("#audit-verdict")).to_contain_text("Chain verified")
    assert violations(page) == []

    nav.get_by_role("link", name="Administration").click()
    expect(page.get_by_role("heading", name="Administration", level=1)).to_be_visible()
    peers = page.get_by_role("region", name="Federation peers")
    expect(peers).to_contain_text(dataspace.berlin.url)
    expect(page.locator("#compliance-status")).to_contain_text("held, issued by")
    assert violations(page) == []

    page.get_by_label("Username").fill("paul.martin")
    page.get_by_role("button", name="Create the account").click()
    expect(page.get_by_role("status")).to_contain_text("Account paul.martin created.")
    expect(page.locator("#one-time-password")).not_to_be_empty()
    assert violations(page) == []

    page.get_by_role("button", name="Deutsch").click()
    expect(page.get_by_role("heading", name="Verwaltung", level=1)).to_be_visible()
    expect(page.get_by_role("region", name="Vertrauensstatus")).to_contain_text(
        "Konformitätsnachweis"
    )
    assert violations(page) == []
    assert problems == []


def test_a_refused_request_shows_terminated_with_the_providers_reason(
    tls_page: Page, dataspace: Dataspace
) -> None:
    """The offer is for statistics only: asking for it to train AI models is refused."""
    page, paris = tls_page, dataspace.paris
    sign_in(page, paris.url, AGENT, AGENT_PASSWORD)
    page.goto(f"{paris.url}/catalogue?q=Einwohner")
    page.get_by_role("link", name="Residents by district").click()
    request = page.get_by_role("region", name="Request access")
    request.get_by_label("Purpose").select_option("ai-training")
    request.get_by_role("button", name="Request access").click()
    expect(page.locator("#negotiation-progress .state")).to_have_attribute(
        "data-state", "TERMINATED", timeout=30_000
    )
    status = page.get_by_role("status")
    expect(status).to_contain_text("State: Stopped")
    expect(status).to_contain_text("The request was refused or stopped.")
    expect(status.locator(".reasons li").first).to_contain_text("purpose")
    expect(page.get_by_role("button", name="Get the data")).to_have_count(0)
    assert violations(page) == []
