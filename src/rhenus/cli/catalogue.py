"""``rhenus catalogue``: follow peers, crawl their catalogs, search the federated catalogue."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from rhenus.cli.common import console, with_node
from rhenus.core.node import Node
from rhenus.dataspace.catalogue import crawler as crawling
from rhenus.dataspace.catalogue.crawler import Crawler, CrawlReport
from rhenus.dataspace.catalogue.models import CataloguePeer
from rhenus.dataspace.catalogue.schemas import SearchQuery, SearchResult
from rhenus.dataspace.catalogue.search import search as run_search
from rhenus.trust.client import public_client
from rhenus.trust.did import DidResolver
from rhenus.trust.verifier import ComplianceChecker

app = typer.Typer(help="The federated catalogue: peers, crawls, search.", no_args_is_help=True)
peers_app = typer.Typer(help="The participants whose catalogs this node crawls.")
app.add_typer(peers_app, name="peers")


@peers_app.command("add")
def peers_add(
    url: Annotated[str, typer.Argument(help="The peer's public URL (https://…).")],
) -> None:
    """Follow a participant's catalog."""

    async def work(node: Node) -> str:
        async with node.db.transaction() as session:
            peer = await crawling.add_peer(session, node=node, actor="cli", url=url)
            return peer.did

    console.print(f"Following [bold]{with_node(work)}[/]; `rhenus catalogue crawl` reads it now.")


@peers_app.command("list")
def peers_list() -> None:
    """The peers, where they come from, and how their last crawl went."""

    async def work(node: Node) -> list[CataloguePeer]:
        async with node.db.session() as session:
            return await crawling.list_peers(session)

    table = Table("did", "source", "last crawl", "status", "entries", "error")
    for p in with_node(work):
        when = p.crawled_at.isoformat(timespec="seconds") if p.crawled_at else "never"
        table.add_row(p.did, p.source, when, p.crawl_status, str(p.entry_count), p.crawl_error[:60])
    console.print(table)


@peers_app.command("remove")
def peers_remove(did: str) -> None:
    """Stop following a peer and forget the entries it published."""

    async def work(node: Node) -> None:
        async with node.db.transaction() as session:
            await crawling.remove_peer(session, node=node, actor="cli", did=did)

    with_node(work)
    console.print(f"No longer following {did}.")


@app.command("crawl")
def crawl() -> None:
    """Crawl every peer now (and learn peers from the anchors' registries, if enabled)."""

    async def work(node: Node) -> list[CrawlReport]:
        settings = node.settings
        resolver = DidResolver(
            ttl=settings.did_cache_seconds,
            allow_http_loopback=settings.federation_insecure_http,
            client=public_client(settings),
        )
        try:
            checker = ComplianceChecker(
                resolver, settings.trusted_anchors, ttl=settings.compliance_cache_seconds
            )
            return await Crawler(node, resolver, checker).crawl_all()
        finally:
            await resolver.close()

    reports = with_node(work)
    table = Table("peer", "status", "datasets", "added", "updated", "removed", "seconds", "error")
    for r in reports:
        colour = "green" if r.status == "ok" else "red"
        table.add_row(
            r.did,
            f"[{colour}]{r.status}[/]",
            str(r.total),
            str(r.added),
            str(r.updated),
            str(r.removed),
            f"{r.seconds:.2f}",
            r.error[:80],
        )
    console.print(table if reports else "No peers to crawl.")
    if any(r.status == "error" for r in reports):
        raise typer.Exit(1)


@app.command("search")
def search(
    query: Annotated[str, typer.Argument(help="Words in French, German or English.")] = "",
    publisher: Annotated[list[str] | None, typer.Option(help="Only this publisher.")] = None,
    country: Annotated[list[str] | None, typer.Option(help="Only this country (FR, DE…).")] = None,
    theme: Annotated[list[str] | None, typer.Option(help="Only this EU theme (HEAL…).")] = None,
    license: Annotated[list[str] | None, typer.Option(help="Only this licence.")] = None,
    format: Annotated[list[str] | None, typer.Option(help="Only this format (CSV…).")] = None,
    sort: Annotated[str, typer.Option(help="relevance or date.")] = "relevance",
    page: int = 1,
    per_page: int = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Search our datasets and those the peers showed us."""
    try:
        parsed = SearchQuery.model_validate(
            {
                "q": query,
                "publisher": publisher or [],
                "country": country or [],
                "theme": theme or [],
                "license": license or [],
                "format": format or [],
                "sort": sort,
                "page": page,
                "per_page": per_page,
            }
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc

    async def work(node: Node) -> SearchResult:
        return await run_search(node.db, parsed)

    result = with_node(work)
    if as_json:
        print(json.dumps(result.model_dump(mode="json"), ensure_ascii=False, indent=2))
        return
    table = Table("title", "publisher", "country", "theme", "format", "origin", "modified")
    for hit in result.hits:
        title = hit.title.get("en") or next(iter(hit.title.values()), "")
        table.add_row(
            title,
            hit.publisher,
            hit.country,
            hit.theme,
            hit.format,
            hit.origin,
            hit.modified.date().isoformat(),
        )
    console.print(table)
    console.print(f"{result.total} found; page {result.page}.")
    for name, values in result.facets.items():
        if values:
            console.print(f"  {name}: " + ", ".join(f"{v.value} ({v.count})" for v in values))
