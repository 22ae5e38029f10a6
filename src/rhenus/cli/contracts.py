"""``rhenus contracts`` and ``rhenus transfers``: negotiate agreements, pull data under them.

The commands act on this node's database and keys; the running node (``rhenus run``) receives
the counterparty's answers and carries out the background steps.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn
from rich.table import Table

from rhenus.cli.common import console, with_node
from rhenus.core.node import Node
from rhenus.dataspace.contracts import service as contracts
from rhenus.dataspace.contracts.driver import Driver
from rhenus.dataspace.contracts.models import Negotiation
from rhenus.dataspace.machine import Role
from rhenus.dataspace.transfers.driver import TransferDriver
from rhenus.dataspace.transfers.pull import Pulled, pull_to_file
from rhenus.trust.client import public_client
from rhenus.trust.did import DidResolver

app = typer.Typer(help="Contract negotiations and agreements (DSP 2025-1).", no_args_is_help=True)
transfers_app = typer.Typer(help="Transfers of data under agreements.", no_args_is_help=True)


@app.command("negotiate")
def negotiate(
    dataset: Annotated[str, typer.Argument(help="The dataset id in the provider's catalog.")],
    provider: Annotated[str, typer.Option("--from", help="The provider node's public URL.")],
    purpose: Annotated[str, typer.Option(help="The purpose the data will serve.")] = "",
    offer: Annotated[str | None, typer.Option(help="Offer id (default: the first).")] = None,
    wait: Annotated[float, typer.Option(help="Seconds to wait for the outcome.")] = 60,
) -> None:
    """Ask a provider for one of its offers and wait until the negotiation ends."""

    async def work(node: Node) -> Negotiation:
        settings = node.settings
        resolver = DidResolver(
            allow_http_loopback=settings.federation_insecure_http, client=public_client(settings)
        )
        driver = Driver(node)
        try:
            neg = await driver.negotiate(
                provider_url=provider, dataset_id=dataset, offer_id=offer, purpose=purpose,
                resolver=resolver,
            )  # fmt: skip
        finally:
            await driver.aclose()
            await resolver.close()
        for _ in range(int(wait * 10)):
            async with node.db.session() as session:
                neg = await contracts.get_negotiation(
                    session, pid=neg.id, role=Role.CONSUMER, caller=None
                )
            if contracts.is_final(neg):
                break
            await asyncio.sleep(0.1)
        return neg

    neg = with_node(work)
    colour = "green" if neg.state == "FINALIZED" else "yellow"
    console.print(f"Negotiation {neg.id}: [{colour}]{neg.state}[/]")
    if neg.agreement_id:
        console.print(f"Agreement [bold]{neg.agreement_id}[/]")
    if neg.reason:
        console.print("Reason: " + "; ".join(neg.reason))
    if neg.state == "TERMINATED":
        raise typer.Exit(1)


@app.command("list")
def list_contracts() -> None:
    """Negotiations (either role), newest first."""

    async def work(node: Node) -> list[Negotiation]:
        async with node.db.session() as session:
            return await contracts.list_negotiations(session)

    table = Table("negotiation", "role", "counterparty", "dataset", "state", "agreement")
    for n in with_node(work):
        table.add_row(n.id, n.role, n.counterparty, n.dataset_id, n.state, n.agreement_id or "")
    console.print(table)


@transfers_app.command("pull")
def pull(
    agreement: Annotated[str, typer.Argument(help="The agreement id.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Where to write the data.")],
) -> None:
    """Start a transfer under an agreement and download its data (resumable, sha-256 checked)."""

    async def work(node: Node) -> Pulled:
        driver = TransferDriver(node)
        try:
            tp = await driver.request(agreement_id=agreement)
        finally:
            await driver.aclose()
        with Progress(
            "[progress.description]{task.description}", BarColumn(), DownloadColumn(),
            TransferSpeedColumn(), console=console,
        ) as bar:  # fmt: skip
            task = bar.add_task("pulling", total=None)
            pulled = await pull_to_file(
                node,
                tp.id,
                output,
                progress=lambda n, total: bar.update(task, completed=n, total=total),
            )
        await driver.complete(transfer_id=tp.id, sha256=pulled.sha256, size=pulled.size)
        return pulled

    pulled = with_node(work)
    console.print(f"{pulled.path}: {pulled.size} bytes, sha-256 {pulled.sha256} (verified)")
