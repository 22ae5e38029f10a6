"""The federated catalogue: a node crawls its peers' DSP catalogs (signed both ways) and finds
what they let it see; withdrawn datasets disappear; a failing peer fails alone."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from rhenus.dataspace.catalogue.crawler import Crawler
from rhenus.dataspace.catalogue.federation_api import crawler_of, scheduled_crawls
from tests.dataspace.test_catalogue import publish
from tests.support.federation import Federation, FedNode


async def crawl(member: FedNode) -> dict[str, dict[str, Any]]:
    async with member.http() as http:
        answer = await http.post("/api/v1/catalogue/crawl", headers=await member.admin_headers())
    assert answer.status_code == 200, answer.text
    return {report["did"]: report for report in answer.json()}


async def found(member: FedNode, **params: Any) -> list[dict[str, Any]]:
    async with member.http() as http:
        answer = await http.get(
            "/api/v1/catalogue/search", params=params, headers=await member.admin_headers()
        )
    assert answer.status_code == 200, answer.text
    hits: list[dict[str, Any]] = answer.json()["hits"]
    return hits


async def test_crawl_finds_exactly_what_the_peer_shows_and_forgets_withdrawn(
    fed: Federation,
) -> None:
    _, paris, berlin, zurich = fed.nodes
    await publish(berlin, "Alle")
    eu_only = await publish(berlin, "Nur EU", access={"eu_only": True})
    await publish(berlin, "Nur Zürich", access={"participants": [zurich.did]})

    reports = await crawl(paris)  # peers learned from the anchor's registry
    assert set(reports) == {berlin.did, zurich.did}
    assert reports[berlin.did]["status"] == "ok"
    assert reports[berlin.did]["added"] == 2
    hits = await found(paris, origin=berlin.did)
    assert sorted(h["title"]["en"] for h in hits) == ["Alle", "Nur EU"]
    assert {h["country"] for h in hits} == {"DE"}
    assert all(h["fetched_at"] and h["origin"] == berlin.did for h in hits)

    await crawl(zurich)
    zurich_sees = {h["title"]["en"] for h in await found(zurich)}
    assert zurich_sees == {"Alle", "Nur Zürich"}

    async with berlin.http() as http:
        await http.post(
            f"/api/v1/datasets/{eu_only}/withdraw", headers=await berlin.admin_headers()
        )
    reports = await crawl(paris)
    assert reports[berlin.did]["removed"] == 1
    assert [h["title"]["en"] for h in await found(paris, origin=berlin.did)] == ["Alle"]


async def test_a_peer_that_is_down_does_not_stop_the_crawl(fed: Federation) -> None:
    _, paris, berlin, _ = fed.nodes
    await publish(berlin, "Haltestellen")
    async with paris.http() as http:
        added = await http.post(
            "/api/v1/catalogue/peers",
            json={"url": "https://down.test"},
            headers=await paris.admin_headers(),
        )
        assert added.status_code == 201, added.text
    reports = await crawl(paris)
    down = reports["did:web:down.test"]
    assert down["status"] == "error"
    assert "down.test" in down["error"]
    assert reports[berlin.did]["status"] == "ok"
    assert [h["title"]["en"] for h in await found(paris)] == ["Haltestellen"]
    async with paris.http() as http:
        peers = await http.get("/api/v1/catalogue/peers", headers=await paris.admin_headers())
    by_did = {p["did"]: p for p in peers.json()}
    assert by_did["did:web:down.test"]["crawl_status"] == "error"
    assert by_did[berlin.did]["entry_count"] == 1


class Tampering(httpx.AsyncBaseTransport):
    """Passes requests on, and changes one byte of what the victim host answers (a
    man-in-the-middle who got past TLS), or replays its first answer to every later request."""

    def __init__(self, inner: httpx.AsyncBaseTransport, host: str, mode: str) -> None:
        self.inner, self.host, self.mode = inner, host, mode
        self.first: httpx.Response | None = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if request.url.host != self.host or "/dsp/" not in request.url.path:
            return response
        body = await response.aread()
        if self.mode == "alter":
            body = body.replace(b"Haltestellen", b"Haltestellex")
        elif self.first is None:
            self.first = httpx.Response(
                response.status_code, headers=response.headers, content=body
            )
        else:
            return httpx.Response(
                self.first.status_code, headers=self.first.headers, content=self.first.content
            )
        return httpx.Response(response.status_code, headers=response.headers, content=body)


@pytest.mark.parametrize("mode", ["alter", "replay"])
async def test_a_tampered_or_replayed_catalog_is_refused(fed: Federation, mode: str) -> None:
    _, paris, berlin, _ = fed.nodes
    await publish(berlin, "Haltestellen")
    honest = crawler_of(paris.app)
    tampering = Tampering(fed.router, httpx.URL(berlin.url).host, mode)
    crawler = Crawler(paris.node, honest.resolver, honest.checker, tampering)
    if mode == "replay":
        assert (await crawler.crawl_all())[0].status == "ok"  # records Berlin's answer
        await publish(berlin, "Neue Haltestellen")
    reports = {r.did: r for r in await crawler.crawl_all()}
    assert reports[berlin.did].status == "error"
    assert "response signature rejected" in reports[berlin.did].error
    expected = [] if mode == "alter" else ["Haltestellen"]  # nothing forged is stored
    assert [h["title"]["en"] for h in await found(paris, origin=berlin.did)] == expected


async def test_a_revoked_participant_leaves_the_catalogue(fed: Federation) -> None:
    anchor, paris, berlin, _ = fed.nodes
    await publish(berlin, "Brücken")
    await crawl(paris)
    assert len(await found(paris, origin=berlin.did)) == 1
    async with anchor.http() as http:
        revoked = await http.post(
            "/api/v1/trust/revocations",
            json={"did": berlin.did},
            headers=await anchor.admin_headers(),
        )
        assert revoked.status_code == 200, revoked.text
    reports = await crawl(paris)
    assert berlin.did not in reports
    assert await found(paris, origin=berlin.did) == []


async def test_the_schedule_crawls_without_being_asked(fed: Federation) -> None:
    _, paris, berlin, _ = fed.nodes
    await publish(berlin, "Spielplätze")
    async with scheduled_crawls(paris.app, every=1):
        for _ in range(100):
            if await found(paris, q="Spielplatz"):
                break
            await asyncio.sleep(0.1)
    assert [h["title"]["en"] for h in await found(paris, q="Spielplatz")] == ["Spielplätze"]


async def test_peer_management_refuses_bad_input(fed: Federation) -> None:
    paris = fed.nodes[1]
    headers = await paris.admin_headers()
    async with paris.http() as http:
        for url, status in (("ftp://x.test", 422), ("not a url", 422), (paris.url, 409)):
            answer = await http.post("/api/v1/catalogue/peers", json={"url": url}, headers=headers)
            assert answer.status_code == status, (url, answer.text)
            assert answer.headers["content-type"].startswith("application/problem+json")
        missing = await http.delete("/api/v1/catalogue/peers/did:web:nobody.test", headers=headers)
        assert missing.status_code == 404
        assert (await http.get("/api/v1/catalogue/peers")).status_code == 401
