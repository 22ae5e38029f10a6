"""``rhenus messaging``: Matrix administration from the server's shell (registration tokens,
account expiry)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer
from rich.table import Table

from rhenus.accounts import service as accounts
from rhenus.cli.common import console, err_console, with_node
from rhenus.core.db import utcnow
from rhenus.core.node import Node
from rhenus.messaging import registration, validity
from rhenus.messaging.models import RegistrationToken

app = typer.Typer(help="Matrix messaging administration.", no_args_is_help=True)
tokens_app = typer.Typer(
    help="Registration tokens (m.login.registration_token).", no_args_is_help=True
)
accounts_app = typer.Typer(help="Matrix accounts: expiry and renewal.", no_args_is_help=True)
app.add_typer(tokens_app, name="tokens")
app.add_typer(accounts_app, name="accounts")


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
            _, secret = await registration.create_registration_token(
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
            return await registration.list_registration_tokens(session)

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


@accounts_app.command("renew")
def renew(
    username: Annotated[str, typer.Argument(help="The account (its Matrix localpart).")],
    until: Annotated[
        datetime | None,
        typer.Option(help="New expiry (UTC), e.g. 2027-06-30; omit for now + the period."),
    ] = None,
) -> None:
    """Renew a Matrix account (RHENUS_MATRIX_ACCOUNT_VALIDITY_DAYS) or set its expiry."""

    async def work(node: Node) -> datetime:
        async with node.db.transaction() as session:
            account = await accounts.get_user(session, username=username)
            expires = await validity.renew(
                session,
                settings=node.settings,
                account_id=account.id,
                until=until.replace(tzinfo=until.tzinfo or UTC) if until else None,
            )
            await node.audit.record(
                session,
                actor="cli",
                action="messaging.account.renewed",
                object_type="user",
                object_id=username,
                details={"expires_at": expires.isoformat()},
            )
            return expires

    try:
        expires = with_node(work)
    except ValueError as exc:
        err_console.print(f"[red]{exc}[/]")
        raise typer.Exit(1) from exc
    console.print(f"{username} is valid until [bold]{expires:%Y-%m-%d %H:%M}[/] UTC")
