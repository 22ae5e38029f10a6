"""``rhenus pools``: aggregate queries over data that stays with its providers (compute-to-data).

``rhenus pools query --pool pool.toml "SELECT region, avg(age) FROM data GROUP BY region"``
sends the query, as this node, to every provider the pool file names (``docs/pools.md``), and
prints the merged result and what each provider contributed or why it refused. Like
``rhenus contracts``, it acts with this node's database and keys; the providers' answers are
recorded in this node's audit log.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from rhenus.cli.common import console, err_console, with_node
from rhenus.core.node import Node
from rhenus.dataspace.pools import federated, poolfile
from rhenus.trust.client import public_client
from rhenus.trust.did import DidResolver

app = typer.Typer(help="Compute-to-data: aggregates over data that never leaves its providers.",
                  no_args_is_help=True)  # fmt: skip


def shown(value: Any) -> str:
    """A released value as a cell: floats to two decimals, the rest as JSON would show it."""
    if isinstance(value, float):
        return f"{value:.2f}"
    return "" if value is None else str(value)


def result_table(result: dict[str, Any], *, title: str = "merged result") -> Table:
    """The merged columns and rows of a federated query."""
    table = Table(*result["columns"], title=title)
    for row in result["rows"]:
        table.add_row(*(shown(v) for v in row))
    return table


def contributions_table(result: dict[str, Any], labels: dict[str, str] | None = None) -> Table:
    """Which provider contributed what (groups, result digest), and which refused and why;
    ``labels`` names the providers by agreement id."""
    table = Table("provider", "DID", "state", "groups", "result sha-256 / reason",
                  title="contributions")  # fmt: skip
    colours = {"answered": "green", "refused": "red", "failed": "yellow"}
    for part in result["contributions"]:
        state = part["state"]
        detail = part["result_sha256"][:16] + "…" if state == "answered" else part["reason"]
        table.add_row(
            (labels or {}).get(part["agreement_id"], part["provider"]), part["provider"],
            f"[{colours.get(state, 'white')}]{state}[/]", str(part["groups"]), detail,
        )  # fmt: skip
    return table


@app.command("query")
def query(
    sql: Annotated[str, typer.Argument(help="An aggregate SELECT over the table data.")],
    pool: Annotated[
        Path,
        typer.Option(exists=True, dir_okay=False, readable=True, help="The pool file (TOML)."),
    ],
    purpose: Annotated[str | None, typer.Option(help="Instead of the pool file's.")] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the result as JSON, values unrounded.")
    ] = False,
) -> None:
    """Run one aggregate at every provider of a pool and merge their answers."""
    try:
        spec = poolfile.load(pool)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--pool") from exc

    async def work(node: Node) -> tuple[dict[str, Any], dict[str, str]]:
        async with node.db.session() as session:
            agreements = await poolfile.agreements_of(session, spec)
        settings = node.settings
        resolver = DidResolver(
            ttl=settings.did_cache_seconds,
            allow_http_loopback=settings.federation_insecure_http,
            client=public_client(settings),
        )
        try:
            result = await federated.federated_query(
                node, actor="cli", agreement_ids=[a.id for a in agreements], sql=sql,
                purpose=purpose or spec.purpose, epsilon=spec.epsilon, bounds=spec.bounds,
                resolver=resolver,
            )  # fmt: skip
        finally:
            await resolver.close()
        labels = {a.id: p.label for a, p in zip(agreements, spec.providers, strict=True)}
        return result, labels

    result, labels = with_node(work)
    if as_json:
        console.print_json(json.dumps(result))
    else:
        console.print(result_table(result))
        console.print(contributions_table(result, labels))
    if not any(part["state"] == "answered" for part in result["contributions"]):
        err_console.print("[red]no provider answered[/]")
        raise typer.Exit(1)
