"""The user directory (spec: ``POST /user_directory/search``), with Synapse's default scope.

A user is found by a requester if they share a joined room with the requester, or are joined to
a public room (join rule ``public`` or history ``world_readable``: Synapse's
``search_all_users: false``). Disabled accounts are never found. A search term matches a user if
each of its words is the beginning of a word of their localpart or display name (case folded:
``jean.d`` finds ``@jean.dupont``, ``élo`` finds "Élodie Martin"), or if it begins their user
id. Results come by display name, then user id; ``limited`` says more matched.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import and_, func, or_, select, union
from sqlalchemy.ext.asyncio import AsyncSession

from rhenus.accounts.models import User
from rhenus.messaging import authrules
from rhenus.messaging.models import Event, Profile, RoomState
from rhenus.messaging.schemas import localpart_of

MAX_LIMIT = 100
_WORD = re.compile(r"[^\W_]+")


def _words(text: str) -> list[str]:
    return _WORD.findall(text.casefold())


def matches(term: str, *, user_id: str, displayname: str | None) -> bool:
    """Whether ``term`` finds the user (every word a prefix of one of theirs, or a user id
    prefix)."""
    folded = term.strip().casefold()
    if folded.startswith("@") and user_id.casefold().startswith(folded):
        return True
    wanted = _words(term)
    if not wanted:
        return False
    localpart = user_id[1:].partition(":")[0]
    theirs = _words(localpart) + _words(displayname or "")
    return all(any(word.startswith(w) for word in theirs) for w in wanted)


def _candidates(me: str) -> Any:
    """Users a search by ``me`` may find: room-mates, and members of public rooms."""
    joined = and_(RoomState.type == authrules.MEMBER, RoomState.membership == "join")
    mine = select(RoomState.room_id).where(joined, RoomState.state_key == me)
    public = (
        select(RoomState.room_id)
        .join(Event, Event.stream_ordering == RoomState.stream_ordering)
        .where(
            RoomState.state_key == "",
            or_(
                and_(
                    RoomState.type == authrules.JOIN_RULES,
                    Event.content["join_rule"].as_string() == "public",
                ),
                and_(
                    RoomState.type == "m.room.history_visibility",
                    Event.content["history_visibility"].as_string() == "world_readable",
                ),
            ),
        )
    )
    room_mates = select(RoomState.state_key.label("user_id")).where(
        joined, RoomState.room_id.in_(mine), RoomState.state_key != me
    )
    in_public = select(RoomState.state_key.label("user_id")).where(
        joined, RoomState.room_id.in_(public)
    )
    return union(room_mates, in_public).subquery()


async def search(
    session: AsyncSession, *, requester: str, server_name: str, term: str, limit: int
) -> dict[str, Any]:
    limit = max(0, min(limit, MAX_LIMIT))
    if not _words(term):
        return {"results": [], "limited": False}
    found = _candidates(requester)
    query = select(found.c.user_id, Profile.displayname, Profile.avatar_url).outerjoin(
        Profile, Profile.user_id == found.c.user_id
    )
    haystack = func.lower(func.coalesce(Profile.displayname, "") + " " + found.c.user_id)
    for word in _words(term):
        if word.isascii():  # a narrowing in SQL; the match itself is decided below
            query = query.where(haystack.contains(word, autoescape=True))
    rows = [
        (uid, name, avatar)
        for uid, name, avatar in (await session.execute(query)).all()
        if matches(term, user_id=uid, displayname=name)
    ]
    local = {localpart_of(uid, server_name) for uid, _, _ in rows} - {None}
    disabled = set(
        (
            await session.scalars(
                select(User.username).where(User.username.in_(local), User.disabled.is_(True))
            )
        ).all()
    )
    rows = [r for r in rows if localpart_of(r[0], server_name) not in disabled]
    rows.sort(key=lambda r: ((r[1] or r[0][1:]).casefold(), r[0]))
    results = []
    for uid, name, avatar in rows[:limit]:
        entry = {"user_id": uid}
        if name:
            entry["display_name"] = name
        if avatar:
            entry["avatar_url"] = avatar
        results.append(entry)
    return {"results": results, "limited": len(rows) > limit}
