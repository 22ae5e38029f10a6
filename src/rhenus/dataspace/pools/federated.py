"""Federated queries over a pool: one aggregate query sent to the providers of several
agreements at once, each answering with its own partial aggregates (under its own policy, *k*
and budget), merged at the consumer — the raw data of none of them moves.

Averages are not mergeable as such: the query each provider receives asks for the sum and the
count instead (``avg(x)`` becomes ``sum(x)`` and ``count(x)``), and the merged mean is the sum
of sums over the sum of counts. count and sum add up, min and max take the extreme; groups are
merged by their keys. A group a provider did not release (fewer than its *k* rows) has no part
of that provider in the merged row: each provider's contribution says how many groups it gave.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx

from rhenus.core.errors import Problem
from rhenus.core.node import Node
from rhenus.dataspace.contracts import agreements
from rhenus.dataspace.machine import Role
from rhenus.dataspace.pools import client, service
from rhenus.dataspace.pools.query_plan import Refused
from rhenus.dataspace.pools.schemas import QueryMessage
from rhenus.trust.did import DidResolver

if TYPE_CHECKING:
    from sqlglot import exp

MERGEABLE = frozenset({"count", "sum", "avg", "min", "max"})


@dataclass(frozen=True)
class Part:
    """One column of the merged result and where its parts are in each partial row."""

    name: str
    function: str  # "" for a group key
    at: tuple[int, ...]  # positions in the partial rows (sum and count for an average)


def partial_query(sql: str) -> tuple[str, list[Part]]:
    """The query each provider runs, and how to merge its rows; :class:`Refused` for a query
    whose aggregates cannot be merged across providers."""
    # The parser (sqlglot) is imported with the first query, not when the node starts.
    from sqlglot import exp

    from rhenus.dataspace.pools.sql_parse import AGGREGATES, parse_one

    select = parse_one(sql)
    for part in ("having", "order", "limit", "offset"):
        if select.args.get(part):
            raise Refused(f"{part.upper()} cannot be applied across providers: merge first")
    items: list[exp.Expr] = []
    parts: list[Part] = []
    for index, item in enumerate(select.expressions):
        inner = item.this if isinstance(item, exp.Alias) else item
        name = item.alias if isinstance(item, exp.Alias) else inner.sql(dialect="duckdb").lower()
        if isinstance(inner, exp.Column):
            parts.append(Part(name, "", (len(items),)))
            items.append(inner.copy())
            continue
        kind = AGGREGATES.get(type(inner))
        if kind not in MERGEABLE:
            what = kind or inner.sql(dialect="duckdb")[:60]
            raise Refused(f"{what} cannot be merged across providers (use {sorted(MERGEABLE)})")
        if kind == "avg":
            column = inner.this.copy()
            parts.append(Part(name, kind, (len(items), len(items) + 1)))
            items.append(exp.alias_(exp.Sum(this=column.copy()), f"part{index} sum", quoted=True))
            items.append(exp.alias_(exp.Count(this=column), f"part{index} count", quoted=True))
            continue
        parts.append(Part(name, kind, (len(items),)))
        items.append(exp.alias_(inner.copy(), f"part{index}", quoted=True))
    partial = select.copy()
    partial.set("expressions", items)
    return partial.sql(dialect="duckdb"), parts


def merge(parts: list[Part], partials: list[list[list[Any]]]) -> list[list[Any]]:
    """The merged rows of the providers' partial rows, sorted by their keys."""
    keys = [p for p in parts if not p.function]
    groups: dict[str, tuple[list[Any], list[Any]]] = {}
    for rows in partials:
        for row in rows:
            key = [row[p.at[0]] for p in keys]
            text = json.dumps(key, sort_keys=True, default=str)
            _, totals = groups.setdefault(text, (key, [None] * len(parts)))
            for i, part in enumerate(parts):
                totals[i] = _add(part.function, totals[i], [row[at] for at in part.at])
    merged = []
    for text in sorted(groups):
        key, totals = groups[text]
        values = iter(key)
        out = []
        for part, total in zip(parts, totals, strict=True):
            if not part.function:
                out.append(next(values))
            elif part.function == "avg":
                out.append(total[0] / total[1] if total and total[1] else None)
            else:
                out.append(total)
        merged.append(out)
    return merged


def _add(function: str, total: Any, values: list[Any]) -> Any:
    if not function:
        return None
    if function == "avg":
        done = total or [0, 0]
        return [done[0] + (values[0] or 0), done[1] + (values[1] or 0)]
    value = values[0]
    if value is None:
        return total
    if total is None:
        return value
    if function in ("count", "sum"):
        return total + value
    return min(total, value) if function == "min" else max(total, value)


async def federated_query(
    node: Node,
    *,
    actor: str,
    agreement_ids: list[str],
    sql: str,
    purpose: str | None,
    epsilon: Any,
    bounds: dict[str, list[float]] | None,
    resolver: DidResolver,
    transport: httpx.AsyncBaseTransport | None = None,
) -> dict[str, Any]:
    """Fan ``sql`` out to the providers of ``agreement_ids`` (our agreements as consumer),
    record each answer, and merge those that answered: ``columns``, ``rows`` and each
    provider's ``contributions`` (its state, groups released, digest, or reason)."""
    try:
        partial, parts = partial_query(sql)
    except (Refused, RecursionError) as exc:
        reason = str(exc) if isinstance(exc, Refused) else "the query is nested too deeply"
        raise Problem(reason, kind="query-refused", title="Query refused") from None
    async with node.db.session() as session:
        found = [await agreements.find_agreement(session, agreement_id=a) for a in agreement_ids]
    for agreement_id, agreement in zip(agreement_ids, found, strict=True):
        if agreement is None or agreement.role != Role.CONSUMER.value:
            raise Problem(f"no agreement {agreement_id[:120]} as consumer", status=404)

    async def ask(agreement: Any) -> dict[str, Any]:
        message = QueryMessage.model_validate(
            {"agreementId": agreement.id, "query": partial, "purpose": purpose,
             "epsilon": epsilon, "bounds": bounds}
        )  # fmt: skip
        try:
            status, body = await client.send_query(
                node.settings, node.keyring, provider_address=agreement.provider_address,
                provider=agreement.provider, message=message, resolver=resolver,
                transport=transport,
            )  # fmt: skip
        except Problem as exc:
            status, body = exc.status, {"state": "refused", "reason": exc.detail}
        async with node.db.transaction() as session:
            recorded = await service.record_sent(
                session, audit=node.audit, actor=actor, agreement=agreement, message=message,
                status=status, body=body,
            )  # fmt: skip
        rows = recorded.result["rows"] if recorded.result else []
        return {
            "agreement_id": agreement.id, "provider": agreement.provider,
            "query_id": recorded.id, "state": recorded.state, "groups": len(rows),
            "result_sha256": recorded.result_sha256, "reason": recorded.reason, "rows": rows,
        }  # fmt: skip

    contributions = await asyncio.gather(*(ask(a) for a in found))
    answered = [c.pop("rows") for c in contributions if c["state"] == "answered"]
    for contribution in contributions:
        contribution.pop("rows", None)
    return {
        "columns": [p.name for p in parts],
        "rows": merge(parts, answered),
        "contributions": list(contributions),
    }
