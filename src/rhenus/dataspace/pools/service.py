"""Compute-to-data logic (no HTTP). Provider: decide on a query under an agreement (whose it
is, the guard, the ODRL engine with the query's facts, the ε budget) and record it; run it next
to the data; record what was released. Consumer: record the answer or the refusal it received.

A query is decided in one transaction — its record, its audit entry, the use counted and the ε
debited commit together — and answered in another once it has run: the database is never held
while DuckDB works. ε is spent when the query is accepted, whether it then succeeds or not (a
failure or a timeout says something about the data too).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.to_thread
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from rhenus.config import Settings
from rhenus.core.audit import AuditLog
from rhenus.core.blobs import BlobError
from rhenus.core.db import utcnow
from rhenus.core.node import Node
from rhenus.dataspace.catalogue import service as catalogue
from rhenus.dataspace.contracts import agreements
from rhenus.dataspace.contracts import service as contracts
from rhenus.dataspace.machine import Role
from rhenus.dataspace.policy import service as policy
from rhenus.dataspace.policy.compute import DEFAULT_AGGREGATES, MICRO, shown
from rhenus.dataspace.policy.schemas import AccessRequest, ComputeFacts
from rhenus.dataspace.pools import engine, release
from rhenus.dataspace.pools.cache import PlaintextCache, run_query
from rhenus.dataspace.pools.models import PoolBudget, PoolQuery
from rhenus.dataspace.pools.query_plan import Plan, Refused
from rhenus.dataspace.pools.schemas import QUERY_RESULT, QueryMessage

logger = logging.getLogger(__name__)


class QueryRefused(Exception):
    """The provider refuses the query: ``status`` and ``reason`` for the consumer."""

    def __init__(self, status: int, reason: str, query_id: str = "") -> None:
        super().__init__(reason)
        self.status, self.reason, self.query_id = status, reason, query_id


@dataclass(frozen=True)
class Accepted:
    """A query the provider decided to run, with everything it runs with."""

    query_id: str
    agreement_id: str
    dataset_id: str
    dataset_sha256: str
    media_type: str
    plan: Plan
    limits: engine.Limits
    epsilon_micro: int | None
    epsilon_left_micro: int | None


def new_id() -> str:
    return f"urn:uuid:{uuid.uuid4()}"


def micro_text(value: int | None) -> str | None:
    return None if value is None else shown(value)


async def accept(
    session: AsyncSession,
    *,
    settings: Settings,
    audit: AuditLog,
    caller: str,
    country: str | None,
    message: QueryMessage,
) -> Accepted:
    """Decide on ``message`` from ``caller`` (provider side) and record the decision; a refusal
    is recorded too, then raised as :class:`QueryRefused` — the caller commits either way."""
    query_id = new_id()
    record = PoolQuery(
        id=query_id, role=Role.PROVIDER.value, agreement_id=message.agreement_id,
        counterparty=caller, dataset_id="", sql=message.query, epsilon_micro=None,
        state="refused", reason="", result_sha256="", result=None, epsilon_left_micro=None,
        created_at=utcnow(), finished_at=None,
    )  # fmt: skip
    session.add(record)

    async def refuse(status: int, reason: str) -> QueryRefused:
        record.reason, record.finished_at = reason, utcnow()
        await audit.record(
            session, actor=caller, action="pool.query.refused", object_type="pool-query",
            object_id=query_id, payload=message.model_dump(mode="json", by_alias=True),
            details={"agreement": message.agreement_id, "dataset": record.dataset_id,
                     "query": message.query, "status": status, "reason": reason},
        )  # fmt: skip
        return QueryRefused(status, reason, query_id)

    agreement = await agreements.lock_agreement(session, agreement_id=message.agreement_id)
    if agreement is None or agreement.role != Role.PROVIDER.value or agreement.consumer != caller:
        raise await refuse(404, f"no agreement {message.agreement_id[:120]} with you")
    record.dataset_id = agreement.dataset_id
    if agreement.negotiation_id is not None:
        state = await contracts.negotiation_state(session, pid=agreement.negotiation_id)
        if state != "FINALIZED":
            raise await refuse(403, "the negotiation of this agreement is not finalized")
    terms = policy.compute_terms(policy=agreement.policy)
    if terms is None:
        raise await refuse(403, "the agreement does not permit the action compute")
    dataset = await catalogue.find_dataset(session, dataset_id=agreement.dataset_id)
    if dataset is None or not dataset.sha256:
        raise await refuse(409, "the dataset of this agreement has no content")

    private = terms.epsilon_budget_micro is not None
    cost = message.epsilon_micro
    if private and cost is None:
        raise await refuse(
            400, "this agreement spends a differential-privacy budget: send epsilon (and bounds "
            "for every column summed or averaged)",
        )  # fmt: skip
    if not private and (cost is not None or message.bounds is not None):
        raise await refuse(400, "this agreement has no differential-privacy budget: send no "
                                "epsilon and no bounds")  # fmt: skip
    k = max(terms.min_group_size or 0, settings.pools_min_group_size)
    bounds = None
    if private:
        bounds = {name: (pair[0], pair[1]) for name, pair in (message.bounds or {}).items()}
    # The guard (sqlglot) is imported with the first query, not when the node starts.
    from rhenus.dataspace.pools import sql_guard

    try:
        plan = sql_guard.plan(
            message.query, min_group_size=k, allowed=terms.aggregates or DEFAULT_AGGREGATES,
            bounds=bounds,
        )  # fmt: skip
    except Refused as exc:
        raise await refuse(400, str(exc)) from None

    limits = engine.Limits(
        max_rows=min(settings.pools_max_rows, terms.max_rows or settings.pools_max_rows),
        seconds=min(settings.pools_max_seconds, (terms.max_seconds_micro or 10**12) / MICRO),
        memory_mib=min(settings.pools_max_memory_mib, terms.max_memory_mib or 10**9),
        threads=settings.pools_threads,
    )
    budget = await session.get(PoolBudget, agreement.id)
    if budget is None:
        budget = PoolBudget(
            agreement_id=agreement.id, epsilon_spent_micro=0, queries=0, updated_at=utcnow()
        )
        session.add(budget)
    spent = budget.epsilon_spent_micro + (cost or 0)

    def facts(epsilon: int | None) -> AccessRequest:
        return AccessRequest(
            action="compute", recipient=caller, recipient_country=country,
            purpose=message.purpose or agreement.purpose or None, now=utcnow(),
            agreed_at=agreement.signed_at, count=agreement.access_count,
            compute=ComputeFacts(
                min_group_size=k, epsilon_spent_micro=epsilon, max_rows=limits.max_rows,
                max_seconds_micro=round(limits.seconds * MICRO), max_memory_mib=limits.memory_mib,
                aggregates=plan.aggregates,
            ),
        )  # fmt: skip

    decision = policy.evaluate(policy=agreement.policy, request=facts(spent if private else None))
    if not decision.permitted:
        # Over budget (and only that): 409, so that a client can tell it from a refusal.
        over = private and policy.evaluate(policy=agreement.policy, request=facts(0)).permitted
        reasons = "; ".join(decision.reasons)
        if over:
            remaining = max(0, (terms.epsilon_budget_micro or 0) - budget.epsilon_spent_micro)
            raise await refuse(409, f"the query's ε would exceed the agreement's budget "
                                    f"({shown(remaining)} left): {reasons}")  # fmt: skip
        raise await refuse(403, f"the agreement does not permit this query: {reasons}")

    agreement.access_count += 1
    budget.epsilon_spent_micro, budget.queries = spent, budget.queries + 1
    budget.updated_at = utcnow()
    left = None if not private else (terms.epsilon_budget_micro or 0) - spent
    record.state, record.epsilon_micro, record.epsilon_left_micro = "running", cost, left
    await audit.record(
        session, actor=caller, action="pool.query.accepted", object_type="pool-query",
        object_id=query_id, payload=message.model_dump(mode="json", by_alias=True),
        details={"agreement": agreement.id, "dataset": agreement.dataset_id,
                 "query": message.query, "ran": plan.sql, "minGroupSize": k,
                 "epsilon": micro_text(cost), "epsilonLeft": micro_text(left)},
    )  # fmt: skip
    return Accepted(
        query_id=query_id, agreement_id=agreement.id, dataset_id=agreement.dataset_id,
        dataset_sha256=dataset.sha256, media_type=dataset.media_type or "", plan=plan,
        limits=limits, epsilon_micro=cost, epsilon_left_micro=left,
    )  # fmt: skip


async def compute(
    node: Node, accepted: Accepted, limiter: anyio.CapacityLimiter, cache: PlaintextCache
) -> dict[str, Any]:
    """Run an accepted query next to the data and return the released result (the answer's
    ``columns`` and ``rows``); :class:`engine.QueryFailed` if it could not run.

    What the query reads of the dataset is decrypted into the provider's memory (:mod:`.cache`,
    :mod:`.plaintext`), kept for the next queries on that version within the cache's limit."""
    async with limiter:
        try:
            async with cache.use(
                node.blobs, accepted.dataset_sha256, media_type=accepted.media_type,
                columns=accepted.plan.columns,
            ) as entry:  # fmt: skip
                assert entry.layout is not None
                rows = await run_query(
                    entry, parquet=entry.layout.parquet, sql=accepted.plan.sql,
                    limits=accepted.limits,
                )  # fmt: skip
        except BlobError as exc:
            raise engine.QueryFailed("the dataset could not be read from the store") from exc
        except OSError as exc:  # no memory (or spool space) for its plaintext, no descriptor
            logger.warning("a pool dataset could not be decrypted for a query: %s", exc)
            raise engine.QueryFailed("the dataset could not be prepared for the query") from exc
    released = release.release(accepted.plan, rows, accepted.epsilon_micro)
    return {"columns": [o.name for o in accepted.plan.outputs], "rows": released}


async def finish(
    session: AsyncSession,
    *,
    audit: AuditLog,
    caller: str,
    accepted: Accepted,
    result: dict[str, Any] | None,
    failure: str = "",
) -> dict[str, Any]:
    """Record the query's end (provider side) and return the answer to sign and send."""
    record = await session.get(PoolQuery, accepted.query_id)
    assert record is not None
    digest = release.result_digest(result["columns"], result["rows"]) if result else ""
    record.state = "answered" if result is not None else "failed"
    record.reason, record.result_sha256, record.finished_at = failure, digest, utcnow()
    body: dict[str, Any] = {
        "@type": QUERY_RESULT,
        "queryId": accepted.query_id,
        "agreementId": accepted.agreement_id,
        "datasetId": accepted.dataset_id,
        "state": record.state,
        "minGroupSize": accepted.plan.min_group_size,
        "epsilon": micro_text(accepted.epsilon_micro),
        "epsilonLeft": micro_text(accepted.epsilon_left_micro),
    }
    if result is not None:
        body.update(result, resultSha256=digest)
    else:
        body["reason"] = failure
    await audit.record(
        session, actor=caller, action=f"pool.query.{record.state}", object_type="pool-query",
        object_id=accepted.query_id, payload=body,
        details={"agreement": accepted.agreement_id, "dataset": accepted.dataset_id,
                 "resultSha256": digest, "rows": len(result["rows"]) if result else 0,
                 "reason": failure, "epsilon": body["epsilon"],
                 "epsilonLeft": body["epsilonLeft"]},
    )  # fmt: skip
    return body


# -- consumer --------------------------------------------------------------------------------
async def record_sent(
    session: AsyncSession,
    *,
    audit: AuditLog,
    actor: str,
    agreement: Any,
    message: QueryMessage,
    status: int,
    body: dict[str, Any],
) -> PoolQuery:
    """Record the provider's (signed, verified) answer or refusal to our query, consumer side;
    an answer's digest is checked against its rows first."""
    answered = status == 200 and body.get("state") == "answered"
    result = None
    digest = ""
    reason = str(body.get("reason") or body.get("detail") or "")
    if answered:
        result = {"columns": body.get("columns", []), "rows": body.get("rows", [])}
        digest = release.result_digest(result["columns"], result["rows"])
        if digest != body.get("resultSha256"):
            answered, result, reason = False, None, "the answer's rows do not match its digest"
    if answered:
        state = "answered"
    else:
        state = "failed" if body.get("state") == "failed" or status == 200 else "refused"
    epsilon = body.get("epsilon")
    left = body.get("epsilonLeft")
    query = PoolQuery(
        id=str(body.get("queryId") or new_id())[:64], role=Role.CONSUMER.value,
        agreement_id=agreement.id, counterparty=agreement.provider, dataset_id=agreement.dataset_id,
        sql=message.query, epsilon_micro=message.epsilon_micro, state=state, reason=reason,
        result_sha256=digest, result=result,
        epsilon_left_micro=_micro(left), created_at=utcnow(), finished_at=utcnow(),
    )  # fmt: skip
    if await session.get(PoolQuery, query.id) is not None:
        query.id = new_id()  # a provider reusing an id must not overwrite our record
    session.add(query)
    await audit.record(
        session, actor=actor, action=f"pool.query.{state}", object_type="pool-query",
        object_id=query.id, payload=body,
        details={"agreement": agreement.id, "provider": agreement.provider,
                 "dataset": agreement.dataset_id, "query": message.query, "status": status,
                 "resultSha256": digest, "reason": reason, "epsilon": epsilon,
                 "epsilonLeft": left},
    )  # fmt: skip
    return query


def _micro(value: Any) -> int | None:
    try:
        return None if value is None else int(float(value) * MICRO)
    except (TypeError, ValueError):
        return None


async def list_queries(session: AsyncSession, *, limit: int = 200) -> list[PoolQuery]:
    """This node's queries, both roles, newest first."""
    found = select(PoolQuery).order_by(PoolQuery.created_at.desc()).limit(limit)
    return list((await session.scalars(found)).all())
