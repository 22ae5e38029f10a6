"""The federated catalogue: the peers this node follows, and crawling their DSP catalogs.

Peers are added by an administrator or learned from the participant registry of each trust
anchor the node trusts. A crawl asks each peer for its catalog as a signed request, checks the
peer's compliance and the signature of every page, and makes the peer's entries exactly what
it showed: withdrawn (or no longer visible) datasets disappear. Peers are crawled
concurrently and independently: one that is down or refuses only records its error.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import timedelta

import httpx
from pydantic import BaseModel
from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from rhenus.core.db import utcnow
from rhenus.core.errors import Conflict, NotFound, Problem
from rhenus.core.node import Node
from rhenus.dataspace.catalogue import entries
from rhenus.dataspace.catalogue.client import fetch_catalog
from rhenus.dataspace.catalogue.models import CataloguePeer
from rhenus.trust.client import InsecureTarget, PeerRefused
from rhenus.trust.did import DidResolver, base_url_for_did, did_for_url
from rhenus.trust.verifier import ComplianceChecker

LEASE = timedelta(minutes=10)
CONCURRENCY = 4


class CrawlReport(BaseModel):
    did: str
    status: str  # ok | error | busy
    error: str = ""
    added: int = 0
    updated: int = 0
    removed: int = 0
    total: int = 0
    skipped: int = 0
    seconds: float = 0.0


@dataclass
class Crawler:
    """Crawls on behalf of a node, with its DID resolver and compliance checker."""

    node: Node
    resolver: DidResolver
    checker: ComplianceChecker
    transport: httpx.AsyncBaseTransport | None = None
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def own_did(self) -> str:
        return did_for_url(self.node.settings.public_url)

    async def crawl_all(self) -> list[CrawlReport]:
        """Learn peers from the registries (if enabled), then crawl every peer."""
        async with self._lock:
            if self.node.settings.catalogue_peers_from_registry:
                await self.learn_from_registries()
            async with self.node.db.session() as session:
                peers = list((await session.scalars(select(CataloguePeer.did))).all())
            limit = asyncio.Semaphore(CONCURRENCY)

            async def one(did: str) -> CrawlReport:
                async with limit:
                    return await self.crawl_peer(did)

            reports = list(await asyncio.gather(*(one(did) for did in peers)))
            if sum(r.added + r.updated + r.removed for r in reports) >= entries.COMPACT_AFTER:
                await entries.compact(self.node.db)
            return reports

    async def crawl_peer(self, did: str) -> CrawlReport:
        started = time.monotonic()
        if not await self._take_lease(did):
            return CrawlReport(did=did, status="busy", error="another worker is crawling it")
        report = CrawlReport(did=did, status="ok")
        try:
            async with self.node.db.session() as session:
                peer = await session.get(CataloguePeer, did)
            if peer is None:
                raise NotFound(f"no peer {did[:120]}")
            compliance = await self.checker.check(did)
            catalog = await fetch_catalog(
                self.node.settings,
                self.node.keyring,
                peer.url,
                resolver=self.resolver,
                transport=self.transport,
            )
            now = utcnow()
            fields = []
            for document in catalog.get("dataset", []):
                try:
                    fields.append(
                        entries.entry_fields(
                            document, origin=did, country=compliance.country, fetched_at=now
                        )
                    )
                except entries.MalformedDataset:
                    report.skipped += 1
            async with self.node.db.transaction() as session:
                changed = await entries.replace_origin(session, origin=did, fields=fields)
                report.added, report.updated = changed.added, changed.updated
                report.removed, report.total = changed.removed, changed.total
                await self._finish(session, did, report)
        except (Problem, PeerRefused, InsecureTarget, httpx.HTTPError, ValueError) as exc:
            report.status = "error"
            report.error = (getattr(exc, "detail", "") or str(exc) or type(exc).__name__)[:500]
            async with self.node.db.transaction() as session:
                await self._finish(session, did, report)
        report.seconds = round(time.monotonic() - started, 3)
        return report

    async def _take_lease(self, did: str) -> bool:
        now = utcnow()
        async with self.node.db.transaction() as session:
            taken = await session.execute(
                update(CataloguePeer)
                .where(
                    CataloguePeer.did == did,
                    or_(CataloguePeer.lease_until.is_(None), CataloguePeer.lease_until < now),
                )
                .values(lease_until=now + LEASE)
            )
            return bool(getattr(taken, "rowcount", 0))

    async def _finish(self, session: AsyncSession, did: str, report: CrawlReport) -> None:
        values: dict[str, object] = {
            "crawled_at": utcnow(),
            "crawl_status": report.status,
            "crawl_error": report.error,
            "lease_until": None,
        }
        if report.status == "ok":
            values["entry_count"] = report.total
        await session.execute(
            update(CataloguePeer).where(CataloguePeer.did == did).values(**values)
        )
        await self.node.audit.record(
            session,
            actor="system:crawler",
            action="catalogue.peer.crawled",
            object_type="peer",
            object_id=did,
            details=report.model_dump(exclude={"did", "seconds"}),
        )

    async def learn_from_registries(self) -> int:
        """Follow every non-revoked participant of the trusted anchors' registries (and stop
        following those a registry no longer lists, or lists as revoked); returns how many
        peers were added."""
        listed: dict[str, bool] = {}
        reachable_registries = 0
        for anchor in self.node.settings.trusted_anchors:
            insecure = self.node.settings.federation_insecure_http
            url = base_url_for_did(anchor, allow_http_loopback=insecure)
            try:
                response = await self.resolver.client.get(f"{url}/api/v1/trust/participants")
                rows = response.json() if response.status_code == 200 else None
            except (httpx.HTTPError, ValueError):
                rows = None
            if not isinstance(rows, list):
                continue
            reachable_registries += 1
            for row in rows:
                if isinstance(row, dict) and isinstance(row.get("did"), str):
                    listed[row["did"]] = listed.get(row["did"], False) or not row.get("revoked")
        added = 0
        async with self.node.db.transaction() as session:
            known = {p.did: p for p in (await session.scalars(select(CataloguePeer))).all()}
            for did, active in listed.items():
                if active and did not in known and did != self.own_did:
                    insecure = self.node.settings.federation_insecure_http
                    url = base_url_for_did(did, allow_http_loopback=insecure)
                    session.add(_new_peer(did, url, "registry"))
                    added += 1
            if reachable_registries:  # an unreachable registry must not empty the catalogue
                for did, peer in known.items():
                    if peer.source == "registry" and not listed.get(did, False):
                        await session.delete(peer)
                        await entries.remove_origin(session, origin=did)
        return added


def _new_peer(did: str, url: str, source: str) -> CataloguePeer:
    return CataloguePeer(
        did=did,
        url=url,
        source=source,
        added_at=utcnow(),
        crawled_at=None,
        crawl_status="never",
        crawl_error="",
        entry_count=0,
        lease_until=None,
    )


async def add_peer(session: AsyncSession, *, node: Node, actor: str, url: str) -> CataloguePeer:
    """Follow the node at ``url`` (its public URL; its DID is derived from it)."""
    url = url.rstrip("/")
    try:
        did = did_for_url(url)
    except ValueError as exc:
        raise Problem(str(exc), status=422, kind="invalid-peer", title="Invalid peer") from exc
    if not url.startswith(("https://", "http://")):
        raise Problem("a peer URL starts with https://", status=422, kind="invalid-peer")
    if did == did_for_url(node.settings.public_url):
        raise Conflict("this is the node itself")
    peer = await session.get(CataloguePeer, did)
    if peer is None:
        peer = _new_peer(did, url, "admin")
        session.add(peer)
    else:
        peer.url, peer.source = url, "admin"  # an admin's choice outlives the registry's
    await node.audit.record(
        session, actor=actor, action="catalogue.peer.added", object_type="peer", object_id=did
    )
    await session.flush()
    return peer


async def remove_peer(session: AsyncSession, *, node: Node, actor: str, did: str) -> None:
    """Stop following a peer and forget what it published."""
    peer = await session.get(CataloguePeer, did)
    if peer is None:
        raise NotFound(f"no peer {did[:120]}")
    await session.delete(peer)
    await entries.remove_origin(session, origin=did)
    await node.audit.record(
        session, actor=actor, action="catalogue.peer.removed", object_type="peer", object_id=did
    )


async def list_peers(session: AsyncSession) -> list[CataloguePeer]:
    return list((await session.scalars(select(CataloguePeer).order_by(CataloguePeer.did))).all())
