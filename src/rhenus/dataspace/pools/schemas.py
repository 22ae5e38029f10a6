"""Wire formats of compute-to-data: the query a consumer node sends to a provider
(``POST /dsp/pools/queries``, signed both ways like the Dataspace Protocol's messages; DSP 2025-1
has no compute binding, so this is Rhenus's, in its style: camelCase JSON), its answer, and the
node's own API for people (``/api/v1/pools/queries``). See ``docs/pools.md``."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from rhenus.dataspace.policy.compute import MICRO

QUERY_RESULT = "rhenus:PoolQueryResult"


def check_bounds(value: dict[str, list[float]] | None) -> dict[str, list[float]] | None:
    if value is None:
        return None
    for column, pair in value.items():
        if len(pair) != 2 or not pair[0] <= pair[1]:
            raise ValueError(f"bounds of {column!r} must be [low, high] with low <= high")
        if any(abs(v) > 1e15 for v in pair):
            raise ValueError(f"bounds of {column!r} must lie within ±1e15")
    return value


class QueryMessage(BaseModel):
    """What a consumer node asks a provider to compute under an agreement."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    agreement_id: str = Field(alias="agreementId", min_length=1, max_length=255)
    query: str = Field(min_length=1, max_length=10_000, description="SQL over the table data.")
    purpose: str | None = Field(
        None, min_length=1, max_length=255,
        description="Purpose of this query; default: the agreement's. The policy decides.",
    )  # fmt: skip
    epsilon: Decimal | None = Field(
        None, gt=0, le=100, max_digits=12, decimal_places=6,
        description="ε this query spends of the agreement's differential-privacy budget.",
    )  # fmt: skip
    bounds: dict[str, list[float]] | None = Field(
        None, description="Clamping bounds [low, high] of each column summed or averaged "
        "under differential privacy.",
    )  # fmt: skip

    _check_bounds = field_validator("bounds")(check_bounds)

    @property
    def epsilon_micro(self) -> int | None:
        return None if self.epsilon is None else int(self.epsilon * MICRO)


class QueryIn(BaseModel):
    """``POST /api/v1/pools/queries``: run an aggregate at the provider of an agreement."""

    model_config = ConfigDict(extra="forbid")

    agreement_id: str = Field(min_length=1, max_length=255)
    sql: str = Field(min_length=1, max_length=10_000)
    purpose: str | None = Field(None, min_length=1, max_length=255)
    epsilon: Decimal | None = Field(None, gt=0, le=100, max_digits=12, decimal_places=6)
    bounds: dict[str, list[float]] | None = None

    _check_bounds = field_validator("bounds")(check_bounds)


class FederatedIn(BaseModel):
    """``POST /api/v1/pools/federated-queries``: one query over the providers of several
    agreements, merged here."""

    model_config = ConfigDict(extra="forbid")

    agreement_ids: list[str] = Field(min_length=1, max_length=50)
    sql: str = Field(min_length=1, max_length=10_000)
    purpose: str | None = Field(None, min_length=1, max_length=255)
    epsilon: Decimal | None = Field(None, gt=0, le=100, max_digits=12, decimal_places=6)
    bounds: dict[str, list[float]] | None = None

    _check_bounds = field_validator("bounds")(check_bounds)


class QueryOut(BaseModel):
    """A query as this node recorded it, with its result on the consumer's side."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    role: str
    agreement_id: str
    counterparty: str
    dataset_id: str
    sql: str
    state: str
    reason: str
    result_sha256: str
    result: dict[str, Any] | None
    epsilon: str | None = None
    epsilon_left: str | None = None
    created_at: datetime
    finished_at: datetime | None
