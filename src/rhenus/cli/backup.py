"""``rhenus backup`` / ``rhenus restore``: a whole node in one file, and back."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn

from rhenus.cli.common import console, err_console, settings_or_exit
from rhenus.core.node import Node
from rhenus.ops import backup as service

PassphraseFile = Annotated[
    Path | None,
    typer.Option(
        help="File holding the passphrase (else RHENUS_BACKUP_PASSPHRASE, else a prompt)."
    ),
]


def _passphrase(path: Path | None, *, confirm: bool) -> str:
    if path is not None:
        value = path.read_text().strip()
    elif os.environ.get("RHENUS_BACKUP_PASSPHRASE"):
        value = os.environ["RHENUS_BACKUP_PASSPHRASE"]
    elif sys.stdin.isatty():
        value = typer.prompt("Backup passphrase", hide_input=True, confirmation_prompt=confirm)
    else:
        err_console.print(
            "[red]give a passphrase: --passphrase-file or RHENUS_BACKUP_PASSPHRASE[/]"
        )
        raise typer.Exit(2)
    if len(value) < 12:
        err_console.print("[red]the backup passphrase must have at least 12 characters[/]")
        raise typer.Exit(2)
    return value


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=console,
        transient=False,
    )


def _reporter(bar: Progress, verb: str) -> service.Progress:
    """A progress callback drawing one bar per phase (tables, blobs)."""
    tasks: dict[str, TaskID] = {}

    def report(phase: str, done: int, total: int) -> None:
        if phase not in tasks:
            tasks[phase] = bar.add_task(f"{verb} {phase}", total=total)
        bar.update(tasks[phase], completed=done)

    return report


def backup(
    archive: Annotated[Path, typer.Argument(help="The backup file to write (.tar).")],
    passphrase_file: PassphraseFile = None,
) -> None:
    """Write a consistent snapshot of database, blobs and keys to one file."""
    settings = settings_or_exit()
    if archive.exists():
        err_console.print(f"[red]{archive} exists; choose a new file[/]")
        raise typer.Exit(2)
    passphrase = _passphrase(passphrase_file, confirm=True)

    async def work() -> service.Manifest:
        node = Node.open(settings)
        try:
            with _progress() as bar:
                return await service.backup(node, archive, passphrase, _reporter(bar, "Backing up"))
        finally:
            await node.close()

    manifest = asyncio.run(work())
    rows = sum(manifest.tables.values())
    console.print(
        f"Backup written to [bold]{archive}[/]: {rows} rows in "
        f"{len(manifest.tables)} tables, {manifest.blobs} blobs, keys sealed."
    )


def restore(
    archive: Annotated[Path, typer.Argument(help="A file written by `rhenus backup`.")],
    passphrase_file: PassphraseFile = None,
) -> None:
    """Restore a backup into an empty data directory (RHENUS_HOME) and database."""
    settings = settings_or_exit()
    passphrase = _passphrase(passphrase_file, confirm=False)
    try:
        manifest = service.restore_keys(settings, archive, passphrase)
    except service.BackupError as exc:
        err_console.print(f"[red]{exc}[/]")
        raise typer.Exit(1) from exc

    async def work() -> int:
        node = Node.open(settings)
        try:
            with _progress() as bar:
                await service.restore_data(node, archive, manifest, _reporter(bar, "Restoring"))
            report_ = await node.blobs.verify_all()
            return len(report_.corrupt)
        finally:
            await node.close()

    try:
        corrupt = asyncio.run(work())
    except service.BackupError as exc:
        err_console.print(f"[red]{exc}[/]")
        raise typer.Exit(1) from exc
    service.finish_restore(settings)
    if corrupt:
        err_console.print(f"[red]{corrupt} restored blobs fail verification[/]")
        raise typer.Exit(1)
    console.print(
        f"Restored [bold]{manifest.node_name}[/] into {settings.home}: "
        f"{sum(manifest.tables.values())} rows, {manifest.blobs} blobs, all verified."
    )
