"""What is new in the chat, for the home page: the latest messages of the rooms the user is in
and the invitations waiting for them, newest first.

Read through the messaging services exactly as the chat pages read a room (``sync.messages``,
with its history visibility), so the home page never shows a line the room page would refuse.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from rhenus.core.node import Node
from rhenus.messaging import authrules, events, sync
from rhenus.messaging.auth import Requester
from rhenus.messaging.schemas import RoomEventFilter
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
    server_name = node.settings.matrix_server_name
    mine = await chat.my_rooms(node, requester)
    async with events.snapshot(node.db) as session:
        for room in mine:
            if room.membership == "invite":
                invite = await events.current_state_event(
                    session,
                    room_id=room.room_id,
                    type=authrules.MEMBER,
                    state_key=requester.user_id,
                )
                if invite is not None:
                    at = datetime.fromtimestamp(invite.origin_server_ts / 1000, tz=UTC)
                    found.append(News(room.room_id, room.name, "invite", room.inviter, at))
                continue
            # Each room's newest ``limit`` are enough: no room can have more in the top ``limit``.
            page = await sync.messages(
                session,
                requester=requester,
                room_id=room.room_id,
                from_token=None,
                to_token=None,
                direction="b",
                limit=limit,
                flt=RoomEventFilter(types=MESSAGE_TYPES),
            )
            for event in page["chunk"]:
                line = chat.item(event, requester.user_id, server_name)
                if line is None:  # redacted
                    continue
                text = excerpt(line.body) if line.kind != "encrypted" else ""
                found.append(News(room.room_id, room.name, line.kind, line.sender, line.at, text))
    found.sort(key=lambda n: n.at, reverse=True)
    return found[:limit]
