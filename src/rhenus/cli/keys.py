"""``rhenus keys``: list and rotate the node's signing keys and key-encryption keys."""

from __future__ import annotations

from enum import StrEnum

import typer
from rich.table import Table

from rhenus.cli.common import console, with_node
from rhenus.core.node import Node

app = typer.Typer(help="Inspect and rotate the node's keys.", no_args_is_help=True)


class KeyKind(StrEnum):
    signing = "signing"
    kek = "kek"


@app.command("list")
def list_() -> None:
    """Every key the node holds, which is current, and when each was created and retired."""

    async def work(node: Node) -> Table:
        ring = node.keyring
        table = Table("kind", "id", "created", "retired", "current")
        rows = [("signing", kid, kid == ring.current_signing) for kid in sorted(ring.signing)]
        rows += [("kek", kid, kid == ring.current_kek) for kid in sorted(ring.keks)]
        for kind, kid, current in rows:
            dates = ring.dates.get(kid, {})
            table.add_row(
                kind,
                kid,
                dates.get("created", "")[:19],
                dates.get("retired", "")[:19],
                "yes" if current else "",
            )
        return table

    console.print(with_node(work))


@app.command("rotate")
def rotate(kind: KeyKind) -> None:
    """Make a new key current; old keys stay to verify old signatures and open old blobs."""

    async def work(node: Node) -> str:
        new = (
            node.keyring.rotate_signing().kid
            if kind is KeyKind.signing
            else (node.keyring.rotate_kek())
        )
        async with node.db.transaction() as session:
            await node.audit.record(
                session,
                actor="cli",
                action=f"keys.{kind.value}.rotated",
                object_type="key",
                object_id=new,
            )
        return new

    console.print(
        f"New current {kind.value} key: [bold]{with_node(work)}[/]. Back up the node now."
    )
