"""Browser security of the web app: the session cookie, CSRF tokens and the response headers.

- **Session**: signing in opens an ordinary login token of the accounts domain (same lifetime,
  rate limit and revocation as ``POST /api/v1/auth/login``); the browser keeps it in a cookie that
  is ``HttpOnly``, ``SameSite=Lax`` and, on HTTPS, ``Secure`` with the ``__Host-`` prefix (no
  ``Domain``, path ``/``: no sibling host can set or read it). Only login tokens are accepted
  from the cookie, never API keys.
- **CSRF**: every form carries a token bound to the browser's secret, HMAC-SHA256(secret,
  purpose) — the session token once signed in, before that a random pre-session cookie (so the
  sign-in form is protected too, against login CSRF). A page on another origin can read neither
  cookie, so it cannot compute the token; ``SameSite=Lax`` is a second line, not the only one.
  htmx sends the same token in an ``X-CSRF-Token`` header.
- **Headers**: a Content-Security-Policy that allows scripts and styles from the node only (no
  inline script or style, no ``eval``: htmx is configured by a meta tag), no framing, no
  referrer outside the node, no caching of pages.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Annotated

from fastapi import Depends, Form, Request
from starlette.responses import Response

from rhenus.accounts import service as accounts
from rhenus.accounts.schemas import EXTERNAL
from rhenus.accounts.service import Principal
from rhenus.core.node import NodeDep

SESSION_COOKIE = "rhenus_session"
PRESESSION_COOKIE = "rhenus_presession"
LANGUAGE_COOKIE = "rhenus_lang"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
_CSRF_PURPOSE = b"rhenus-web-csrf-v1"
_YEAR = 365 * 24 * 3600

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    ]
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
    "Cache-Control": "no-store",
}


class SignInRequired(Exception):
    """The page needs a signed-in user; the browser is sent to the sign-in page."""


class PasswordChangeRequired(Exception):
    """The user still has a one-time password; only the password page answers."""


class CsrfRejected(Exception):
    """A form came without the token of this browser's session (403)."""


def is_https(request: Request) -> bool:
    """Whether the browser reaches the node over HTTPS (directly or through a TLS proxy that
    the node's public URL names)."""
    public_url: str = request.app.state.node.settings.public_url
    return request.url.scheme == "https" or public_url.startswith("https://")


def cookie_name(request: Request, base: str) -> str:
    # __Host- cookies must be Secure: the prefix is only possible, and only needed, on HTTPS.
    return f"__Host-{base}" if is_https(request) else base


def read_cookie(request: Request, base: str) -> str:
    return request.cookies.get(cookie_name(request, base), "")


def set_cookie(response: Response, request: Request, base: str, value: str, max_age: int) -> None:
    response.set_cookie(
        cookie_name(request, base),
        value,
        max_age=max_age,
        path="/",
        secure=is_https(request),
        httponly=True,
        samesite="lax",
    )


def clear_cookie(response: Response, request: Request, base: str) -> None:
    response.delete_cookie(
        cookie_name(request, base),
        path="/",
        secure=is_https(request),
        httponly=True,
        samesite="lax",
    )


def session_cookie(response: Response, request: Request, token: str, max_age: int) -> None:
    set_cookie(response, request, SESSION_COOKIE, token, max_age)


def csrf_secret(request: Request) -> str:
    """The browser's secret CSRF tokens are bound to; a new pre-session secret is made (and
    set on the response by the page renderer) when the browser has none."""
    secret = read_cookie(request, SESSION_COOKIE) or read_cookie(request, PRESESSION_COOKIE)
    if not secret:
        secret = getattr(request.state, "new_presession", "") or secrets.token_urlsafe(32)
        request.state.new_presession = secret
    return secret


def csrf_token(secret: str) -> str:
    return hmac.new(secret.encode(), _CSRF_PURPOSE, hashlib.sha256).hexdigest()


def pending_cookies(request: Request, response: Response) -> None:
    """Sets the pre-session cookie a rendered form's token was bound to, if it is new."""
    made = getattr(request.state, "new_presession", "")
    if made:
        set_cookie(response, request, PRESESSION_COOKIE, made, 24 * 3600)


async def require_csrf(
    request: Request, csrf_token_field: Annotated[str, Form(alias=CSRF_FIELD)] = ""
) -> None:
    """Rejects (403) a form whose token is not this browser's; every POST route depends on it."""
    given = csrf_token_field or request.headers.get(CSRF_HEADER, "")
    secrets_held = [
        s
        for s in (read_cookie(request, SESSION_COOKIE), read_cookie(request, PRESESSION_COOKIE))
        if s
    ]
    if not given or not any(hmac.compare_digest(given, csrf_token(s)) for s in secrets_held):
        raise CsrfRejected()


CsrfChecked = Depends(require_csrf)


async def optional_user(request: Request, node: NodeDep) -> Principal | None:
    """The signed-in user of the session cookie, if it holds a valid login token."""
    token = read_cookie(request, SESSION_COOKIE)
    if not token.startswith(accounts.TOKEN_PREFIX):
        return None
    async with node.db.session() as session:
        principal = await accounts.resolve(session, credential=token)
    if principal is None or principal.role == EXTERNAL:
        return None
    return principal


async def signed_in(
    request: Request, user: Annotated[Principal | None, Depends(optional_user)]
) -> Principal:
    """The signed-in user; otherwise the browser goes to sign in (or to change its password)."""
    if user is None:
        raise SignInRequired()
    if user.must_change_password and request.url.path != "/password":
        raise PasswordChangeRequired()
    return user


MaybeUser = Annotated[Principal | None, Depends(optional_user)]
WebUser = Annotated[Principal, Depends(signed_in)]


def local_path(target: str | None) -> str:
    """``target`` if it is a path on this node, else ``/``: a ``next`` parameter must never send
    the browser to another site."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def language_cookie(response: Response, request: Request, lang: str) -> None:
    set_cookie(response, request, LANGUAGE_COOKIE, lang, _YEAR)
