"""Account expiry and renewal (Synapse's ``account_validity``), on when
``matrix_account_validity_days`` is more than 0.

Each Matrix account gets an expiry date when it registers (or, for accounts made before, at its
next login): ``now + period``. Once it is past, every authenticated Matrix request is refused
with 403 ``ORG_MATRIX_EXPIRED_ACCOUNT`` "User account has expired" (Synapse's answer), except
logging out and asking for a renewal mail (:data:`ALLOWED_WHEN_EXPIRED`). The account is
renewed for another period by the link of a renewal mail (a random single-use token, kept as
its sha-256), or by an administrator (``rhenus messaging accounts renew``,
``POST /api/v1/messaging/accounts/{username}/renew``). The renewal mail is sent
``matrix_renewal_notice_days`` before expiry (:func:`scheduled_renewal_notices`), or on request
(``POST /_matrix/client/unstable/account_validity/send_mail``).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import secrets
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from urllib.parse import urlencode

from fastapi import FastAPI
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from rhenus.accounts.models import User
from rhenus.config import Settings
from rhenus.core import mail
from rhenus.core.db import utcnow
from rhenus.core.node import Node
from rhenus.messaging import threepids
from rhenus.messaging.models import AccountValidity

log = logging.getLogger("rhenus.messaging.validity")

EXPIRED_ERRCODE = "ORG_MATRIX_EXPIRED_ACCOUNT"
EXPIRED_ERROR = "User account has expired"
RENEW_PATH = "/_matrix/client/unstable/account_validity/renew"
SEND_MAIL_PATH = "/_matrix/client/unstable/account_validity/send_mail"
ALLOWED_WHEN_EXPIRED = frozenset(
    {"/_matrix/client/v3/logout", "/_matrix/client/v3/logout/all", SEND_MAIL_PATH}
)
RESEND_AFTER = timedelta(minutes=1)  # renewal mails asked for by the user, at most this often
NOTICES_PER_ROUND = 100


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def period(settings: Settings) -> timedelta | None:
    days = settings.matrix_account_validity_days
    return timedelta(days=days) if days > 0 else None


async def start(session: AsyncSession, *, settings: Settings, account_id: int) -> None:
    """Give the account its expiry date if validity is on and it has none yet."""
    length = period(settings)
    if length is None or await session.get(AccountValidity, account_id) is not None:
        return
    session.add(AccountValidity(account_id=account_id, expires_at=utcnow() + length))
    await session.flush()


async def expired(session: AsyncSession, *, account_id: int) -> bool:
    expires_at = await session.scalar(
        select(AccountValidity.expires_at).where(AccountValidity.account_id == account_id)
    )
    return expires_at is not None and expires_at <= utcnow()


async def expires_at(session: AsyncSession, *, account_id: int) -> datetime | None:
    row = await session.get(AccountValidity, account_id)
    return row.expires_at if row is not None else None


async def renew(
    session: AsyncSession, *, settings: Settings, account_id: int, until: datetime | None = None
) -> datetime:
    """Renew the account until ``until`` (default: now + the period); its renewal link, if any,
    stops working and the next notice will be sent before the new date."""
    length = period(settings)
    if until is None:
        if length is None:
            raise ValueError("account validity is off (RHENUS_MATRIX_ACCOUNT_VALIDITY_DAYS=0)")
        until = utcnow() + length
    row = await session.get(AccountValidity, account_id)
    if row is None:
        row = AccountValidity(account_id=account_id, expires_at=until)
        session.add(row)
    row.expires_at = until
    row.renewal_token_hash = None
    row.renewal_sent_at = None
    await session.flush()
    return until


async def renew_with_token(
    session: AsyncSession, *, settings: Settings, token: str
) -> datetime | None:
    """Renew the account whose renewal link holds ``token`` (once); None if unknown or used."""
    row = await session.scalar(
        select(AccountValidity).where(AccountValidity.renewal_token_hash == _sha256(token))
    )
    if row is None:
        return None
    return await renew(session, settings=settings, account_id=row.account_id)


def _renewal_mail(
    settings: Settings, *, to: str, username: str, token: str, until: datetime
) -> mail.Mail:
    link = f"{settings.public_url}{RENEW_PATH}?{urlencode({'token': token})}"
    state = "expired on" if until <= utcnow() else "expires on"
    body = (
        f"Your Matrix account {username} on {settings.organisation}'s server "
        f"({settings.matrix_server_name}) {state} {until:%Y-%m-%d %H:%M} UTC.\n\n"
        f"To keep it for another {settings.matrix_account_validity_days} days, open this "
        f"link:\n\n{link}\n"
    )
    subject = f"Renew your Matrix account — {settings.organisation}"
    return mail.Mail(to=to, subject=subject, body=body)


async def renewal_mails(
    session: AsyncSession, *, settings: Settings, account_id: int, now: datetime | None = None
) -> list[mail.Mail]:
    """A new renewal link for the account (the previous one stops working), as mails to its
    addresses; none when it has no address."""
    row = await session.get(AccountValidity, account_id)
    user = await session.get(User, account_id)
    if row is None or user is None:
        return []
    addresses = await threepids.emails_of(session, account_id=account_id)
    if not addresses:
        return []
    token = secrets.token_urlsafe(32)
    row.renewal_token_hash = _sha256(token)
    row.renewal_sent_at = now or utcnow()
    await session.flush()
    return [
        _renewal_mail(settings, to=a, username=user.username, token=token, until=row.expires_at)
        for a in addresses
    ]


async def requested_renewal(
    session: AsyncSession, *, settings: Settings, account_id: int
) -> list[mail.Mail] | None:
    """The renewal mails a user asked for; None if one was sent less than a minute ago."""
    row = await session.get(AccountValidity, account_id)
    sent = row.renewal_sent_at if row is not None else None
    if sent is not None and sent > utcnow() - RESEND_AFTER:
        return None
    return await renewal_mails(session, settings=settings, account_id=account_id)


async def send_due_notices(node: Node) -> int:
    """Mail a renewal link to the accounts that expire within ``matrix_renewal_notice_days``
    and were not told yet; how many accounts were. Each account is claimed by one atomic
    update, so several workers never mail the same account twice."""
    settings = node.settings
    if period(settings) is None or not settings.matrix_renewal_notice_days:
        return 0
    if not mail.configured(settings):
        return 0
    now = utcnow()
    horizon = now + timedelta(days=settings.matrix_renewal_notice_days)
    async with node.db.transaction() as session:
        due = (
            await session.scalars(
                select(AccountValidity.account_id)
                .where(
                    AccountValidity.expires_at <= horizon,
                    AccountValidity.expires_at > now,
                    AccountValidity.renewal_sent_at.is_(None),
                )
                .limit(NOTICES_PER_ROUND)
            )
        ).all()
        outbox: list[tuple[int, list[mail.Mail]]] = []
        for account_id in due:
            claimed = await session.execute(
                update(AccountValidity)
                .where(
                    AccountValidity.account_id == account_id,
                    AccountValidity.renewal_sent_at.is_(None),
                )
                .values(renewal_sent_at=now)
                .execution_options(synchronize_session=False)
            )
            if getattr(claimed, "rowcount", 0):
                mails = await renewal_mails(
                    session, settings=settings, account_id=account_id, now=now
                )
                outbox.append((account_id, mails))
    for account_id, mails in outbox:
        try:
            for message in mails:
                await mail.send(settings, message)
        except mail.MailError:
            log.exception("renewal notice not sent", extra={"account": account_id})
            async with node.db.transaction() as session:  # tried again next round
                await session.execute(
                    update(AccountValidity)
                    .where(AccountValidity.account_id == account_id)
                    .values(renewal_sent_at=None)
                )
    return len(outbox)


@contextlib.asynccontextmanager
async def scheduled_renewal_notices(app: FastAPI, every: float = 3600) -> AsyncIterator[None]:
    """Send the due renewal notices every ``every`` seconds while the app runs."""
    node: Node = app.state.node
    enabled = bool(period(node.settings) and node.settings.matrix_renewal_notice_days)

    async def loop() -> None:
        while True:
            await asyncio.sleep(min(60.0, every))
            try:
                sent = await send_due_notices(node)
                if sent:
                    log.info("renewal notices sent", extra={"accounts": sent})
            except Exception:  # a failed round must not end the schedule
                log.exception("renewal notices failed")
            await asyncio.sleep(max(0.0, every - min(60.0, every)))

    task = asyncio.create_task(loop()) if enabled else None
    try:
        yield
    finally:
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
