"""Routes of the web app: its pages, served at ``/`` (docs/architecture.md, "The web app").

The pages call the same services as the node's API routes; no business logic lives in the
browser. Forms post back here with a CSRF token (:mod:`.security`); htmx asks for parts of a
page (``HX-Request``) and gets them, otherwise every page works as plain HTML.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, FastAPI, Form, Query, Request
from fastapi.staticfiles import StaticFiles
from starlette.responses import Response

from rhenus.accounts import service as accounts
from rhenus.accounts.schemas import EXTERNAL
from rhenus.core.errors import Conflict, TooManyRequests, Unauthorized
from rhenus.core.node import NodeDep
from rhenus.dataspace.catalogue import entries
from rhenus.dataspace.catalogue.schemas import SearchQuery
from rhenus.dataspace.catalogue.search import search
from rhenus.dataspace.contracts import agreements as contracts
from rhenus.dataspace.transfers import service as transfers
from rhenus.messaging.errors import MatrixError
from rhenus.trust.did import did_for_url
from rhenus.web import (
    admin_pages,
    assistant_pages,
    audit_pages,
    catalogue,
    chat,
    chat_news,
    chat_pages,
    dataspace_pages,
    i18n,
    security,
)
from rhenus.web.i18n import N_
from rhenus.web.pages import STATIC, WebRoute, error_page, language_of, redirect, render
from rhenus.web.security import CsrfChecked, MaybeUser, WebUser

router = APIRouter(route_class=WebRoute, include_in_schema=False)
RECENT = 5


def install(app: FastAPI) -> None:
    """Mount the web app on ``app``: its pages and its static files (``/static``)."""
    app.include_router(router)
    for pages_router in (dataspace_pages.router, audit_pages.router, admin_pages.router):
        app.include_router(pages_router)
    chat_pages.install(app)
    assistant_pages.install(app)
    # static/vendor (htmx) is made by `make`; without it the pages still work as plain HTML.
    app.mount("/static", StaticFiles(directory=STATIC), name="static")


# -- signing in and out ---------------------------------------------------------------------
@router.get("/sign-in")
async def sign_in_page(
    request: Request, user: MaybeUser, next: Annotated[str, Query(max_length=2000)] = "/"
) -> Response:
    """GET /sign-in — the sign-in form (a signed-in user goes on to ``next``)."""
    if user is not None:
        return redirect(request, security.local_path(next))
    return render(request, "sign_in.html", {"next": security.local_path(next), "failed": ""})


@router.post("/sign-in", dependencies=[CsrfChecked])
async def sign_in(
    request: Request,
    node: NodeDep,
    username: Annotated[str, Form(max_length=255)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/",
) -> Response:
    """POST /sign-in — check the password (argon2id) and open a session."""
    settings = node.settings
    address = request.client.host if request.client else "unknown"
    target = security.local_path(next)
    try:
        async with node.db.transaction() as session:
            result = await accounts.login(
                session,
                username=username.strip(),
                password=password,
                address=address,
                ttl=timedelta(seconds=settings.session_ttl_seconds),
                max_attempts=settings.login_max_attempts,
                window=timedelta(seconds=settings.login_window_seconds),
            )
            if result is not None and result[2].role == EXTERNAL:
                await accounts.logout(session, token=result[0])
                result = None
    except TooManyRequests:
        failed = N_("Too many attempts; wait a few minutes and try again.")
        context = {"next": target, "failed": failed, "username": username}
        return render(request, "sign_in.html", context, status=429)
    if result is None:
        failed = N_("Wrong username or password.")
        context = {"next": target, "failed": failed, "username": username}
        return render(request, "sign_in.html", context, status=401)
    token, _, user = result
    response = redirect(request, "/password" if user.must_change_password else target)
    security.session_cookie(response, request, token, settings.session_ttl_seconds)
    security.clear_cookie(response, request, security.PRESESSION_COOKIE)
    return response


@router.post("/sign-out", dependencies=[CsrfChecked])
async def sign_out(request: Request, node: NodeDep) -> Response:
    """POST /sign-out — revoke the session's token and forget the cookie."""
    token = security.read_cookie(request, security.SESSION_COOKIE)
    if token:
        async with node.db.transaction() as session:
            await accounts.logout(session, token=token)
    response = redirect(request, "/sign-in")
    security.clear_cookie(response, request, security.SESSION_COOKIE)
    return response


@router.get("/password")
async def password_page(request: Request, user: WebUser) -> Response:
    """GET /password — choose a new password (required after a one-time password)."""
    return render(request, "password.html", {"failed": ""}, user=user)


@router.post("/password", dependencies=[CsrfChecked])
async def change_password(
    request: Request,
    node: NodeDep,
    user: WebUser,
    current: Annotated[str, Form(max_length=1024)] = "",
    new: Annotated[str, Form(max_length=1024)] = "",
    repeated: Annotated[str, Form(max_length=1024)] = "",
) -> Response:
    """POST /password — replace the password; the session stays open."""
    failed: str = ""
    if len(new) < 12:
        failed = N_("The new password needs at least 12 characters.")
    elif new != repeated:
        failed = N_("The two new passwords differ.")
    else:
        try:
            async with node.db.transaction() as session:
                await accounts.change_password(
                    session, audit=node.audit, username=user.username, current=current, new=new
                )
        except Unauthorized:
            failed = N_("The current password is wrong.")
        except Conflict:
            failed = N_("The new password must differ from the current one.")
    if failed:
        return render(request, "password.html", {"failed": failed}, user=user, status=400)
    return redirect(request, "/")


@router.post("/language", dependencies=[CsrfChecked])
async def choose_language(
    request: Request,
    lang: Annotated[str, Form(max_length=8)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/",
) -> Response:
    """POST /language — the language switch: remember the choice in a cookie."""
    if lang not in i18n.LANGUAGES:
        return error_page(request, 400)
    response = redirect(request, security.local_path(next))
    security.language_cookie(response, request, lang)
    return response


# -- pages ----------------------------------------------------------------------------------
@router.get("/")
async def home(request: Request, node: NodeDep, user: WebUser) -> Response:
    """GET / — what is new: the user's latest messages and invitations, and the latest
    agreements and transfers of this node."""
    lang = language_of(request)
    async with node.db.session() as session:
        latest = await contracts.list_agreements(session, limit=RECENT)
        moving = await transfers.list_transfers(session, limit=RECENT)
        ours = did_for_url(node.settings.public_url)
        wanted = [(a.provider, a.dataset_id) for a in latest]
        wanted += [(ours if t.role == "provider" else t.counterparty, t.dataset_id) for t in moving]
        titles: dict[str, str] = {}
        for provider, dataset_id in wanted:
            entry = await entries.find_entry(session, origin=provider, dataset_id=dataset_id)
            if entry is not None:
                titles[dataset_id] = i18n.pick(entry.title, lang)
    try:
        news = await chat_news.latest(node, await chat.requester_for(node, user))
    except MatrixError:  # an expired account: the chat pages say why, the rest still shows
        news = []
    context = {"agreements": latest, "transfers": moving, "titles": titles, "news": news}
    return render(request, "home.html", context, user=user)


@router.get("/catalogue")
async def catalogue_page(
    request: Request,
    node: NodeDep,
    user: WebUser,
    query: Annotated[SearchQuery, Query()],
) -> Response:
    """GET /catalogue — search the catalogue (ours and our peers'): words, facets, pages."""
    lang = language_of(request)
    result = await search(node.db, query)
    chosen = {name: list(getattr(query, name)) for name in catalogue.FACET_LABELS}
    pages = max(1, -(-result.total // query.per_page))
    context = {
        "query": query,
        "result": result,
        "hits": [catalogue.hit_view(hit, lang) for hit in result.hits],
        "facets": catalogue.facet_groups(result, chosen, lang),
        "pages": pages,
        "page_link": _page_link(request),
    }
    template = "catalogue_results.html" if _partial(request) else "catalogue.html"
    return render(request, template, context, user=user)


@router.get("/catalogue/dataset")
async def dataset_page(
    request: Request,
    node: NodeDep,
    user: WebUser,
    origin: Annotated[str, Query(max_length=255)],
    id: Annotated[str, Query(max_length=255)],
) -> Response:
    """GET /catalogue/dataset?origin=…&id=… — a dataset: its metadata and offers in words."""
    async with node.db.session() as session:
        entry = await entries.find_entry(session, origin=origin, dataset_id=id)
        if entry is None:
            return error_page(request, 404)
        page = catalogue.dataset_page(
            entry, own_did=did_for_url(node.settings.public_url), lang=language_of(request)
        )
    return render(request, "dataset.html", {"dataset": page}, user=user)


def _partial(request: Request) -> bool:
    """An htmx request for the results only (the search box and layout stay as they are)."""
    return (
        request.headers.get("hx-request") == "true"
        and request.headers.get("hx-target") == "search-results"
    )


def _page_link(request: Request) -> Callable[[int], str]:
    def link(page: int) -> str:
        params = [(k, v) for k, v in request.query_params.multi_items() if k != "page"]
        params.append(("page", str(page)))
        return f"/catalogue?{urlencode(params)}"

    return link
