"""Matrix routes of the Tchap rules: e-mail registration (``register/email/requestToken``, the
mailed link ``register/email/submitToken``), bound addresses (``account/3pid``), account
renewal (``/_matrix/client/unstable/account_validity/…``, as Synapse serves them), invitations
by e-mail (called by ``membership_api.invite``), and the admin API of account expiry.

Mails are sent after the transaction that made their token committed, never while it holds
the database's write lock; a mail that cannot be sent is answered 500 ``M_UNKNOWN`` (the client
tries again with the next ``send_attempt``).
"""

from __future__ import annotations

import html
import logging
from datetime import datetime
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, Field

from rhenus.accounts import service as accounts
from rhenus.accounts.deps import AdminUser
from rhenus.core import mail
from rhenus.core.errors import Conflict
from rhenus.core.http import api_router
from rhenus.core.node import Node, NodeDep
from rhenus.messaging import external, threepids, validity
from rhenus.messaging.auth import Requester
from rhenus.messaging.deps import MatrixUser
from rhenus.messaging.errors import MatrixError, not_found
from rhenus.messaging.events import Notifier, writing
from rhenus.messaging.schemas import user_id

log = logging.getLogger("rhenus.messaging.mail")

router = api_router(prefix="/_matrix/client", tags=["messaging"])
admin_router = api_router(prefix="/api/v1/messaging", tags=["messaging"])


class RequestTokenBody(BaseModel):
    """``POST /register/email/requestToken`` (spec: "Adding Account Administrative Contact
    Information" → EmailValidation)."""

    client_secret: str = Field(min_length=1, max_length=255)
    email: str = Field(min_length=3, max_length=254)
    send_attempt: int = Field(ge=0, le=2**31 - 1)
    next_link: str | None = Field(default=None, max_length=2048)  # not used
    id_server: str | None = Field(default=None, max_length=255)  # deprecated, not used
    id_access_token: str | None = Field(default=None, max_length=1024)


class RenewBody(BaseModel):
    """``POST /api/v1/messaging/accounts/{username}/renew`` (admin)."""

    expires_at: datetime | None = Field(
        default=None, description="The new expiry; omit for now + the validity period."
    )


class RenewedOut(BaseModel):
    user_id: str
    expires_at: datetime
    expiration_ts: int = Field(description="The same, in milliseconds (Synapse's admin API).")


async def _send_all(node: Node, mails: list[mail.Mail]) -> None:
    try:
        for message in mails:
            await mail.send(node.settings, message)
    except mail.MailError as exc:
        log.warning("mail not sent: %s", exc)
        raise MatrixError(
            500, "M_UNKNOWN", "the e-mail could not be sent; try again later"
        ) from exc


def _page(title: str, text: str, status: int = 200) -> HTMLResponse:
    body = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title></head>"
        f"<body><h1>{html.escape(title)}</h1><p>{html.escape(text)}</p></body></html>"
    )
    return HTMLResponse(body, status_code=status, headers={"Cache-Control": "no-store"})


def _wants_json(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return "application/json" in accept and "text/html" not in accept


@router.post("/v3/register/email/requestToken")
async def request_email_token(
    body: RequestTokenBody, request: Request, node: NodeDep
) -> dict[str, Any]:
    """POST /_matrix/client/v3/register/email/requestToken — mails a validation link to an
    address of the organisation's domains (403 ``M_THREEPID_DENIED`` for any other)."""
    async with node.db.transaction() as session:
        sid, message = await threepids.request_token(
            session,
            settings=node.settings,
            client_secret=body.client_secret,
            email=body.email,
            send_attempt=body.send_attempt,
            client_address=request.client.host if request.client else "unknown",
        )
    if message is not None:
        await _send_all(node, [message])
    return {"sid": sid}


@router.get("/v3/register/email/submitToken", response_model=None)
async def submit_email_token(
    sid: str, client_secret: str, token: str, request: Request, node: NodeDep
) -> HTMLResponse | JSONResponse:
    """GET /_matrix/client/v3/register/email/submitToken — the link of the mail: validates the
    session (once). A page for people, or ``{"success": …}`` for ``Accept: application/json``."""
    if max(len(sid), len(client_secret), len(token)) > 255:
        valid = False
    else:
        async with node.db.transaction() as session:
            valid = await threepids.submit_token(
                session, sid=sid, client_secret=client_secret, token=token
            )
    if _wants_json(request):
        return JSONResponse({"success": valid}, status_code=200 if valid else 400)
    if valid:
        return _page(
            "E-mail address confirmed",
            "Your e-mail address is confirmed. Go back to your Matrix client to finish.",
        )
    return _page(
        "Invalid link",
        "This link is invalid, was already used or has expired: ask your Matrix client for a "
        "new mail.",
        status=400,
    )


@router.get("/v3/account/3pid")
async def account_threepids(requester: MatrixUser, node: NodeDep) -> dict[str, Any]:
    """GET /_matrix/client/v3/account/3pid — the addresses bound to the account."""
    async with node.db.session() as session:
        rows = await threepids.threepids(session, account_id=requester.account_id)
    return {
        "threepids": [
            {
                "medium": row.medium,
                "address": row.address,
                "validated_at": int(row.validated_at.timestamp() * 1000),
                "added_at": int(row.added_at.timestamp() * 1000),
            }
            for row in rows
        ]
    }


def _validity_on(node: Node) -> None:
    if validity.period(node.settings) is None:
        raise not_found("account validity is not enabled on this server")


@router.get(validity.RENEW_PATH.removeprefix("/_matrix/client"), response_model=None)
async def renew_account(token: str, node: NodeDep) -> HTMLResponse:
    """GET /_matrix/client/unstable/account_validity/renew?token= — the link of a renewal mail
    (Synapse's): renews the account for another period (once)."""
    _validity_on(node)
    until = None
    if len(token) <= 255:
        async with node.db.transaction() as session:
            until = await validity.renew_with_token(session, settings=node.settings, token=token)
    if until is None:
        return _page(
            "Invalid link", "This renewal link is invalid or was already used.", status=404
        )
    return _page("Account renewed", f"Your account is renewed until {until:%Y-%m-%d %H:%M} UTC.")


@router.post(validity.SEND_MAIL_PATH.removeprefix("/_matrix/client"))
async def send_renewal_mail(requester: MatrixUser, node: NodeDep) -> dict[str, Any]:
    """POST /_matrix/client/unstable/account_validity/send_mail — a renewal link, mailed to the
    account's addresses; an expired account may ask too."""
    _validity_on(node)
    if not mail.configured(node.settings):
        raise MatrixError(403, "M_FORBIDDEN", "this server sends no e-mail (no SMTP server)")
    async with node.db.transaction() as session:
        await validity.start(session, settings=node.settings, account_id=requester.account_id)
        mails = await validity.requested_renewal(
            session, settings=node.settings, account_id=requester.account_id
        )
    if mails is None:
        raise MatrixError(
            429, "M_LIMIT_EXCEEDED", "a renewal mail was sent a moment ago", retry_after_ms=60_000
        )
    if not mails:
        raise MatrixError(400, "M_THREEPID_NOT_FOUND", "no e-mail address is bound to the account")
    await _send_all(node, mails)
    return {}


async def invite_by_email(
    node: Node,
    notifier: Notifier,
    *,
    requester: Requester,
    room_id: str,
    medium: str,
    address: str,
) -> None:
    """The third-party form of ``POST /rooms/{roomId}/invite`` (``external.invite_by_email``)."""
    async with writing(node.db, notifier) as session:
        pending = await external.invite_by_email(
            session,
            settings=node.settings,
            requester=requester,
            room_id=room_id,
            medium=medium,
            address=address,
        )
    if pending is None:
        return
    message, invitation_id = pending
    try:
        await _send_all(node, [message])
    except MatrixError:
        async with node.db.transaction() as session:
            await external.withdraw(session, invitation_id=invitation_id)
        raise


@admin_router.post("/accounts/{username}/renew")
async def admin_renew(
    username: str, node: NodeDep, admin: AdminUser, body: RenewBody | None = None
) -> RenewedOut:
    """POST /api/v1/messaging/accounts/{username}/renew — set a Matrix account's expiry
    (default: now + the validity period), like Synapse's admin ``account_validity/validity``."""
    until = body.expires_at if body is not None else None
    async with node.db.transaction() as session:
        account = await accounts.get_user(session, username=username)  # or 404
        try:
            expires = await validity.renew(
                session, settings=node.settings, account_id=account.id, until=until
            )
        except ValueError as exc:
            raise Conflict(str(exc)) from exc
        await node.audit.record(
            session,
            actor=admin.actor,
            action="messaging.account.renewed",
            object_type="user",
            object_id=username,
            details={"expires_at": expires.isoformat()},
        )
    return RenewedOut(
        user_id=user_id(username, node.settings.matrix_server_name),
        expires_at=expires,
        expiration_ts=int(expires.timestamp() * 1000),
    )
