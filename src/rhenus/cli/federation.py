"""``rhenus federation``: talk to other nodes as this node."""

from __future__ import annotations

import asyncio
from typing import Annotated

import httpx
import typer

from rhenus.cli.common import console, err_console, settings_or_exit
from rhenus.cli.devca import dev_ca
from rhenus.core.keys import Keyring
from rhenus.trust import client

app = typer.Typer(help="Reach other nodes of the federation.", no_args_is_help=True)
app.command("dev-ca")(dev_ca)


@app.command("ping")
def ping(
    peer: Annotated[str, typer.Argument(help="The peer node's base URL.")],
    message: Annotated[str, typer.Option(help="Text the peer echoes back.")] = "ping",
) -> None:
    """Send a signed request to a peer; it answers with the identity it verified."""
    settings = settings_or_exit()
    keyring = Keyring.load(settings.keys_dir)
    try:
        answer = asyncio.run(client.ping(settings, keyring, peer, message))
    except client.PeerRefused as exc:
        err_console.print(f"[red]{peer} refused: {exc}[/]")
        raise typer.Exit(1) from exc
    except (httpx.HTTPError, client.InsecureTarget) as exc:
        err_console.print(f"[red]cannot reach {peer}: {exc}[/]")
        raise typer.Exit(1) from exc
    console.print(
        f"[green]{answer.receiver}[/] verified this node as [bold]{answer.sender}[/] "
        f"(key {answer.key_id.rpartition('#')[2]})."
    )
