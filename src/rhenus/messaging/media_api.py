"""Matrix media routes (spec v1.11: "Content repository"): ``POST /_matrix/media/v3/upload``
and the authenticated ``/_matrix/client/v1/media/…`` (download, thumbnail, config)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import StreamingResponse

from rhenus.core.blobs import BlobTooLarge
from rhenus.core.http import api_router
from rhenus.core.node import NodeDep
from rhenus.messaging import media
from rhenus.messaging.deps import MatrixUser
from rhenus.messaging.errors import MatrixError, not_found

upload_router = api_router(prefix="/_matrix/media/v3", tags=["messaging"])
router = api_router(prefix="/_matrix/client/v1/media", tags=["messaging"])


@upload_router.post("/upload")
async def upload(
    request: Request, requester: MatrixUser, node: NodeDep, filename: str | None = None
) -> dict[str, Any]:
    """POST /_matrix/media/v3/upload?filename= — the body is the file, streamed into the
    encrypted blob store; over ``RHENUS_MATRIX_MAX_UPLOAD_BYTES`` it is 413 M_TOO_LARGE."""
    limit = node.settings.matrix_max_upload_bytes
    try:
        info = await node.blobs.put(request.stream(), max_size=limit)
    except BlobTooLarge as exc:
        raise MatrixError(413, "M_TOO_LARGE", f"the file is over {limit} bytes") from exc
    content_type = request.headers.get("content-type") or "application/octet-stream"
    async with node.db.transaction() as session:
        row = await media.record(
            session,
            uploader=requester.user_id,
            sha256=info.sha256,
            size=info.size,
            content_type=content_type[:255],
            filename=filename[:255] if filename else None,
        )
    return {"content_uri": f"mxc://{node.settings.matrix_server_name}/{row.media_id}"}


@router.get("/config")
async def config(_: MatrixUser, node: NodeDep) -> dict[str, Any]:
    """GET /_matrix/client/v1/media/config — the upload size limit."""
    return {"m.upload.size": node.settings.matrix_max_upload_bytes}


async def _serve(node: NodeDep, server_name: str, media_id: str, name: str | None) -> Any:
    if not media.is_ours(server_name, node.settings.matrix_server_name):
        raise not_found("remote media is not fetched (no federation yet)")
    async with node.db.session() as session:
        row = await media.get(session, media_id=media_id)
    name = name or row.filename
    disposition = "attachment" + (f"; filename*=utf-8''{quote(name)}" if name else "")
    headers = {
        "Content-Length": str(row.size),
        "Content-Disposition": disposition,
        # Spec: "Content repository" → "Security considerations" (as Synapse serves media).
        "Content-Security-Policy": "sandbox; default-src 'none'; script-src 'none'; "
        "plugin-types application/pdf; style-src 'unsafe-inline'; object-src 'self';",
        "X-Content-Type-Options": "nosniff",
    }
    return StreamingResponse(
        node.blobs.open(row.sha256), media_type=row.content_type, headers=headers
    )


@router.get("/download/{server_name}/{media_id}", response_model=None)
@router.get("/download/{server_name}/{media_id}/", response_model=None, include_in_schema=False)
async def download(server_name: str, media_id: str, _: MatrixUser, node: NodeDep) -> Any:
    """GET /_matrix/client/v1/media/download/{serverName}/{mediaId} (authenticated)."""
    return await _serve(node, server_name, media_id, None)


@router.get("/download/{server_name}/{media_id}/{file_name}", response_model=None)
async def download_as(
    server_name: str, media_id: str, file_name: str, _: MatrixUser, node: NodeDep
) -> Any:
    """GET /_matrix/client/v1/media/download/{serverName}/{mediaId}/{fileName}."""
    return await _serve(node, server_name, media_id, file_name)


@router.get("/thumbnail/{server_name}/{media_id}", response_model=None)
async def thumbnail(server_name: str, media_id: str, _: MatrixUser, node: NodeDep) -> Any:
    """GET /_matrix/client/v1/media/thumbnail/{serverName}/{mediaId} — the original file for
    now (no thumbnails are made yet; the spec lets a server answer a larger image)."""
    return await _serve(node, server_name, media_id, None)
