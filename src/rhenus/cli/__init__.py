"""The ``rhenus`` command line: set up, run and operate a node."""

from __future__ import annotations

import os
import sys
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table

from rhenus.cli import assistant as assistant_cli
from rhenus.cli import audit as audit_cli
from rhenus.cli import backup as backup_cli
from rhenus.cli import catalogue as catalogue_cli
from rhenus.cli import contracts as contracts_cli
from rhenus.cli import datasets as datasets_cli
from rhenus.cli import federation as federation_cli
from rhenus.cli import keys as keys_cli
from rhenus.cli import messaging as messaging_cli
from rhenus.cli import pools as pools_cli
from rhenus.cli import trust as trust_cli
from rhenus.cli import users as users_cli
from rhenus.cli.common import console, err_console, settings_or_exit
from rhenus.migrations import MigrationError
from rhenus.ops.setup import initialise

app = typer.Typer(
    name="rhenus",
    help="A sovereign node for European public administrations.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
config_app = typer.Typer(help="Inspect the configuration.", no_args_is_help=True)
app.add_typer(config_app, name="config")
app.add_typer(users_cli.app, name="users")
app.add_typer(audit_cli.app, name="audit")
app.add_typer(keys_cli.app, name="keys")
app.add_typer(federation_cli.app, name="federation")
app.add_typer(trust_cli.app, name="trust")
app.add_typer(datasets_cli.app, name="datasets")
app.add_typer(catalogue_cli.app, name="catalogue")
app.add_typer(contracts_cli.app, name="contracts")
app.add_typer(contracts_cli.transfers_app, name="transfers")
app.add_typer(pools_cli.app, name="pools")
app.add_typer(messaging_cli.app, name="messaging")
app.add_typer(assistant_cli.app, name="assistant")
app.command("backup")(backup_cli.backup)
app.command("restore")(backup_cli.restore)


def _print_init(result_password: str | None, username: str | None, out: Console) -> None:
    if result_password:
        out.print(
            Panel.fit(
                f"First administrator: [bold]{username}[/]\n"
                f"One-time password:   [bold]{result_password}[/]\n"
                "It is shown this once; you will choose a new one at first sign-in.",
                title="Rhenus initialised",
                border_style="green",
            )
        )


@app.command()
def init() -> None:
    """Create the data directory, keys and schema, and the first administrator."""
    settings = settings_or_exit()
    with console.status("Initialising the node…"):
        result = initialise(settings)
    _print_init(result.admin_password, result.admin_username, console)
    console.print(f"Node ready in [bold]{settings.home}[/].")


@app.command()
def run(
    workers: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=64,
            help="Worker processes (default RHENUS_WORKERS, else 1); several need "
            "RHENUS_REDIS_URL, and PostgreSQL is advised.",
        ),
    ] = None,
) -> None:
    """Initialise if needed, then serve the node over HTTP."""
    import uvicorn

    from rhenus.app import create_app
    from rhenus.core.logs import configure_logging

    settings = settings_or_exit(workers=workers) if workers else settings_or_exit()
    # Once, here, before any worker starts: keys, migrations, first administrator. The
    # migrations run in a child process: alembic would stay resident in the server.
    try:
        with console.status("Preparing the node (keys, schema)…"):
            result = initialise(settings, migrate_in_child=True)
    except MigrationError as exc:
        print(exc.output, file=sys.stderr)  # the traceback, as an in-process failure showed it
        err_console.print(f"[red]The node did not start: {escape(str(exc))}[/]")
        raise typer.Exit(1) from exc
    _print_init(result.admin_password, result.admin_username, console)
    configure_logging(settings.log_level, settings.log_format)
    shown = f" with {settings.workers} workers" if settings.workers > 1 else ""
    console.print(f"Rhenus serving on [bold]{settings.public_url}[/]{shown} (Ctrl-C stops it)")
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "log_config": None,
        "ssl_certfile": settings.tls_cert_file,
        "ssl_keyfile": settings.tls_key_file,
        "proxy_headers": False,
        # Peers keep idle keep-alive connections open; do not wait on them for long at shutdown.
        "timeout_graceful_shutdown": 5,
        "server_header": False,
    }
    if settings.workers > 1:
        # Each worker is a fresh process (spawned) that builds its app from the same settings.
        uvicorn.run(
            "rhenus.app:app_from_environment", factory=True, workers=settings.workers, **options
        )
    else:
        uvicorn.run(create_app(settings), **options)


@app.command()
def demo() -> None:
    """Run the federation story on live nodes on this machine."""
    from rhenus.demo import run_demo

    run_demo()


@config_app.command("show")
def config_show() -> None:
    """Print the effective settings, secrets masked."""
    settings = settings_or_exit()
    table = Table("setting", "value", "environment variable", title="Rhenus configuration")
    for name, value in settings.masked().items():
        table.add_row(name, str(value), f"RHENUS_{name.upper()}")
    console.print(table)


def main() -> None:
    # Rich wraps at the terminal width; in pipes and CI keep lines whole.
    if not sys.stdout.isatty():
        os.environ.setdefault("COLUMNS", "160")
    app()
