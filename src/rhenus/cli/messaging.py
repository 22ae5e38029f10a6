"""``rhenus messaging``: Matrix administration from the server's shell (registration tokens)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

import typer
from rich.table import Table

from rhenus.cli.common import console, with_node
from rhenus.core.db import utcnow
from rhenus.core.node import Node
from rhenus.messaging import auth
from rhenus.messaging.models import RegistrationToken

app = typer.Typer(help="Matrix messaging administration.", no_args_is_help=True)
tokens_app = typer.Typer(
    help="Registration tokens (m.login.registration_token).", no_args_is_help=True
)
app.add_typer(tokens_app, name="tokens")


@tokens_app.command("create")
def create(
    uses: Annotated[
        int | None, typer.Option(min=1, help="Registrations allowed; omit for unlimited.")
    ] = None,
    days: Annotated[
        int | None, typer.Option(min=1, help="Days before it expires; omit for never.")
    ] = None,
    token: Annotated[
        str | None, typer.Option(help="The token itself; omit to generate one.")
    ] = None,
) -> None:
    """Create a registration token; prints it once (only its hash is kept)."""

    async def work(node: Node) -> str:
        async with node.db.transaction() as session:
            _, secret = await auth.create_registration_token(
                session,
                audit=node.audit,
                actor="cli",
                token=token,
                uses_allowed=uses,
                expires_at=utcnow() + timedelta(days=days) if days else None,
            )
            return secret

    secret = with_node(work)
    console.print(f"Registration token: [bold]{secret}[/]")


@tokens_app.command("list")
def list_() -> None:
    """List registration tokens (their first characters, uses and expiry)."""

    async def work(node: Node) -> list[RegistrationToken]:
        async with node.db.session() as session:
            return await auth.list_registration_tokens(session)

    table = Table("token", "uses", "expires", "created by", "created")
    for row in with_node(work):
        allowed = "unlimited" if row.uses_allowed is None else str(row.uses_allowed)
        expires = row.expires_at.strftime("%Y-%m-%d %H:%M") if row.expires_at else "never"
        table.add_row(
            f"{row.hint}…",
            f"{row.completed}/{allowed}",
            expires,
            row.created_by,
            row.created_at.strftime("%Y-%m-%d %H:%M"),
        )
    console.print(table)
