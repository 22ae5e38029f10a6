"""Rooms: creation with presets, membership, messages and state, aliases, profiles.

Every change is an event appended through :func:`events.append`, so the auth rules
(``authrules``) decide, and every change reaches syncs through the stream. Spec sections:
"Rooms" → "Creation", "Room membership", "Sending events to a room", "Getting events for a
room", "Room aliases", "Profiles".
"""

from __future__ import annotations

import secrets
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from rhenus.accounts import service as accounts
from rhenus.core.errors import NotFound
from rhenus.messaging import access, authrules, events
from rhenus.messaging.auth import Requester
from rhenus.messaging.errors import MatrixError, forbidden, invalid_param, not_found
from rhenus.messaging.models import Event, Profile, Room, RoomAlias, RoomState
from rhenus.messaging.schemas import ROOM_VERSION, CreateRoomRequest, localpart_of

EVERYTHING = 2**62  # a stream bound past any position
_rooms, _events = Room.__table__, Event.__table__
_SEND_CHECK = select(
    select(_rooms.c.state_position)
    .where(_rooms.c.room_id == bindparam("room_id"))
    .scalar_subquery(),
    select(_events.c.event_id)
    .where(
        _events.c.sender == bindparam("sender"),
        _events.c.txn_device == bindparam("device"),
        _events.c.txn_id == bindparam("txn_id"),
    )
    .scalar_subquery(),
)
_PRESETS: dict[str, dict[str, str]] = {
    # spec: createRoom presets → (join_rules, history_visibility, guest_access)
    "private_chat": {"join_rule": "invite", "history": "shared", "guests": "can_join"},
    "trusted_private_chat": {"join_rule": "invite", "history": "shared", "guests": "can_join"},
    "public_chat": {"join_rule": "public", "history": "shared", "guests": "forbidden"},
}


def default_power_levels(creator: str, preset: str, invitees: list[str]) -> dict[str, Any]:
    """The power levels createRoom starts from (the same defaults as Synapse)."""
    users = {creator: 100}
    if preset == "trusted_private_chat":
        users.update({user: 100 for user in invitees})
    return {
        "users": users,
        "users_default": 0,
        "events": {
            "m.room.name": 50,
            "m.room.power_levels": 100,
            "m.room.history_visibility": 100,
            "m.room.canonical_alias": 50,
            "m.room.avatar": 50,
            "m.room.tombstone": 100,
            "m.room.server_acl": 100,
            "m.room.encryption": 100,
        },
        "events_default": 0,
        "state_default": 50,
        "ban": 50,
        "kick": 50,
        "redact": 50,
        "invite": 0,
        "notifications": {"room": 50},
    }


async def _local_user(session: AsyncSession, *, server_name: str, uid: str) -> str:
    """``uid`` if it names an account of this node; M_NOT_FOUND otherwise."""
    local = localpart_of(uid, server_name)
    if local is None:
        raise forbidden(f"{uid} is not a user of this server (federation comes later)")
    try:
        account = await accounts.get_user(session, username=local)
    except NotFound as exc:
        raise not_found(f"no user {uid}") from exc
    if account.disabled:
        raise not_found(f"no user {uid}")
    return uid


async def _member_content(session: AsyncSession, uid: str, membership: str) -> dict[str, Any]:
    content: dict[str, Any] = {"membership": membership}
    profile = await session.get(Profile, uid)
    if profile is not None:
        if profile.displayname:
            content["displayname"] = profile.displayname
        if profile.avatar_url:
            content["avatar_url"] = profile.avatar_url
    return content


async def create_room(
    session: AsyncSession, *, server_name: str, creator: str, request: CreateRoomRequest
) -> str:
    """Create a room as ``creator`` (spec: "Creation", the order of events it sends)."""
    version = request.room_version or ROOM_VERSION
    if version != ROOM_VERSION:
        raise MatrixError(400, "M_UNSUPPORTED_ROOM_VERSION", f"only room version {ROOM_VERSION}")
    alias = f"#{request.room_alias_name}:{server_name}" if request.room_alias_name else None
    if alias is not None and await session.get(RoomAlias, alias) is not None:
        raise MatrixError(400, "M_ROOM_IN_USE", f"the alias {alias} is taken")
    invitees = [await _local_user(session, server_name=server_name, uid=u) for u in request.invite]
    preset = request.preset or ("public_chat" if request.visibility == "public" else "private_chat")
    rules = _PRESETS[preset]
    access_rule = _access_rule(request, preset)
    if access_rule == authrules.RESTRICTED and await access.is_external(
        session, uid=creator, server_name=server_name
    ):
        raise forbidden(
            "external users cannot create restricted rooms (no external users in them): "
            f"create a direct room, or give initial_state an {authrules.ACCESS_RULES} "
            "event with the rule unrestricted"
        )
    room_id = f"!{secrets.token_urlsafe(18)}:{server_name}"
    session.add(Room(room_id=room_id, room_version=version, creator=creator))
    await session.flush()

    async def send(type: str, content: dict[str, Any], state_key: str = "") -> None:
        await events.append(
            session,
            room_id=room_id,
            type=type,
            sender=creator,
            content=content,
            state_key=state_key,
        )

    creation = {k: v for k, v in request.creation_content.items() if k != "creator"}
    await send(authrules.CREATE, {**creation, "room_version": version})
    await send(authrules.MEMBER, await _member_content(session, creator, "join"), creator)
    levels = default_power_levels(creator, preset, invitees)
    levels.update(request.power_level_content_override or {})
    authrules.validate_power_levels(levels)
    await send(authrules.POWER_LEVELS, levels)
    if alias:
        session.add(RoomAlias(alias=alias, room_id=room_id, creator=creator))
        await send("m.room.canonical_alias", {"alias": alias})
    await send(authrules.JOIN_RULES, {"join_rule": rules["join_rule"]})
    await send("m.room.history_visibility", {"history_visibility": rules["history"]})
    await send("m.room.guest_access", {"guest_access": rules["guests"]})
    for initial in request.initial_state:
        await send(initial.type, initial.content, initial.state_key)
    if not any(i.type == authrules.ACCESS_RULES for i in request.initial_state):
        await send(authrules.ACCESS_RULES, {"rule": access_rule})  # Tchap: after initial_state
    if request.name is not None:
        await send("m.room.name", {"name": request.name})
    if request.topic is not None:
        await send("m.room.topic", {"topic": request.topic})
    for invitee in invitees:
        content = await _member_content(session, invitee, "invite")
        if request.is_direct:
            content["is_direct"] = True
        await send(authrules.MEMBER, content, invitee)
    return room_id


def _access_rule(request: CreateRoomRequest, preset: str) -> str:
    """The room's access rule (Tchap): given in ``initial_state``, else ``direct`` for a direct
    chat and ``restricted`` otherwise; ``direct`` goes with ``is_direct`` and is never public."""
    given = [
        i for i in request.initial_state if i.type == authrules.ACCESS_RULES and i.state_key == ""
    ]
    default = authrules.DIRECT if request.is_direct else authrules.RESTRICTED
    rule = given[-1].content.get("rule") if given else default
    if rule not in authrules.ACCESS_RULE_VALUES:
        raise invalid_param(
            f"invalid access rule {rule!r}: one of {', '.join(authrules.ACCESS_RULE_VALUES)}"
        )
    if (rule == authrules.DIRECT) != request.is_direct:
        raise invalid_param("the access rule direct goes with is_direct, and only with it")
    public = preset == "public_chat" or any(
        i.type == authrules.JOIN_RULES and i.content.get("join_rule") == "public"
        for i in request.initial_state
    )
    if public and rule == authrules.DIRECT:
        raise invalid_param("a direct room (access rule direct) cannot be public")
    return str(rule)


async def resolve_alias(session: AsyncSession, *, alias: str) -> str:
    """The room an alias points at, or M_NOT_FOUND."""
    row = await session.get(RoomAlias, alias)
    if row is None:
        raise not_found(f"no room alias {alias}")
    return row.room_id


async def join(session: AsyncSession, *, requester: Requester, room: str) -> str:
    """Join a room by id or alias; returns the room id. Joining twice changes nothing."""
    room_id = await resolve_alias(session, alias=room) if room.startswith("#") else room
    if await session.get(Room, room_id) is None:
        raise not_found(f"no room {room_id}")
    await set_membership(
        session,
        room_id=room_id,
        sender=requester.user_id,
        target=requester.user_id,
        membership="join",
    )
    return room_id


async def set_membership(
    session: AsyncSession,
    *,
    room_id: str,
    sender: str,
    target: str,
    membership: str,
    reason: str | None = None,
    server_name: str | None = None,
) -> str:
    """Invite, join, leave, kick, ban or unban; returns the event id (spec: "Room membership").

    ``server_name`` is given for invites, whose target must be a user of this node.
    """
    await events.lock_stream(session)
    if server_name is not None:
        await _local_user(session, server_name=server_name, uid=target)
    content = await _member_content(session, target, membership)
    if reason:
        content["reason"] = reason
    current = await events.current_state_event(
        session, room_id=room_id, type=authrules.MEMBER, state_key=target
    )
    if current is not None and current.content == content and current.sender == sender:
        return current.event_id
    event = await events.append(
        session,
        room_id=room_id,
        type=authrules.MEMBER,
        sender=sender,
        content=content,
        state_key=target,
    )
    return event.event_id


async def send_message(
    session: AsyncSession,
    *,
    requester: Requester,
    room_id: str,
    type: str,
    content: dict[str, Any],
    txn_id: str,
) -> str:
    """Send a message event; the same device and ``txn_id`` give back the same event id."""
    await events.lock_stream(session)  # before the look-up: a concurrent retry waits for us
    # One statement: the room's state position (``room_auth``) and an earlier send of this txn.
    position, existing = (
        await session.execute(
            _SEND_CHECK,
            {
                "room_id": room_id,
                "sender": requester.user_id,
                "device": requester.device_id,
                "txn_id": txn_id,
            },
        )
    ).one()
    if existing is not None:
        return str(existing)
    if position is None:
        raise not_found("no such room")
    event = await events.append(
        session,
        room_id=room_id,
        type=type,
        sender=requester.user_id,
        content=content,
        txn=(requester.device_id, txn_id),
        state_position=int(position),
    )
    return event.event_id


async def put_state(
    session: AsyncSession,
    *,
    sender: str,
    room_id: str,
    type: str,
    state_key: str,
    content: dict[str, Any],
) -> str:
    """Set a state event; re-sending the current content changes nothing."""
    await events.lock_stream(session)
    current = await events.current_state_event(
        session, room_id=room_id, type=type, state_key=state_key
    )
    if current is not None and current.content == content and current.sender == sender:
        return current.event_id
    event = await events.append(
        session, room_id=room_id, type=type, sender=sender, content=content, state_key=state_key
    )
    return event.event_id


async def visible_until(session: AsyncSession, *, room_id: str, user: str) -> int:
    """The last stream position of the room ``user`` may read (history visibility "shared").

    Members read everything; a user who left or was banned reads up to that event; anyone else
    (invited or never a member) gets M_FORBIDDEN.
    """
    row = await session.get(RoomState, (room_id, authrules.MEMBER, user))
    if row is not None and row.membership == "join":
        return EVERYTHING
    if row is not None and row.membership in ("leave", "ban"):
        joined_once = await session.scalar(
            select(Event.stream_ordering)
            .where(
                Event.room_id == room_id,
                Event.type == authrules.MEMBER,
                Event.state_key == user,
                Event.stream_ordering < row.stream_ordering,
                Event.content["membership"].as_string() == "join",
            )
            .limit(1)
        )
        if joined_once is not None:
            return row.stream_ordering
    raise forbidden(f"{user} is not in the room")


async def room_state(session: AsyncSession, *, room_id: str, user: str) -> list[Event]:
    """The state the user may see: current if joined, else as it was when they left."""
    bound = await visible_until(session, room_id=room_id, user=user)
    return await events.state_at(session, room_id=room_id, before=bound + 1)


async def state_event(
    session: AsyncSession, *, room_id: str, user: str, type: str, state_key: str
) -> Event:
    for event in await room_state(session, room_id=room_id, user=user):
        if event.type == type and event.state_key == state_key:
            return event
    raise not_found(f"no {type} state with key {state_key!r} in the room")


async def joined_rooms(session: AsyncSession, *, user: str) -> list[str]:
    rows = await session.scalars(
        select(RoomState.room_id).where(
            RoomState.type == authrules.MEMBER,
            RoomState.state_key == user,
            RoomState.membership == "join",
        )
    )
    return sorted(rows.all())


async def members(session: AsyncSession, *, room_id: str, user: str) -> list[Event]:
    """The member events of the room (as of the user's departure, if they left)."""
    return [
        e
        for e in await room_state(session, room_id=room_id, user=user)
        if e.type == authrules.MEMBER
    ]


async def get_profile(session: AsyncSession, *, uid: str) -> Profile:
    profile = await session.get(Profile, uid)
    if profile is None:
        raise not_found(f"no profile for {uid}")
    return profile


async def set_profile(
    session: AsyncSession, *, requester: Requester, field: str, value: str | None
) -> None:
    """Change the displayname or avatar_url, and tell every joined room (a new member event)."""
    profile = await get_profile(session, uid=requester.user_id)
    setattr(profile, field, value)
    await session.flush()
    for room_id in await joined_rooms(session, user=requester.user_id):
        await set_membership(
            session,
            room_id=room_id,
            sender=requester.user_id,
            target=requester.user_id,
            membership="join",
        )
