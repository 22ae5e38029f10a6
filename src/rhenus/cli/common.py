"""What every command shares: the console, settings loading, running async work."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import typer
from rich.console import Console

from rhenus.config import ConfigError, Settings, load_settings
from rhenus.core.errors import Problem
from rhenus.core.node import Node

console = Console()
err_console = Console(stderr=True)
T = TypeVar("T")


def settings_or_exit(**overrides: Any) -> Settings:
    """The settings (``overrides`` win), or exit 2 with a message naming each invalid setting."""
    try:
        return load_settings(**overrides)
    except ConfigError as exc:
        err_console.print(f"[red]{exc}[/]")
        raise typer.Exit(2) from exc


def with_node(work: Callable[[Node], Awaitable[T]]) -> T:
    """Open the node, run ``work`` on it, close it; a :class:`Problem` exits 1 with its detail."""
    settings = settings_or_exit()

    async def main() -> T:
        node = Node.open(settings)
        try:
            return await work(node)
        finally:
            await node.close()

    try:
        return asyncio.run(main())
    except Problem as exc:
        err_console.print(f"[red]{exc.detail}[/]")
        raise typer.Exit(1) from exc
