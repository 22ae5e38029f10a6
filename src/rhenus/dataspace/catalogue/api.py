"""Routes of the catalogue: the administrators' API and the DSP 2025-1 catalog binding."""

from __future__ import annotations

import json
from typing import Any

from fastapi import Query, Request, Response
from fastapi.responses import JSONResponse

from rhenus.accounts.deps import AdminUser
from rhenus.core.blobs import BlobTooLarge
from rhenus.core.errors import Problem
from rhenus.core.http import api_router
from rhenus.core.node import Node, NodeDep
from rhenus.dataspace.callers import DspCaller, answer
from rhenus.dataspace.catalogue import dsp, service
from rhenus.dataspace.catalogue.schemas import DatasetIn, DatasetOut, OfferIn, OfferOut
from rhenus.trust.did import did_for_url

router = api_router(tags=["catalogue"])
PAGE_SIZE = 50


@router.post("/api/v1/datasets", response_model=DatasetOut, status_code=201)
async def create_dataset(body: DatasetIn, node: NodeDep, admin: AdminUser) -> DatasetOut:
    """POST /api/v1/datasets — register a dataset or service (draft until published)."""
    async with node.db.transaction() as session:
        dataset = await service.create_dataset(
            session, audit=node.audit, actor=admin.actor, data=body
        )
        return DatasetOut.model_validate(dataset)


@router.get("/api/v1/datasets", response_model=list[DatasetOut])
async def list_datasets(node: NodeDep, _: AdminUser) -> list[DatasetOut]:
    """GET /api/v1/datasets — every dataset of this node, any status (admin)."""
    async with node.db.session() as session:
        return [DatasetOut.model_validate(d) for d in await service.list_datasets(session)]


@router.put("/api/v1/datasets/{dataset_id}/content", response_model=DatasetOut)
async def upload_content(
    dataset_id: str, request: Request, node: NodeDep, admin: AdminUser
) -> DatasetOut:
    """PUT /api/v1/datasets/{id}/content — the dataset's file, streamed into the encrypted
    blob store (the body is the file; Content-Type is its media type)."""
    async with node.db.session() as session:
        await service.get_dataset(session, dataset_id=dataset_id)  # 404 before reading a byte
    try:
        info = await node.blobs.put(request.stream(), max_size=node.settings.max_upload_bytes)
    except BlobTooLarge as exc:
        raise Problem(
            f"the file is larger than {node.settings.max_upload_bytes} bytes",
            status=413,
            kind="body-too-large",
            title="File too large",
        ) from exc
    media_type = request.headers.get("content-type", "application/octet-stream").split(";")[0]
    async with node.db.transaction() as session:
        dataset = await service.set_content(
            session,
            audit=node.audit,
            actor=admin.actor,
            public_url=node.settings.public_url,
            dataset_id=dataset_id,
            sha256=info.sha256,
            size=info.size,
            media_type=media_type,
        )
        return DatasetOut.model_validate(dataset)


@router.post("/api/v1/datasets/{dataset_id}/offers", response_model=OfferOut, status_code=201)
async def add_offer(dataset_id: str, body: OfferIn, node: NodeDep, admin: AdminUser) -> OfferOut:
    """POST /api/v1/datasets/{id}/offers — attach an ODRL offer (usage policy)."""
    async with node.db.transaction() as session:
        offer = await service.add_offer(
            session,
            audit=node.audit,
            actor=admin.actor,
            public_url=node.settings.public_url,
            dataset_id=dataset_id,
            policy=body.policy,
        )
        return OfferOut.model_validate(offer)


@router.post("/api/v1/datasets/{dataset_id}/publish", response_model=DatasetOut)
async def publish(dataset_id: str, node: NodeDep, admin: AdminUser) -> DatasetOut:
    """POST /api/v1/datasets/{id}/publish — show it in the catalog to those it admits."""
    async with node.db.transaction() as session:
        dataset = await service.publish(
            session,
            audit=node.audit,
            actor=admin.actor,
            public_url=node.settings.public_url,
            dataset_id=dataset_id,
        )
        return DatasetOut.model_validate(dataset)


@router.post("/api/v1/datasets/{dataset_id}/withdraw", response_model=DatasetOut)
async def withdraw(dataset_id: str, node: NodeDep, admin: AdminUser) -> DatasetOut:
    """POST /api/v1/datasets/{id}/withdraw — take it out of the catalog for good."""
    async with node.db.transaction() as session:
        dataset = await service.withdraw(
            session,
            audit=node.audit,
            actor=admin.actor,
            public_url=node.settings.public_url,
            dataset_id=dataset_id,
        )
        return DatasetOut.model_validate(dataset)


@router.get("/catalogue/dcat-ap.ttl", response_class=Response)
async def dcat_ap_turtle(node: NodeDep) -> Response:
    """GET /catalogue/dcat-ap.ttl — the public datasets as DCAT-AP 3 (Turtle), for harvesters."""
    return Response(await _dcat(node, "turtle"), media_type="text/turtle")


@router.get("/catalogue/dcat-ap.jsonld", response_class=Response)
async def dcat_ap_jsonld(node: NodeDep) -> Response:
    """GET /catalogue/dcat-ap.jsonld — the same as JSON-LD."""
    return Response(await _dcat(node, "json-ld"), media_type="application/ld+json")


async def _dcat(node: Node, fmt: str) -> str:
    # Imported on the first export: rdflib weighs ~20 MiB that no other route needs.
    from rhenus.dataspace.catalogue import dcat

    async with node.db.session() as session:
        published = await service.list_datasets(session, status="published")
    graph = dcat.catalogue_graph(
        public_url=node.settings.public_url,
        organisation=node.settings.organisation,
        datasets=published,
    )
    return graph.serialize(format=fmt)


# -- Dataspace Protocol 2025-1, catalog binding ------------------------------------------------
@router.get("/.well-known/dspace-version")
async def dspace_version() -> dict[str, Any]:
    """GET /.well-known/dspace-version — the protocol versions this node speaks (public)."""
    return dsp.versions()


@router.post(f"{dsp.BASE_PATH}/catalog/request", response_class=JSONResponse)
async def catalog_request(
    request: Request,
    node: NodeDep,
    peer: DspCaller,
    page: int = Query(1, ge=1, le=100_000),
) -> Response:
    """POST /dsp/catalog/request — the catalog as this participant may see it; ``Link``
    headers page through it (``rel="next"``, ``rel="previous"``)."""
    try:
        message = json.loads(await request.body())
    except ValueError:
        return dsp.catalog_error(400, "malformed-json", "the body is not JSON")
    if not isinstance(message, dict) or message.get("@type") != "CatalogRequestMessage":
        return dsp.catalog_error(400, "bad-message", "expected a CatalogRequestMessage")
    if message.get("filter"):
        return dsp.catalog_error(400, "unsupported-filter", "this catalog supports no filter")
    async with node.db.session() as session:
        page_items, total = await service.catalog_for(
            session,
            did=peer.did,
            country=peer.country,
            offset=(page - 1) * PAGE_SIZE,
            limit=PAGE_SIZE,
        )
        offers = await service.offers_of(session, dataset_ids=[d.id for d in page_items])
    url = node.settings.public_url
    body = dsp.catalog(
        public_url=url,
        participant_id=did_for_url(url),
        datasets=[dsp.dataset(d, offers[d.id], url) for d in page_items],
    )
    links = []
    here = f"{url}{dsp.BASE_PATH}/catalog/request"
    if page * PAGE_SIZE < total:
        links.append(f'<{here}?page={page + 1}>; rel="next"')
    if page > 1:
        links.append(f'<{here}?page={page - 1}>; rel="previous"')
    headers = {"Link": ", ".join(links)} if links else {}
    return answer(request, node, peer, body, headers=headers)


@router.get(f"{dsp.BASE_PATH}/catalog/datasets/{{dataset_id}}", response_class=JSONResponse)
async def catalog_dataset(
    dataset_id: str, request: Request, node: NodeDep, peer: DspCaller
) -> Response:
    """GET /dsp/catalog/datasets/{id} — one dataset, if this participant may see it."""
    async with node.db.session() as session:
        dataset = await service.find_dataset(session, dataset_id=dataset_id)
        if dataset is None or not service.visible_to(dataset, did=peer.did, country=peer.country):
            # Same answer for "absent" and "not for you": existence is not disclosed.
            return dsp.catalog_error(404, "unknown-dataset", f"no dataset {dataset_id[:80]}")
        offers = await service.offers_of(session, dataset_ids=[dataset_id])
    body = {
        "@context": [dsp.CONTEXT],
        **dsp.dataset(dataset, offers[dataset_id], node.settings.public_url),
    }
    return answer(request, node, peer, body)
