"""Wire formats of contract negotiation: the DSP 2025-1 messages ("Contract Negotiation
Protocol", "Message Types") as received and as sent, and the node's own API for people."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from rhenus.dataspace.messages import DspMessage, MessageError, error_message, message, parse


def negotiation_body(*, provider_pid: str, consumer_pid: str, state: str) -> dict[str, Any]:
    """A ``ContractNegotiation`` (the answer to requests and to ``GET /negotiations/{pid}``)."""
    return message(
        "ContractNegotiation", providerPid=provider_pid, consumerPid=consumer_pid, state=state
    )


def error_body(*, provider_pid: str, consumer_pid: str, code: str, reason: str) -> dict[str, Any]:
    """A ``ContractNegotiationError`` (both pids are required by its schema)."""
    return error_message(
        "ContractNegotiationError", provider_pid=provider_pid, consumer_pid=consumer_pid,
        code=code, reason=reason,
    )  # fmt: skip


__all__ = ["DspMessage", "MessageError", "message", "parse"]


# -- the node's own API (people) ------------------------------------------------------------
class NegotiateIn(BaseModel):
    """Start a negotiation for a dataset a peer offers."""

    provider_url: str = Field(description="The provider node's public URL.", max_length=500)
    dataset_id: str = Field(max_length=255)
    offer_id: str | None = Field(
        None, max_length=255, description="Which of its offers (default: the first)."
    )
    purpose: str = Field("", max_length=255, description="The purpose the data will serve.")


class NegotiationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    role: str
    provider_pid: str
    consumer_pid: str
    counterparty: str
    dataset_id: str
    offer_id: str
    purpose: str
    state: str
    agreement_id: str | None
    reason: list[str]
    created_at: datetime
    updated_at: datetime


class AgreementOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    role: str
    dataset_id: str
    provider: str
    consumer: str
    purpose: str
    policy: dict[str, Any]
    signed_at: datetime
    access_count: int
