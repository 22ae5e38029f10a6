"""Media (spec: "Content repository"): uploads into the encrypted blob store, authenticated
downloads, the size limit (``RHENUS_MATRIX_MAX_UPLOAD_BYTES``) and the config endpoint."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest

from rhenus.config import Settings
from rhenus.core.node import Node
from tests.messaging.conftest import Register

UPLOAD = "/_matrix/media/v3/upload"
MEDIA = "/_matrix/client/v1/media"


async def test_an_upload_is_downloaded_byte_for_byte_and_stored_encrypted(
    new_user: Register, node: Node
) -> None:
    alice, bob = await new_user("alice"), await new_user("bob")
    data = os.urandom(1_500_000)  # over RHENUS_MAX_BODY_BYTES, under the media limit
    uploaded = await alice.ok(
        "POST",
        UPLOAD,
        params={"filename": "rapport.pdf"},
        content=data,
        headers={"Content-Type": "application/pdf"},
    )
    server, media_id = uploaded["content_uri"].removeprefix("mxc://").split("/")
    got = await bob.call("GET", f"{MEDIA}/download/{server}/{media_id}")
    assert got.status_code == 200
    assert got.content == data
    assert got.headers["content-type"] == "application/pdf"
    assert "rapport.pdf" in got.headers["content-disposition"]
    named = await bob.call("GET", f"{MEDIA}/download/{server}/{media_id}/autre.pdf")
    assert named.content == data
    assert "autre.pdf" in named.headers["content-disposition"]
    thumbnail = await bob.call("GET", f"{MEDIA}/thumbnail/{server}/{media_id}")
    assert thumbnail.content == data
    stored = b"".join([chunk async for chunk in node.blobs.read_raw(_sha(data))])
    assert data[:64] not in stored


def _sha(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


async def test_downloads_need_an_access_token(new_user: Register) -> None:
    alice = await new_user("alice")
    uploaded = await alice.ok("POST", UPLOAD, content=b"bonjour")
    server, media_id = uploaded["content_uri"].removeprefix("mxc://").split("/")
    anonymous = await alice.http.get(f"{MEDIA}/download/{server}/{media_id}")
    assert anonymous.status_code == 401
    assert anonymous.json()["errcode"] == "M_MISSING_TOKEN"
    unknown = await alice.call("GET", f"{MEDIA}/download/{server}/nosuchmedia")
    assert unknown.status_code == 404
    assert unknown.json()["errcode"] == "M_NOT_FOUND"


async def test_media_config_announces_the_upload_limit(
    new_user: Register, settings: Settings
) -> None:
    alice = await new_user("alice")
    assert (await alice.ok("GET", f"{MEDIA}/config")) == {
        "m.upload.size": settings.matrix_max_upload_bytes
    }


@pytest.mark.parametrize("streamed", [False, True])
async def test_an_upload_over_the_limit_is_m_too_large(
    new_user: Register, settings: Settings, monkeypatch: pytest.MonkeyPatch, streamed: bool
) -> None:
    alice = await new_user("alice")
    monkeypatch.setattr(settings, "matrix_max_upload_bytes", 4096)
    data = b"x" * 5000

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(data), 1000):
            yield data[start : start + 1000]

    refused = await alice.call("POST", UPLOAD, content=chunks() if streamed else data)
    assert refused.status_code == 413
    assert refused.json()["errcode"] == "M_TOO_LARGE"
