"""The chat pages' view of the messaging domain: the signed-in user as a Matrix requester, their
rooms and invitations, a room's timeline and settings as the templates show them.

A web user is the Matrix user of the same account, ``@<username>:<server name>``
(``messaging.auth``). The web app acts for them through one device of theirs,
:data:`WEB_DEVICE`, made on first use; its access token is thrown away at once, since the pages
call the messaging services directly and never the Matrix API over HTTP. Who may read or
change what stays the messaging domain's: the auth rules, Tchap's access rules and history
visibility (``rooms.visible_until``) decide, exactly as for any Matrix client.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from rhenus.accounts.service import Principal
from rhenus.core.node import Node
from rhenus.messaging import auth, authrules, events, rooms, sync, validity
from rhenus.messaging.auth import Requester
from rhenus.messaging.errors import MatrixError
from rhenus.messaging.models import Device, Event, RoomState
from rhenus.messaging.schemas import RoomEventFilter, user_id
from rhenus.web.i18n import N_

WEB_DEVICE = "RHENUSWEB"
TIMELINE = 50  # events shown when a room is opened
SHOWN_TYPES = [authrules.MEMBER, "m.room.message", "m.room.encrypted", "m.room.name"]
ACCESS_RULE_LABELS = {
    authrules.RESTRICTED: N_("Members of the organisation only (no external users)"),
    authrules.UNRESTRICTED: N_("External users may be invited too"),
    authrules.DIRECT: N_("Direct conversation between two people"),
}


async def requester_for(node: Node, user: Principal) -> Requester:
    """The signed-in user as a Matrix requester, on the web app's device of theirs."""
    server_name = node.settings.matrix_server_name
    uid = user_id(user.username, server_name)
    async with node.db.session() as session:
        device = await session.scalar(
            select(Device).where(Device.user_id == user.user_id, Device.device_id == WEB_DEVICE)
        )
        expired = validity.period(node.settings) is not None and await validity.expired(
            session, account_id=user.user_id
        )
    if expired:
        raise MatrixError(403, validity.EXPIRED_ERRCODE, validity.EXPIRED_ERROR)
    if device is None:
        async with node.db.transaction() as session:
            await auth.ensure_profile(session, uid=uid, displayname=None)
            _, device = await auth.open_device(
                session,
                account_id=user.user_id,
                localpart=user.username,
                server_name=server_name,
                device_id=WEB_DEVICE,
                display_name="Rhenus web",
            )
    return Requester(uid, user.username, user.user_id, device.id, device.device_id)


def display(uid: str) -> str:
    """How a user is named in the pages: the localpart of their Matrix id."""
    return uid[1:].partition(":")[0] if uid.startswith("@") else uid


def matrix_id(given: str, server_name: str) -> str:
    """A Matrix id from what an agent typed: a full id, or a username of this node."""
    given = given.strip()
    return given if given.startswith("@") else user_id(given.lstrip("@"), server_name)


@dataclass(frozen=True)
class RoomSummary:
    room_id: str
    name: str
    membership: str  # join or invite
    inviter: str = ""


async def _name_of(session: AsyncSession, room_id: str, me: str) -> str:
    name = await events.current_state_event(
        session, room_id=room_id, type="m.room.name", state_key=""
    )
    if name is not None and str(name.content.get("name", "")).strip():
        return str(name.content["name"])
    others = await session.scalars(
        select(RoomState.state_key).where(
            RoomState.room_id == room_id,
            RoomState.type == authrules.MEMBER,
            RoomState.membership.in_(("join", "invite")),
            RoomState.state_key != me,
        )
    )
    return ", ".join(sorted(display(u) for u in others.all())[:3])


async def my_rooms(node: Node, requester: Requester) -> list[RoomSummary]:
    """The rooms the user is in, then the rooms they are invited to, each by name."""
    me = requester.user_id
    async with node.db.session() as session:
        rows = await session.execute(
            select(RoomState.room_id, RoomState.membership).where(
                RoomState.type == authrules.MEMBER,
                RoomState.state_key == me,
                RoomState.membership.in_(("join", "invite")),
            )
        )
        found = []
        for room_id, membership in rows.all():
            inviter = ""
            if membership == "invite":
                invite = await events.current_state_event(
                    session, room_id=room_id, type=authrules.MEMBER, state_key=me
                )
                inviter = display(invite.sender) if invite is not None else ""
            found.append(
                RoomSummary(room_id, await _name_of(session, room_id, me), str(membership), inviter)
            )
    return sorted(found, key=lambda r: (r.membership != "invite", r.name.casefold(), r.room_id))


@dataclass(frozen=True)
class Item:
    """One line of a timeline, as the template shows it."""

    event_id: str
    kind: str  # text, file, member, renamed, encrypted
    sender: str
    at: datetime
    own: bool
    body: str = ""
    target: str = ""
    membership: str = ""
    media_id: str = ""
    size: int | None = None


def item(event: dict[str, Any], me: str, server_name: str) -> Item | None:
    """A client event as a timeline line; None for events the page does not show."""
    content = event.get("content", {})
    at = datetime.fromtimestamp(int(event["origin_server_ts"]) / 1000, tz=UTC)
    base = {
        "event_id": event["event_id"],
        "sender": display(event["sender"]),
        "at": at,
        "own": event["sender"] == me,
    }
    kind = event["type"]
    if kind == "m.room.message":
        if not content:  # redacted
            return None
        msgtype = content.get("msgtype")
        url = str(content.get("url", ""))
        if msgtype in ("m.file", "m.image", "m.audio", "m.video") and url.startswith("mxc://"):
            server, _, media_id = url[len("mxc://") :].partition("/")
            if server != server_name:
                return Item(**base, kind="text", body=str(content.get("body", "")))
            size = content.get("info", {}).get("size")
            return Item(
                **base,
                kind="file",
                body=str(content.get("body", "")) or media_id,
                media_id=media_id,
                size=int(size) if isinstance(size, int) else None,
            )
        return Item(**base, kind="text", body=str(content.get("body", "")))
    if kind == "m.room.encrypted":
        return Item(**base, kind="encrypted")
    if kind == "m.room.name":
        return Item(**base, kind="renamed", body=str(content.get("name", "")))
    if kind == authrules.MEMBER:
        return Item(
            **base,
            kind="member",
            target=display(str(event.get("state_key", ""))),
            membership=str(content.get("membership", "")),
        )
    return None


@dataclass
class Timeline:
    items: list[Item]
    since: str  # the stream position the page shows everything up to
    older: str | None = None


async def timeline(node: Node, requester: Requester, room_id: str) -> Timeline:
    """The room's latest events; M_FORBIDDEN (403) for a user who may not read it."""
    async with events.snapshot(node.db) as session:
        page = await sync.messages(
            session,
            requester=requester,
            room_id=room_id,
            from_token=None,
            to_token=None,
            direction="b",
            limit=TIMELINE,
            flt=RoomEventFilter(types=SHOWN_TYPES),
        )
        position = await events.stream_position(session)
    server_name = node.settings.matrix_server_name
    shown = [item(e, requester.user_id, server_name) for e in reversed(page["chunk"])]
    return Timeline([i for i in shown if i is not None], sync.token(position), page.get("end"))


@dataclass
class Settings:
    room_id: str
    name: str
    topic: str
    access_rule: str
    join_rule: str
    members: list[tuple[str, str]] = field(default_factory=list)  # (name, membership)
    may_change: bool = False


async def room_settings(node: Node, requester: Requester, room_id: str) -> Settings:
    """The room's name, topic, access rule and members, as the user may see them."""
    async with node.db.session() as session:
        state = await rooms.room_state(session, room_id=room_id, user=requester.user_id)
    by_key = {(e.type, e.state_key): e for e in state}

    def content(type: str) -> dict[str, Any]:
        event: Event | None = by_key.get((type, ""))
        return dict(event.content) if event is not None else {}

    levels = content(authrules.POWER_LEVELS)
    mine = int(levels.get("users", {}).get(requester.user_id, levels.get("users_default", 0)))
    members = sorted(
        (display(str(e.state_key)), str(e.content.get("membership")))
        for e in state
        if e.type == authrules.MEMBER and e.content.get("membership") in ("join", "invite")
    )
    return Settings(
        room_id=room_id,
        name=str(content("m.room.name").get("name", "")),
        topic=str(content("m.room.topic").get("topic", "")),
        access_rule=str(content(authrules.ACCESS_RULES).get("rule", authrules.RESTRICTED)),
        join_rule=str(content(authrules.JOIN_RULES).get("join_rule", "invite")),
        members=members,
        may_change=mine >= int(levels.get("state_default", 50)),
    )
