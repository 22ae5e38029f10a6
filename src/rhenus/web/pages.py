"""Rendering the web app's pages: the Jinja2 environments (one per language, auto-escaping), the
context every page gets (user, navigation, CSRF token, language switch), and the route class
that turns errors into pages and adds the security headers to every answer."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException
from starlette.responses import HTMLResponse, RedirectResponse, Response

from rhenus.accounts.service import Principal
from rhenus.core.errors import Problem
from rhenus.web import i18n, security
from rhenus.web.i18n import N_

# Jinja2 is imported with the first page rendered: a node serving no page never loads it.
if TYPE_CHECKING:
    from jinja2 import Environment

log = logging.getLogger(__name__)
HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"


@dataclass(frozen=True)
class NavEntry:
    """A section of the app in the main navigation (later slices add theirs here)."""

    path: str
    label: str  # a msgid, translated when shown
    admin_only: bool = False


NAV: tuple[NavEntry, ...] = (
    NavEntry("/", N_("Home")),
    NavEntry("/catalogue", N_("Catalogue")),
    NavEntry("/agreements", N_("Agreements and transfers")),
    NavEntry("/chat", N_("Chat")),
    NavEntry("/assistant", N_("Assistant")),
    NavEntry("/audit", N_("Audit log"), admin_only=True),
    NavEntry("/admin", N_("Administration"), admin_only=True),
)


@functools.cache
def environment(lang: str) -> Environment:
    """The templates as seen in ``lang``: auto-escaped, gettext-translated, strict about
    undefined names (a typo in a template fails its test rather than printing nothing)."""
    from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html"], default=True),
        undefined=StrictUndefined,
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_translations(i18n.translations(lang), newstyle=True)  # type: ignore[attr-defined]
    env.filters["long_date"] = functools.partial(i18n.long_date, lang=lang)
    env.filters["short_datetime"] = functools.partial(i18n.short_datetime, lang=lang)
    env.filters["country"] = functools.partial(i18n.country_name, lang=lang)
    env.filters["file_size"] = functools.partial(i18n.file_size, lang=lang)
    env.filters["pick"] = functools.partial(i18n.pick, lang=lang)
    env.globals["languages"] = i18n.languages()
    return env


def language_of(request: Request) -> str:
    return i18n.choose(
        security.read_cookie(request, security.LANGUAGE_COOKIE),
        request.headers.get("accept-language"),
    )


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    user: Principal | None = None,
    status: int = 200,
) -> HTMLResponse:
    """The page ``template`` in the request's language, with the layout's context."""
    lang = language_of(request)
    path = request.url.path
    query = request.url.query
    here = path + (f"?{query}" if query else "")
    nav = [
        {"path": e.path, "label": e.label, "current": _is_current(e.path, path)}
        for e in NAV
        if user is not None and (not e.admin_only or user.role == "admin")
    ]
    page = environment(lang).get_template(template)
    html = page.render(
        lang=lang,
        user=user,
        nav=nav,
        here=here,
        csrf_field=security.CSRF_FIELD,
        csrf=security.csrf_token(security.csrf_secret(request)),
        organisation=request.app.state.node.settings.organisation,
        htmx=request.headers.get("hx-request") == "true",
        **(context or {}),
    )
    response = HTMLResponse(html, status_code=status)
    response.headers["Content-Language"] = lang
    response.headers["Vary"] = "Accept-Language, Cookie, HX-Request"
    security.pending_cookies(request, response)
    return response


def _is_current(entry: str, path: str) -> bool:
    return path == entry if entry == "/" else path == entry or path.startswith(entry + "/")


def redirect(request: Request, target: str) -> Response:
    """303 to ``target``; for an htmx request, an ``HX-Redirect`` so the whole page changes."""
    if request.headers.get("hx-request") == "true":
        return Response(status_code=204, headers={"HX-Redirect": target})
    return RedirectResponse(target, status_code=303)


_MESSAGES = {
    400: N_("The request could not be understood."),
    401: N_("Please sign in."),
    403: N_("You are not allowed to do this."),
    404: N_("This page does not exist."),
    409: N_("This conflicts with the current state; reload the page and try again."),
    413: N_("What you sent is too large."),
    422: N_("Some of what you entered is not valid."),
    429: N_("Too many attempts; wait a few minutes and try again."),
    500: N_("Something went wrong on our side. The error has been logged."),
}


def error_page(request: Request, status: int, message: str | None = None) -> HTMLResponse:
    """An error as a page of the app (the JSON problem documents are for the API)."""
    shown = message or _MESSAGES.get(status, _MESSAGES[500 if status >= 500 else 400])
    return render(request, "error.html", {"status": status, "message": shown}, status=status)


class WebRoute(APIRoute):
    """A page route: errors become pages, sign-in and CSRF failures are answered as a browser
    expects, and every response carries :data:`.security.SECURITY_HEADERS`."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def page(request: Request) -> Response:
            try:
                response = await handler(request)
            except security.SignInRequired:
                target = quote(
                    request.url.path + ("?" + request.url.query if request.url.query else "")
                )
                response = redirect(request, f"/sign-in?next={target}")
            except security.PasswordChangeRequired:
                response = redirect(request, "/password")
            except security.CsrfRejected:
                message = N_("This form has expired. Reload the page and try again.")
                response = error_page(request, 403, message)
            except Problem as exc:
                response = error_page(request, exc.status)
            except HTTPException as exc:
                response = error_page(request, exc.status_code)
            except RequestValidationError:
                response = error_page(request, 422)
            except Exception:
                log.exception("unhandled error on %s %s", request.method, request.url.path)
                response = error_page(request, 500)
            response.headers.update(security.SECURITY_HEADERS)
            return response

        return page
