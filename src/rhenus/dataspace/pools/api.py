"""Routes of compute-to-data: the provider's ``POST /dsp/pools/queries`` (a signed, compliant
federation node asks; the answer is signed) and the node's own API for people
(``/api/v1/pools/queries``), which sends a query to the provider of one of its agreements."""

from __future__ import annotations

import json
from typing import Any

import anyio
from fastapi import Request
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError

from rhenus.accounts.deps import CurrentUser
from rhenus.core.errors import PROBLEM_BASE, PROBLEM_JSON, NotFound, Problem
from rhenus.core.http import api_router
from rhenus.core.node import Node, NodeDep
from rhenus.dataspace.callers import Caller, DspCaller, answer
from rhenus.dataspace.catalogue.dsp import BASE_PATH
from rhenus.dataspace.contracts import agreements
from rhenus.dataspace.machine import Role
from rhenus.dataspace.pools import client, engine, federated, service
from rhenus.dataspace.pools.cache import PlaintextCache
from rhenus.dataspace.pools.models import PoolQuery
from rhenus.dataspace.pools.schemas import FederatedIn, QueryIn, QueryMessage, QueryOut
from rhenus.trust import deps as trust_deps

router = api_router(tags=["pools"])


def _limiter(request: Request, node: Node) -> anyio.CapacityLimiter:
    """The app's one limiter of queries running at once (``RHENUS_POOLS_CONCURRENCY``)."""
    limiter: anyio.CapacityLimiter | None = getattr(request.app.state, "pools_limiter", None)
    if limiter is None:
        limiter = anyio.CapacityLimiter(node.settings.pools_concurrency)
        request.app.state.pools_limiter = limiter
    return limiter


def _cache(request: Request, node: Node) -> PlaintextCache:
    """The app's one cache of decrypted dataset versions (``RHENUS_POOLS_CACHE_MIB``)."""
    cache: PlaintextCache | None = getattr(request.app.state, "pools_cache", None)
    if cache is None:
        cache = PlaintextCache(node.settings.pools_cache_mib * 1024 * 1024)
        request.app.state.pools_cache = cache
    return cache


def _refusal(
    request: Request, node: Node, caller: Caller, status: int, reason: str, **extra: Any
) -> Response:
    """An RFC 9457 problem, signed like every answer of this route (the consumer keeps it)."""
    body = {"type": PROBLEM_BASE + "query-refused", "title": "Query refused", "status": status,
            "detail": reason, "state": "refused", "reason": reason, **extra}  # fmt: skip
    return answer(
        request, node, caller, body, status=status, headers={"content-type": PROBLEM_JSON}
    )


@router.post(BASE_PATH + client.QUERIES_PATH, response_class=JSONResponse)
async def query(request: Request, node: NodeDep, caller: DspCaller) -> Response:
    """POST /dsp/pools/queries — run an aggregate under one of the caller's agreements: 200
    ``rhenus:PoolQueryResult``, or a problem saying why not (both signed)."""
    try:
        message = QueryMessage.model_validate(json.loads(await request.body()))
    except (ValueError, ValidationError) as exc:
        first = exc.errors()[0] if isinstance(exc, ValidationError) else None
        reason = f"{'.'.join(map(str, first['loc']))}: {first['msg']}" if first else "not JSON"
        return _refusal(request, node, caller, 400, f"the query message is malformed: {reason}")
    refused: service.QueryRefused | None = None
    async with node.db.transaction() as session:
        try:
            accepted = await service.accept(
                session, settings=node.settings, audit=node.audit, caller=caller.did,
                country=caller.country or None, message=message,
            )  # fmt: skip
        except service.QueryRefused as exc:
            refused = exc  # recorded in this unit of work, which must commit
    if refused is not None:
        return _refusal(
            request, node, caller, refused.status, refused.reason, queryId=refused.query_id
        )
    result: dict[str, Any] | None = None
    failure = ""
    try:
        result = await service.compute(
            node, accepted, _limiter(request, node), _cache(request, node)
        )
    except engine.QueryFailed as exc:
        failure = str(exc)
    async with node.db.transaction() as session:
        body = await service.finish(
            session, audit=node.audit, caller=caller.did, accepted=accepted, result=result,
            failure=failure,
        )  # fmt: skip
    return answer(request, node, caller, body, status=200 if result is not None else 422)


def query_out(query: PoolQuery) -> QueryOut:
    out = QueryOut.model_validate(query)
    out.epsilon = service.micro_text(query.epsilon_micro)
    out.epsilon_left = service.micro_text(query.epsilon_left_micro)
    return out


@router.post("/api/v1/pools/queries", response_model=QueryOut)
async def run_query(
    body: QueryIn, request: Request, node: NodeDep, user: CurrentUser,
    transport: trust_deps.Transport,
) -> QueryOut:  # fmt: skip
    """POST /api/v1/pools/queries — send an aggregate query to the provider of one of this
    node's agreements; the released result (recorded, with its digest, in the audit log), or
    the provider's refusal as a problem with its status."""
    async with node.db.session() as session:
        agreement = await agreements.find_agreement(session, agreement_id=body.agreement_id)
    if agreement is None or agreement.role != Role.CONSUMER.value:
        raise NotFound(f"no agreement {body.agreement_id[:120]} as consumer")
    message = QueryMessage.model_validate(
        {"agreementId": agreement.id, "query": body.sql, "purpose": body.purpose,
         "epsilon": body.epsilon, "bounds": body.bounds}
    )  # fmt: skip
    status, answered = await client.send_query(
        node.settings, node.keyring, provider_address=agreement.provider_address,
        provider=agreement.provider, message=message, resolver=trust_deps.get_resolver(request),
        transport=transport,
    )  # fmt: skip
    async with node.db.transaction() as session:
        recorded = await service.record_sent(
            session, audit=node.audit, actor=user.actor, agreement=agreement, message=message,
            status=status, body=answered,
        )  # fmt: skip
    out = query_out(recorded)
    if recorded.state != "answered":
        what = "refused the query" if recorded.state == "refused" else "could not run the query"
        raise Problem(
            f"the provider {what}: {recorded.reason}",
            status=status if 400 <= status < 500 else 502,
            kind=f"query-{recorded.state}", title=f"Query {recorded.state}",
            query=out.model_dump(mode="json"),
        )  # fmt: skip
    return out


@router.post("/api/v1/pools/federated-queries")
async def run_federated(
    body: FederatedIn, request: Request, node: NodeDep, user: CurrentUser,
    transport: trust_deps.Transport,
) -> dict[str, Any]:  # fmt: skip
    """POST /api/v1/pools/federated-queries — one aggregate query over the providers of
    several agreements: the merged ``columns`` and ``rows``, and each provider's contribution
    (answered with how many groups, or refused with its reason)."""
    return await federated.federated_query(
        node, actor=user.actor, agreement_ids=body.agreement_ids, sql=body.sql,
        purpose=body.purpose, epsilon=body.epsilon, bounds=body.bounds,
        resolver=trust_deps.get_resolver(request), transport=transport,
    )  # fmt: skip


@router.get("/api/v1/pools/queries", response_model=list[QueryOut])
async def list_queries(node: NodeDep, _: CurrentUser) -> list[QueryOut]:
    """GET /api/v1/pools/queries — the queries this node ran (provider) or sent (consumer)."""
    async with node.db.session() as session:
        return [query_out(q) for q in await service.list_queries(session)]
