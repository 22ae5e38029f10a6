"""Administration pages (admins only; anyone else gets the 403 page): users (list, create
with a one-time password), the e-mail domains allowed to register, the federation peers the
catalogue follows (list, add, remove, crawl now), and the node's trust status and compliance
credential. The routes call the services behind ``/api/v1/users``, ``/api/v1/catalogue/peers``
and ``/api/v1/trust/status``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from starlette.responses import Response

from rhenus.accounts import service as accounts
from rhenus.accounts.service import Principal
from rhenus.core.errors import Conflict, Forbidden, Problem
from rhenus.core.node import Node, NodeDep
from rhenus.dataspace.catalogue import crawler as crawling
from rhenus.dataspace.catalogue.federation_api import crawler_of
from rhenus.trust import service as trust
from rhenus.trust.credentials import decode_unverified
from rhenus.trust.did import did_for_url
from rhenus.web.i18n import N_
from rhenus.web.pages import WebRoute, redirect, render
from rhenus.web.security import CsrfChecked, WebUser

router = APIRouter(route_class=WebRoute, include_in_schema=False)
ROLES = ("agent", "admin")


async def admin_user(user: WebUser) -> Principal:
    """The signed-in user if an administrator; otherwise the 403 page."""
    if user.role != "admin":
        raise Forbidden("this needs the admin role")
    return user


AdminWebUser = Annotated[Principal, Depends(admin_user)]


def _labels(token: str) -> list[str]:
    """The labels a compliance credential grants (shown, not trusted: it was checked on
    arrival by :func:`rhenus.trust.participant.obtain_compliance`)."""
    try:
        payload = decode_unverified(token)
    except ValueError:
        return []
    subject: Any = payload.get("credentialSubject") or payload.get("vc", {}).get(
        "credentialSubject", {}
    )
    labels = subject.get("rhenus:labels", []) if isinstance(subject, dict) else []
    return [str(label) for label in labels] if isinstance(labels, list) else []


async def _context(node: Node) -> dict[str, Any]:
    async with node.db.session() as session:
        users = await accounts.list_users(session)
        peers = await crawling.list_peers(session)
        participant = await trust.latest_credential(session, kind="participant")
        compliance = await trust.latest_credential(session, kind="compliance")
    return {
        "users": users,
        "roles": ROLES,
        "domains": list(node.settings.matrix_allowed_email_domains),
        "peers": peers,
        "did": did_for_url(node.settings.public_url),
        "self_description": participant,
        "compliance": compliance,
        "labels": _labels(compliance.token) if compliance else [],
        "created": None,
        "one_time_password": "",
        "failed": "",
        "crawled": None,
    }


async def _page(
    request: Request, node: Node, user: Principal, status: int = 200, **extra: Any
) -> Response:
    context = await _context(node)
    context.update(extra)
    return render(request, "admin.html", context, user=user, status=status)


@router.get("/admin")
async def admin_page(request: Request, node: NodeDep, user: AdminWebUser) -> Response:
    """GET /admin — users, registration domains, federation peers, trust status."""
    return await _page(request, node, user)


@router.post("/admin/users", dependencies=[CsrfChecked])
async def create_user(
    request: Request,
    node: NodeDep,
    user: AdminWebUser,
    username: Annotated[str, Form(max_length=64)] = "",
    display_name: Annotated[str, Form(max_length=255)] = "",
    email: Annotated[str, Form(max_length=255)] = "",
    role: Annotated[str, Form(max_length=16)] = "agent",
) -> Response:
    """POST /admin/users — create an account; its one-time password is shown once, here."""
    name = username.strip()
    if not name or role not in ROLES:
        failed = N_("Give a username and a role.")
        return await _page(request, node, user, 422, failed=failed)
    try:
        async with node.db.transaction() as session:
            created, one_time = await accounts.create_user(
                session,
                audit=node.audit,
                actor=user.actor,
                username=name,
                email=email.strip() or None,
                display_name=display_name.strip(),
                role=role,
            )
            created_name = created.username
    except Conflict:
        failed = N_("A user with this name or e-mail address already exists.")
        return await _page(request, node, user, 409, failed=failed)
    return await _page(request, node, user, created=created_name, one_time_password=one_time or "")


@router.post("/admin/peers", dependencies=[CsrfChecked])
async def add_peer(
    request: Request,
    node: NodeDep,
    user: AdminWebUser,
    url: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    """POST /admin/peers — follow another node's catalogue (by its public URL)."""
    try:
        async with node.db.transaction() as session:
            await crawling.add_peer(session, node=node, actor=user.actor, url=url.strip())
    except Problem:
        failed = N_("This is not the public URL of another node (it starts with https://).")
        return await _page(request, node, user, 422, failed=failed)
    return redirect(request, "/admin#peers-title")


@router.post("/admin/peers/remove", dependencies=[CsrfChecked])
async def remove_peer(
    request: Request,
    node: NodeDep,
    user: AdminWebUser,
    did: Annotated[str, Form(max_length=255)] = "",
) -> Response:
    """POST /admin/peers/remove — stop following a peer and forget its entries."""
    async with node.db.transaction() as session:
        await crawling.remove_peer(session, node=node, actor=user.actor, did=did)
    return redirect(request, "/admin#peers-title")


@router.post("/admin/peers/crawl", dependencies=[CsrfChecked])
async def crawl_now(request: Request, node: NodeDep, user: AdminWebUser) -> Response:
    """POST /admin/peers/crawl — crawl every peer's catalogue now."""
    reports = await crawler_of(request.app).crawl_all()
    return await _page(request, node, user, crawled=len(reports))


async def back_to_admin(request: Request, user: AdminWebUser) -> Response:
    """GET on a form's address (the language switch returns there): the admin page."""
    return redirect(request, "/admin")


# A page answered to a POST has that POST's address; the language switch goes back to it.
for _path in ("/admin/users", "/admin/peers", "/admin/peers/remove", "/admin/peers/crawl"):
    router.add_api_route(_path, back_to_admin, methods=["GET"])
