"""``rhenus assistant``: put a folder's documents into a collection, ask questions of it.

Unlike the other commands, these speak to the running node's HTTP API (``/v1``, the Albert
API's collections, documents and chat with ``search``) with one of its API keys, as any
client would: the node's own job queue indexes the uploads, and its model answers.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from rhenus.assistant.parsers import EXTENSIONS
from rhenus.cli.common import console, err_console, settings_or_exit

app = typer.Typer(
    help="Documents and grounded answers of the node's assistant.", no_args_is_help=True
)

FINAL = ("done", "failed")
UrlOption = Annotated[
    str | None,
    typer.Option("--url", envvar="RHENUS_URL", help="The node's URL (default: its public_url)."),
]
KeyOption = Annotated[
    str,
    typer.Option("--api-key", envvar="RHENUS_API_KEY", help="An API key of the node (rk_…)."),
]
CollectionOption = Annotated[
    str, typer.Option("--collection", "-c", help="The collection's name (or id).")
]


class ApiError(Exception):
    """The node refused a request; the message is its error's."""


def _fail(message: str) -> typer.Exit:
    err_console.print(f"[red]{escape(message)}[/]")
    return typer.Exit(1)


@contextmanager
def _client(url: str | None, api_key: str) -> Iterator[httpx.Client]:
    base = (url or settings_or_exit().public_url).rstrip("/")
    headers = {"Authorization": f"Bearer {api_key}"}
    try:
        with httpx.Client(base_url=base, headers=headers, timeout=120) as http:
            yield http
    except httpx.HTTPError as exc:
        raise _fail(f"Cannot reach the node at {base}: {exc}") from exc
    except ApiError as exc:
        raise _fail(str(exc)) from exc


def _json(response: httpx.Response) -> Any:
    """The body of a successful answer; :class:`ApiError` with OpenAI's message otherwise."""
    if response.is_success:
        return response.json() if response.content else None
    raise ApiError(_message(response))


def _message(response: httpx.Response) -> str:
    try:
        error = response.json().get("error") or {}
        return f"{response.status_code}: {error.get('message') or response.text}"
    except (ValueError, AttributeError):
        return f"{response.status_code}: {response.text[:200]}"


def _find_collection(http: httpx.Client, name: str) -> dict[str, Any] | None:
    collections: list[dict[str, Any]] = _json(http.get("/v1/collections"))["data"]
    by_name = [c for c in collections if c["name"] == name]
    if by_name:
        return by_name[0]
    return next((c for c in collections if str(c["id"]) == name), None)


def _supported(directory: Path) -> tuple[list[Path], int]:
    """The files under ``directory`` of a type the node parses (by extension), and how many
    others there were."""
    files = sorted(p for p in directory.rglob("*") if p.is_file())
    kept = [p for p in files if p.suffix.lower() in EXTENSIONS]
    return kept, len(files) - len(kept)


def _documents(http: httpx.Client, collection: int) -> dict[int, dict[str, Any]]:
    """Every document of ``collection`` by id, page by page."""
    found: dict[int, dict[str, Any]] = {}
    offset = 0
    while True:
        page = _json(
            http.get(
                "/v1/documents", params={"collection": collection, "limit": 100, "offset": offset}
            )
        )["data"]
        found.update((d["id"], d) for d in page)
        if len(page) < 100:
            return found
        offset += 100


@app.command("ingest")
def ingest(
    directory: Annotated[
        Path, typer.Argument(exists=True, file_okay=False, help="A folder of documents.")
    ],
    collection: CollectionOption,
    api_key: KeyOption,
    url: UrlOption = None,
    shared: Annotated[
        bool, typer.Option(help="Create the collection shared with every user of the node.")
    ] = False,
    wait: Annotated[float, typer.Option(help="Seconds to wait for the indexing.")] = 900,
) -> None:
    """Upload every PDF, DOCX, ODT, HTML, Markdown and text file of DIRECTORY (and its
    subfolders) into a collection, created if missing; wait until each is indexed or failed."""
    files, skipped = _supported(directory)
    if not files:
        raise _fail(f"No supported file in {directory} ({', '.join(sorted(EXTENSIONS))}).")
    rows: dict[Path, dict[str, Any]] = {}
    with _client(url, api_key) as http:
        target = _find_collection(http, collection)
        if target is None:
            body = {"name": collection, "visibility": "shared" if shared else "private"}
            target = _json(http.post("/v1/collections", json=body))
            console.print(f"Created collection [bold]{escape(collection)}[/] ({target['id']})")
        with Progress(
            TextColumn("{task.description:<10}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[note]}"),
            console=console,
        ) as progress:
            sent = progress.add_task("Uploading", total=len(files), note="")
            indexed = progress.add_task("Indexing", total=len(files), note="")
            for path in files:
                progress.update(sent, note=escape(path.name))
                with path.open("rb") as handle:
                    response = http.post(
                        "/v1/documents",
                        data={"collection": str(target["id"])},
                        files={"file": (path.name, handle)},
                    )
                if response.is_success:
                    rows[path] = response.json()
                else:  # a refused file (type, size) fails alone; the others go on
                    rows[path] = {"id": None, "status": "failed", "error": _message(response)}
                    progress.advance(indexed)
                progress.advance(sent)
            progress.update(sent, note="")
            deadline = time.monotonic() + wait
            while any(r["status"] not in FINAL for r in rows.values()):
                if time.monotonic() > deadline:
                    break
                time.sleep(0.5)
                current = _documents(http, target["id"])
                for path, row in rows.items():
                    if row["id"] in current and row["status"] not in FINAL:
                        rows[path] = current[row["id"]]
                        if rows[path]["status"] in FINAL:
                            progress.advance(indexed)
                busy = sum(r["status"] == "processing" for r in rows.values())
                progress.update(indexed, note=f"{busy} processing" if busy else "")
    _summary(directory, rows, skipped)
    if any(r["status"] != "done" for r in rows.values()):
        raise typer.Exit(1)


def _summary(directory: Path, rows: dict[Path, dict[str, Any]], skipped: int) -> None:
    table = Table("file", "status", "chunks", "pages", "error", title="Ingest")
    colours = {"done": "green", "failed": "red"}
    for path, row in rows.items():
        status = row["status"] if row["status"] in FINAL else f"{row['status']} (timed out)"
        table.add_row(
            escape(str(path.relative_to(directory))),
            f"[{colours.get(row['status'], 'yellow')}]{status}[/]",
            str(row.get("chunks", "")),
            "" if row.get("pages") is None else str(row["pages"]),
            escape(row.get("error") or ""),
        )
    console.print(table)
    done = sum(r["status"] == "done" for r in rows.values())
    note = f", {skipped} other files skipped" if skipped else ""
    console.print(f"{done} of {len(rows)} documents indexed{note}.")


@app.command("ask")
def ask(
    question: Annotated[str, typer.Argument(help="The question.")],
    collection: CollectionOption,
    api_key: KeyOption,
    url: UrlOption = None,
    model: Annotated[str, typer.Option(help="The chat model's alias.")] = "smollm2-135m",
    k: Annotated[int, typer.Option(min=1, max=100, help="Passages to retrieve.")] = 5,
    max_tokens: Annotated[int | None, typer.Option(help="Longest answer, in tokens.")] = None,
) -> None:
    """Answer QUESTION from a collection's documents, streamed, then list the sources cited."""
    with _client(url, api_key) as http:
        target = _find_collection(http, collection)
        if target is None:
            raise _fail(f"No collection named {collection!r}.")
        body: dict[str, Any] = {
            "model": model,
            "stream": True,
            "messages": [{"role": "user", "content": question}],
            "search": True,
            "search_args": {"collections": [target["id"]], "k": k},
        }
        if max_tokens is not None:
            body["max_tokens"] = max_tokens
        sources: list[dict[str, Any]] = []
        with http.stream("POST", "/v1/chat/completions", json=body) as response:
            if not response.is_success:
                response.read()
                raise ApiError(_message(response))
            for event in _events(response):
                if "error" in event:
                    raise ApiError(str(event["error"].get("message")))
                sources = event.get("search_results", sources)
                for choice in event.get("choices") or []:
                    piece = (choice.get("delta") or {}).get("content")
                    if piece:
                        console.out(piece, end="", highlight=False)
        console.out("")
    _sources(sources)


def _events(response: httpx.Response) -> Iterator[dict[str, Any]]:
    """The JSON events of a server-sent event stream, up to ``[DONE]``."""
    for line in response.iter_lines():
        if not line.startswith("data:"):
            continue
        data = line[5:].strip()
        if data == "[DONE]":
            return
        yield json.loads(data)


def _sources(sources: list[dict[str, Any]]) -> None:
    if not sources:
        console.print("[yellow]No source: nothing relevant was found in the collection.[/]")
        return
    console.print("\n[bold]Sources[/]")
    for number, hit in enumerate(sources, start=1):
        page = hit["chunk"].get("page")
        where = f", page {page}" if page is not None else ""
        console.print(
            f"{escape(f'[{number}]')} {escape(hit['document']['name'])}{where}"
            f" [dim](score {hit['score']:.3f})[/]"
        )
