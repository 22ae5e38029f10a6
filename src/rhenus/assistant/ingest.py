"""A document's way in: the upload stored encrypted, then parsed, chunked, embedded and indexed
by a durable job (``core.jobs``), its status kept on the document as it goes.

``queued`` (stored, job committed) → ``processing`` → ``done`` (its chunks searchable, all at
once: they are inserted in one transaction) or ``failed`` (``error`` says why: a file its
parser cannot read fails at once; a model that is busy or unavailable is retried with the job
queue's backoff, and fails after the last attempt).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import UploadFile
from sqlalchemy import delete
from starlette.datastructures import State

from rhenus.accounts.service import Principal
from rhenus.assistant import chunking, documents, pgvector_index, vectors
from rhenus.assistant.errors import OpenAIError
from rhenus.assistant.models import DONE, FAILED, PROCESSING, QUEUED, Chunk, Document
from rhenus.assistant.parsers import SUPPORTED, ParseError, media_type_of, parse
from rhenus.assistant.search import chunk_terms, embedder_for
from rhenus.core import jobs
from rhenus.core.blobs import BlobTooLarge
from rhenus.core.db import utcnow
from rhenus.core.node import Node

log = logging.getLogger("rhenus.assistant.ingest")

INGEST_JOB = "assistant.ingest"
EMBED_BATCH = 32  # chunks embedded per call (and between two heartbeats)
_READ = 1024 * 1024


def too_large(limit: int) -> OpenAIError:
    return OpenAIError(
        413,
        f"The file is larger than the {limit} bytes a document may have.",
        param="file",
        code="file_too_large",
    )


async def store_upload(
    node: Node, *, principal: Principal, collection_id: int, upload: UploadFile
) -> Document:
    """Check the upload, store it in the blob store and queue its indexing; the new document.

    404/403 for a collection the caller may not add to, 415 for a type no parser reads, 413
    over ``assistant_max_document_bytes``.
    """
    limit = node.settings.assistant_max_document_bytes
    async with node.db.session() as session:
        await documents.owned_collection(session, principal=principal, collection_id=collection_id)
    media_type = media_type_of(upload.filename or "", upload.content_type)
    if media_type is None:
        raise OpenAIError(
            415,
            f"Unsupported file type ({upload.filename!r}, {upload.content_type}); supported: "
            + ", ".join(sorted(SUPPORTED)),
            param="file",
            code="unsupported_file_type",
        )
    if upload.size is not None and upload.size > limit:
        raise too_large(limit)
    try:
        info = await node.blobs.put(_read(upload), max_size=limit)
    except BlobTooLarge as exc:
        raise too_large(limit) from exc
    now = utcnow()
    async with node.db.transaction() as session:
        # Checked again in the unit of work: the collection may have gone meanwhile.
        await documents.owned_collection(session, principal=principal, collection_id=collection_id)
        document = Document(
            collection_id=collection_id,
            name=(upload.filename or "document")[:255],
            media_type=media_type,
            blob_sha256=info.sha256,
            size=info.size,
            status=QUEUED,
            error="",
            chunk_count=0,
            page_count=None,
            created_at=now,
            updated_at=now,
        )
        session.add(document)
        await session.flush()
        job = jobs.enqueue(session, kind=INGEST_JOB, payload={"document_id": document.id})
        await session.flush()
        # The job renews its own lease while it works, so it needs to know its id.
        job.payload = {"document_id": document.id, "job_id": job.id}
        await node.audit.record(
            session,
            actor=principal.actor,
            action="assistant.document.upload",
            object_type="assistant_document",
            object_id=str(document.id),
            details={"collection": collection_id, "sha256": info.sha256, "size": info.size},
        )
    return document


def indexed(piece: chunking.Piece) -> str:
    """What is embedded and indexed of a chunk: its text under its headings (a passage often
    answers in words that only its heading has, e.g. "Fees" over "It costs 3 euros")."""
    return "\n".join([*piece.headings, piece.text])


async def _read(upload: UploadFile) -> AsyncIterator[bytes]:
    while piece := await upload.read(_READ):
        yield piece


class Ingester:
    """The ``assistant.ingest`` job, on the node and models of an app's ``state``."""

    def __init__(self, state: State) -> None:
        # Read when a job runs: the app sets its node and assistant after the job runner.
        self.state = state

    def handlers(self) -> dict[str, jobs.Handler]:
        return {INGEST_JOB: jobs.Handler(self.run, give_up=self.give_up)}

    async def run(self, payload: dict[str, Any]) -> None:
        node: Node = self.state.node
        document_id = int(payload["document_id"])
        job_id = payload.get("job_id")
        async with node.db.transaction() as session:
            document = await session.get(Document, document_id)
            if document is None or document.status in (DONE, FAILED):
                return  # deleted meanwhile, or a job run twice
            document.status, document.error, document.updated_at = PROCESSING, "", utcnow()
            media_type, sha256 = document.media_type, document.blob_sha256
        try:
            data = await node.blobs.read_bytes(sha256)
            parsed = await asyncio.to_thread(parse, data, media_type)
            pieces = chunking.chunks(
                parsed.blocks,
                size=node.settings.assistant_chunk_chars,
                overlap=node.settings.assistant_chunk_overlap_chars,
            )
        except ParseError as exc:
            await self._fail(document_id, str(exc))
            return
        try:
            embeddings = await self._embed(node, document_id, job_id, pieces)
        except _Gone:
            return
        except Exception:
            # Back in the queue, for the job's next attempt (a busy or missing model).
            await self._set(document_id, status=QUEUED)
            raise
        await self._index(node, document_id, parsed.page_count, pieces, embeddings)

    async def _embed(
        self, node: Node, document_id: int, job_id: int | None, pieces: list[chunking.Piece]
    ) -> list[bytes]:
        embed = embedder_for(self.state.assistant, node.settings)
        out: list[bytes] = []
        for start in range(0, len(pieces), EMBED_BATCH):
            batch = pieces[start : start + EMBED_BATCH]
            rows = await embed([indexed(p) for p in batch])
            out.extend(vectors.to_bytes(row) for row in rows)
            async with node.db.transaction() as session:  # the heartbeat
                if job_id is not None:
                    await jobs.renew_lease(session, int(job_id))
                document = await session.get(Document, document_id)
                if document is None:
                    raise _Gone
                document.updated_at = utcnow()
        return out

    async def _index(
        self,
        node: Node,
        document_id: int,
        page_count: int | None,
        pieces: list[chunking.Piece],
        embeddings: list[bytes],
    ) -> None:
        async with node.db.transaction() as session:
            document = await session.get(Document, document_id)
            if document is None:
                return
            await session.execute(delete(Chunk).where(Chunk.document_id == document_id))
            media_type = document.media_type
            session.add_all(
                Chunk(
                    document_id=document_id,
                    collection_id=document.collection_id,
                    index=i,
                    page=piece.page,
                    text=piece.text,
                    meta={
                        "headings": piece.headings,
                        "media_type": media_type,
                    },
                    embedding=embedding,
                    search_terms=chunk_terms(indexed(piece)),
                )
                for i, (piece, embedding) in enumerate(zip(pieces, embeddings, strict=True))
            )
            document.status, document.error = DONE, ""
            document.chunk_count, document.page_count = len(pieces), page_count
            document.updated_at = utcnow()
            if node.settings.assistant_vector_index != "memory" and await pgvector_index.available(
                session
            ):  # here rather than at the first search: HNSW inserts take milliseconds each
                await session.flush()
                await pgvector_index.fill(session, [document.collection_id])

    async def give_up(self, payload: dict[str, Any], error: str) -> None:
        await self._fail(int(payload["document_id"]), error)

    async def _fail(self, document_id: int, error: str) -> None:
        log.info("document %s not indexed: %s", document_id, error)
        await self._set(document_id, status=FAILED, error=error[:2000])

    async def _set(self, document_id: int, *, status: str, error: str = "") -> None:
        node: Node = self.state.node
        async with node.db.transaction() as session:
            document = await session.get(Document, document_id)
            if document is not None:
                document.status, document.error, document.updated_at = status, error, utcnow()


class _Gone(Exception):
    """The document was deleted while it was being embedded."""
