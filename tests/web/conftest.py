"""Fixtures of the browser tests: a live node (a real ``rhenus run`` process) with the sample
catalogue and an agent, and headless Debian Chromium driven by Playwright (never a browser that
Playwright downloads: ``executable_path`` is the system's)."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from rhenus.demo.nodes import Fleet, LiveNode
from rhenus.demo.web_sample import create_agent, publish_samples

CHROMIUM = Path("/usr/bin/chromium")
AXE = (
    Path(__file__).resolve().parents[1] / "e2e" / "js" / "node_modules" / "axe-core" / "axe.min.js"
)
AGENT = "jeanne.dupont"
AGENT_PASSWORD = "a-long-password-for-jeanne"


@dataclass
class Live:
    node: LiveNode
    dataset_ids: list[str]

    @property
    def url(self) -> str:
        return self.node.url


@pytest.fixture(scope="module")
def live() -> Iterator[Live]:
    with tempfile.TemporaryDirectory() as root, Fleet() as fleet:
        node = fleet.start("de-berlin", "Land Berlin", Path(root) / "berlin")
        with httpx.Client(timeout=30) as http:
            node.sign_in(http, "an-admin-password-long-enough")
            ids = publish_samples(http, node.url, node.headers())
            create_agent(http, node.url, node.headers(), AGENT, AGENT_PASSWORD)
        yield Live(node, ids)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert CHROMIUM.exists(), "install Debian's chromium (make test-services does)"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh browser profile (no cookies) in English, with axe-core in every document.

    axe is added as an init script, which the page's Content-Security-Policy does not govern;
    the app's own scripts still are (the test fails on any CSP report in the console)."""
    context = browser.new_context(locale="en-GB", viewport={"width": 1280, "height": 900})
    context.add_init_script(path=str(AXE))
    opened = context.new_page()
    opened.set_default_timeout(15_000)
    yield opened
    context.close()


# -- two live nodes federated by a trust anchor (tests/web/test_browser_dataspace.py) ---------
PARIS_ADMIN_PASSWORD = "paris-admin-password-long"
FACTS = {
    "paris": {
        "legal_name": "Ministère de l'Intérieur",
        "vat_id": "FR40303265045",
        "headquarters": "FR-75C",
        "legal_address": "FR-75C",
    },
    "berlin": {
        "legal_name": "Land Berlin",
        "vat_id": "DE136695976",
        "headquarters": "DE-BE",
        "legal_address": "DE-BE",
    },
}


@dataclass
class Dataspace:
    """Paris (where the agent works) and Berlin (which offers the sample datasets), both
    certified by a trust anchor; Paris has crawled Berlin's catalogue."""

    paris: LiveNode
    berlin: LiveNode
    dataset_ids: list[str]


@pytest.fixture(scope="module")
def dataspace() -> Iterator[Dataspace]:
    import json

    from rhenus.core.tls import client_ssl_context
    from rhenus.demo.nodes import dev_tls, free_port
    from rhenus.trust.did import did_for_url

    with tempfile.TemporaryDirectory(prefix="rhenus-web-") as folder, Fleet() as fleet:
        root = Path(folder)
        ca_file, tls = dev_tls(root / "ca", ["anchor", "paris", "berlin"])
        port = free_port()
        trusted = {"RHENUS_TRUSTED_ANCHORS": json.dumps([did_for_url(f"https://127.0.0.1:{port}")])}
        anchor_env = {**trusted, **tls["anchor"], "RHENUS_TRUST_ANCHOR": "true"}
        fleet.start("anchor", "Anchor", root / "anchor", port=port, extra_env=anchor_env)
        anchor_url = f"https://127.0.0.1:{port}"
        nodes = {}
        with httpx.Client(timeout=60, verify=client_ssl_context(ca_file)) as http:
            for key, name in (("paris", "fr-mininterieur"), ("berlin", "de-berlin")):
                node = fleet.start(
                    name, FACTS[key]["legal_name"], root / key, extra_env={**trusted, **tls[key]}
                )
                node.sign_in(http, PARIS_ADMIN_PASSWORD if key == "paris" else f"{key}-password-1")
                api = f"{node.url}/api/v1/trust"
                http.post(
                    f"{api}/participant", headers=node.headers(), json=FACTS[key]
                ).raise_for_status()
                http.post(
                    f"{api}/compliance-requests",
                    headers=node.headers(),
                    json={"anchor_url": anchor_url},
                ).raise_for_status()
                nodes[key] = node
            paris, berlin = nodes["paris"], nodes["berlin"]
            ids = publish_samples(http, berlin.url, berlin.headers())
            create_agent(http, paris.url, paris.headers(), AGENT, AGENT_PASSWORD)
            http.post(
                f"{paris.url}/api/v1/catalogue/crawl", headers=paris.headers()
            ).raise_for_status()
        yield Dataspace(paris, berlin, ids)
