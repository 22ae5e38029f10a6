"""The Dataspace Protocol 2025-1 messages of negotiation and transfer, as received (checked for
the properties their JSON schemas require) and as sent (with the 2025-1 context)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rhenus.dataspace.catalogue.dsp import CONTEXT


class DspMessage(BaseModel):
    """Fields common to the negotiation messages; unknown properties are kept, not refused
    (JSON-LD lets senders add terms of other vocabularies)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    type: str = Field(alias="@type")
    provider_pid: str | None = Field(None, alias="providerPid", min_length=1, max_length=255)
    consumer_pid: str | None = Field(None, alias="consumerPid", min_length=1, max_length=255)
    callback_address: str | None = Field(
        None, alias="callbackAddress", min_length=1, max_length=2000
    )
    offer: dict[str, Any] | None = None
    agreement: dict[str, Any] | None = None
    event_type: Literal["ACCEPTED", "FINALIZED"] | None = Field(None, alias="eventType")
    agreement_id: str | None = Field(None, alias="agreementId", min_length=1, max_length=255)
    format: str | None = Field(None, min_length=1, max_length=64)
    data_address: dict[str, Any] | None = Field(None, alias="dataAddress")
    code: str | None = None
    reason: list[Any] | None = None


class Refused(Exception):
    """A DSP request the node refuses: the HTTP status, an error code and the reason, and the
    pids the error message must carry (both are required by the error schemas)."""

    error_type = "ContractNegotiationError"  # or TransferError: set by each protocol

    def __init__(
        self, status: int, code: str, reason: str, *, provider_pid: str = "", consumer_pid: str = ""
    ) -> None:
        super().__init__(reason)
        self.status, self.code, self.reason = status, code, reason
        self.provider_pid, self.consumer_pid = provider_pid, consumer_pid


class MessageError(Exception):
    """The body is not the DSP message the route expects; ``reason`` says what is wrong."""

    def __init__(self, reason: str, message: DspMessage | None = None) -> None:
        super().__init__(reason)
        self.reason, self.message = reason, message


# @type -> the properties it must carry (DSP 2025-1 JSON schemas, "required").
_REQUIRED: dict[str, tuple[str, ...]] = {
    "ContractRequestMessage": ("consumer_pid", "offer"),
    "ContractOfferMessage": ("provider_pid", "offer"),
    "ContractAgreementMessage": ("provider_pid", "consumer_pid", "agreement"),
    "ContractAgreementVerificationMessage": ("provider_pid", "consumer_pid"),
    "ContractNegotiationEventMessage": ("provider_pid", "consumer_pid", "event_type"),
    "ContractNegotiationTerminationMessage": ("provider_pid", "consumer_pid"),
    "TransferRequestMessage": ("consumer_pid", "agreement_id", "format", "callback_address"),
    "TransferStartMessage": ("provider_pid", "consumer_pid"),
    "TransferCompletionMessage": ("provider_pid", "consumer_pid"),
    "TransferSuspensionMessage": ("provider_pid", "consumer_pid"),
    "TransferTerminationMessage": ("provider_pid", "consumer_pid"),
}


def parse(body: Any, expected: str) -> DspMessage:
    """The message if it is a well-formed ``expected``; :class:`MessageError` otherwise."""
    if not isinstance(body, dict):
        raise MessageError("the body is not a JSON object")
    if body.get("@type") != expected:
        raise MessageError(f"expected a {expected}, got @type {body.get('@type')!r}")
    try:
        message = DspMessage.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise MessageError(f"{where}: {first['msg']}") from exc
    missing = [f for f in _REQUIRED[expected] if getattr(message, f) is None]
    if missing:
        names = {f: DspMessage.model_fields[f].alias or f for f in missing}
        raise MessageError(f"{expected} needs {', '.join(names.values())}", message)
    for field in ("offer", "agreement"):
        policy = getattr(message, field)
        if policy is not None and not isinstance(policy.get("@id"), str):
            raise MessageError(f"the {field} needs an @id", message)
    return message


def message(kind: str, **fields: Any) -> dict[str, Any]:
    """An outgoing DSP message with the 2025-1 context; ``None`` fields are left out."""
    body: dict[str, Any] = {"@context": [CONTEXT], "@type": kind}
    body.update({k: v for k, v in fields.items() if v is not None})
    return body


def error_message(
    kind: str, *, provider_pid: str, consumer_pid: str, code: str, reason: str
) -> dict[str, Any]:
    """A ``ContractNegotiationError`` or ``TransferError`` (``kind``)."""
    return message(
        kind, providerPid=provider_pid, consumerPid=consumer_pid, code=code, reason=[reason]
    )
