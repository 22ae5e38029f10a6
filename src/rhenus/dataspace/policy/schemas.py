"""What the policy engine is asked and what it answers: an access request (the facts an ODRL 2.2
constraint's left operand is compared with, Information Model §2.5.1) and the decision."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator


class ComputeFacts(BaseModel):
    """How the provider would run one compute-to-data query (``docs/pools.md``): what the
    ``rhenus:`` compute constraints of a permission to compute are compared with."""

    model_config = ConfigDict(frozen=True)

    min_group_size: int = Field(ge=1, description="Every output row comes from this many rows.")
    epsilon_spent_micro: int | None = Field(
        None, ge=0, description="ε spent under the agreement with this query, in millionths; "
        "None when the query runs without differential privacy.",
    )  # fmt: skip
    max_rows: int = Field(ge=0, description="Rows the query may scan at most.")
    max_seconds_micro: int = Field(ge=0, description="Its time limit, in microseconds.")
    max_memory_mib: int = Field(ge=0, description="Its memory limit, in MiB.")
    aggregates: frozenset[str] = Field(
        frozenset(), description='Aggregate functions it uses: "count", "sum", "avg", …'
    )


class AccessRequest(BaseModel):
    """One use (or the agreement to use) of a dataset, as the negotiation or data plane sees it.

    Every fact comes from the caller: the recipient, its credentials and country as verified
    from its compliance credential, the declared purpose and location, and the clock."""

    model_config = ConfigDict(frozen=True)

    action: str = Field("use", description='ODRL action: "use", "read", "compute", … or an IRI.')
    recipient: str = Field(description="The requesting participant's DID.")
    recipient_credentials: frozenset[str] = Field(
        frozenset(), description='Credential types it holds, e.g. "gx:LegalParticipant".'
    )
    recipient_country: str | None = Field(
        None, description="ISO 3166-1 alpha-2 code of its certified headquarters."
    )
    location: str | None = Field(
        None, description="ISO 3166-1 alpha-2 code of where the data is used; default: the "
        "recipient's country.",
    )  # fmt: skip
    purpose: str | None = Field(None, description='Declared purpose, e.g. "statistics".')
    now: datetime = Field(description="The time of the request (timezone-aware).")
    agreed_at: datetime | None = Field(
        None, description="When the agreement was made; None (at agreement time) means now."
    )
    count: int = Field(0, ge=0, description="Uses already made under the agreement.")
    compute: ComputeFacts | None = Field(
        None, description="For a compute-to-data query (action compute): how it would run."
    )

    @field_validator("now", "agreed_at")
    @classmethod
    def _aware_utc(cls, value: datetime | None) -> datetime | None:
        # A naive time would be read in each node's local zone: the same request could be
        # decided differently on two nodes.
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("must be timezone-aware")
        return value.astimezone(UTC)

    @field_validator("recipient_country", "location")
    @classmethod
    def _country(cls, value: str | None) -> str | None:
        if value is None:
            return None
        # The form only: a code ISO has not assigned (XK, Kosovo, in some registries) simply
        # lies in no region, rather than failing the caller's request.
        code = value.upper()
        if not (len(code) == 2 and code.isascii() and code.isalpha()):
            raise ValueError(f"{value!r} is not an ISO 3166-1 alpha-2 country code")
        return code


class Decision(BaseModel):
    """The engine's answer. ``reasons`` always says why (at least one reason on a denial);
    ``duties`` are the duties the permitting permission carries and the policy's obligations,
    as compact JSON-LD, for the caller to fulfil (the engine does not fulfil them)."""

    permitted: bool
    reasons: list[str]
    duties: list[dict[str, Any]] = Field(default_factory=list)
