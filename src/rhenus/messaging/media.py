"""Media (spec: "Content repository"): files uploaded by clients, kept in the node's encrypted
blob store (``node.blobs``) and named ``mxc://<server name>/<media id>``.

Clients of encrypted rooms upload files they encrypted themselves (``m.file`` with
``file.key``); the blob store encrypts again at rest. Any logged-in user of the node may
download a media id (as on Synapse): ids are unguessable, and room files are end-to-end
encrypted anyway.
"""

from __future__ import annotations

import re
import secrets

from sqlalchemy.ext.asyncio import AsyncSession

from rhenus.core.db import utcnow
from rhenus.messaging.errors import not_found
from rhenus.messaging.models import Media

# The upload route, whose request bodies may be as large as RHENUS_MATRIX_MAX_UPLOAD_BYTES.
UPLOAD_PATHS = re.compile(r"^/_matrix/media/v3/upload$")
_MEDIA_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def is_ours(server_name: str, ours: str) -> bool:
    """Whether an mxc server name is this node's (clients may drop the port, as matrix-nio's
    ``download`` does when it parses the mxc URI)."""
    return server_name in (ours, ours.rsplit(":", 1)[0] if not ours.endswith("]") else ours)


async def record(
    session: AsyncSession,
    *,
    uploader: str,
    sha256: str,
    size: int,
    content_type: str,
    filename: str | None,
) -> Media:
    """A new media id for a stored blob."""
    media = Media(
        media_id=secrets.token_urlsafe(18),
        sha256=sha256,
        size=size,
        content_type=content_type,
        filename=filename,
        uploader=uploader,
        created_at=utcnow(),
    )
    session.add(media)
    await session.flush()
    return media


async def get(session: AsyncSession, *, media_id: str) -> Media:
    media = await session.get(Media, media_id) if _MEDIA_ID.match(media_id) else None
    if media is None:
        raise not_found("no such media")
    return media
