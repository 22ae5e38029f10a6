"""The chat pages (after Element and Tchap web): rooms and invitations, a room's timeline with
live updates, the composer, files, invitations and the room's settings with its access rule.

Every page acts for the signed-in user through the messaging services (:mod:`.chat`), so the
Matrix auth rules and Tchap's access rules decide what they may do. The timeline stays live
through ``GET /chat/rooms/{room}/events``: Server-Sent Events that the node's own ``/sync``
long-poll (``messaging.sync.sync``) feeds; htmx's SSE extension appends what it sends. A
message sent from the composer arrives in the timeline the same way, for every member.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import AsyncIterator
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, File, Form, Header, Request, UploadFile
from fastapi.responses import StreamingResponse
from starlette.responses import Response

from rhenus.core.blobs import BlobTooLarge
from rhenus.core.node import NodeDep
from rhenus.messaging import authrules, media, rooms, sync
from rhenus.messaging.deps import NotifierDep, TypingDep
from rhenus.messaging.events import writing
from rhenus.messaging.schemas import (
    CreateRoomRequest,
    RoomEventFilter,
    RoomFilter,
    StateEventIn,
    SyncFilter,
    check_room_id,
)
from rhenus.web import chat, chat_members, pages, security
from rhenus.web.chat_members import CHOOSABLE_RULES
from rhenus.web.i18n import N_
from rhenus.web.pages import WebRoute, language_of, redirect, render
from rhenus.web.security import CsrfChecked, WebUser

router = APIRouter(prefix="/chat", route_class=WebRoute, include_in_schema=False)
# The file form's body may be as large as a Matrix upload (app.py's body limits).
UPLOAD_PATH = re.compile(r"^/chat/rooms/[^/]+/files$")
LIVE_FILTER = SyncFilter(
    room=RoomFilter(timeline=RoomEventFilter(limit=chat.TIMELINE, types=chat.SHOWN_TYPES))
)
POLL_MS = 20_000  # a sync's wait; the stream sends a comment after each, to notice a gone client
# Shown in the browser as they are (files people send each other): everything else is a download.
INLINE_TYPES = {"image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf"}


def install(app: Any) -> None:
    app.include_router(router)
    app.include_router(chat_members.router)


def _is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def _fragment(request: Request, template: str, **context: Any) -> str:
    return pages.environment(language_of(request)).get_template(template).render(**context)


async def _room_page(
    request: Request,
    node: NodeDep,
    user: WebUser,
    room_id: str,
    *,
    notice: str = "",
    failed: str = "",
    status: int = 200,
) -> Response:
    requester = await chat.requester_for(node, user)
    joined = await chat.my_rooms(node, requester)
    current = next((r for r in joined if r.room_id == room_id), None)
    context: dict[str, Any] = {
        "rooms": joined,
        "room": current,
        "room_id": room_id,
        "notice": notice,
        "failed": failed,
    }
    if current is not None and current.membership == "invite":
        return render(request, "chat_invite.html", context, user=user, status=status)
    # Not a member: the messaging domain answers 403 (or history up to their leaving).
    context["timeline"] = await chat.timeline(node, requester, room_id)
    if current is None:
        context["room"] = chat.RoomSummary(room_id, "", "leave")
    return render(request, "chat_room.html", context, user=user, status=status)


@router.get("")
async def chat_home(request: Request, node: NodeDep, user: WebUser) -> Response:
    """GET /chat — the user's rooms and invitations, and a form to create a room."""
    requester = await chat.requester_for(node, user)
    context = {"rooms": await chat.my_rooms(node, requester), "failed": ""}
    return render(request, "chat.html", context, user=user)


@router.post("/rooms", dependencies=[CsrfChecked])
async def create_room(
    request: Request,
    node: NodeDep,
    user: WebUser,
    notifier: NotifierDep,
    name: Annotated[str, Form(max_length=255)] = "",
    access_rule: Annotated[str, Form(max_length=32)] = authrules.RESTRICTED,
) -> Response:
    """POST /chat/rooms — a private room (invitation only) named ``name``."""
    requester = await chat.requester_for(node, user)
    if not name.strip() or access_rule not in CHOOSABLE_RULES:
        context = {"rooms": await chat.my_rooms(node, requester), "failed": N_("Name the room.")}
        return render(request, "chat.html", context, user=user, status=400)
    body = CreateRoomRequest(
        name=name.strip(),
        preset="private_chat",
        initial_state=[
            StateEventIn(type=authrules.ACCESS_RULES, content={"rule": access_rule}),
        ],
    )
    async with writing(node.db, notifier) as session:
        room_id = await rooms.create_room(
            session,
            server_name=node.settings.matrix_server_name,
            creator=requester.user_id,
            request=body,
        )
    return redirect(request, f"/chat/rooms/{quote(room_id)}")


@router.get("/rooms/{room_id}")
async def room_page(request: Request, node: NodeDep, user: WebUser, room_id: str) -> Response:
    """GET /chat/rooms/{room} — the timeline, the composer and the file form (members only);
    an invitation to accept or decline (invited users)."""
    return await _room_page(request, node, user, check_room_id(room_id))


@router.get("/rooms/{room_id}/events")
async def room_events(
    request: Request,
    node: NodeDep,
    user: WebUser,
    notifier: NotifierDep,
    typing: TypingDep,
    room_id: str,
    since: str = "",
    last_event_id: Annotated[str, Header(max_length=200)] = "",
) -> Response:
    """GET /chat/rooms/{room}/events?since=s<N> — Server-Sent Events: ``timeline`` (new lines
    of the room, as HTML to append) and ``rooms`` (the rooms list, when it changed). Each event's
    ``id`` is the sync token reached, so a reconnecting browser resumes where it was."""
    room_id = check_room_id(room_id)
    requester = await chat.requester_for(node, user)
    async with node.db.session() as session:
        await rooms.visible_until(session, room_id=room_id, user=requester.user_id)  # or 403
    start = sync.parse_sync_token(last_event_id or since or "s0")
    lang = language_of(request)
    server_name = node.settings.matrix_server_name

    async def stream() -> AsyncIterator[str]:
        token = start
        yield "retry: 2000\n\n"
        while True:
            body = await sync.sync(
                node.db,
                notifier,
                requester=requester,
                since=token,
                timeout_ms=POLL_MS,
                full_state=False,
                flt=LIVE_FILTER,
                typing=typing,
            )
            token = sync.parse_sync_token(body["next_batch"])
            sent = body["rooms"]
            out = []
            block = sent["join"].get(room_id) or sent["leave"].get(room_id)
            if block is not None:
                shown = [
                    chat.item(e, requester.user_id, server_name)
                    for e in block["timeline"]["events"]
                ]
                lines = [i for i in shown if i is not None]
                if lines:
                    html = _fragment(request, "chat_items.html", items=lines, lang=lang)
                    out.append(_sse("timeline", html))
            others = set(sent["join"]) - {room_id}
            if sent["invite"] or sent["leave"] or others:
                listed = await chat.my_rooms(node, requester)
                html = _fragment(request, "chat_rooms.html", rooms=listed, room_id=room_id)
                out.append(_sse("rooms", html))
            if out:
                yield f"id: {token}\n" + "".join(out)
            else:
                yield ": still here\n\n"

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"X-Accel-Buffering": "no"},
    )


def _sse(event: str, html: str) -> str:
    data = "".join(f"data: {line}\n" for line in html.strip().splitlines())
    return f"event: {event}\n{data}\n"


async def _after_post(
    request: Request, node: NodeDep, user: WebUser, room_id: str, *, notice: str, failed: str = ""
) -> Response:
    """The composer again (htmx), or the room page (a plain form post)."""
    if _is_htmx(request):
        status = 400 if failed else 200
        html = _fragment(
            request,
            "chat_composer.html",
            room_id=room_id,
            notice=notice,
            failed=failed,
            csrf_field=security.CSRF_FIELD,
            csrf=security.csrf_token(security.csrf_secret(request)),
        )
        return Response(html, status_code=status, media_type="text/html")
    if failed:
        return await _room_page(request, node, user, room_id, failed=failed, status=400)
    return redirect(request, f"/chat/rooms/{quote(room_id)}")


@router.post("/rooms/{room_id}/messages", dependencies=[CsrfChecked])
async def send_message(
    request: Request,
    node: NodeDep,
    user: WebUser,
    notifier: NotifierDep,
    room_id: str,
    body: Annotated[str, Form(max_length=4000)] = "",
) -> Response:
    """POST /chat/rooms/{room}/messages — an ``m.text`` message from the composer."""
    room_id = check_room_id(room_id)
    if not body.strip():
        return await _after_post(
            request, node, user, room_id, notice="", failed=N_("Write a message first.")
        )
    requester = await chat.requester_for(node, user)
    async with writing(node.db, notifier) as session:
        await rooms.send_message(
            session,
            requester=requester,
            room_id=room_id,
            type="m.room.message",
            content={"msgtype": "m.text", "body": body},
            txn_id=f"web-{secrets.token_urlsafe(12)}",
        )
    return await _after_post(request, node, user, room_id, notice="")


@router.post("/rooms/{room_id}/files", dependencies=[CsrfChecked])
async def send_file(
    request: Request,
    node: NodeDep,
    user: WebUser,
    notifier: NotifierDep,
    room_id: str,
    file: Annotated[UploadFile | None, File()] = None,
) -> Response:
    """POST /chat/rooms/{room}/files (multipart) — a file into the media repository, then an
    ``m.file`` message that links to it."""
    room_id = check_room_id(room_id)
    if file is None or not file.filename:
        return await _after_post(
            request, node, user, room_id, notice="", failed=N_("Choose a file first.")
        )
    requester = await chat.requester_for(node, user)
    async with node.db.session() as session:  # a non-member stores nothing
        await rooms.visible_until(session, room_id=room_id, user=requester.user_id)
    limit = node.settings.matrix_max_upload_bytes

    async def pieces() -> AsyncIterator[bytes]:
        while piece := await file.read(1024 * 1024):
            yield piece

    try:
        info = await node.blobs.put(pieces(), max_size=limit)
    except BlobTooLarge:
        return await _after_post(
            request, node, user, room_id, notice="", failed=N_("This file is too large.")
        )
    content_type = (file.content_type or "application/octet-stream")[:255]
    name = file.filename[:255]
    async with writing(node.db, notifier) as session:
        row = await media.record(
            session,
            uploader=requester.user_id,
            sha256=info.sha256,
            size=info.size,
            content_type=content_type,
            filename=name,
        )
        await rooms.send_message(
            session,
            requester=requester,
            room_id=room_id,
            type="m.room.message",
            content={
                "msgtype": "m.file",
                "body": name,
                "filename": name,
                "url": f"mxc://{node.settings.matrix_server_name}/{row.media_id}",
                "info": {"size": info.size, "mimetype": content_type},
            },
            txn_id=f"web-{secrets.token_urlsafe(12)}",
        )
    return await _after_post(request, node, user, room_id, notice=N_("File sent."))


@router.get("/media/{media_id}")
async def download(node: NodeDep, user: WebUser, media_id: str) -> Response:
    """GET /chat/media/{id} — a file of the media repository (as Matrix serves media: to any
    signed-in user of the node; ids are unguessable)."""
    async with node.db.session() as session:
        row = await media.get(session, media_id=media_id)
    # Never rendered as a page of the node: an uploaded HTML or script file is a download.
    inline = row.content_type in INLINE_TYPES
    kind = "inline" if inline else "attachment"
    name = row.filename or row.media_id
    return StreamingResponse(
        node.blobs.open(row.sha256),
        media_type=row.content_type if inline else "application/octet-stream",
        headers={
            "Content-Length": str(row.size),
            "Content-Disposition": f"{kind}; filename*=utf-8''{quote(name)}",
        },
    )
