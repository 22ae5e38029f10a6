"""Routes for operators: ``/healthz``, ``/readyz``, ``/metrics`` and the audit log."""

from __future__ import annotations

import dataclasses
import logging

from fastapi import Query, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from rhenus.accounts.deps import AdminUser
from rhenus.core import audit
from rhenus.core.http import api_router
from rhenus.core.node import NodeDep
from rhenus.ops.schemas import AuditEntryOut, AuditVerificationOut, ReadinessOut

log = logging.getLogger("rhenus.ops")
router = api_router(tags=["operations"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """GET /healthz — the process is up and serving (liveness)."""
    return {"status": "ok"}


@router.get("/readyz", response_model=ReadinessOut)
async def readyz(node: NodeDep) -> JSONResponse:
    """GET /readyz — the database answers and the blob store takes writes (readiness)."""
    checks: dict[str, str] = {}
    for name, probe in (("database", node.db.ping), ("blobs", node.blobs.check_writable)):
        try:
            await probe()
            checks[name] = "ok"
        except Exception as exc:  # any failure means "not ready"; the reason is logged
            log.warning("readiness check %s failed: %s", name, exc)
            checks[name] = "failing"
    ready = all(v == "ok" for v in checks.values())
    body = ReadinessOut(status="ready" if ready else "not ready", checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)


@router.get("/metrics", include_in_schema=False)
async def metrics() -> Response:
    """GET /metrics — Prometheus text exposition."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


@router.get("/api/v1/audit", response_model=list[AuditEntryOut])
async def list_audit(
    node: NodeDep,
    _: AdminUser,
    after: int = Query(0, ge=0, description="Return entries with a sequence number above this."),
    limit: int = Query(100, ge=1, le=1000),
) -> list[AuditEntryOut]:
    """GET /api/v1/audit — audit entries, oldest first (admin)."""
    async with node.db.session() as session:
        rows = await audit.list_entries(session, after=after, limit=limit)
        return [AuditEntryOut.model_validate(r) for r in rows]


@router.get("/api/v1/audit/verify", response_model=AuditVerificationOut)
async def verify_audit(node: NodeDep, _: AdminUser) -> AuditVerificationOut:
    """GET /api/v1/audit/verify — walk the hash chain and checkpoints (admin)."""
    async with node.db.session() as session:
        result = await audit.verify_log(session, node.keyring)
    return AuditVerificationOut(**dataclasses.asdict(result))
