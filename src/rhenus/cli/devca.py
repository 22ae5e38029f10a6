"""``rhenus federation dev-ca``: a development CA and one HTTPS certificate per local node."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

import typer

from rhenus.cli.common import console, err_console
from rhenus.core.tls import ca_paths, create_dev_ca, issue_server_certificate

# Same rule as Settings.node_name; it also keeps the name safe to use as a file name.
NODE_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


def dev_ca(
    node: Annotated[list[str], typer.Option(help="Node names; one certificate each.")],
    out: Annotated[Path, typer.Option(help="Directory of the CA and certificates.")] = Path(
        "./.rhenus-dev-ca"
    ),
    host: Annotated[
        list[str], typer.Option(help="Host names and IP addresses the certificates cover.")
    ] = ["127.0.0.1", "localhost"],  # noqa: B006 - Typer reads the default, never mutates it
) -> None:
    """Create (or reuse) a development CA and issue an HTTPS certificate for each node."""
    bad = [name for name in node if not NODE_NAME.match(name)]
    if bad:
        err_console.print(f"[red]invalid node name(s): {', '.join(bad)}[/]")
        raise typer.Exit(2)
    out = out.expanduser().resolve()
    ca_cert, ca_key = ca_paths(out)
    if ca_cert.exists() and ca_key.exists():
        console.print(f"Reusing the CA in [bold]{out}[/].")
    else:
        try:
            ca_cert, ca_key = create_dev_ca(out)
        except ValueError as exc:
            # Half a CA (one of the two files) is left for the user to sort out, not overwritten.
            err_console.print(f"[red]{exc}[/]")
            raise typer.Exit(1) from exc
        console.print(f"Created the CA [bold]{ca_cert}[/] (key {ca_key}).")

    for name in node:
        cert, key = issue_server_certificate(out, out, name=name, hosts=host)
        console.print(f"\n[bold green]{name}[/] ({', '.join(host)})")
        console.print(f"RHENUS_TLS_CERT_FILE={cert}", highlight=False, soft_wrap=True)
        console.print(f"RHENUS_TLS_KEY_FILE={key}", highlight=False, soft_wrap=True)
        console.print(f"RHENUS_TLS_CA_FILE={ca_cert}", highlight=False, soft_wrap=True)
    console.print(
        "\nThe CA key signs anything: keep it for development only. "
        f"Trust the CA elsewhere with [bold]{ca_cert}[/]."
    )
