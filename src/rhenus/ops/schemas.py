"""Wire formats of the operations API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict


class AuditEntryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    seq: int
    ts: datetime
    actor: str
    action: str
    object_type: str
    object_id: str
    payload_digest: str
    details: dict[str, Any]
    prev_hash: str
    entry_hash: str


class AuditVerificationOut(BaseModel):
    ok: bool
    entries: int
    checkpoints: int
    first_bad_seq: int | None
    reason: str


class ReadinessOut(BaseModel):
    status: str
    checks: dict[str, str]
