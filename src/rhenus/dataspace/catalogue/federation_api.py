"""Routes of the federated catalogue: the peers followed, crawls, and search for agents."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated

from fastapi import FastAPI, Query, Request
from pydantic import BaseModel, ConfigDict

from rhenus.accounts.deps import AdminUser, CurrentUser
from rhenus.core.http import api_router
from rhenus.core.node import NodeDep
from rhenus.dataspace.catalogue import crawler as crawling
from rhenus.dataspace.catalogue.crawler import Crawler, CrawlReport
from rhenus.dataspace.catalogue.schemas import SearchQuery, SearchResult
from rhenus.dataspace.catalogue.search import search

router = api_router(tags=["catalogue"])
log = logging.getLogger(__name__)


class PeerIn(BaseModel):
    url: str


class PeerOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    did: str
    url: str
    source: str
    added_at: datetime
    crawled_at: datetime | None
    crawl_status: str
    crawl_error: str
    entry_count: int


def crawler_of(app: FastAPI) -> Crawler:
    """The app's crawler (one per app: its lock keeps crawls from overlapping)."""
    found: Crawler | None = getattr(app.state, "crawler", None)
    if found is None:
        found = Crawler(
            app.state.node,
            app.state.did_resolver,
            app.state.compliance,
            app.state.federation_transport,
        )
        app.state.crawler = found
    return found


@contextlib.asynccontextmanager
async def scheduled_crawls(app: FastAPI, every: int) -> AsyncIterator[None]:
    """Crawl the peers every ``every`` seconds (the first time shortly after start)."""

    async def loop() -> None:
        delay = min(30, every)
        while True:
            await asyncio.sleep(delay)
            delay = every
            try:
                reports = await crawler_of(app).crawl_all()
                log.info("catalogue crawl", extra={"peers": len(reports)})
            except Exception:  # a failed round must not end the schedule
                log.exception("catalogue crawl failed")

    task = asyncio.create_task(loop()) if every > 0 else None
    try:
        yield
    finally:
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


@router.get("/api/v1/catalogue/search", response_model=SearchResult)
async def search_catalogue(
    query: Annotated[SearchQuery, Query()], node: NodeDep, _: CurrentUser
) -> SearchResult:
    """GET /api/v1/catalogue/search — our datasets and those peers showed us: full text
    (French, German, English stems), facets, sort by relevance or date, pages."""
    return await search(node.db, query)


@router.get("/api/v1/catalogue/peers", response_model=list[PeerOut])
async def list_peers(node: NodeDep, _: AdminUser) -> list[PeerOut]:
    """GET /api/v1/catalogue/peers — the participants whose catalogs this node crawls."""
    async with node.db.session() as session:
        return [PeerOut.model_validate(p) for p in await crawling.list_peers(session)]


@router.post("/api/v1/catalogue/peers", response_model=PeerOut, status_code=201)
async def add_peer(body: PeerIn, node: NodeDep, admin: AdminUser) -> PeerOut:
    """POST /api/v1/catalogue/peers — follow a participant (by its public URL)."""
    async with node.db.transaction() as session:
        peer = await crawling.add_peer(session, node=node, actor=admin.actor, url=body.url)
        return PeerOut.model_validate(peer)


@router.delete("/api/v1/catalogue/peers/{did}", status_code=204)
async def remove_peer(did: str, node: NodeDep, admin: AdminUser) -> None:
    """DELETE /api/v1/catalogue/peers/{did} — stop following it and forget its entries."""
    async with node.db.transaction() as session:
        await crawling.remove_peer(session, node=node, actor=admin.actor, did=did)


@router.post("/api/v1/catalogue/crawl", response_model=list[CrawlReport])
async def crawl(request: Request, _: AdminUser) -> list[CrawlReport]:
    """POST /api/v1/catalogue/crawl — crawl every peer now; one report per peer."""
    return await crawler_of(request.app).crawl_all()
