"""The non-standard trigger endpoints the DSP TCK calls to make a connector act as consumer
(``dataspacetck.dsp.connector.negotiation.initiate.url`` and ``….transfer.initiate.url``); only
routed in conformance mode, and only for the conformance token."""

from __future__ import annotations

from fastapi import Request
from pydantic import BaseModel, ConfigDict, Field

from rhenus.core.errors import Forbidden
from rhenus.core.http import api_router
from rhenus.dataspace.callers import DspCaller
from rhenus.dataspace.contracts.driver import Driver
from rhenus.dataspace.transfers.driver import TransferDriver

router = api_router(tags=["conformance"])


class NegotiationTrigger(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    provider_id: str = Field(alias="providerId", max_length=255)
    offer_id: str = Field(alias="offerId", max_length=255)
    dataset_id: str = Field(alias="datasetId", max_length=255)
    connector_address: str = Field(alias="connectorAddress", max_length=2000)


class TransferTrigger(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    provider_id: str = Field(alias="providerId", max_length=255)
    agreement_id: str = Field(alias="agreementId", max_length=255)
    format: str = Field(max_length=64)
    connector_address: str = Field(alias="connectorAddress", max_length=2000)


class Triggered(BaseModel):
    consumerPid: str
    providerPid: str


def _checker_only(caller: DspCaller) -> None:
    if caller.signed:
        raise Forbidden("the trigger endpoints are for the conformance checker only")


@router.post("/tck/negotiations/requests", response_model=Triggered)
async def trigger_negotiation(
    body: NegotiationTrigger, request: Request, caller: DspCaller
) -> Triggered:
    """POST /tck/negotiations/requests — start a negotiation as consumer, for the TCK."""
    _checker_only(caller)
    driver: Driver = request.app.state.contracts_driver
    neg = await driver.start(
        provider=body.provider_id,
        provider_address=body.connector_address,
        offer={"@type": "Offer", "@id": body.offer_id, "permission": [{"action": "use"}]},
        dataset_id=body.dataset_id,
    )
    return Triggered(consumerPid=neg.consumer_pid, providerPid=neg.provider_pid)


@router.post("/tck/transfers/requests", response_model=Triggered)
async def trigger_transfer(body: TransferTrigger, request: Request, caller: DspCaller) -> Triggered:
    """POST /tck/transfers/requests — start a transfer as consumer, for the TCK."""
    _checker_only(caller)
    driver: TransferDriver = request.app.state.transfers_driver
    tp = await driver.request(
        agreement_id=body.agreement_id,
        provider_address=body.connector_address,
        transfer_format=body.format,
    )
    return Triggered(consumerPid=tp.consumer_pid, providerPid=tp.provider_pid)
