"""Matrix login, devices and access tokens, registration with User-Interactive Auth.

Matrix users are the node's own accounts (``rhenus.accounts``): ``@<username>:<server name>``.
Passwords are checked, and failed logins rate-limited, by ``accounts.service``. Access tokens
are random, shown once, and stored as their sha-256 only (one per device).

Registration (spec: "Account registration and management", "User-interactive authentication
API", "Token-authenticated registration") offers the flows of :func:`registration_flows`:
``m.login.registration_token`` then ``m.login.dummy`` (Synapse's order, which clients such as
matrix-nio follow), and — when the organisation's e-mail domains and an SMTP server are set —
``m.login.email.identity`` then ``m.login.dummy`` (``threepids``: an address of those domains,
proven by a mailed link). A registration token may also be the token of an invitation by
e-mail (``external``): the account is then an external user's, bound to the invited address.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from rhenus.accounts import service as accounts
from rhenus.accounts.schemas import EXTERNAL
from rhenus.config import Settings
from rhenus.core.audit import AuditLog
from rhenus.core.db import utcnow
from rhenus.core.errors import Conflict, NotFound, TooManyRequests
from rhenus.messaging import devices, threepids, validity
from rhenus.messaging.errors import MatrixError, forbidden
from rhenus.messaging.models import AuthSession, Device, Profile, RegistrationToken
from rhenus.messaging.schemas import user_id

TOKEN_PREFIX = "rhm_"  # noqa: S105 - a visible prefix, not a secret
REGISTRATION_TOKEN = "m.login.registration_token"  # noqa: S105 - a stage name
DUMMY = "m.login.dummy"
EMAIL_IDENTITY = "m.login.email.identity"
AUTH_SESSION_TTL = timedelta(hours=1)
MIN_PASSWORD = 12  # the node's rule for chosen passwords (accounts: PasswordChange)


def _sha256(value: str) -> str:
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
    if not token.startswith(TOKEN_PREFIX):
        return None
    device = await session.scalar(select(Device).where(Device.token_hash == _sha256(token)))
    if device is None:
        return None
    try:
        account = await accounts.get_user(session, username=device.localpart)
    except NotFound:
        return None
    if account.disabled or account.id != device.user_id:
        return None
    uid = user_id(device.localpart, server_name)
    return Requester(uid, device.localpart, account.id, device.id, device.device_id)


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
            token_hash=_sha256(token),
            created_at=utcnow(),
        )
        session.add(device)
        await session.flush()
        await devices.record_change(session, user=user_id(localpart, server_name))
    else:
        device.token_hash = _sha256(token)
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
        await session.execute(delete(Device).where(Device.user_id == requester.account_id))
    else:
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


async def create_registration_token(
    session: AsyncSession,
    *,
    audit: AuditLog,
    actor: str,
    token: str | None = None,
    uses_allowed: int | None = None,
    expires_at: datetime | None = None,
) -> tuple[RegistrationToken, str]:
    """A new registration token; returns the row and the token (shown once)."""
    secret = token or secrets.token_urlsafe(18)
    if await session.scalar(
        select(RegistrationToken.id).where(RegistrationToken.token_hash == _sha256(secret))
    ):
        raise Conflict("that registration token already exists")
    row = RegistrationToken(
        token_hash=_sha256(secret),
        hint=secret[:4],
        uses_allowed=uses_allowed,
        completed=0,
        expires_at=expires_at,
        created_by=actor,
        created_at=utcnow(),
    )
    session.add(row)
    await session.flush()
    await audit.record(
        session,
        actor=actor,
        action="messaging.registration_token.created",
        object_type="registration_token",
        object_id=row.hint,
        details={"uses_allowed": uses_allowed, "expires_at": expires_at and expires_at.isoformat()},
    )
    return row, secret


async def list_registration_tokens(session: AsyncSession) -> list[RegistrationToken]:
    rows = await session.scalars(select(RegistrationToken).order_by(RegistrationToken.created_at))
    return list(rows.all())


def _usable(now: datetime) -> Any:
    return (
        or_(
            RegistrationToken.uses_allowed.is_(None),
            RegistrationToken.completed < RegistrationToken.uses_allowed,
        ),
        or_(RegistrationToken.expires_at.is_(None), RegistrationToken.expires_at > now),
    )


async def registration_token_valid(session: AsyncSession, *, token: str) -> bool:
    """Whether ``token`` may register one more account now (a registration token, or the
    token of a pending invitation by e-mail)."""
    from rhenus.messaging import external  # external → rooms → this module

    found = await session.scalar(
        select(RegistrationToken.id).where(
            RegistrationToken.token_hash == _sha256(token), *_usable(utcnow())
        )
    )
    return found is not None or await external.pending_invitation(session, token=token) is not None


async def _spend_registration_token(session: AsyncSession, *, token_hash: str) -> bool:
    # One atomic UPDATE, so that two registrations cannot both take a token's last use.
    result = await session.execute(
        update(RegistrationToken)
        .where(RegistrationToken.token_hash == token_hash, *_usable(utcnow()))
        .values(completed=RegistrationToken.completed + 1)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0))


# ---- registration (User-Interactive Auth) ------------------------------------------------


def registration_flows(*, email: bool = False) -> list[list[str]]:
    """The UIA flows that complete a registration; ``email``: e-mail registration is offered.

    The e-mail stage is followed by ``m.login.dummy`` like the token's, so that clients that
    finish every registration with a dummy stage (matrix-nio's ``register``) get their token.
    """
    flows = [[REGISTRATION_TOKEN, DUMMY]]
    if email:
        flows.append([EMAIL_IDENTITY, DUMMY])
    return flows


def _challenge(auth_session: AuthSession, *, email: bool, **error: str) -> dict[str, Any]:
    return {
        "flows": [{"stages": flow} for flow in registration_flows(email=email)],
        "params": {},
        "session": auth_session.id,
        "completed": list(auth_session.completed),
        **error,
    }


async def check_new_account(session: AsyncSession, *, localpart: str, password: str | None) -> None:
    """Refuse a taken username or a weak password before any stage is asked for."""
    try:
        await accounts.get_user(session, username=localpart)
    except NotFound:
        pass
    else:
        raise MatrixError(400, "M_USER_IN_USE", f"the user id {localpart!r} is taken")
    if password is not None and len(password) < MIN_PASSWORD:
        raise MatrixError(400, "M_WEAK_PASSWORD", f"a password needs {MIN_PASSWORD} characters")


async def advance_registration(
    session: AsyncSession, *, auth: dict[str, Any] | None, email: bool = False
) -> tuple[AuthSession, dict[str, Any] | None]:
    """Apply one UIA stage; returns the auth session and, while unfinished, the 401 body.

    ``email``: the e-mail flow is offered (``threepids.email_registration_enabled``).
    """
    now = utcnow()
    auth = auth or {}
    auth_session = None
    if isinstance(auth.get("session"), str):
        auth_session = await session.get(AuthSession, auth["session"])
        if auth_session is None or auth_session.created_at < now - AUTH_SESSION_TTL:
            raise MatrixError(400, "M_UNKNOWN", "unknown or expired auth session")
    if auth_session is None:
        await session.execute(
            delete(AuthSession).where(AuthSession.created_at < now - AUTH_SESSION_TTL)
        )
        auth_session = AuthSession(
            id=secrets.token_urlsafe(24), kind="register", completed=[], created_at=now
        )
        session.add(auth_session)
    stage = auth.get("type")
    done = list(auth_session.completed)
    if stage == REGISTRATION_TOKEN:
        token = auth.get("token")
        if not isinstance(token, str) or not await registration_token_valid(session, token=token):
            await session.flush()
            return auth_session, _challenge(
                auth_session, email=email, errcode="M_FORBIDDEN", error="invalid registration token"
            )
        auth_session.registration_token_hash = _sha256(token)
        done.append(stage)
    elif stage == EMAIL_IDENTITY and email:
        creds = auth.get("threepid_creds") or auth.get("threepidCreds")  # the old name too
        sid = creds.get("sid") if isinstance(creds, dict) else None
        secret = creds.get("client_secret") if isinstance(creds, dict) else None
        proven = None
        if isinstance(sid, str) and isinstance(secret, str):
            proven = await threepids.validated_session(session, sid=sid, client_secret=secret)
        if proven is None:
            # Synapse's answer while the link was not yet followed: clients ask again.
            await session.flush()
            return auth_session, _challenge(
                auth_session,
                email=email,
                errcode="M_UNAUTHORIZED",
                error="the e-mail address is not validated yet: follow the link of the mail",
            )
        auth_session.threepid_sid = proven.sid
        done.append(stage)
    elif stage == DUMMY:
        done.append(stage)
    elif stage is not None:
        await session.flush()
        return auth_session, _challenge(
            auth_session,
            email=email,
            errcode="M_UNRECOGNIZED",
            error=f"unknown auth stage {stage!r}",
        )
    auth_session.completed = sorted(set(done))
    await session.flush()
    if any(set(flow) <= set(auth_session.completed) for flow in registration_flows(email=email)):
        return auth_session, None
    return auth_session, _challenge(auth_session, email=email)


@dataclass(frozen=True)
class Registered:
    user_id: str
    device_id: str | None
    access_token: str | None


async def _proof(
    session: AsyncSession, *, settings: Settings, auth_session: AuthSession
) -> tuple[str | None, str]:
    """What the completed stages prove: the account's e-mail address (if any) and its role.

    The e-mail flow gives an address of the organisation's domains; an invitation's token, the
    invited address (external unless in those domains); a registration token, nothing more.
    Each proof is used up here, atomically: two registrations never share one.
    """
    from rhenus.messaging import external  # external → rooms → this module

    if auth_session.threepid_sid is not None and EMAIL_IDENTITY in auth_session.completed:
        proven = await threepids.consume(session, sid=auth_session.threepid_sid)
        if proven is None:
            raise forbidden("the e-mail validation was used or has expired: validate again")
        if not threepids.domain_allowed(settings, proven.address):
            raise MatrixError(403, "M_THREEPID_DENIED", "this e-mail domain may not register")
        return proven.address, "agent"
    token_hash = auth_session.registration_token_hash
    if token_hash is not None:
        invitation = await external.accept(session, token_hash=token_hash)
        if invitation is not None:
            return invitation.address, EXTERNAL if invitation.external else "agent"
        if await _spend_registration_token(session, token_hash=token_hash):
            return None, "agent"
    raise forbidden("the registration token is no longer valid")


async def register(
    session: AsyncSession,
    *,
    audit: AuditLog,
    settings: Settings,
    auth_session: AuthSession,
    localpart: str,
    password: str,
    device_id: str | None,
    device_name: str | None,
    inhibit_login: bool,
) -> Registered:
    """Create the account of a completed registration, and log it in unless inhibited.

    An e-mail address proven on the way is bound to the account, and pending invitations by
    e-mail to it become invites of the new account.
    """
    from rhenus.messaging import external  # external → rooms → this module

    server_name = settings.matrix_server_name
    email, role = await _proof(session, settings=settings, auth_session=auth_session)
    if email is not None and await threepids.account_of(session, address=email) is not None:
        raise MatrixError(400, "M_THREEPID_IN_USE", "this e-mail address is already registered")
    try:
        account, _ = await accounts.create_user(
            session,
            audit=audit,
            actor="matrix:register",
            username=localpart,
            email=email,
            display_name=localpart,
            role=role,
            password=password,
        )
    except Conflict as exc:
        raise MatrixError(400, "M_USER_IN_USE", exc.detail) from exc
    uid = user_id(localpart, server_name)
    await ensure_profile(session, uid=uid, displayname=localpart)
    await validity.start(session, settings=settings, account_id=account.id)
    if email is not None:
        await threepids.bind(session, account_id=account.id, address=email, at=utcnow())
        await external.deliver(session, account=account, address=email, server_name=server_name)
    await session.delete(auth_session)
    if inhibit_login:
        return Registered(uid, None, None)
    token, device = await open_device(
        session,
        account_id=account.id,
        localpart=localpart,
        server_name=server_name,
        device_id=device_id,
        display_name=device_name,
    )
    return Registered(uid, device.device_id, token)


def require_self(requester: Requester, uid: str) -> None:
    """M_FORBIDDEN unless ``uid`` is the requester (their own profile, filters…)."""
    if uid != requester.user_id:
        raise forbidden("you can only do this for yourself")


async def password_matches(session: AsyncSession, *, requester: Requester, password: str) -> bool:
    """Whether ``password`` is the requester's (a UIA ``m.login.password`` stage)."""
    account = await accounts.get_user(session, username=requester.localpart)
    return await accounts.check_password(account.password_hash, password)
