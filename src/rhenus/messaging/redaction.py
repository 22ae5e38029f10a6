"""Redactions (spec: "Redactions"; room version 11's redaction algorithm).

``PUT /rooms/{roomId}/redact/{eventId}/{txnId}`` appends an ``m.room.redaction`` event (room
v11: ``redacts`` in its content) and, in the same transaction, strips the redacted event's
stored content by the v11 algorithm and records the redaction on it
(``Event.redacted_because``). Every read path serves events from the store through
``events.client_event``, so the content is gone everywhere at once (sync, messages, context,
state, the event itself) and ``unsigned.redacted_because`` is shown; nothing of the original
content is kept (no retention for moderators, unlike Synapse's seven days).

Who may redact (spec: "Client behaviour" of redactions; Synapse's check): the event's sender,
or a member whose power level reaches the room's ``redact`` level. The redaction event itself
passes the auth rules like any message (the sender must be joined, ``m.room.redaction``'s
event level).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from rhenus.messaging import authrules, events, room_auth
from rhenus.messaging.auth import Requester
from rhenus.messaging.errors import forbidden, not_found
from rhenus.messaging.models import Event

REDACTION = "m.room.redaction"
# Room version 11: the content keys each event type keeps (m.room.create keeps all).
_KEPT: dict[str, tuple[str, ...]] = {
    authrules.MEMBER: ("membership", "join_authorised_via_users_server"),
    authrules.JOIN_RULES: ("join_rule", "allow"),
    authrules.POWER_LEVELS: (
        "ban",
        "events",
        "events_default",
        "invite",
        "kick",
        "redact",
        "state_default",
        "users",
        "users_default",
    ),
    "m.room.history_visibility": ("history_visibility",),
    REDACTION: ("redacts",),
}


def pruned_content(type: str, content: dict[str, Any]) -> dict[str, Any]:
    """The content of an event of ``type`` once redacted (room version 11)."""
    if type == authrules.CREATE:
        return dict(content)
    kept = {k: content[k] for k in _KEPT.get(type, ()) if k in content}
    if type == authrules.MEMBER:
        invite = content.get("third_party_invite")
        if isinstance(invite, dict) and "signed" in invite:
            kept["third_party_invite"] = {"signed": invite["signed"]}
    return kept


def _because(redaction: Event) -> dict[str, Any]:
    """What an event keeps of the redaction that struck it (served with its own ``age``)."""
    return {
        "type": redaction.type,
        "event_id": redaction.event_id,
        "room_id": redaction.room_id,
        "sender": redaction.sender,
        "origin_server_ts": redaction.origin_server_ts,
        "content": redaction.content,
    }


async def redact(
    session: AsyncSession,
    *,
    requester: Requester,
    room_id: str,
    event_id: str,
    txn_id: str,
    reason: str | None,
) -> str:
    """Redact ``event_id``; returns the redaction's event id (the same for a retried txnId)."""
    await events.lock_stream(session)
    existing = await session.scalar(
        select(Event.event_id).where(
            Event.sender == requester.user_id,
            Event.txn_device == requester.device_id,
            Event.txn_id == txn_id,
        )
    )
    if existing is not None:
        return existing
    user = requester.user_id
    state = await events.auth_state(session, room_id=room_id)
    if state.create is None:
        raise not_found(f"no room {room_id}")
    if state.membership(user) != "join":  # before looking the event up: nothing leaks
        raise forbidden(f"{user} is not in the room")
    target = await session.scalar(
        select(Event).where(Event.event_id == event_id, Event.room_id == room_id)
    )
    if target is None:
        raise not_found(f"no event {event_id} in the room")
    if target.sender != user and state.level(user) < state.required("redact"):
        raise forbidden("redacting others' events needs the room's redact power level")
    content: dict[str, Any] = {"redacts": event_id}
    if reason:
        content["reason"] = reason
    redaction = await events.append(
        session,
        room_id=room_id,
        type=REDACTION,
        sender=user,
        content=content,
        txn=(requester.device_id, txn_id),
    )
    if target.redacted_because is None:
        target.content = pruned_content(target.type, target.content)
        target.redacted_because = _because(redaction)
        if target.state_key is not None:  # e.g. an access rule's content is gone
            await room_auth.state_changed(
                session, room_id=room_id, position=redaction.stream_ordering
            )
    if target.type == REDACTION:
        # The event the redacted redaction struck shows it as redacted too.
        struck = await session.scalar(
            select(Event).where(Event.event_id == target.content.get("redacts"))
        )
        because = struck.redacted_because if struck is not None else None
        if struck is not None and because is not None and because.get("event_id") == event_id:
            struck.redacted_because = {**because, "content": target.content}
    await session.flush()
    return redaction.event_id
