"""The sovereign data plane, provider side: ``GET /dataplane/{pid}`` streams a dataset out of the
encrypted blob store, decrypted on the fly, to the one participant its transfer is for.

Every request must carry the transfer's bearer token *and* an RFC 9421 signature by the
consumer's did:web key, so a token that leaks is worthless to anyone else. The agreement's
policy is evaluated again on each request (time window, location, recipient; the transfer's own
access was counted when it started). ``Range`` (RFC 9110 §14) makes downloads resumable;
``Repr-Digest`` (RFC 9530) gives the sha-256 of the whole file for the consumer to check.
"""

from __future__ import annotations

import base64
import re
from collections.abc import AsyncIterator

import anyio
from fastapi import Request
from fastapi.responses import StreamingResponse
from sqlalchemy import update
from starlette.types import Receive, Scope, Send

from rhenus.core import blobs
from rhenus.core.db import utcnow
from rhenus.core.errors import Forbidden, NotFound, Problem, Unauthorized
from rhenus.core.http import api_router
from rhenus.core.node import Node, NodeDep
from rhenus.dataspace.catalogue import service as catalogue
from rhenus.dataspace.contracts import agreements
from rhenus.dataspace.machine import Role
from rhenus.dataspace.policy import service as policy
from rhenus.dataspace.policy.schemas import AccessRequest
from rhenus.dataspace.transfers import service
from rhenus.dataspace.transfers.driver import DATA_PATH
from rhenus.dataspace.transfers.models import Transfer
from rhenus.dataspace.transfers.states import State
from rhenus.trust.deps import SignedPeer

router = api_router(tags=["data plane"])
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def parse_range(header: str, size: int) -> tuple[int, int] | None:
    """``(start, end)`` (end exclusive) of a single byte range, ``None`` for the whole
    representation (no header, or several ranges: RFC 9110 lets a server ignore Range);
    416 problem if it is not satisfiable."""
    if not header:
        return None
    found = _RANGE.match(header.strip().replace(" ", ""))
    if found is None:
        return None
    first, last = found.groups()
    if not first and not last:
        return None
    if not first:  # suffix: the last N bytes
        n = int(last)
        if n == 0:
            raise _unsatisfiable(size)
        return max(0, size - n), size
    start = int(first)
    end = min(size, int(last) + 1) if last else size
    if start >= size or end <= start:
        raise _unsatisfiable(size)
    return start, end


def _unsatisfiable(size: int) -> Problem:
    problem = Problem(
        f"the range is outside the {size} bytes of the data",
        status=416,
        kind="range-not-satisfiable",
        title="Range not satisfiable",
    )
    problem.headers["Content-Range"] = f"bytes */{size}"
    return problem


async def _authorised(node: Node, pid: str, token: str, peer_did: str, country: str) -> Transfer:
    """The started transfer ``pid`` the token opens for this signed peer; 401/403 otherwise."""
    async with node.db.transaction() as session:
        tp = await session.get(Transfer, pid)
        if (
            tp is None
            or tp.role != Role.PROVIDER.value
            or tp.token_sha256 != service.token_digest(token)
        ):
            raise Unauthorized("the token does not open this transfer")
        if tp.counterparty != peer_did:
            raise Forbidden("this token was issued to another participant")
        if tp.state != State.STARTED:
            raise Forbidden(f"the transfer is {tp.state}, not STARTED")
        if tp.token_expires_at is None or tp.token_expires_at < utcnow():
            raise Forbidden("the token expired: ask for a new transfer")
        agreement = await agreements.find_agreement(session, agreement_id=tp.agreement_id)
        if agreement is None:
            raise Forbidden("the agreement no longer exists")
        decision = policy.evaluate(
            policy=agreement.policy,
            request=AccessRequest(
                recipient=peer_did,
                recipient_country=country or None,
                purpose=agreement.purpose or None,
                now=utcnow(),
                agreed_at=agreement.signed_at,
                count=max(0, agreement.access_count - 1),  # this transfer's access is counted
            ),
        )
        if not decision.permitted:
            raise Forbidden(
                "the agreement no longer permits this access: " + "; ".join(decision.reasons)
            )
        await node.audit.record(
            session, actor=peer_did, action="transfer.data.accessed", object_type="process",
            object_id=pid, details={"agreement": tp.agreement_id, "dataset": tp.dataset_id},
        )  # fmt: skip
        return tp


@router.get(DATA_PATH + "/{pid}")
async def pull(pid: str, request: Request, node: NodeDep, peer: SignedPeer) -> StreamingResponse:
    """GET /dataplane/{pid} — the data of a started transfer (``Range`` supported)."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("send the transfer's token as Authorization: Bearer")
    tp = await _authorised(node, pid, token.strip(), peer.did, peer.compliance.country)
    async with node.db.session() as session:
        dataset = await catalogue.find_dataset(session, dataset_id=tp.dataset_id)
    if dataset is None or not dataset.sha256 or dataset.byte_size is None:
        raise NotFound("the dataset has no content")
    size, digest = dataset.byte_size, dataset.sha256
    wanted = parse_range(request.headers.get("range", ""), size)
    start, end = wanted or (0, size)
    headers = {
        "Accept-Ranges": "bytes",
        "Content-Length": str(end - start),
        "ETag": f'"{digest}"',
        "Repr-Digest": f"sha-256=:{base64.b64encode(bytes.fromhex(digest)).decode()}:",
    }
    if wanted is not None:
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
    chunks = _empty() if start == end else await _opened(node, digest, start, end, size)
    return ClosingStream(
        _counted(node, pid, chunks, end - start),
        status_code=206 if wanted is not None else 200,
        headers=headers,
        media_type=dataset.media_type or "application/octet-stream",
    )


class ClosingStream(StreamingResponse):
    """A streaming response that always closes its body iterator, also when the client goes
    away mid-stream (Starlette then cancels the response and drops the iterator unclosed, so
    its ``finally`` — here: counting what was sent — would never run)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            closer = getattr(self.body_iterator, "aclose", None)
            if closer is not None:
                with anyio.CancelScope(shield=True):
                    await closer()


async def _opened(node: Node, digest: str, start: int, end: int, size: int) -> AsyncIterator[bytes]:
    """The plaintext of [start, end), its first piece already read — so that a range the
    stored object cannot satisfy is a 416 before any header is sent, not a broken stream."""
    pieces = node.blobs.open_range(digest, start, end)
    try:
        first = await anext(pieces)
    except blobs.BlobRangeError as exc:
        raise _unsatisfiable(size) from exc
    except StopAsyncIteration:
        return _empty()

    async def rest() -> AsyncIterator[bytes]:
        yield first
        async for piece in pieces:
            yield piece

    return rest()


async def _empty() -> AsyncIterator[bytes]:
    return
    yield b""  # pragma: no cover - makes this an async generator


async def _counted(
    node: Node, pid: str, chunks: AsyncIterator[bytes], expected: int
) -> AsyncIterator[bytes]:
    """The chunks, adding what was sent to the transfer's ``bytes_served``: before the last
    chunk goes out (so a consumer that has everything finds it counted), or when the client
    stops early."""
    sent = 0
    recorded = False
    try:
        async for chunk in chunks:
            if sent + len(chunk) >= expected and not recorded:
                await _add_served(node, pid, sent + len(chunk))
                recorded = True
            sent += len(chunk)
            yield chunk
    finally:
        if not recorded and sent:
            await _add_served(node, pid, sent)


async def _add_served(node: Node, pid: str, count: int) -> None:
    async with node.db.transaction() as session:
        await session.execute(
            update(Transfer)
            .where(Transfer.id == pid)
            .values(bytes_served=Transfer.bytes_served + count)
        )
