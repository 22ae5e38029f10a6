"""``rhenus audit``: check the audit log's hash chain and signed checkpoints."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from rhenus.cli.common import console, err_console, with_node
from rhenus.core.audit import AuditVerification, verify_log
from rhenus.core.node import Node
from rhenus.dataspace.transfers.receipts import ReceiptCheck, check_all
from rhenus.trust.client import public_client
from rhenus.trust.did import DidResolver

app = typer.Typer(help="Inspect the audit log.", no_args_is_help=True)


@app.command("verify")
def verify(
    receipts: Annotated[
        bool, typer.Option("--receipts", help="Also check every transfer receipt's signatures.")
    ] = False,
) -> None:
    """Walk the whole log; exit 1 naming the first tampered entry (or a bad receipt)."""

    async def work(node: Node) -> AuditVerification:
        async with node.db.session() as session:
            return await verify_log(session, node.keyring)

    with console.status("Verifying the audit log…"):
        result = with_node(work)
    if result.ok:
        console.print(
            f"[green]Audit log intact[/]: {result.entries} entries, "
            f"{result.checkpoints} signed checkpoints."
        )
        if receipts:
            _verify_receipts()
        return
    err_console.print(
        f"[red]Audit log TAMPERED at entry {result.first_bad_seq}[/]: {result.reason} "
        f"({result.entries} entries verified before it)."
    )
    raise typer.Exit(1)


def _verify_receipts() -> None:
    """Check both signatures of each receipt against the parties' did:web documents."""

    async def work(node: Node) -> list[ReceiptCheck]:
        settings = node.settings
        resolver = DidResolver(
            allow_http_loopback=settings.federation_insecure_http, client=public_client(settings)
        )
        try:
            async with node.db.session() as session:
                return await check_all(session, resolver=resolver)
        finally:
            await resolver.close()

    checks = with_node(work)
    table = Table("transfer", "our role", "provider", "consumer", "signatures")
    for c in checks:
        verdict = "[green]both valid[/]" if c.ok else f"[red]{c.reason}[/]"
        table.add_row(c.transfer_id, c.role, c.provider, c.consumer, verdict)
    console.print(table)
    bad = [c for c in checks if not c.ok]
    console.print(f"{len(checks) - len(bad)} of {len(checks)} receipts verified.")
    if bad:
        raise typer.Exit(1)
