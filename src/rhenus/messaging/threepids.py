"""E-mail addresses: the organisation's domains, proving an address (the spec's
``register/email/requestToken`` and a link that validates the session), and the addresses
bound to accounts (3pids).

Spec: "Adding Account Administrative Contact Information" (requestToken: ``client_secret``,
``email``, ``send_attempt`` → ``sid``), "User-interactive authentication API" →
``m.login.email.identity`` (``threepid_creds``: ``sid`` and ``client_secret``). The link is
``/_matrix/client/v3/register/email/submitToken?sid=&client_secret=&token=`` on the node's
public URL (the spec's ``submit_url`` idea, as a GET link in the mail).

Tokens of links are random, single-use, expire after :data:`TOKEN_TTL` and are kept as their
sha-256 only; so is the client secret. Mails are limited per address and per client address
(:data:`MAX_MAILS_PER_ADDRESS`, :data:`MAX_SESSIONS_PER_CLIENT` an hour).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import datetime, timedelta
from email.utils import parseaddr
from urllib.parse import urlencode

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from rhenus.accounts.models import User
from rhenus.config import Settings
from rhenus.core import mail
from rhenus.core.db import utcnow
from rhenus.messaging.errors import MatrixError
from rhenus.messaging.models import Threepid, ThreepidSession

EMAIL = "email"
TOKEN_TTL = timedelta(hours=1)  # a validation link (Synapse's default too)
VALIDATED_TTL = timedelta(hours=1)  # a validated session not yet used to register
WINDOW = timedelta(hours=1)
MAX_MAILS_PER_ADDRESS = 5
MAX_SESSIONS_PER_CLIENT = 20
SUBMIT_PATH = "/_matrix/client/v3/register/email/submitToken"
CLIENT_SECRET = re.compile(r"^[0-9a-zA-Z.=_-]{1,255}$")  # spec: client_secret grammar
_LOCAL = re.compile(r"^[^\s@\"(),:;<>\[\\\]]{1,64}$")
_DOMAIN = re.compile(r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9-]{2,63}$")


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def canonical_email(address: str) -> str:
    """The address as it is compared and stored (lower case), or M_INVALID_PARAM.

    Only plain ``local@domain`` addresses: no display names, comments or quoted local parts
    (``parseaddr`` must give back the address unchanged).
    """
    address = address.strip()
    if len(address) > 254 or parseaddr(address)[1] != address or address.count("@") != 1:
        raise MatrixError(400, "M_INVALID_PARAM", "not a valid e-mail address")
    local, _, domain = address.partition("@")
    domain = domain.lower().rstrip(".")
    if not _LOCAL.match(local) or not _DOMAIN.match(domain):
        raise MatrixError(400, "M_INVALID_PARAM", "not a valid e-mail address")
    return f"{local.casefold()}@{domain}"


def domain_allowed(settings: Settings, address: str) -> bool:
    """Whether the address is in one of the organisation's domains
    (``matrix_allowed_email_domains``: ``example.org``, or ``*.example.org`` for subdomains)."""
    domain = address.rpartition("@")[2]
    for pattern in settings.matrix_allowed_email_domains:
        if pattern.startswith("*."):
            if domain.endswith(pattern[1:]):
                return True
        elif domain == pattern:
            return True
    return False


def email_registration_enabled(settings: Settings) -> bool:
    """Self-registration by e-mail is offered: allowed domains and an SMTP server are set."""
    return bool(settings.matrix_allowed_email_domains) and mail.configured(settings)


async def account_of(session: AsyncSession, *, address: str) -> User | None:
    """The account the address is bound to (a 3pid, or the account's e-mail), if any."""
    bound = await session.scalar(
        select(User)
        .join(Threepid, Threepid.account_id == User.id)
        .where(Threepid.medium == EMAIL, Threepid.address == address)
    )
    if bound is not None:
        return bound
    found: User | None = await session.scalar(select(User).where(func.lower(User.email) == address))
    return found


async def bind(session: AsyncSession, *, account_id: int, address: str, at: datetime) -> None:
    """Bind a proven address to an account."""
    session.add(
        Threepid(account_id=account_id, medium=EMAIL, address=address, validated_at=at, added_at=at)
    )
    await session.flush()


async def threepids(session: AsyncSession, *, account_id: int) -> list[Threepid]:
    rows = await session.scalars(
        select(Threepid).where(Threepid.account_id == account_id).order_by(Threepid.id)
    )
    return list(rows.all())


async def emails_of(session: AsyncSession, *, account_id: int) -> list[str]:
    """Where to write to an account: its bound addresses, else the account's e-mail."""
    found = [t.address for t in await threepids(session, account_id=account_id)]
    if not found:
        email = await session.scalar(select(User.email).where(User.id == account_id))
        found = [email] if email else []
    return found


def submit_link(settings: Settings, *, sid: str, client_secret: str, token: str) -> str:
    query = urlencode({"sid": sid, "client_secret": client_secret, "token": token})
    return f"{settings.public_url}{SUBMIT_PATH}?{query}"


async def request_token(
    session: AsyncSession,
    *,
    settings: Settings,
    client_secret: str,
    email: str,
    send_attempt: int,
    client_address: str,
) -> tuple[str, mail.Mail | None]:
    """Open (or find) the validation session of ``email`` for registration.

    Returns the ``sid`` and the mail to send once the transaction commits — None when this
    ``send_attempt`` was already sent (the spec: the same attempt is not sent twice).
    """
    if not email_registration_enabled(settings):
        raise MatrixError(400, "M_UNKNOWN", "Email-based registration is disabled on this server")
    if not CLIENT_SECRET.match(client_secret):
        raise MatrixError(400, "M_INVALID_PARAM", "client_secret must match [0-9a-zA-Z.=_-]{1,255}")
    address = canonical_email(email)
    if not domain_allowed(settings, address):
        raise MatrixError(
            403,
            "M_THREEPID_DENIED",
            "Your e-mail domain is not authorized to register on this server: only the "
            "organisation's domains are (" + ", ".join(settings.matrix_allowed_email_domains) + ")",
        )
    if await account_of(session, address=address) is not None:
        raise MatrixError(400, "M_THREEPID_IN_USE", "this e-mail address is already registered")
    now = utcnow()
    await session.execute(
        # Of no use any more: its link expired, and it was validated (if ever) before that.
        delete(ThreepidSession).where(ThreepidSession.token_expires_at < now - VALIDATED_TTL)
    )
    row = await session.scalar(
        select(ThreepidSession).where(
            ThreepidSession.client_secret_hash == _sha256(client_secret),
            ThreepidSession.address == address,
        )
    )
    if row is not None and send_attempt <= row.send_attempt:
        return row.sid, None
    await _rate_limit(session, address=address, client_address=client_address, now=now, new=row)
    token = secrets.token_urlsafe(32)
    if row is None:
        row = ThreepidSession(
            sid=secrets.token_urlsafe(24),
            client_secret_hash=_sha256(client_secret),
            medium=EMAIL,
            address=address,
            send_attempt=send_attempt,
            sends=1,
            token_hash=_sha256(token),
            token_expires_at=now + TOKEN_TTL,
            requested_from=client_address[:64],
            created_at=now,
        )
        session.add(row)
    else:
        row.send_attempt = send_attempt
        row.sends += 1
        row.token_hash = _sha256(token)
        row.token_expires_at = now + TOKEN_TTL
    await session.flush()
    link = submit_link(settings, sid=row.sid, client_secret=client_secret, token=token)
    body = (
        f"Someone asked to register a Matrix account on {settings.organisation}'s server "
        f"({settings.matrix_server_name}) with this e-mail address.\n\n"
        f"To confirm that it is yours, open this link within an hour:\n\n{link}\n\n"
        "then go back to your Matrix client to finish. If you did not ask for it, ignore this "
        "message: nothing is registered without it.\n"
    )
    subject = f"Confirm your e-mail address — {settings.organisation}"
    return row.sid, mail.Mail(to=address, subject=subject, body=body)


async def _rate_limit(
    session: AsyncSession,
    *,
    address: str,
    client_address: str,
    now: datetime,
    new: ThreepidSession | None,
) -> None:
    since = now - WINDOW
    mails = await session.scalar(
        select(func.coalesce(func.sum(ThreepidSession.sends), 0)).where(
            ThreepidSession.address == address, ThreepidSession.created_at >= since
        )
    )
    if int(mails or 0) >= MAX_MAILS_PER_ADDRESS:
        raise MatrixError(
            429, "M_LIMIT_EXCEEDED", "too many e-mails to this address", retry_after_ms=3_600_000
        )
    if new is None:
        opened = await session.scalar(
            select(func.count())
            .select_from(ThreepidSession)
            .where(
                ThreepidSession.requested_from == client_address[:64],
                ThreepidSession.created_at >= since,
            )
        )
        if int(opened or 0) >= MAX_SESSIONS_PER_CLIENT:
            raise MatrixError(
                429, "M_LIMIT_EXCEEDED", "too many e-mail validations", retry_after_ms=3_600_000
            )


async def submit_token(session: AsyncSession, *, sid: str, client_secret: str, token: str) -> bool:
    """Validate a session with the token of its link (once); whether it was valid."""
    row = await session.get(ThreepidSession, sid)
    now = utcnow()
    if (
        row is None
        or row.token_hash is None
        or row.token_expires_at < now
        or not hmac.compare_digest(row.client_secret_hash, _sha256(client_secret))
        or not hmac.compare_digest(row.token_hash, _sha256(token))
    ):
        return False
    row.token_hash = None  # single use
    row.validated_at = now
    await session.flush()
    return True


async def validated_session(
    session: AsyncSession, *, sid: str, client_secret: str
) -> ThreepidSession | None:
    """The session, if validated recently and not yet used to register."""
    row = await session.get(ThreepidSession, sid)
    if (
        row is None
        or row.validated_at is None
        or row.consumed_at is not None
        or row.validated_at < utcnow() - VALIDATED_TTL
        or not hmac.compare_digest(row.client_secret_hash, _sha256(client_secret))
    ):
        return None
    return row


async def consume(session: AsyncSession, *, sid: str) -> ThreepidSession | None:
    """Use a validated session for one registration (atomically: a second one gets None)."""
    now = utcnow()
    result = await session.execute(
        update(ThreepidSession)
        .where(
            ThreepidSession.sid == sid,
            ThreepidSession.validated_at.is_not(None),
            ThreepidSession.validated_at >= now - VALIDATED_TTL,
            ThreepidSession.consumed_at.is_(None),
        )
        .values(consumed_at=now)
        .execution_options(synchronize_session=False)
    )
    if not getattr(result, "rowcount", 0):
        return None
    row = await session.get(ThreepidSession, sid, populate_existing=True)
    return row
