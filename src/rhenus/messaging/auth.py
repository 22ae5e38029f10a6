"""Matrix login, devices and access tokens.

Matrix users are the node's own accounts (``rhenus.accounts``): ``@<username>:<server name>``.
Passwords are checked, and failed logins rate-limited, by ``accounts.service``. Access tokens
are random, shown once, and stored as their sha-256 only (one per device). Registration is
``registration``.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from rhenus.accounts import service as accounts
from rhenus.accounts.models import User
from rhenus.core.db import utcnow
from rhenus.core.errors import TooManyRequests
from rhenus.messaging import devices, token_cache
from rhenus.messaging.errors import MatrixError, forbidden
from rhenus.messaging.models import Device, Profile
from rhenus.messaging.schemas import user_id

TOKEN_PREFIX = "rhm_"  # noqa: S105 - a visible prefix, not a secret
REGISTRATION_TOKEN = "m.login.registration_token"  # noqa: S105 - a stage name
DUMMY = "m.login.dummy"
EMAIL_IDENTITY = "m.login.email.identity"
AUTH_SESSION_TTL = timedelta(hours=1)
MIN_PASSWORD = 12  # the node's rule for chosen passwords (accounts: PasswordChange)


def hash_token(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


@dataclass(frozen=True)
class Requester:
    """Who is calling a Matrix route: a user and one of their devices."""

    user_id: str
    localpart: str
    account_id: int
    device_pk: int
    device_id: str


async def resolve(session: AsyncSession, *, token: str, server_name: str) -> Requester | None:
    """The requester behind an access token, if it is known and its account is active."""
    resolved = await lookup(session, token=token)
    if resolved is None:
        return None
    uid = user_id(resolved.localpart, server_name)
    return Requester(
        uid, resolved.localpart, resolved.account_id, resolved.device_pk, resolved.device_id
    )


def cached(*, token: str, server_name: str) -> Requester | None:
    """The requester behind ``token`` if this process resolved it in the last seconds."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    resolved = token_cache.CACHE.get(hash_token(token))
    if resolved is None:
        return None
    uid = user_id(resolved.localpart, server_name)
    return Requester(
        uid, resolved.localpart, resolved.account_id, resolved.device_pk, resolved.device_id
    )


async def lookup(session: AsyncSession, *, token: str) -> token_cache.Resolved | None:
    """The device and active account behind ``token``: from the cache, else one SELECT."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    digest = hash_token(token)
    cache = token_cache.CACHE
    if (hit := cache.get(digest)) is not None:
        return hit
    epoch = cache.epoch
    row = (
        await session.execute(
            select(Device.localpart, Device.user_id, Device.id, Device.device_id)
            .join(User, (User.id == Device.user_id) & (User.username == Device.localpart))
            .where(Device.token_hash == digest, User.disabled.is_(False))
        )
    ).first()
    if row is None:
        return None
    resolved = token_cache.Resolved(row[0], row[1], row[2], row[3])
    cache.put(digest, resolved, epoch=epoch)
    return resolved


async def open_device(
    session: AsyncSession,
    *,
    account_id: int,
    localpart: str,
    server_name: str,
    device_id: str | None,
    display_name: str | None,
) -> tuple[str, Device]:
    """A new access token on the named device (created if new; its old token is replaced)."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    device = None
    if device_id:
        device = await session.scalar(
            select(Device).where(Device.user_id == account_id, Device.device_id == device_id)
        )
    if device is None:
        device = Device(
            user_id=account_id,
            localpart=localpart,
            device_id=device_id
            or "".join(secrets.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(10)),
            display_name=display_name or "",
            token_hash=hash_token(token),
            created_at=utcnow(),
        )
        session.add(device)
        await session.flush()
        await devices.record_change(session, user=user_id(localpart, server_name))
    else:
        token_cache.revoke(session, account_id=account_id, device_pk=device.id)
        device.token_hash = hash_token(token)
        if display_name:
            device.display_name = display_name
    await session.flush()
    return token, device


async def password_login(
    session: AsyncSession,
    *,
    server_name: str,
    localpart: str,
    password: str,
    address: str,
    device_id: str | None,
    display_name: str | None,
    max_attempts: int,
    window: timedelta,
) -> tuple[str, Device] | None:
    """Check the password with the accounts service and open a device; None if refused.

    The caller commits in both cases, so that failures count towards the accounts' rate limit.
    """
    try:
        result = await accounts.login(
            session,
            username=localpart,
            password=password,
            address=address,
            ttl=timedelta(minutes=1),
            max_attempts=max_attempts,
            window=window,
        )
    except TooManyRequests as exc:
        seconds = int(exc.headers.get("Retry-After", "60"))
        raise MatrixError(
            429, "M_LIMIT_EXCEEDED", exc.detail, retry_after_ms=seconds * 1000
        ) from exc
    if result is None:
        return None
    node_token, _, account = result
    # The node's own session token is not what a Matrix client gets: revoke it at once.
    await accounts.logout(session, token=node_token)
    if account.must_change_password:
        raise forbidden("choose a password first: this account still has its one-time password")
    await ensure_profile(
        session, uid=user_id(localpart, server_name), displayname=account.display_name
    )
    return await open_device(
        session,
        account_id=account.id,
        localpart=localpart,
        server_name=server_name,
        device_id=device_id,
        display_name=display_name,
    )


async def logout(session: AsyncSession, *, requester: Requester, everywhere: bool) -> None:
    """Delete the requester's device (and so its token), or every device of the user."""
    if everywhere:
        token_cache.revoke(session, account_id=requester.account_id)
        await session.execute(delete(Device).where(Device.user_id == requester.account_id))
    else:
        token_cache.revoke(session, account_id=requester.account_id, device_pk=requester.device_pk)
        await session.execute(delete(Device).where(Device.id == requester.device_pk))
    await devices.record_change(session, user=requester.user_id)


async def ensure_profile(session: AsyncSession, *, uid: str, displayname: str | None) -> Profile:
    """The user's profile, created with ``displayname`` if they have none yet."""
    profile = await session.get(Profile, uid)
    if profile is None:
        profile = Profile(user_id=uid, displayname=displayname, avatar_url=None)
        session.add(profile)
        await session.flush()
    return profile


# ---- registration tokens ------------------------------------------------------------------


def require_self(requester: Requester, uid: str) -> None:
    """M_FORBIDDEN unless ``uid`` is the requester (their own profile, filters…)."""
    if uid != requester.user_id:
        raise forbidden("you can only do this for yourself")


async def password_matches(session: AsyncSession, *, requester: Requester, password: str) -> bool:
    """Whether ``password`` is the requester's (a UIA ``m.login.password`` stage)."""
    account = await accounts.get_user(session, username=requester.localpart)
    return await accounts.check_password(account.password_hash, password)
