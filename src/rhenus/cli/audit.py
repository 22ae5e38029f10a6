"""``rhenus audit``: check the audit log's hash chain and signed checkpoints."""

from __future__ import annotations

import typer

from rhenus.cli.common import console, err_console, with_node
from rhenus.core.audit import AuditVerification, verify_log
from rhenus.core.node import Node

app = typer.Typer(help="Inspect the audit log.", no_args_is_help=True)


@app.command("verify")
def verify() -> None:
    """Walk the whole log; exit 1 naming the first tampered entry."""

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
        return
    err_console.print(
        f"[red]Audit log TAMPERED at entry {result.first_bad_seq}[/]: {result.reason} "
        f"({result.entries} entries verified before it)."
    )
    raise typer.Exit(1)
