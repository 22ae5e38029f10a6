"""A live node driven by matrix-nio for what came after rooms and encryption: typing notices and
receipts delivered to a long-polling member, the fully read marker, a redaction as nio applies
it (the redacted event served by the node: nio's ``RedactedEvent``), the context of an event,
and an outsider refused. On both engines."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from nio import (
    AsyncClient,
    FullyReadEvent,
    ReceiptEvent,
    RedactedEvent,
    RedactionEvent,
    RoomContextError,
    RoomContextResponse,
    RoomCreateResponse,
    RoomGetEventResponse,
    RoomRedactResponse,
    RoomSendResponse,
    SyncResponse,
    TypingNoticeEvent,
)

from tests.e2e.test_live_messaging import clients, live

__all__ = ["clients", "live"]  # the fixtures, shared with the rooms test


async def synced_until(
    client: AsyncClient, found: Callable[[SyncResponse], object]
) -> SyncResponse:
    """Long-poll until ``found(sync)`` is true."""
    while True:
        sync = await client.sync(timeout=30_000)
        assert isinstance(sync, SyncResponse), sync
        if found(sync):
            return sync


async def test_typing_receipts_markers_and_redactions_reach_nio(
    clients: dict[str, AsyncClient],
) -> None:
    alice, bob, eve = clients["alice"], clients["bob"], clients["eve"]
    created = await alice.room_create(name="Suivi", invite=[bob.user_id])
    assert isinstance(created, RoomCreateResponse), created
    room_id = created.room_id
    await bob.join(room_id)
    for client in (alice, bob, eve):
        assert isinstance(await client.sync(timeout=0), SyncResponse)

    def ephemeral_of(sync: SyncResponse, kind: type) -> list[object]:
        room = sync.rooms.join.get(room_id)
        return [e for e in (room.ephemeral if room else []) if isinstance(e, kind)]

    waiting = asyncio.ensure_future(synced_until(bob, lambda s: ephemeral_of(s, TypingNoticeEvent)))
    await asyncio.sleep(0.2)
    await alice.room_typing(room_id, True, timeout=10_000)
    typing = await asyncio.wait_for(waiting, 20)
    [notice] = ephemeral_of(typing, TypingNoticeEvent)
    assert isinstance(notice, TypingNoticeEvent)
    assert notice.users == [alice.user_id]
    assert bob.rooms[room_id].typing_users == [alice.user_id]

    sent = await alice.room_send(room_id, "m.room.message", {"msgtype": "m.text", "body": "lu ?"})
    assert isinstance(sent, RoomSendResponse), sent
    message = sent.event_id
    waiting = asyncio.ensure_future(synced_until(alice, lambda s: ephemeral_of(s, ReceiptEvent)))
    await asyncio.sleep(0.2)
    await bob.update_receipt_marker(room_id, message)
    receipts = await asyncio.wait_for(waiting, 20)
    [receipt_event] = ephemeral_of(receipts, ReceiptEvent)
    assert isinstance(receipt_event, ReceiptEvent)
    assert [(r.event_id, r.user_id, r.thread_id) for r in receipt_event.receipts] == [
        (message, bob.user_id, "main")
    ]

    await bob.room_read_markers(room_id, message, message)
    marked = await synced_until(bob, lambda s: room_id in s.rooms.join)
    markers = [e for e in marked.rooms.join[room_id].account_data if isinstance(e, FullyReadEvent)]
    assert [m.event_id for m in markers] == [message]

    redacted = await alice.room_redact(room_id, message, reason="erreur")
    assert isinstance(redacted, RoomRedactResponse), redacted
    seen = await synced_until(bob, lambda s: room_id in s.rooms.join)
    redactions = [
        e for e in seen.rooms.join[room_id].timeline.events if isinstance(e, RedactionEvent)
    ]
    assert [(r.redacts, r.reason) for r in redactions] == [(message, "erreur")]
    fetched = await bob.room_get_event(room_id, message)
    assert isinstance(fetched, RoomGetEventResponse), fetched
    assert isinstance(fetched.event, RedactedEvent)
    assert fetched.event.redacter == alice.user_id
    around = await bob.room_context(room_id, message, limit=4)
    assert isinstance(around, RoomContextResponse), around
    assert isinstance(around.event, RedactedEvent)
    refused = await eve.room_context(room_id, message)
    assert isinstance(refused, RoomContextError)
    assert refused.status_code == "M_FORBIDDEN"
