"""The audit log viewer (admins): the node's tamper-evident log, newest entries first, a page at
a time, with the verdict of walking its hash chain and signed checkpoints — the same check as
``rhenus audit verify`` and ``GET /api/v1/audit/verify``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from sqlalchemy import func, select
from starlette.responses import Response

from rhenus.core import audit
from rhenus.core.node import NodeDep
from rhenus.web.admin_pages import AdminWebUser
from rhenus.web.pages import WebRoute, render

router = APIRouter(route_class=WebRoute, include_in_schema=False)
PER_PAGE = 50


@router.get("/audit")
async def audit_page(
    request: Request,
    node: NodeDep,
    user: AdminWebUser,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
) -> Response:
    """GET /audit?page=N — audit entries, newest first, and whether the chain is intact."""
    async with node.db.session() as session:
        head = int(await session.scalar(select(func.max(audit.AuditEntry.seq))) or 0)
        pages = max(1, -(-head // PER_PAGE))
        page = min(page, pages)
        top = head - (page - 1) * PER_PAGE
        shown = await audit.list_entries(
            session, after=max(0, top - PER_PAGE), limit=min(PER_PAGE, top)
        )
        verification = await audit.verify_log(session, node.keyring)
    context = {
        "entries": list(reversed(shown)),
        "verification": verification,
        "page": page,
        "pages": pages,
        "head": head,
    }
    return render(request, "audit.html", context, user=user)
