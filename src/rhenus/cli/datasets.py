"""``rhenus datasets``: publish what this organisation shares, from the server's shell."""

from __future__ import annotations

import json
import mimetypes
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn
from rich.table import Table

from rhenus.cli.common import console, with_node
from rhenus.core.errors import Problem
from rhenus.core.node import Node
from rhenus.dataspace.catalogue import service
from rhenus.dataspace.catalogue.models import Dataset
from rhenus.dataspace.catalogue.schemas import DatasetIn

app = typer.Typer(help="Publish datasets in the catalogue.", no_args_is_help=True)
CHUNK = 1024 * 1024


def _by_language(values: list[str], option: str) -> dict[str, str]:
    """``["fr:Habitants", "Residents"]`` → ``{"fr": "Habitants", "en": "Residents"}``."""
    texts = {}
    for value in values:
        lang, sep, text = value.partition(":")
        if sep and lang in ("fr", "de", "en"):
            texts[lang] = text.strip()
        else:
            texts["en"] = value.strip()
    if option == "--title" and not texts:
        raise typer.BadParameter("give at least one title", param_hint=option)
    return texts


def _read(path: Path, progress: Progress) -> Iterator[bytes]:
    task = progress.add_task(f"Encrypting {path.name}", total=path.stat().st_size)
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            progress.advance(task, len(chunk))
            yield chunk


@app.command("add")
def add(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    title: Annotated[list[str], typer.Option(help="Title, optionally 'fr:…', 'de:…'.")],
    policy: Annotated[list[Path], typer.Option(help="ODRL offer (JSON file); repeatable.")],
    theme: Annotated[str, typer.Option(help="EU data theme code (GOVE, HEAL, SOCI…).")] = "GOVE",
    license: Annotated[str, typer.Option(help="Licence URL or code.")] = "etalab-2.0",
    description: Annotated[list[str] | None, typer.Option(help="Description, as --title.")] = None,
    keyword: Annotated[list[str] | None, typer.Option(help="Keyword; repeatable.")] = None,
    publisher: Annotated[str | None, typer.Option(help="Default: the organisation.")] = None,
    eu_only: Annotated[bool, typer.Option(help="Visible to EU participants only.")] = False,
    participant: Annotated[list[str] | None, typer.Option(help="Visible to this DID only.")] = None,
) -> None:
    """Store FILE encrypted, describe it, attach its offers and publish it."""
    offers: list[dict[str, Any]] = []
    for path in policy:
        try:
            offers.append(json.loads(path.read_text()))
        except (OSError, ValueError) as exc:
            raise typer.BadParameter(f"{path}: {exc}", param_hint="--policy") from exc

    async def work(node: Node) -> Dataset:
        try:
            data = DatasetIn(
                title=_by_language(title, "--title"),
                description=_by_language(description or [], "--description"),
                keywords=keyword or [],
                theme=theme,
                license=license,
                publisher=publisher or node.settings.organisation,
                media_type=mimetypes.guess_type(file.name)[0] or "application/octet-stream",
                access={"eu_only": eu_only, "participants": participant or None},
            )
        except ValidationError as exc:
            raise Problem("; ".join(e["msg"] for e in exc.errors())) from exc
        for offer in offers:  # before any byte is stored
            service.check_offer(offer)
        with Progress(
            *Progress.get_default_columns()[:1],
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            console=console,
        ) as progress:
            info = await node.blobs.put(
                _read(file, progress), max_size=node.settings.max_upload_bytes
            )
        async with node.db.transaction() as session:
            dataset = await service.create_dataset(
                session, audit=node.audit, actor="cli", data=data
            )
            await service.set_content(
                session,
                audit=node.audit,
                actor="cli",
                public_url=node.settings.public_url,
                dataset_id=dataset.id,
                sha256=info.sha256,
                size=info.size,
                media_type=data.media_type,
            )
            for offer in offers:
                await service.add_offer(
                    session,
                    audit=node.audit,
                    actor="cli",
                    public_url=node.settings.public_url,
                    dataset_id=dataset.id,
                    policy=offer,
                )
            return await service.publish(
                session,
                audit=node.audit,
                actor="cli",
                public_url=node.settings.public_url,
                dataset_id=dataset.id,
            )

    dataset = with_node(work)
    console.print(
        f"Published [bold]{dataset.id}[/] ({dataset.byte_size} bytes, sha-256 {dataset.sha256})."
    )


@app.command("list")
def list_() -> None:
    """Every dataset of this node."""

    async def work(node: Node) -> list[Dataset]:
        async with node.db.session() as session:
            return await service.list_datasets(session)

    table = Table("id", "title", "status", "version", "bytes", "visible to")
    for d in with_node(work):
        access = d.access or {}
        scope = (
            "listed DIDs"
            if access.get("participants")
            else "EU"
            if access.get("eu_only")
            else "all compliant"
        )
        title = d.title.get("en") or next(iter(d.title.values()), "")
        table.add_row(d.id, title, d.status, str(d.version), str(d.byte_size or ""), scope)
    console.print(table)


@app.command("withdraw")
def withdraw(dataset_id: str) -> None:
    """Take a dataset out of the catalogue for good."""

    async def work(node: Node) -> None:
        async with node.db.transaction() as session:
            await service.withdraw(
                session,
                audit=node.audit,
                actor="cli",
                public_url=node.settings.public_url,
                dataset_id=dataset_id,
            )

    with_node(work)
    console.print(f"Withdrawn {dataset_id}.")
