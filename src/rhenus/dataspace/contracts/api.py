"""Routes of contract negotiation: the DSP 2025-1 HTTPS binding (provider paths and consumer
callbacks, under ``/dsp``) and the node's own API for people (``/api/v1/contracts``).

The binding gives the provider and the consumer the same paths for events and termination
(``/negotiations/{pid}/events``); since every pid this node hands out is its own UUID, the pid
in the path says which of our negotiations — and so which role — the message is for.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import select

from rhenus.accounts.deps import CurrentUser
from rhenus.core.errors import NotFound
from rhenus.core.http import api_router
from rhenus.core.node import Node, NodeDep
from rhenus.dataspace.callers import Caller, DspCaller, answer, handle
from rhenus.dataspace.catalogue.dsp import BASE_PATH
from rhenus.dataspace.contracts import agreements, service
from rhenus.dataspace.contracts.driver import Driver
from rhenus.dataspace.contracts.models import Negotiation
from rhenus.dataspace.contracts.schemas import (
    AgreementOut,
    DspMessage,
    MessageError,
    NegotiateIn,
    NegotiationOut,
    error_body,
    negotiation_body,
)
from rhenus.dataspace.contracts.service import NegotiationFailed
from rhenus.dataspace.contracts.states import Role

router = api_router(tags=["contracts"])
N = f"{BASE_PATH}/negotiations"


def driver_of(request: Request) -> Driver:
    driver: Driver = request.app.state.contracts_driver
    return driver


def _state(neg: Negotiation) -> dict[str, Any]:
    return negotiation_body(
        provider_pid=neg.provider_pid, consumer_pid=neg.consumer_pid, state=neg.state
    )


Handler = Callable[[DspMessage], Awaitable[tuple[Negotiation, int]]]


async def _handle(
    request: Request, node: Node, caller: Caller, expected: str, pid: str, work: Handler
) -> Response:
    """Answer a negotiation message with the negotiation (or a ``ContractNegotiationError``)."""

    async def state_after(message: DspMessage) -> tuple[dict[str, Any], int]:
        neg, status = await work(message)
        return _state(neg), status

    return await handle(
        request, node, caller, expected=expected, pid=pid,
        error_type=NegotiationFailed.error_type, work=state_after,
    )  # fmt: skip


def _loopback(node: Node) -> bool:
    return bool(node.settings.dsp_conformance_token.get_secret_value())


async def _role_of(node: Node, pid: str) -> Role | None:
    async with node.db.session() as session:
        role = await session.scalar(select(Negotiation.role).where(Negotiation.id == pid))
    return Role(role) if role else None


# -- provider ------------------------------------------------------------------------------------
@router.get(N + "/{pid}", response_class=JSONResponse)
async def get_negotiation(pid: str, request: Request, node: NodeDep, caller: DspCaller) -> Response:
    """GET /dsp/negotiations/{pid} — the negotiation's state, for its counterparty only."""
    async with node.db.session() as session:
        try:
            role = await _role_of(node, pid) or Role.PROVIDER
            neg = await service.get_negotiation(session, pid=pid, role=role, caller=caller.did)
        except NegotiationFailed as exc:
            body = error_body(provider_pid=pid, consumer_pid=pid, code=exc.code, reason=exc.reason)
            return answer(request, node, caller, body, status=exc.status)
    return answer(request, node, caller, _state(neg))


@router.post(N + "/request", response_class=JSONResponse)
async def initial_request(request: Request, node: NodeDep, caller: DspCaller) -> Response:
    """POST /dsp/negotiations/request — a consumer asks for an offer: 201 ContractNegotiation."""

    async def work(message: DspMessage) -> tuple[Negotiation, int]:
        if message.provider_pid:
            raise MessageError("an initial request carries no providerPid", message)
        async with node.db.transaction() as session:
            neg, _ = await service.provider_request(
                session, message=message, caller=caller, audit=node.audit,
                loopback_http=_loopback(node),
            )  # fmt: skip
            return neg, 201

    return await _handle(request, node, caller, "ContractRequestMessage", "", work)


@router.post(N + "/{pid}/request", response_class=JSONResponse)
async def counter_request(pid: str, request: Request, node: NodeDep, caller: DspCaller) -> Response:
    """POST /dsp/negotiations/{providerPid}/request — a counter-request on an offer."""

    async def work(message: DspMessage) -> tuple[Negotiation, int]:
        if message.provider_pid != pid:
            raise MessageError("the providerPid must be the one in the path", message)
        async with node.db.transaction() as session:
            neg, _ = await service.provider_request(
                session, message=message, caller=caller, audit=node.audit
            )
            return neg, 200

    return await _handle(request, node, caller, "ContractRequestMessage", pid, work)


@router.post(N + "/{pid}/events", response_class=JSONResponse)
async def events(pid: str, request: Request, node: NodeDep, caller: DspCaller) -> Response:
    """POST /dsp/negotiations/{pid}/events — ACCEPTED (to a provider) or FINALIZED (to a
    consumer's callback)."""
    role = await _role_of(node, pid)

    async def work(message: DspMessage) -> tuple[Negotiation, int]:
        if role is None:
            raise service.NegotiationFailed(404, "unknown-negotiation", f"no negotiation {pid}")
        handler = service.provider_event if role is Role.PROVIDER else service.consumer_event
        async with node.db.transaction() as session:
            neg = await handler(session, pid=pid, message=message, caller=caller, audit=node.audit)
            return neg, 200

    return await _handle(request, node, caller, "ContractNegotiationEventMessage", pid, work)


@router.post(N + "/{pid}/agreement/verification", response_class=JSONResponse)
async def verification(pid: str, request: Request, node: NodeDep, caller: DspCaller) -> Response:
    """POST /dsp/negotiations/{providerPid}/agreement/verification — the consumer verifies."""

    async def work(message: DspMessage) -> tuple[Negotiation, int]:
        async with node.db.transaction() as session:
            neg = await service.provider_verification(
                session, pid=pid, message=message, caller=caller, audit=node.audit
            )
            return neg, 200

    return await _handle(request, node, caller, "ContractAgreementVerificationMessage", pid, work)


@router.post(N + "/{pid}/termination", response_class=JSONResponse)
async def termination(pid: str, request: Request, node: NodeDep, caller: DspCaller) -> Response:
    """POST /dsp/negotiations/{pid}/termination — the other party ends the negotiation."""
    role = await _role_of(node, pid)

    async def work(message: DspMessage) -> tuple[Negotiation, int]:
        if role is None:
            raise service.NegotiationFailed(404, "unknown-negotiation", f"no negotiation {pid}")
        async with node.db.transaction() as session:
            neg = await service.terminated_by_peer(
                session, pid=pid, role=role, message=message, caller=caller, audit=node.audit
            )
            return neg, 200

    return await _handle(request, node, caller, "ContractNegotiationTerminationMessage", pid, work)


# -- consumer callbacks ----------------------------------------------------------------------------
@router.post(N + "/offers", response_class=JSONResponse)
async def initial_offer(request: Request, node: NodeDep, caller: DspCaller) -> Response:
    """POST {callback}/negotiations/offers — a provider offers first: 201 ContractNegotiation."""

    async def work(message: DspMessage) -> tuple[Negotiation, int]:
        async with node.db.transaction() as session:
            neg, _ = await service.consumer_offer(
                session, pid=None, message=message, caller=caller, audit=node.audit,
                loopback_http=_loopback(node),
            )  # fmt: skip
            return neg, 201

    return await _handle(request, node, caller, "ContractOfferMessage", "", work)


@router.post(N + "/{pid}/offers", response_class=JSONResponse)
async def counter_offer(pid: str, request: Request, node: NodeDep, caller: DspCaller) -> Response:
    """POST {callback}/negotiations/{consumerPid}/offers — the provider's counter-offer."""

    async def work(message: DspMessage) -> tuple[Negotiation, int]:
        async with node.db.transaction() as session:
            neg, _ = await service.consumer_offer(
                session, pid=pid, message=message, caller=caller, audit=node.audit
            )
            return neg, 200

    return await _handle(request, node, caller, "ContractOfferMessage", pid, work)


@router.post(N + "/{pid}/agreement", response_class=JSONResponse)
async def agreement(pid: str, request: Request, node: NodeDep, caller: DspCaller) -> Response:
    """POST {callback}/negotiations/{consumerPid}/agreement — the provider agrees."""

    async def work(message: DspMessage) -> tuple[Negotiation, int]:
        async with node.db.transaction() as session:
            neg = await service.consumer_agreement(
                session, pid=pid, message=message, caller=caller, audit=node.audit
            )
            return neg, 200

    return await _handle(request, node, caller, "ContractAgreementMessage", pid, work)


# -- the node's own API, for people ----------------------------------------------------------------
@router.post("/api/v1/contracts/negotiations", response_model=NegotiationOut, status_code=201)
async def negotiate(
    body: NegotiateIn, request: Request, node: NodeDep, _: CurrentUser
) -> NegotiationOut:
    """POST /api/v1/contracts/negotiations — ask a provider for one of its dataset's offers;
    the node then drives the negotiation to FINALIZED (or TERMINATED, with the reason)."""
    neg = await driver_of(request).negotiate(
        provider_url=body.provider_url,
        dataset_id=body.dataset_id,
        offer_id=body.offer_id,
        purpose=body.purpose,
        resolver=request.app.state.did_resolver,
    )
    driver_of(request).wake()
    return NegotiationOut.model_validate(neg)


@router.get("/api/v1/contracts/negotiations", response_model=list[NegotiationOut])
async def list_negotiations(node: NodeDep, _: CurrentUser) -> list[NegotiationOut]:
    """GET /api/v1/contracts/negotiations — this node's negotiations, newest first."""
    async with node.db.session() as session:
        found = await service.list_negotiations(session)
        return [NegotiationOut.model_validate(n) for n in found]


@router.get("/api/v1/contracts/negotiations/{pid}", response_model=NegotiationOut)
async def show_negotiation(pid: str, node: NodeDep, _: CurrentUser) -> NegotiationOut:
    """GET /api/v1/contracts/negotiations/{id} — one negotiation (either role)."""
    async with node.db.session() as session:
        neg = await session.get(Negotiation, pid)
        if neg is None:
            raise NotFound(f"no negotiation {pid}")
        return NegotiationOut.model_validate(neg)


@router.get("/api/v1/contracts/agreements", response_model=list[AgreementOut])
async def list_agreements(node: NodeDep, _: CurrentUser) -> list[AgreementOut]:
    """GET /api/v1/contracts/agreements — agreements this node is party to."""
    async with node.db.session() as session:
        return [AgreementOut.model_validate(a) for a in await agreements.list_agreements(session)]


def render_negotiation_error(status: int, code: str, reason: str, request: Request) -> JSONResponse:
    """Errors raised before a handler runs (authentication, body limits) on /dsp/negotiations,
    as ``ContractNegotiationError`` naming the pid of the path where there is one."""
    rest = request.url.path.removeprefix(N).strip("/").split("/")
    pid = rest[0] if rest and rest[0] not in ("", "request", "offers") else ""
    return JSONResponse(
        error_body(provider_pid=pid, consumer_pid=pid, code=code, reason=reason),
        status_code=status,
    )
