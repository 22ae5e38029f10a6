"""Matrix registration with User-Interactive Auth, and registration tokens.

Registration (spec: "Account registration and management", "User-interactive authentication
API", "Token-authenticated registration") offers the flows of :func:`registration_flows`:
``m.login.registration_token`` then ``m.login.dummy`` (Synapse's order, which clients such as
matrix-nio follow), and — when the organisation's e-mail domains and an SMTP server are set —
``m.login.email.identity`` then ``m.login.dummy`` (``threepids``: an address of those domains,
proven by a mailed link). A registration token may also be the token of an invitation by
e-mail (``external``): the account is then an external user's, bound to the invited address.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from rhenus.accounts import service as accounts
from rhenus.accounts.schemas import EXTERNAL
from rhenus.config import Settings
from rhenus.core.audit import AuditLog
from rhenus.core.db import utcnow
from rhenus.core.errors import Conflict, NotFound
from rhenus.messaging import threepids, validity
from rhenus.messaging.auth import (
    AUTH_SESSION_TTL,
    DUMMY,
    EMAIL_IDENTITY,
    MIN_PASSWORD,
    REGISTRATION_TOKEN,
    ensure_profile,
    hash_token,
    open_device,
)
from rhenus.messaging.errors import MatrixError, forbidden
from rhenus.messaging.models import AuthSession, RegistrationToken
from rhenus.messaging.schemas import user_id


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
        select(RegistrationToken.id).where(RegistrationToken.token_hash == hash_token(secret))
    ):
        raise Conflict("that registration token already exists")
    row = RegistrationToken(
        token_hash=hash_token(secret),
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
            RegistrationToken.token_hash == hash_token(token), *_usable(utcnow())
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
        auth_session.registration_token_hash = hash_token(token)
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
