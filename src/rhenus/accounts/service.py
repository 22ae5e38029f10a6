"""Account logic: users, passwords (argon2id), login tokens, API keys, the login rate limit.

Secrets handed to clients (tokens, API keys, one-time passwords) are random and shown once; the
database keeps only their sha-256 (tokens are high-entropy, so a fast hash is enough) or, for
passwords people choose, an argon2id hash.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import anyio.to_thread
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from rhenus.accounts.models import ApiKey, AuthToken, LoginAttempt, User
from rhenus.core.audit import AuditLog
from rhenus.core.db import utcnow
from rhenus.core.errors import Conflict, NotFound, TooManyRequests, Unauthorized

_hasher = PasswordHasher()  # argon2id, RFC 9106 low-memory profile defaults
# Verified against when the user does not exist, so both paths cost one argon2 verification.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))
TOKEN_PREFIX = "rhs_"  # noqa: S105 - a visible prefix, not a secret
API_KEY_PREFIX = "rhk_"


@dataclass(frozen=True)
class Principal:
    """Who is calling: the user behind a login token or an API key."""

    user_id: int
    username: str
    role: str
    must_change_password: bool
    via: str  # "token" or "api_key"
    api_key_prefix: str = ""
    api_key_used_at: datetime | None = None

    @property
    def actor(self) -> str:
        return f"user:{self.username}"


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


async def hash_password(password: str) -> str:
    """argon2id hash, computed off the event loop (it takes tens of milliseconds on purpose)."""
    return await anyio.to_thread.run_sync(_hasher.hash, password)


async def check_password(password_hash: str, password: str) -> bool:
    def verify() -> bool:
        try:
            return _hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    return await anyio.to_thread.run_sync(verify)


def generate_password() -> str:
    return secrets.token_urlsafe(18)


async def create_user(
    session: AsyncSession,
    *,
    audit: AuditLog,
    actor: str,
    username: str,
    email: str | None = None,
    display_name: str = "",
    role: str = "agent",
    password: str | None = None,
) -> tuple[User, str | None]:
    """Create a user; returns it and the generated one-time password if none was given."""
    taken = await session.scalar(
        select(func.count())
        .select_from(User)
        .where((User.username == username) | ((User.email == email) & (User.email.is_not(None))))
    )
    if taken:
        raise Conflict(f"a user named {username!r} or with that email already exists")
    one_time = None if password else generate_password()
    user = User(
        username=username,
        email=email,
        display_name=display_name or username,
        role=role,
        password_hash=await hash_password(password or one_time or ""),
        must_change_password=one_time is not None,
        created_at=utcnow(),
        disabled=False,
    )
    session.add(user)
    await session.flush()
    await audit.record(
        session,
        actor=actor,
        action="accounts.user.created",
        object_type="user",
        object_id=username,
        details={"role": role},
    )
    return user, one_time


async def count_users(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(User)) or 0)


async def list_users(session: AsyncSession) -> list[User]:
    """Every user, in username order."""
    return list((await session.scalars(select(User).order_by(User.username))).all())


async def get_user(session: AsyncSession, *, username: str) -> User:
    """The user named ``username``, or :class:`NotFound`."""
    user = await session.scalar(select(User).where(User.username == username))
    if user is None:
        raise NotFound(f"no user named {username!r}")
    return user


async def disable_user(
    session: AsyncSession, *, audit: AuditLog, actor: str, username: str
) -> User:
    """Disable a user and revoke every token and key it holds."""
    user = await get_user(session, username=username)
    user.disabled = True
    await session.execute(
        update(AuthToken).where(AuthToken.user_id == user.id).values(revoked=True)
    )
    await session.execute(update(ApiKey).where(ApiKey.user_id == user.id).values(revoked=True))
    await audit.record(
        session,
        actor=actor,
        action="accounts.user.disabled",
        object_type="user",
        object_id=username,
    )
    return user


async def login(
    session: AsyncSession,
    *,
    username: str,
    password: str,
    address: str,
    ttl: timedelta,
    max_attempts: int,
    window: timedelta,
) -> tuple[str, AuthToken, User] | None:
    """Check a password and open a session, or record the failure and return None.

    Rate-limited per account+address and per address. The caller commits in both cases, so
    that failures count.
    """
    now = utcnow()
    since = now - window
    await session.execute(delete(LoginAttempt).where(LoginAttempt.at < since))
    per_account = await session.scalar(
        select(func.count())
        .select_from(LoginAttempt)
        .where(
            LoginAttempt.username == username,
            LoginAttempt.address == address,
            LoginAttempt.at >= since,
        )
    )
    per_address = await session.scalar(
        select(func.count())
        .select_from(LoginAttempt)
        .where(LoginAttempt.address == address, LoginAttempt.at >= since)
    )
    if (per_account or 0) >= max_attempts or (per_address or 0) >= 4 * max_attempts:
        raise TooManyRequests(
            "too many failed logins; try again later", retry_after=int(window.total_seconds())
        )
    user = await session.scalar(select(User).where(User.username == username))
    valid = await check_password(user.password_hash if user else _DUMMY_HASH, password)
    if user is None or not valid or user.disabled:
        session.add(LoginAttempt(username=username[:64], address=address[:64], at=now))
        return None
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = AuthToken(
        token_hash=_sha256(token), user_id=user.id, created_at=now, expires_at=now + ttl
    )
    session.add(row)
    await session.flush()
    return token, row, user


async def logout(session: AsyncSession, *, token: str) -> None:
    await session.execute(
        update(AuthToken).where(AuthToken.token_hash == _sha256(token)).values(revoked=True)
    )


async def resolve(session: AsyncSession, *, credential: str) -> Principal | None:
    """The principal behind a bearer credential (token or API key), if it is valid now."""
    now = utcnow()
    if credential.startswith(API_KEY_PREFIX):
        key = await session.scalar(select(ApiKey).where(ApiKey.key_hash == _sha256(credential)))
        if key is None or key.revoked:
            return None
        user = await session.get(User, key.user_id)
        if user is None or user.disabled:
            return None
        return Principal(
            user.id,
            user.username,
            user.role,
            user.must_change_password,
            "api_key",
            key.prefix,
            key.last_used_at,
        )
    elif credential.startswith(TOKEN_PREFIX):
        token = await session.scalar(
            select(AuthToken).where(AuthToken.token_hash == _sha256(credential))
        )
        if token is None or token.revoked or token.expires_at <= now:
            return None
        user = await session.get(User, token.user_id)
    else:
        return None
    if user is None or user.disabled:
        return None
    return Principal(user.id, user.username, user.role, user.must_change_password, "token")


async def note_api_key_use(session: AsyncSession, *, prefix: str) -> None:
    """Record when a key was last used (callers do it at most once a minute per key)."""
    await session.execute(
        update(ApiKey).where(ApiKey.prefix == prefix).values(last_used_at=utcnow())
    )


async def change_password(
    session: AsyncSession, *, audit: AuditLog, username: str, current: str, new: str
) -> None:
    """Replace a password after checking the current one; clears the one-time flag."""
    user = await get_user(session, username=username)
    if not await check_password(user.password_hash, current):
        raise Unauthorized("the current password is wrong")
    if hmac.compare_digest(current, new):
        raise Conflict("the new password must differ from the current one")
    user.password_hash = await hash_password(new)
    user.must_change_password = False
    await audit.record(
        session,
        actor=f"user:{username}",
        action="accounts.password.changed",
        object_type="user",
        object_id=username,
    )


async def create_api_key(
    session: AsyncSession, *, audit: AuditLog, username: str, name: str
) -> tuple[ApiKey, str]:
    """A new API key for the user; returns the row and the secret (shown once)."""
    user = await get_user(session, username=username)
    prefix = secrets.token_hex(4)
    secret = f"{API_KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    key = ApiKey(
        user_id=user.id,
        name=name,
        prefix=prefix,
        key_hash=_sha256(secret),
        created_at=utcnow(),
        revoked=False,
    )
    session.add(key)
    await session.flush()
    await audit.record(
        session,
        actor=f"user:{username}",
        action="accounts.api_key.created",
        object_type="api_key",
        object_id=prefix,
        details={"name": name},
    )
    return key, secret


async def list_api_keys(session: AsyncSession, *, username: str) -> list[ApiKey]:
    user = await get_user(session, username=username)
    rows = await session.scalars(
        select(ApiKey).where(ApiKey.user_id == user.id).order_by(ApiKey.created_at)
    )
    return list(rows.all())


async def revoke_api_key(
    session: AsyncSession, *, audit: AuditLog, username: str, prefix: str
) -> None:
    user = await get_user(session, username=username)
    key = await session.scalar(
        select(ApiKey).where(ApiKey.user_id == user.id, ApiKey.prefix == prefix)
    )
    if key is None:
        raise NotFound(f"no API key {prefix!r}")
    key.revoked = True
    await audit.record(
        session,
        actor=f"user:{username}",
        action="accounts.api_key.revoked",
        object_type="api_key",
        object_id=prefix,
    )
