"""``rhenus users``: manage the organisation's accounts from the server's shell."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from rhenus.accounts import service
from rhenus.accounts.models import User
from rhenus.cli.common import console, err_console, with_node
from rhenus.core.node import Node

app = typer.Typer(help="Manage user accounts.", no_args_is_help=True)


@app.command("add")
def add(
    username: str,
    email: Annotated[str | None, typer.Option(help="The user's work email.")] = None,
    display_name: Annotated[str, typer.Option("--name", help="Display name.")] = "",
    role: Annotated[str, typer.Option(help="admin or agent.")] = "agent",
) -> None:
    """Create an account; prints its one-time password once."""
    if role not in ("admin", "agent"):
        err_console.print("[red]--role must be admin or agent[/]")
        raise typer.Exit(2)

    async def work(node: Node) -> str | None:
        async with node.db.transaction() as session:
            _, password = await service.create_user(
                session,
                audit=node.audit,
                actor="cli",
                username=username,
                email=email,
                display_name=display_name,
                role=role,
            )
            return password

    password = with_node(work)
    console.print(f"Created [bold]{username}[/] ({role}). One-time password: [bold]{password}[/]")


@app.command("list")
def list_() -> None:
    """List every account."""

    async def work(node: Node) -> list[User]:
        async with node.db.session() as session:
            return await service.list_users(session)

    table = Table("username", "role", "email", "status", "created")
    for user in with_node(work):
        status = "disabled" if user.disabled else "active"
        table.add_row(
            user.username,
            user.role,
            user.email or "",
            status,
            user.created_at.strftime("%Y-%m-%d %H:%M"),
        )
    console.print(table)


@app.command("disable")
def disable(username: str) -> None:
    """Disable an account and revoke its tokens and API keys."""

    async def work(node: Node) -> None:
        async with node.db.transaction() as session:
            await service.disable_user(session, audit=node.audit, actor="cli", username=username)

    with_node(work)
    console.print(f"Disabled [bold]{username}[/].")
