"""The assistant pages (after Albert and Open WebUI): a conversation whose answers stream in,
optionally from the documents of a collection with their sources cited ``[1]``, ``[2]``; and
the collections, with document upload and its ingest progress.

The routes call the assistant's services (:mod:`.assistant`, ``rhenus.assistant.documents`` and
``ingest``) as the signed-in user, so that quotas, metering and who may read which collection
are the same as on ``/v1``.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Header, Query, Request, UploadFile
from fastapi.responses import StreamingResponse
from markupsafe import Markup
from sqlalchemy import select
from starlette.responses import Response

from rhenus.assistant import documents, ingest
from rhenus.assistant.errors import OpenAIError
from rhenus.assistant.models import DONE, FAILED, PRIVATE, SHARED, Chunk
from rhenus.assistant.service import Assistant
from rhenus.core.node import NodeDep
from rhenus.web import pages, security
from rhenus.web.assistant import (
    QUESTION_CHARS,
    Answered,
    Ask,
    Source,
    answer,
    chat_model,
    history_of,
    seal,
    unseal,
    with_citations,
)
from rhenus.web.i18n import N_
from rhenus.web.pages import WebRoute, error_page, language_of, redirect, render
from rhenus.web.security import CsrfChecked, WebUser

router = APIRouter(prefix="/assistant", route_class=WebRoute, include_in_schema=False)
# The document form's body may be as large as a document (app.py's body limits).
UPLOAD_PATH = re.compile(r"^/assistant/collections/[0-9]+/documents$")
REFUSALS = {
    429: N_("You have asked a lot in a short time; wait a minute and ask again."),
    503: N_("The assistant is busy; ask again in a moment."),
}


def install(app: Any) -> None:
    app.include_router(router)


def _assistant(request: Request) -> Assistant:
    found: Assistant = request.app.state.assistant
    return found


def _is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def _fragment(request: Request, template: str, **context: Any) -> str:
    return pages.environment(language_of(request)).get_template(template).render(**context)


async def _collections(node: NodeDep, user: WebUser) -> list[dict[str, Any]]:
    async with node.db.session() as session:
        rows = await documents.list_collections(session, principal=user)
    return [
        {"id": c.id, "name": c.name, "description": c.description, "owner": owner, "count": n,
         "visibility": c.visibility, "mine": c.owner_id == user.user_id}
        for c, owner, n in rows
    ]  # fmt: skip


@router.get("")
async def conversation(request: Request, node: NodeDep, user: WebUser) -> Response:
    """GET /assistant — ask the node's model, alone or from the documents of a collection."""
    context = {
        "collections": await _collections(node, user),
        "model": chat_model(node),
        "turns": [],
        "history": "[]",
        "chosen": None,
        "failed": "",
    }
    return render(request, "assistant.html", context, user=user)


@router.post("/ask", dependencies=[CsrfChecked])
async def ask(
    request: Request,
    node: NodeDep,
    user: WebUser,
    question: Annotated[str, Form(max_length=QUESTION_CHARS)] = "",
    collection: Annotated[str, Form(max_length=20)] = "",
    history: Annotated[str, Form(max_length=20_000)] = "[]",
) -> Response:
    """POST /assistant/ask — the question's turn, whose answer then streams from
    ``/assistant/answer`` (htmx); without htmx, the page with the whole answer."""
    chosen = int(collection) if collection.isdigit() else None
    if not question.strip() or not chat_model(node):
        return error_page(request, 400, N_("Write a question first."))
    earlier = history_of(history)
    question_ask = Ask([*earlier, {"role": "user", "content": question.strip()}], chosen)
    if _is_htmx(request):
        sealed = seal(question_ask, security.csrf_secret(request))
        html = _fragment(request, "assistant_turn.html", question=question_ask.question, ask=sealed)
        return Response(html, media_type="text/html")
    text, ended = await _whole_answer(request, node, user, question_ask)
    turn = {"question": question_ask.question, "answer": _answer_html(text, ended)}
    context = {
        "collections": await _collections(node, user),
        "model": chat_model(node),
        "turns": [turn],
        "history": _history_json(question_ask, text),
        "chosen": chosen,
        "failed": "",
    }
    return render(request, "assistant.html", context, user=user)


async def _whole_answer(
    request: Request, node: NodeDep, user: WebUser, asked: Ask
) -> tuple[str, Answered]:
    pieces: list[str] = []
    async for item in answer(node, _assistant(request), user, asked):
        if isinstance(item, Answered):
            return "".join(pieces), item
        pieces.append(item)
    return "".join(pieces), Answered()


def _history_json(asked: Ask, text: str) -> str:
    import json

    return json.dumps([*asked.messages, {"role": "assistant", "content": text}], ensure_ascii=False)


def _source_link(source: Source) -> Markup:
    href = f"/assistant/sources/{source.chunk_id}"
    return Markup(
        '<a class="cite" href="{href}" hx-get="{href}" hx-target="#source-panel" '
        'hx-swap="innerHTML">[{n}]</a>'
    ).format(href=href, n=source.number)


def _answer_html(text: str, ended: Answered) -> dict[str, Any]:
    return {
        "text": with_citations(text, ended.sources, _source_link),
        "sources": ended.sources,
        "nothing_found": ended.nothing_found,
        "cut": ended.finish_reason == "length",
        "failed": "",
    }


@router.get("/answer")
async def answer_stream(
    request: Request,
    node: NodeDep,
    user: WebUser,
    ask: Annotated[str, Query(max_length=16_000)],
    last_event_id: Annotated[str, Header(max_length=200)] = "",
) -> Response:
    """GET /assistant/answer?ask=… — Server-Sent Events: ``token`` (a piece of the answer,
    escaped, to append) and at the end ``done`` (the answer with its citations as links, its
    sources, and the conversation so far for the next question)."""
    asked = unseal(ask, security.csrf_secret(request))
    if asked is None:
        return error_page(request, 403)

    async def stream() -> AsyncIterator[str]:
        if last_event_id:  # a reconnection: the answer is not asked a second time
            yield _done(request, asked, "", None, N_("The answer was interrupted; ask again."))
            return
        pieces: list[str] = []
        try:
            async for item in answer(node, _assistant(request), user, asked):
                if isinstance(item, Answered):
                    yield _done(request, asked, "".join(pieces), item, "")
                    return
                pieces.append(item)
                yield _sse("token", str(Markup.escape(item)), ident="1")
        except OpenAIError as exc:
            message = REFUSALS.get(exc.status, N_("The assistant could not answer this question."))
            yield _done(request, asked, "".join(pieces), None, message)

    return StreamingResponse(
        stream(), media_type="text/event-stream", headers={"X-Accel-Buffering": "no"}
    )


def _done(request: Request, asked: Ask, text: str, ended: Answered | None, failed: str) -> str:
    shown = _answer_html(text, ended or Answered())
    shown["failed"] = failed
    html = _fragment(
        request,
        "assistant_answer.html",
        answer=shown,
        history=_history_json(asked, text) if ended else "",
        oob=True,
    )
    return _sse("done", html, ident="1")


def _sse(event: str, data: str, *, ident: str = "") -> str:
    lines = data.split("\n") if data else [""]
    head = f"id: {ident}\n" if ident else ""
    return head + f"event: {event}\n" + "".join(f"data: {line}\n" for line in lines) + "\n"


@router.get("/sources/{chunk_id}")
async def source(request: Request, node: NodeDep, user: WebUser, chunk_id: int) -> Response:
    """GET /assistant/sources/{chunk} — a cited passage: its document, page and text."""
    async with node.db.session() as session:
        chunk = await session.scalar(select(Chunk).where(Chunk.id == chunk_id))
        if chunk is None:
            return error_page(request, 404)
        document = await documents.readable_document(  # 404 for a collection not theirs
            session, principal=user, document_id=chunk.document_id
        )
    context = {"document": document.name, "page": chunk.page, "text": chunk.text}
    if _is_htmx(request):
        return Response(
            _fragment(request, "assistant_source.html", **context), media_type="text/html"
        )
    return render(request, "assistant_source_page.html", context, user=user)


# -- collections and documents ---------------------------------------------------------------
@router.get("/collections")
async def collections_page(request: Request, node: NodeDep, user: WebUser) -> Response:
    """GET /assistant/collections — the user's collections and those shared on the node."""
    context = {"collections": await _collections(node, user), "failed": ""}
    return render(request, "assistant_collections.html", context, user=user)


@router.post("/collections", dependencies=[CsrfChecked])
async def create_collection(
    request: Request,
    node: NodeDep,
    user: WebUser,
    name: Annotated[str, Form(max_length=255)] = "",
    description: Annotated[str, Form(max_length=10_000)] = "",
    visibility: Annotated[str, Form(max_length=16)] = PRIVATE,
) -> Response:
    """POST /assistant/collections — a new, empty collection of the user's."""
    if not name.strip() or visibility not in (PRIVATE, SHARED):
        context = {
            "collections": await _collections(node, user),
            "failed": N_("Name the collection."),
        }
        return render(request, "assistant_collections.html", context, user=user, status=400)
    async with node.db.transaction() as session:
        row = await documents.create_collection(
            session,
            principal=user,
            name=name.strip(),
            description=description,
            visibility=visibility,
        )
        await node.audit.record(
            session,
            actor=user.actor,
            action="assistant.collection.create",
            object_type="assistant_collection",
            object_id=str(row.id),
            details={"visibility": row.visibility},
        )
    return redirect(request, f"/assistant/collections/{row.id}")


async def _collection_page(
    request: Request, node: NodeDep, user: WebUser, collection_id: int, *, failed: str = "",
    notice: str = "", status: int = 200,
) -> Response:  # fmt: skip
    async with node.db.session() as session:
        row = await documents.readable_collection(
            session, principal=user, collection_id=collection_id
        )
        owner, _ = await documents.describe(session, row)
        docs = await documents.list_documents(
            session, principal=user, collection_id=collection_id, limit=1000
        )
    context = {
        "collection": row,
        "owner": owner,
        "mine": row.owner_id == user.user_id,
        "documents": docs,
        "failed": failed,
        "notice": notice,
        "finished": (DONE, FAILED),
    }
    return render(request, "assistant_collection.html", context, user=user, status=status)


@router.get("/collections/{collection_id}")
async def collection_page(
    request: Request, node: NodeDep, user: WebUser, collection_id: int
) -> Response:
    """GET /assistant/collections/{id} — its documents, each with its indexing status."""
    return await _collection_page(request, node, user, collection_id)


@router.post("/collections/{collection_id}/documents", dependencies=[CsrfChecked])
async def upload_document(
    request: Request,
    node: NodeDep,
    user: WebUser,
    collection_id: int,
    file: Annotated[UploadFile | None, File()] = None,
) -> Response:
    """POST /assistant/collections/{id}/documents (multipart) — store a document and queue
    its indexing; the page then follows its status."""
    if file is None or not file.filename:
        return await _collection_page(
            request, node, user, collection_id, failed=N_("Choose a file first."), status=400
        )
    try:
        await ingest.store_upload(node, principal=user, collection_id=collection_id, upload=file)
    except OpenAIError as exc:
        if exc.status not in (413, 415):
            raise
        failed = (
            N_("This file is too large.")
            if exc.status == 413
            else N_(
                "This type of file cannot be read: send PDF, DOCX, ODT, HTML, Markdown or text."
            )
        )
        return await _collection_page(
            request, node, user, collection_id, failed=failed, status=exc.status
        )
    return redirect(request, f"/assistant/collections/{collection_id}")


@router.get("/documents/{document_id}/status")
async def document_status(
    request: Request, node: NodeDep, user: WebUser, document_id: int
) -> Response:
    """GET /assistant/documents/{id}/status — the status cell of a document (htmx polls it
    every second until the indexing has ended)."""
    async with node.db.session() as session:
        document = await documents.readable_document(
            session, principal=user, document_id=document_id
        )
    html = _fragment(request, "assistant_status.html", document=document, finished=(DONE, FAILED))
    return Response(html, media_type="text/html")
