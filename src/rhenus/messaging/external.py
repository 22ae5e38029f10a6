"""Inviting people by e-mail, and the external users they become (Tchap's rules).

An agent (an internal user) invites an address with the spec's third-party form of
``POST /rooms/{roomId}/invite`` (``medium: "email"``, ``address``; ``id_server`` is not
contacted: everything stays on this server):

- an address bound to an account of this server invites that account, as an ordinary invite;
- otherwise a pending invitation is kept and a mail sent with a registration token bound to it
  (random, single use, valid :data:`INVITATION_TTL`, kept as its sha-256) and a link carrying
  it. Registering with that token (``m.login.registration_token``, the usual flow) creates an
  **external** account — or an agent's, when the address is in the organisation's domains —
  binds the address (the token proves it: it was mailed there), and turns every pending
  invitation to that address into an invite to its room, sent by its inviter.

The room's access rule decides at invitation time already: an external address cannot be
invited to a ``restricted`` room, nor a third person to a ``direct`` one. External users only
have a Matrix account (``accounts.deps`` refuses them the node's API), can only join rooms they
are invited to, and cannot invite by e-mail themselves. Their profile says
``"eu.rhenus.external": true``.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from datetime import timedelta
from urllib.parse import urlencode

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from rhenus.accounts.models import User
from rhenus.config import Settings
from rhenus.core import mail
from rhenus.core.db import utcnow
from rhenus.messaging import access, authrules, events, rooms, threepids
from rhenus.messaging.auth import Requester
from rhenus.messaging.errors import MatrixError, forbidden
from rhenus.messaging.models import EmailInvitation, Profile, Room, RoomState
from rhenus.messaging.schemas import user_id

log = logging.getLogger("rhenus.messaging.external")

INVITATION_TTL = timedelta(days=7)
MAX_INVITATIONS_PER_HOUR = 20  # per inviter
VALIDITY_PATH = "/_matrix/client/v1/register/m.login.registration_token/validity"


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


async def pending_invitation(session: AsyncSession, *, token: str) -> EmailInvitation | None:
    """The pending (unexpired, unaccepted) invitation whose mail holds ``token``."""
    found: EmailInvitation | None = await session.scalar(
        select(EmailInvitation).where(
            EmailInvitation.token_hash == _sha256(token),
            EmailInvitation.accepted_at.is_(None),
            EmailInvitation.expires_at > utcnow(),
        )
    )
    return found


async def invite_by_email(
    session: AsyncSession,
    *,
    settings: Settings,
    requester: Requester,
    room_id: str,
    medium: str,
    address: str,
) -> tuple[mail.Mail, int] | None:
    """Invite an e-mail address to a room; the mail to send once committed and the pending
    invitation's id — None when the address has an account here, which is simply invited."""
    server_name = settings.matrix_server_name
    if medium != threepids.EMAIL:
        raise MatrixError(400, "M_INVALID_PARAM", "only e-mail invitations (medium: email)")
    if not mail.configured(settings):
        raise forbidden("invitations by e-mail need an SMTP server (RHENUS_SMTP_HOST)")
    if await access.is_external(session, uid=requester.user_id, server_name=server_name):
        raise forbidden("external users cannot invite by e-mail")
    canonical = threepids.canonical_email(address)
    if await session.get(Room, room_id) is None:
        raise MatrixError(404, "M_NOT_FOUND", f"no room {room_id}")
    account = await threepids.account_of(session, address=canonical)
    if account is not None:
        await rooms.set_membership(
            session,
            room_id=room_id,
            sender=requester.user_id,
            target=user_id(account.username, server_name),
            membership="invite",
            server_name=server_name,
        )
        return None
    await events.lock_stream(session)  # the room's state and pending invitations, as one
    state = await events.auth_state(session, room_id=room_id)
    if state.membership(requester.user_id) != "join":
        raise forbidden(f"{requester.user_id} is not in the room")
    if state.level(requester.user_id) < state.required("invite"):
        raise forbidden("inviting needs a higher power level")
    external = not threepids.domain_allowed(settings, canonical)
    rule = state.access_rule or authrules.RESTRICTED
    if external and rule == authrules.RESTRICTED:
        raise forbidden(
            f"{canonical} is outside the organisation's domains (an external user): this "
            "room's access rule is restricted (no external users); it must be unrestricted first"
        )
    now = utcnow()
    if rule == authrules.DIRECT:
        members = await session.scalar(
            select(func.count())
            .select_from(RoomState)
            .where(RoomState.room_id == room_id, RoomState.type == authrules.MEMBER)
        )
        pending = await session.scalar(
            select(func.count())
            .select_from(EmailInvitation)
            .where(
                EmailInvitation.room_id == room_id,
                EmailInvitation.accepted_at.is_(None),
                EmailInvitation.expires_at > now,
            )
        )
        if int(members or 0) >= 2 or pending:
            raise forbidden("this is a direct room (access rule direct): two members at most")
    recent = await session.scalar(
        select(func.count())
        .select_from(EmailInvitation)
        .where(
            EmailInvitation.inviter == requester.user_id,
            EmailInvitation.created_at > now - timedelta(hours=1),
        )
    )
    if int(recent or 0) >= MAX_INVITATIONS_PER_HOUR:
        raise MatrixError(
            429, "M_LIMIT_EXCEEDED", "too many invitations by e-mail", retry_after_ms=3_600_000
        )
    token = secrets.token_urlsafe(24)
    invitation = EmailInvitation(
        token_hash=_sha256(token),
        room_id=room_id,
        inviter=requester.user_id,
        address=canonical,
        external=external,
        created_at=now,
        expires_at=now + INVITATION_TTL,
    )
    session.add(invitation)
    await session.flush()
    profile = await session.get(Profile, requester.user_id)
    inviter = requester.user_id
    if profile is not None and profile.displayname:
        inviter = f"{profile.displayname} ({requester.user_id})"
    link = f"{settings.public_url}{VALIDITY_PATH}?{urlencode({'token': token})}"
    until = now + INVITATION_TTL
    body = (
        f"{inviter} invited you to a conversation on the Matrix server of "
        f"{settings.organisation} ({settings.matrix_server_name}).\n\n"
        f"To join it, register with a Matrix client on the server {settings.public_url} "
        f"using this registration token (single use, valid until {until:%Y-%m-%d} UTC):\n\n"
        f"    {token}\n\n"
        f"Registration link (it tells whether the token is still valid):\n{link}\n\n"
        + (
            "You will be an external user: you can take part in the conversations you are "
            "invited to.\n"
            if external
            else ""
        )
    )
    subject = f"Invitation to a conversation — {settings.organisation}"
    return mail.Mail(to=canonical, subject=subject, body=body), invitation.id


async def withdraw(session: AsyncSession, *, invitation_id: int) -> None:
    """Forget a pending invitation whose mail could not be sent."""
    invitation = await session.get(EmailInvitation, invitation_id)
    if invitation is not None:
        await session.delete(invitation)


async def accept(session: AsyncSession, *, token_hash: str) -> EmailInvitation | None:
    """Take the invitation of a registration token (atomically: once)."""
    now = utcnow()
    result = await session.execute(
        update(EmailInvitation)
        .where(
            EmailInvitation.token_hash == token_hash,
            EmailInvitation.accepted_at.is_(None),
            EmailInvitation.expires_at > now,
        )
        .values(accepted_at=now)
        .execution_options(synchronize_session=False)
    )
    if not getattr(result, "rowcount", 0):
        return None
    found: EmailInvitation | None = await session.scalar(
        select(EmailInvitation)
        .where(EmailInvitation.token_hash == token_hash)
        .execution_options(populate_existing=True)
    )
    return found


async def deliver(
    session: AsyncSession, *, account: User, address: str, server_name: str
) -> list[str]:
    """Turn the pending invitations to ``address`` into invites of the new account; the rooms.

    Each is sent by its inviter under the room's rules of now: one the rules refuse (the
    inviter left, the room became direct with two members…) is dropped.
    """
    uid = user_id(account.username, server_name)
    now = utcnow()
    rows = await session.scalars(
        select(EmailInvitation)
        .where(
            EmailInvitation.address == address,
            EmailInvitation.expires_at > now,
            EmailInvitation.accepted_by.is_(None),
        )
        .order_by(EmailInvitation.id)
    )
    invited: list[str] = []
    for invitation in rows.all():
        invitation.accepted_by = uid
        invitation.accepted_at = invitation.accepted_at or now
        if invitation.room_id in invited:
            continue
        try:  # the rules refuse before anything is written
            await rooms.set_membership(
                session,
                room_id=invitation.room_id,
                sender=invitation.inviter,
                target=uid,
                membership="invite",
                server_name=server_name,
            )
        except MatrixError as exc:
            log.info(
                "e-mail invitation dropped",
                extra={"room": invitation.room_id, "reason": exc.detail},
            )
            continue
        invited.append(invitation.room_id)
    await session.flush()
    return invited
