"""Wire formats of usage (``GET /v1/usage``) and of per-user limits (``/api/v1/assistant/limits``).

OpenAI has no per-call usage route a client could expect; the page follows its list objects
(``object: "list"``, ``data``, ``has_more``, ``first_id``, ``last_id``, cursor ``after``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from rhenus.assistant.quotas import Source


class UsageRecord(BaseModel):
    """One call: who, which model and route, tokens, timings, how it ended."""

    object: Literal["usage.record"] = "usage.record"
    id: int
    created: int = Field(description="Unix seconds when the call was admitted.")
    user: str
    model: str
    endpoint: str
    stream: bool
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    duration_ms: int | None = Field(description="None while the call is pending.")
    time_to_first_token_ms: int | None = Field(description="Streams: until the first piece.")
    status: str = Field(description="pending, ok, cancelled, or the error's OpenAI code.")
    http_status: int | None


class UsageTotals(BaseModel):
    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


class UserTotals(UsageTotals):
    user: str


class UsagePage(BaseModel):
    """A page of records (newest first), the totals of every record the filters match, and,
    for administrators, the totals of each user and of all of them."""

    object: Literal["list"] = "list"
    data: list[UsageRecord]
    has_more: bool
    first_id: int | None
    last_id: int | None
    totals: UsageTotals
    all_users: UsageTotals | None = None
    users: list[UserTotals] | None = None


class LimitIn(BaseModel):
    """Limits of one user on one alias; ``null`` keeps the next level, 0 is no limit."""

    model_config = ConfigDict(extra="forbid")

    rpm: int | None = Field(default=None, ge=0, description="Requests per minute.")
    tpm: int | None = Field(default=None, ge=0, description="Prompt + completion tokens/minute.")


class LimitOut(BaseModel):
    user: str
    model: str
    rpm: int | None
    tpm: int | None
    updated_at: datetime


class EffectiveLimit(BaseModel):
    """What applies to a user on a model, and at which level each limit was set."""

    model: str
    rpm: int
    tpm: int
    rpm_source: Source
    tpm_source: Source
