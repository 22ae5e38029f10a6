"""What is new in the chat, for the home page: the latest messages of the rooms the user is in
and the invitations waiting for them, newest first.

Read through the messaging services with the history visibility the chat pages' room view has
(``messaging.overview``: joined rooms, read in full), so the home page never shows a line the
room page would refuse; one statement for all the rooms' messages, one for the invitations.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from rhenus.core.node import Node
from rhenus.messaging import events, overview
from rhenus.messaging.auth import Requester
from rhenus.web import chat

LIMIT = 10  # lines on the home page
EXCERPT = 120  # characters of a message shown before it is cut
MESSAGE_TYPES = ["m.room.message", "m.room.encrypted"]


@dataclass(frozen=True)
class News:
    """One line of the home page's chat panel."""

    room_id: str
    room: str  # the room's name as the chat pages show it; "" if it has none
    kind: str  # text, file, encrypted or invite
    sender: str  # who wrote the message, or who sent the invitation
    at: datetime
    excerpt: str = ""  # plain text, escaped by the template


def excerpt(body: str, limit: int = EXCERPT) -> str:
    """``body`` on one line, cut at a word before ``limit`` characters."""
    flat = " ".join(body.split())
    if len(flat) <= limit:
        return flat
    cut = flat[:limit].rsplit(" ", 1)[0] if " " in flat[:limit] else flat[:limit]
    return cut.rstrip() + "…"


async def latest(node: Node, requester: Requester, *, limit: int = LIMIT) -> list[News]:
    """The newest ``limit`` messages and invitations of the user's rooms, newest first."""
    found: list[News] = []
    me = requester.user_id
    server_name = node.settings.matrix_server_name
    mine = await chat.my_rooms(node, requester)
    invited = [room.room_id for room in mine if room.membership == "invite"]
    async with events.snapshot(node.db) as session:
        invites = await overview.membership_events(session, user=me, room_ids=invited)
        # Each room's newest ``limit`` are enough: no room can have more in the top ``limit``.
        newest = await overview.newest_events(session, user=me, types=MESSAGE_TYPES, per_room=limit)
    for room in mine:  # in the rooms' order, which breaks ties of time below
        if room.membership == "invite":
            invite = invites.get(room.room_id)
            if invite is not None:
                at = datetime.fromtimestamp(invite.origin_server_ts / 1000, tz=UTC)
                found.append(News(room.room_id, room.name, "invite", room.inviter, at))
            continue
        for event in newest.get(room.room_id, []):
            line = chat.item(events.client_event(event), me, server_name)
            if line is None:  # redacted
                continue
            text = excerpt(line.body) if line.kind != "encrypted" else ""
            found.append(News(room.room_id, room.name, line.kind, line.sender, line.at, text))
    found.sort(key=lambda n: n.at, reverse=True)
    return found[:limit]
