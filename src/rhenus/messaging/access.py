"""What Tchap's room access rules need to know beyond the room's auth state
(``authrules._check_access``): which users are external, and who ever had a membership in a
direct room. Read only for the events that need it (joins and invites, access-rule changes
and membership events of direct rooms), so messages cost nothing more.

External users are accounts of role ``external`` (``accounts.schemas.EXTERNAL``): people outside
the organisation who registered through an e-mail invitation (``external``).
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from rhenus.accounts.models import User
from rhenus.accounts.schemas import EXTERNAL
from rhenus.messaging import authrules
from rhenus.messaging.authrules import AuthState, Candidate
from rhenus.messaging.models import RoomState
from rhenus.messaging.schemas import localpart_of

EXTERNAL_PROFILE_FIELD = "eu.rhenus.external"  # in GET /profile/{userId} of external users


def server_of(room_id: str) -> str:
    """The server name of a room id (``!opaque:server``): rooms here are this server's."""
    return room_id.partition(":")[2]


async def is_external(session: AsyncSession, *, uid: str, server_name: str) -> bool:
    """Whether ``uid`` is an external user of this server."""
    local = localpart_of(uid, server_name)
    if local is None:
        return False
    role = await session.scalar(select(User.role).where(User.username == local))
    return role == EXTERNAL


async def complete(
    session: AsyncSession, state: AuthState, event: Candidate, *, room_id: str
) -> None:
    """Add to ``state`` the facts the access rules need for ``event``."""
    membership = event.content.get("membership") if event.type == authrules.MEMBER else None
    target = event.state_key
    if (
        membership in ("invite", "join")
        and target
        and await is_external(session, uid=target, server_name=server_of(room_id))
    ):
        state.externals.add(target)
    becomes_direct = (
        event.type == authrules.ACCESS_RULES and event.content.get("rule") == authrules.DIRECT
    )
    if becomes_direct or (state.access_rule == authrules.DIRECT and membership is not None):
        rows = await session.scalars(
            select(RoomState.state_key).where(
                RoomState.room_id == room_id, RoomState.type == authrules.MEMBER
            )
        )
        state.member_keys = set(rows.all())
