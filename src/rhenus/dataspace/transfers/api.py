"""Routes of transfer processes: the DSP 2025-1 HTTPS binding (``/dsp/transfers``: provider
paths and consumer callbacks share paths; the pid says which of our processes it is) and the
node's own API for people (``/api/v1/transfers``). The data plane is in :mod:`.dataplane`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from rhenus.accounts.deps import CurrentUser
from rhenus.core.errors import NotFound
from rhenus.core.http import api_router
from rhenus.core.node import Node, NodeDep
from rhenus.dataspace.callers import Caller, DspCaller, answer, handle
from rhenus.dataspace.catalogue.dsp import BASE_PATH
from rhenus.dataspace.messages import DspMessage, error_message, message
from rhenus.dataspace.transfers import receipts, service
from rhenus.dataspace.transfers.driver import TransferDriver
from rhenus.dataspace.transfers.models import Transfer
from rhenus.dataspace.transfers.pull import pull_to_file
from rhenus.dataspace.transfers.service import TransferFailed
from rhenus.trust.deps import SignedPeer
from rhenus.trust.did import did_for_url

router = api_router(tags=["transfers"])
T = f"{BASE_PATH}/transfers"


def driver_of(request: Request) -> TransferDriver:
    driver: TransferDriver = request.app.state.transfers_driver
    return driver


def process_body(tp: Transfer) -> dict[str, Any]:
    """A ``TransferProcess`` (answer to requests and to ``GET /transfers/{pid}``)."""
    return message(
        "TransferProcess", providerPid=tp.provider_pid, consumerPid=tp.consumer_pid, state=tp.state
    )


def error_body(*, provider_pid: str, consumer_pid: str, code: str, reason: str) -> dict[str, Any]:
    return error_message(
        TransferFailed.error_type, provider_pid=provider_pid, consumer_pid=consumer_pid,
        code=code, reason=reason,
    )  # fmt: skip


async def _handle(
    request: Request,
    node: Node,
    caller: Caller,
    expected: str,
    pid: str,
    work: Callable[[DspMessage], Awaitable[Transfer]],
    status: int = 200,
) -> Response:
    """Answer a transfer message with the process (or a ``TransferError``)."""

    async def state_after(message: DspMessage) -> tuple[dict[str, Any], int]:
        return process_body(await work(message)), status

    return await handle(
        request, node, caller, expected=expected, pid=pid,
        error_type=TransferFailed.error_type, work=state_after,
    )  # fmt: skip


@router.get(T + "/{pid}", response_class=JSONResponse)
async def get_transfer(pid: str, request: Request, node: NodeDep, caller: DspCaller) -> Response:
    """GET /dsp/transfers/{pid} — the process's state, for its counterparty only."""
    async with node.db.session() as session:
        try:
            tp = await service.get_transfer(session, pid=pid, caller=caller.did)
        except TransferFailed as exc:
            body = error_body(provider_pid=pid, consumer_pid=pid, code=exc.code, reason=exc.reason)
            return answer(request, node, caller, body, status=exc.status)
    return answer(request, node, caller, process_body(tp))


@router.post(T + "/request", response_class=JSONResponse)
async def transfer_request(request: Request, node: NodeDep, caller: DspCaller) -> Response:
    """POST /dsp/transfers/request — a consumer asks for data under an agreement: 201."""
    loopback = bool(node.settings.dsp_conformance_token.get_secret_value())

    async def work(msg: DspMessage) -> Transfer:
        async with node.db.transaction() as session:
            return await service.provider_request(
                session, message=msg, caller=caller, audit=node.audit, loopback_http=loopback
            )

    return await _handle(request, node, caller, "TransferRequestMessage", "", work, 201)


def _peer_route(kind: str, path: str) -> None:
    async def route(pid: str, request: Request, node: NodeDep, caller: DspCaller) -> Response:
        async def work(msg: DspMessage) -> Transfer:
            async with node.db.transaction() as session:
                return await service.peer_move(
                    session, pid=pid, message=msg, caller=caller, audit=node.audit
                )

        return await _handle(request, node, caller, kind, pid, work)

    route.__doc__ = f"POST /dsp/transfers/{{pid}}/{path} — a {kind} from the other party."
    route.__name__ = f"transfer_{path}"
    router.add_api_route(
        f"{T}/{{pid}}/{path}", route, methods=["POST"], response_class=JSONResponse
    )


for _kind, _path in (
    ("TransferStartMessage", "start"),
    ("TransferCompletionMessage", "completion"),
    ("TransferSuspensionMessage", "suspension"),
    ("TransferTerminationMessage", "termination"),
):
    _peer_route(_kind, _path)


def render_transfer_error(status: int, code: str, reason: str, request: Request) -> JSONResponse:
    """Errors raised before a handler runs on /dsp/transfers, as ``TransferError``."""
    rest = request.url.path.removeprefix(T).strip("/").split("/")
    pid = rest[0] if rest and rest[0] not in ("", "request") else ""
    return JSONResponse(
        error_body(provider_pid=pid, consumer_pid=pid, code=code, reason=reason),
        status_code=status,
    )


class ReceiptIn(BaseModel):
    receipt: str = Field(max_length=65_536)


class CountersignatureOut(BaseModel):
    countersignature: str


@router.post("/api/v1/federation/receipts", response_model=CountersignatureOut)
async def receive_receipt(
    body: ReceiptIn, request: Request, node: NodeDep, peer: SignedPeer
) -> CountersignatureOut:
    """POST /api/v1/federation/receipts — a provider's signed receipt of a completed transfer;
    answered with our countersignature if it matches what we received."""
    async with node.db.transaction() as session:
        counter = await receipts.countersign(
            session, token=body.receipt, sender=peer.did, resolver=request.app.state.did_resolver,
            keyring=node.keyring, audit=node.audit, did=did_for_url(node.settings.public_url),
        )  # fmt: skip
    return CountersignatureOut(countersignature=counter)


# -- the node's own API, for people ---------------------------------------------------------
class TransferIn(BaseModel):
    agreement_id: str = Field(max_length=255)


class TransferOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    role: str
    provider_pid: str
    consumer_pid: str
    counterparty: str
    agreement_id: str
    dataset_id: str
    format: str
    state: str
    reason: list[str]
    bytes_served: int


@router.post("/api/v1/transfers", response_model=TransferOut, status_code=201)
async def start_transfer(body: TransferIn, request: Request, _: CurrentUser) -> TransferOut:
    """POST /api/v1/transfers — ask the provider of an agreement for its data (HTTP pull)."""
    tp = await driver_of(request).request(agreement_id=body.agreement_id)
    return TransferOut.model_validate(tp)


class PulledOut(BaseModel):
    transfer: TransferOut
    size: int
    sha256: str
    resumed: int


@router.post("/api/v1/transfers/{pid}/pull", response_model=PulledOut)
async def pull_transfer(pid: str, request: Request, node: NodeDep, _: CurrentUser) -> PulledOut:
    """POST /api/v1/transfers/{id}/pull — fetch a started transfer's data into this node
    (``{home}/transfers/{id}``), check its sha-256, and report the transfer COMPLETED."""
    folder = node.settings.home / "transfers"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / pid.replace(":", "_").replace("/", "_")
    pulled = await pull_to_file(node, pid, target, transport=request.app.state.federation_transport)
    tp = await driver_of(request).complete(transfer_id=pid, sha256=pulled.sha256, size=pulled.size)
    return PulledOut(
        transfer=TransferOut.model_validate(tp),
        size=pulled.size,
        sha256=pulled.sha256,
        resumed=pulled.resumed,
    )


@router.get("/api/v1/transfers", response_model=list[TransferOut])
async def list_transfers(node: NodeDep, _: CurrentUser) -> list[TransferOut]:
    """GET /api/v1/transfers — this node's transfer processes, newest first."""
    async with node.db.session() as session:
        return [TransferOut.model_validate(t) for t in await service.list_transfers(session)]


@router.get("/api/v1/transfers/{pid}", response_model=TransferOut)
async def show_transfer(pid: str, node: NodeDep, _: CurrentUser) -> TransferOut:
    """GET /api/v1/transfers/{id} — one transfer process (either role)."""
    async with node.db.session() as session:
        try:
            tp = await service.get_transfer(session, pid=pid, caller=None)
        except TransferFailed as exc:
            raise NotFound(exc.reason) from exc
        return TransferOut.model_validate(tp)
