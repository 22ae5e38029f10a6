"""Pages of the data space: requesting access to a dataset (a contract negotiation, followed
live), the agreements and transfers of this node, and downloading a transfer's data.

The pages call the same drivers as ``POST /api/v1/contracts/negotiations`` and
``POST /api/v1/transfers``. Progress is followed by htmx polling the page's own state fragment
every second (``hx-trigger="every 1s"``) until the process is final; the final fragment carries
no trigger, so polling stops by itself (docs/architecture.md, "The web app"). The download is
streamed from the provider's data plane through this node, as the consumer's pull does.
"""

from __future__ import annotations

import hashlib
import logging
import mimetypes
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import quote

import httpx
from fastapi import APIRouter, Form, Query, Request
from sqlalchemy import select
from starlette.responses import Response, StreamingResponse

from rhenus.core.errors import Problem
from rhenus.core.node import Node, NodeDep
from rhenus.dataspace.catalogue import entries
from rhenus.dataspace.catalogue.models import CataloguePeer
from rhenus.dataspace.contracts import agreements as contracts
from rhenus.dataspace.contracts.api import driver_of as contracts_driver
from rhenus.dataspace.contracts.models import Agreement, Negotiation
from rhenus.dataspace.transfers import service as transfers
from rhenus.dataspace.transfers.api import driver_of as transfers_driver
from rhenus.dataspace.transfers.models import Transfer
from rhenus.dataspace.transfers.pull import digest_of, endpoint_of, wait_started
from rhenus.trust.client import federation_client
from rhenus.trust.did import base_url_for_did, did_for_url
from rhenus.web import i18n
from rhenus.web.i18n import N_
from rhenus.web.offers import OfferText, describe
from rhenus.web.pages import WebRoute, error_page, language_of, redirect, render
from rhenus.web.security import CsrfChecked, WebUser

log = logging.getLogger(__name__)
router = APIRouter(route_class=WebRoute, include_in_schema=False)
NEGOTIATION_FINAL = {"FINALIZED", "TERMINATED"}
TRANSFER_SETTLED = {"COMPLETED", "TERMINATED"}
CHUNK = 256 * 1024


def _polled(request: Request) -> bool:
    """An htmx poll of a page's progress fragment (the rest of the page stays as it is)."""
    return request.headers.get("hx-request") == "true" and request.headers.get(
        "hx-target", ""
    ).endswith("-progress")


async def _title(node: Node, *, provider: str, dataset_id: str, lang: str) -> str:
    async with node.db.session() as session:
        entry = await entries.find_entry(session, origin=provider, dataset_id=dataset_id)
    return i18n.pick(entry.title, lang) if entry is not None else dataset_id


async def _provider_url(node: Node, did: str) -> str:
    """Where the provider ``did`` answers: the URL we follow it at, else its did:web."""
    async with node.db.session() as session:
        peer = await session.get(CataloguePeer, did)
    if peer is not None:
        return peer.url
    return base_url_for_did(did, allow_http_loopback=node.settings.federation_insecure_http)


# -- requesting access ----------------------------------------------------------------------
@router.post("/catalogue/request-access", dependencies=[CsrfChecked])
async def request_access(
    request: Request,
    node: NodeDep,
    user: WebUser,
    origin: Annotated[str, Form(max_length=255)],
    dataset_id: Annotated[str, Form(max_length=255)],
    offer_id: Annotated[str, Form(max_length=255)] = "",
    purpose: Annotated[str, Form(max_length=255)] = "",
) -> Response:
    """POST /catalogue/request-access — start a negotiation for one of a peer's offers (as
    ``POST /api/v1/contracts/negotiations``), then follow it on its page."""
    if origin == did_for_url(node.settings.public_url):
        return error_page(request, 409)
    try:
        provider_url = await _provider_url(node, origin)
    except ValueError:  # not a did:web: no node to ask
        return error_page(request, 422)
    try:
        neg = await contracts_driver(request).negotiate(
            provider_url=provider_url,
            dataset_id=dataset_id,
            offer_id=offer_id or None,
            purpose=purpose.strip(),
            resolver=request.app.state.did_resolver,
        )
    except httpx.HTTPError:
        return error_page(request, 502, N_("The provider could not be reached; try again later."))
    contracts_driver(request).wake()
    return redirect(request, f"/negotiations/{neg.id}")


Shown = Annotated[str, Query(max_length=16)]


def _unchanged(request: Request, shown: str, state: str) -> bool:
    """A poll from a fragment that already shows ``state``: answered 204, which htmx leaves
    as it is (no swap, so no repeated announcement by screen readers, focus kept)."""
    return _polled(request) and shown == state


@router.get("/negotiations/{pid}")
async def negotiation_page(
    request: Request, node: NodeDep, user: WebUser, pid: str, shown: Shown = ""
) -> Response:
    """GET /negotiations/{id} — a negotiation's progress (the fragment alone when polled)."""
    async with node.db.session() as session:
        neg = await session.get(Negotiation, pid)
    if neg is None:
        return error_page(request, 404)
    if _unchanged(request, shown, neg.state):
        return Response(status_code=204)
    lang = language_of(request)
    title = await _title(node, provider=neg.counterparty, dataset_id=neg.dataset_id, lang=lang)
    context = {
        "negotiation": neg,
        "final": neg.state in NEGOTIATION_FINAL,
        "title": title,
        "offer": describe(neg.offer, lang),
    }
    template = "negotiation_progress.html" if _polled(request) else "negotiation.html"
    return render(request, template, context, user=user)


# -- agreements and transfers ---------------------------------------------------------------
@dataclass(frozen=True)
class AgreementRow:
    agreement: Agreement
    title: str
    counterparty: str
    terms: OfferText
    state: str


@router.get("/agreements")
async def agreements_page(request: Request, node: NodeDep, user: WebUser) -> Response:
    """GET /agreements — the agreements this node is party to and its transfers."""
    lang = language_of(request)
    async with node.db.session() as session:
        found = await contracts.list_agreements(session)
        moving = await transfers.list_transfers(session)
        ids = [a.negotiation_id for a in found if a.negotiation_id]
        states = dict(
            (await session.execute(select(Negotiation.id, Negotiation.state).where(
                Negotiation.id.in_(ids)))).tuples().all()
        ) if ids else {}  # fmt: skip
    ours = did_for_url(node.settings.public_url)
    titles: dict[str, str] = {}
    for provider, dataset_id in {(a.provider, a.dataset_id) for a in found} | {
        (ours if t.role == "provider" else t.counterparty, t.dataset_id) for t in moving
    }:
        titles[dataset_id] = await _title(node, provider=provider, dataset_id=dataset_id, lang=lang)
    rows = [
        AgreementRow(
            a,
            titles.get(a.dataset_id, a.dataset_id),
            a.consumer if a.role == "provider" else a.provider,
            describe(a.policy, lang),
            states.get(a.negotiation_id or "", "FINALIZED"),
        )
        for a in found
    ]
    context = {"rows": rows, "transfers": moving, "titles": titles}
    return render(request, "agreements.html", context, user=user)


@router.post("/agreements/transfers", dependencies=[CsrfChecked])
async def start_transfer(
    request: Request,
    node: NodeDep,
    user: WebUser,
    agreement_id: Annotated[str, Form(max_length=255)],
) -> Response:
    """POST /agreements/transfers — ask the provider for an agreement's data (HTTP pull), as
    ``POST /api/v1/transfers``; then follow the transfer on its page."""
    tp = await transfers_driver(request).request(agreement_id=agreement_id)
    return redirect(request, f"/transfers/{tp.id}")


async def _transfer(node: Node, pid: str) -> Transfer | None:
    async with node.db.session() as session:
        try:
            return await transfers.get_transfer(session, pid=pid, caller=None)
        except transfers.TransferFailed:
            return None


@router.get("/transfers/{pid}")
async def transfer_page(
    request: Request, node: NodeDep, user: WebUser, pid: str, shown: Shown = ""
) -> Response:
    """GET /transfers/{id} — a transfer's state and, once started, its download."""
    tp = await _transfer(node, pid)
    if tp is None:
        return error_page(request, 404)
    if _unchanged(request, shown, tp.state):
        return Response(status_code=204)
    provider = did_for_url(node.settings.public_url) if tp.role == "provider" else tp.counterparty
    lang = language_of(request)
    context = {
        "transfer": tp,
        "settled": tp.state in TRANSFER_SETTLED,
        "title": await _title(node, provider=provider, dataset_id=tp.dataset_id, lang=lang),
    }
    template = "transfer_progress.html" if _polled(request) else "transfer.html"
    return render(request, template, context, user=user)


def _file_name(title: str, media_type: str) -> str:
    stem = re.sub(r"[^\w.-]+", "-", title, flags=re.UNICODE).strip("-.")[:80] or "data"
    extension = mimetypes.guess_extension(media_type.split(";")[0].strip()) or ".bin"
    return stem + extension


def _disposition(name: str) -> str:
    """``attachment`` with an ASCII fallback name and the UTF-8 one (RFC 6266 §4.3)."""
    fallback = name.encode("ascii", "replace").decode().replace("?", "_").replace('"', "_")
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name)}"


@router.get("/transfers/{pid}/download")
async def download(request: Request, node: NodeDep, user: WebUser, pid: str) -> Response:
    """GET /transfers/{id}/download — the data of a started transfer (we are its consumer),
    streamed from the provider's data plane as it arrives: the browser shows its own progress.
    Once every byte came and its sha-256 matches the provider's ``Repr-Digest``, the transfer
    is reported COMPLETED (as ``POST /api/v1/transfers/{id}/pull`` does)."""
    tp = await _transfer(node, pid)
    if tp is None or tp.role != "consumer":
        return error_page(request, 404)
    try:
        endpoint, token = endpoint_of(await wait_started(node, pid, patience=30))
    except Problem as exc:
        return error_page(request, exc.status)
    client = federation_client(
        node.settings,
        node.keyring,
        transport=request.app.state.federation_transport,
        timeout=httpx.Timeout(60, connect=5),
    )
    try:
        upstream = await client.send(
            client.build_request("GET", endpoint, headers={"Authorization": f"Bearer {token}"}),
            stream=True,
        )
    except httpx.HTTPError:
        await client.aclose()
        return error_page(request, 502, N_("The provider could not be reached; try again later."))
    if upstream.status_code != 200:
        await upstream.aclose()
        await client.aclose()
        status = 403 if upstream.status_code in (401, 403) else 502
        return error_page(request, status, N_("The provider refused the download."))
    media_type = upstream.headers.get("content-type", "application/octet-stream")
    lang = language_of(request)
    title = await _title(node, provider=tp.counterparty, dataset_id=tp.dataset_id, lang=lang)
    headers = {"Content-Disposition": _disposition(_file_name(title, media_type))}
    if "content-length" in upstream.headers:
        headers["Content-Length"] = upstream.headers["content-length"]
    wanted = digest_of(upstream.headers.get("repr-digest", ""))
    driver = transfers_driver(request)

    async def body() -> AsyncIterator[bytes]:
        digest, size = hashlib.sha256(), 0
        try:
            async for chunk in upstream.aiter_bytes(CHUNK):
                digest.update(chunk)
                size += len(chunk)
                yield chunk
        finally:
            await upstream.aclose()
            await client.aclose()
        if wanted and digest.hexdigest() != wanted:
            log.warning("transfer %s: sha-256 %s is not the announced %s", pid, digest, wanted)
            return
        try:
            await driver.complete(transfer_id=pid, sha256=digest.hexdigest(), size=size)
        except Exception:  # the bytes are sent; a failed report must not break the response
            log.exception("transfer %s: could not report its completion", pid)

    return StreamingResponse(body(), media_type=media_type, headers=headers)
