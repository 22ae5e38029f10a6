"""Routes of document collections and search under ``/v1``, after the Albert API.

Errors are OpenAI's shape (``errors.py``); who may see what: :mod:`.documents`. What is and
is not implemented: docs/assistant.md ("Documents and search").
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, Request, Response, UploadFile

from rhenus.accounts.deps import CurrentUser
from rhenus.assistant import documents, ingest
from rhenus.assistant.errors import OpenAIRoute
from rhenus.assistant.rag_schemas import (
    Collection,
    CollectionRequest,
    Collections,
    Document,
    Documents,
    Hit,
    Hits,
    SearchRequest,
)
from rhenus.assistant.schemas import ErrorBody
from rhenus.assistant.search import embedder_for, search
from rhenus.core.node import NodeDep

ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (400, 401, 403, 404, 413, 415, 503)
}
router = APIRouter(prefix="/v1", route_class=OpenAIRoute, tags=["assistant"], responses=ERRORS)


@router.post("/collections", response_model=Collection, status_code=201)
async def create_collection(
    body: CollectionRequest, node: NodeDep, principal: CurrentUser
) -> Collection:
    """POST /v1/collections — a new, empty collection of the caller's."""
    async with node.db.transaction() as session:
        row = await documents.create_collection(
            session,
            principal=principal,
            name=body.name,
            description=body.description,
            visibility=body.visibility,
        )
        await node.audit.record(
            session,
            actor=principal.actor,
            action="assistant.collection.create",
            object_type="assistant_collection",
            object_id=str(row.id),
            details={"visibility": row.visibility},
        )
    return Collection.of(row, principal.username, 0)


@router.get("/collections", response_model=Collections)
async def list_collections(node: NodeDep, principal: CurrentUser) -> Collections:
    """GET /v1/collections — the caller's collections and those shared on the node."""
    async with node.db.session() as session:
        rows = await documents.list_collections(session, principal=principal)
    return Collections(data=[Collection.of(row, owner, n) for row, owner, n in rows])


@router.get("/collections/{collection_id}", response_model=Collection)
async def retrieve_collection(
    collection_id: int, node: NodeDep, principal: CurrentUser
) -> Collection:
    """GET /v1/collections/{id} — one readable collection; 404 otherwise."""
    async with node.db.session() as session:
        row = await documents.readable_collection(
            session, principal=principal, collection_id=collection_id
        )
        owner, count = await documents.describe(session, row)
    return Collection.of(row, owner, count)


@router.delete("/collections/{collection_id}", status_code=204)
async def delete_collection(collection_id: int, node: NodeDep, principal: CurrentUser) -> Response:
    """DELETE /v1/collections/{id} — an owned collection, with its documents and chunks."""
    async with node.db.transaction() as session:
        await documents.delete_collection(session, principal=principal, collection_id=collection_id)
        await node.audit.record(
            session,
            actor=principal.actor,
            action="assistant.collection.delete",
            object_type="assistant_collection",
            object_id=str(collection_id),
        )
    return Response(status_code=204)


@router.post("/documents", response_model=Document, status_code=201)
async def create_document(
    file: Annotated[UploadFile, File()],
    collection: Annotated[int, Form()],
    node: NodeDep,
    principal: CurrentUser,
) -> Document:
    """POST /v1/documents (multipart: ``file``, ``collection``) — store a document and queue
    its indexing; it is ``queued`` here, then follow ``GET /v1/documents/{id}``."""
    row = await ingest.store_upload(
        node, principal=principal, collection_id=collection, upload=file
    )
    return Document.of(row)


@router.get("/documents", response_model=Documents)
async def list_documents(
    node: NodeDep,
    principal: CurrentUser,
    collection: Annotated[int | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Documents:
    """GET /v1/documents?collection={id}&limit=&offset= — the documents of a collection (or of
    all readable ones), oldest first, each with its indexing status."""
    async with node.db.session() as session:
        rows = await documents.list_documents(
            session, principal=principal, collection_id=collection, limit=limit, offset=offset
        )
    return Documents(data=[Document.of(row) for row in rows])


@router.get("/documents/{document_id}", response_model=Document)
async def retrieve_document(document_id: int, node: NodeDep, principal: CurrentUser) -> Document:
    """GET /v1/documents/{id} — one document and how far its indexing went."""
    async with node.db.session() as session:
        row = await documents.readable_document(
            session, principal=principal, document_id=document_id
        )
    return Document.of(row)


@router.delete("/documents/{document_id}", status_code=204)
async def delete_document(document_id: int, node: NodeDep, principal: CurrentUser) -> Response:
    """DELETE /v1/documents/{id} — a document of an owned collection, with its chunks."""
    async with node.db.transaction() as session:
        await documents.delete_document(session, principal=principal, document_id=document_id)
        await node.audit.record(
            session,
            actor=principal.actor,
            action="assistant.document.delete",
            object_type="assistant_document",
            object_id=str(document_id),
        )
    return Response(status_code=204)


@router.post("/search", response_model=Hits)
async def search_chunks(
    body: SearchRequest, request: Request, node: NodeDep, principal: CurrentUser
) -> Hits:
    """POST /v1/search — the best chunks of readable collections for a prompt."""
    embed = embedder_for(request.app.state.assistant, node.settings)
    async with node.db.session() as session:
        collections = await documents.readable_collections(
            session, principal=principal, collection_ids=body.collections
        )
        results = await search(
            session,
            embed,
            collections=collections,
            prompt=body.prompt,
            k=body.k,
            method=body.method,
            score_threshold=body.score_threshold,
            metadata=body.metadata,
            vector_index=node.settings.assistant_vector_index,
        )
    return Hits(data=[Hit.of(r) for r in results])
