"""The node's own moves in transfer processes (see :mod:`rhenus.dataspace.driving`): the
provider checks the agreement's policy again, counts the access and starts the transfer with a
short-lived data-plane token (or terminates with the reason); the consumer asks for transfers
and reports their completion. In conformance mode the TCK's agreements follow their script.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from rhenus.core import jobs
from rhenus.core.db import utcnow
from rhenus.core.errors import NotFound
from rhenus.dataspace.catalogue import service as catalogue
from rhenus.dataspace.conformance import scripts
from rhenus.dataspace.contracts import agreements
from rhenus.dataspace.contracts import service as contracts
from rhenus.dataspace.driving import Action, ProcessDriver, raise_event
from rhenus.dataspace.machine import Role
from rhenus.dataspace.messages import message
from rhenus.dataspace.policy import service as policy
from rhenus.dataspace.policy.schemas import AccessRequest
from rhenus.dataspace.transfers import receipts, service
from rhenus.dataspace.transfers.models import Transfer
from rhenus.dataspace.transfers.states import Move, State
from rhenus.trust.did import base_url_for_did

HTTP_ENDPOINT = "https://w3id.org/idsa/v4.1/HTTP"
DATA_PATH = "/dataplane"
TERMINATION = "TransferTerminationMessage"
RECEIPT_JOB = "transfers.receipt"
RECEIPTS_PATH = "/api/v1/federation/receipts"
log = logging.getLogger(__name__)
DEFAULTS: dict[Role, dict[str, list[str]]] = {
    Role.PROVIDER: {"requested": ["start"], "completed": ["receipt"]},
    Role.CONSUMER: {},  # the consumer pulls when a person (or the CLI) asks
}
_PATHS = {
    "TransferStartMessage": "start",
    "TransferCompletionMessage": "completion",
    "TransferSuspensionMessage": "suspension",
    TERMINATION: "termination",
}


def data_address(endpoint: str, token: str) -> dict[str, Any]:
    """A DSP 2025-1 ``DataAddress`` for an HTTP pull with a bearer token."""
    return {
        "@type": "DataAddress",
        "endpointType": HTTP_ENDPOINT,
        "endpoint": endpoint,
        "endpointProperties": [
            {"@type": "EndpointProperty", "name": "authorization", "value": token},
            {"@type": "EndpointProperty", "name": "authType", "value": "bearer"},
        ],
    }


class TransferDriver(ProcessDriver):
    """Carries out the background moves of one node's transfer processes."""

    kind = service.KIND
    terminations = TERMINATION

    def actions(self) -> Mapping[str, Action]:
        return {
            "start": self._start,
            "complete": self._simple(Move.COMPLETE, "TransferCompletionMessage"),
            "suspend": self._simple(Move.SUSPEND, "TransferSuspensionMessage"),
            "terminate": self._terminate,
            "receipt": self._receipt,
        }

    def handlers(self) -> dict[str, jobs.Handler]:
        return {**super().handlers(), RECEIPT_JOB: jobs.Handler(self._deliver_receipt)}

    async def plan(self, pid: str, event: str, role: str | None = None) -> list[str]:
        if role and not self.conformance:
            return list(DEFAULTS[Role(role)].get(event, []))
        async with self.node.db.session() as session:
            tp = await session.get(Transfer, pid)
        if tp is None:
            return []
        if self.conformance:
            script = scripts.transfer(tp.role, tp.agreement_id)
            if script is not None:
                return list(script.get(event, []))
        return list(DEFAULTS[Role(tp.role)].get(event, []))

    async def _load(self, session: AsyncSession, pid: str) -> Transfer:
        return await service.get_transfer(session, pid=pid, caller=None, lock=True)

    async def _move(self, session: AsyncSession, tp: Transfer, step: Move, **kw: Any) -> None:
        await service.move(
            session, tp, step, sender=Role(tp.role), audit=self.node.audit, actor=self.did, **kw
        )

    def _to_them(
        self, session: AsyncSession, tp: Transfer, kind: str, then: list[str], **fields: Any
    ) -> None:
        theirs = tp.consumer_pid if tp.role == Role.PROVIDER else tp.provider_pid
        body = message(kind, providerPid=tp.provider_pid, consumerPid=tp.consumer_pid, **fields)
        url = f"{tp.counterparty_address}/transfers/{theirs}/{_PATHS[kind]}"
        self.send(session, tp.id, url, body, then)

    # -- actions ------------------------------------------------------------------------------
    async def _start(self, pid: str, then: list[str]) -> bool:
        """Provider: start (policy checked again, access counted) or restart a suspended
        transfer with a fresh token. Consumer: ask the provider to restart a suspended one."""
        async with self.node.db.transaction() as session:
            tp = await self._load(session, pid)
            if tp.role == Role.CONSUMER:
                if tp.state != State.SUSPENDED:
                    return False
                await self._move(session, tp, Move.START)
                self._to_them(session, tp, "TransferStartMessage", then)
                return True
            if tp.state not in (State.REQUESTED, State.SUSPENDED):
                return False
            if tp.state == State.REQUESTED:
                reasons = await self._refusals(session, tp)
                if reasons:
                    await self._move(session, tp, Move.TERMINATE, reason=reasons)
                    self._to_them(session, tp, TERMINATION, then, code="policy", reason=reasons)
                    return True
                await agreements.count_access(session, agreement_id=tp.agreement_id)
            token = secrets.token_urlsafe(32)
            tp.token_sha256 = service.token_digest(token)
            lifetime = timedelta(seconds=self.node.settings.dataplane_token_seconds)
            tp.token_expires_at = utcnow() + lifetime
            await self._move(session, tp, Move.START)
            endpoint = f"{self.node.settings.public_url}{DATA_PATH}/{tp.id}"
            self._to_them(
                session, tp, "TransferStartMessage", then, dataAddress=data_address(endpoint, token)
            )
        return True

    async def _refusals(self, session: AsyncSession, tp: Transfer) -> list[str]:
        """Why the agreement does not permit one more access now ([] if it does)."""
        agreement = await agreements.find_agreement(session, agreement_id=tp.agreement_id)
        if agreement is None:
            return ["the agreement no longer exists"]
        decision = policy.evaluate(
            policy=agreement.policy,
            request=AccessRequest(
                recipient=tp.counterparty,
                recipient_country=await agreements.consumer_country(session, agreement=agreement),
                purpose=agreement.purpose or None,
                now=utcnow(),
                agreed_at=agreement.signed_at,
                count=agreement.access_count,
            ),
        )
        return [] if decision.permitted else decision.reasons

    def _simple(self, step: Move, kind: str) -> Action:
        async def act(pid: str, then: list[str]) -> bool:
            async with self.node.db.transaction() as session:
                tp = await self._load(session, pid)
                if tp.state != State.STARTED:
                    return False
                await self._move(session, tp, step)
                self._to_them(session, tp, kind, then)
                if tp.state == State.COMPLETED:
                    raise_event(session, kind=self.kind, process=tp, event="completed")
            return True

        return act

    async def _terminate(self, pid: str, then: list[str]) -> bool:
        async with self.node.db.transaction() as session:
            tp = await self._load(session, pid)
            if service.is_final(tp):
                return False
            reasons = [f"terminated by the {tp.role}"]
            await self._move(session, tp, Move.TERMINATE, reason=reasons)
            if tp.consumer_pid and tp.provider_pid:
                self._to_them(session, tp, TERMINATION, then, code="terminated", reason=reasons)
                return True
        return False

    async def _receipt(self, pid: str, then: list[str]) -> bool:
        """Provider: sign the receipt of a completed transfer and have it countersigned."""
        async with self.node.db.transaction() as session:
            tp = await self._load(session, pid)
            dataset = await catalogue.find_dataset(session, dataset_id=tp.dataset_id)
            if tp.role != Role.PROVIDER or dataset is None or not dataset.sha256:
                return False
            if not tp.counterparty.startswith("did:web:"):
                return False  # only did:web participants can countersign
            token = await receipts.sign(
                session, tp=tp, keyring=self.node.keyring, audit=self.node.audit, did=self.did,
                sha256=dataset.sha256, size=dataset.byte_size or 0,
            )  # fmt: skip
            url = base_url_for_did(
                tp.counterparty, allow_http_loopback=self.node.settings.federation_insecure_http
            )
            jobs.enqueue(
                session,
                kind=RECEIPT_JOB,
                payload={"transfer": tp.id, "url": f"{url}{RECEIPTS_PATH}", "receipt": token},
            )
        return False

    async def _deliver_receipt(self, payload: dict[str, Any]) -> None:
        """Send the receipt to the consumer; keep its countersignature."""
        response = await self.http().post(payload["url"], json={"receipt": payload["receipt"]})
        if response.status_code >= 500 or response.status_code == 404:
            raise RuntimeError(f"{payload['url']} answered {response.status_code}")
        if response.is_error:
            log.warning("receipt of %s refused: %s", payload["transfer"], response.text[:300])
            return
        counter = str(response.json().get("countersignature", ""))
        if self.resolver is None:
            raise RuntimeError("this driver has no DID resolver to check countersignatures")
        async with self.node.db.transaction() as session:
            await receipts.record_countersignature(
                session, transfer_id=payload["transfer"], counter=counter,
                resolver=self.resolver, audit=self.node.audit, did=self.did,
            )  # fmt: skip

    async def end_locally(self, pid: str, reasons: list[str]) -> None:
        async with self.node.db.transaction() as session:
            tp = await self._load(session, pid)
            if not service.is_final(tp):
                await self._move(session, tp, Move.TERMINATE, reason=reasons)

    # -- consumer, for people -----------------------------------------------------------------
    async def request(
        self,
        *,
        agreement_id: str,
        provider_address: str | None = None,
        transfer_format: str = service.PULL,
    ) -> Transfer:
        """Ask the provider of an agreement for a transfer; sent now, so a refusal is known at
        once. ``provider_address`` overrides the agreement's (the TCK's trigger names it)."""
        async with self.node.db.transaction() as session:
            agreement = await agreements.find_agreement(session, agreement_id=agreement_id)
            if agreement is None or agreement.role != Role.CONSUMER.value:
                raise NotFound(f"no agreement {agreement_id} as consumer")
            now = utcnow()
            pid = contracts.new_pid()
            tp = Transfer(
                id=pid, role=Role.CONSUMER.value, provider_pid="", consumer_pid=pid,
                counterparty=agreement.provider,
                counterparty_address=(provider_address or agreement.provider_address).rstrip("/"),
                agreement_id=agreement.id, dataset_id=agreement.dataset_id, format=transfer_format,
                state=State.REQUESTED.value, reason=[], token_sha256=None, token_expires_at=None,
                data_address=None, bytes_served=0, sha256=None, created_at=now, updated_at=now,
            )  # fmt: skip
            session.add(tp)
            await session.flush()
            await self.node.audit.record(
                session, actor=self.did, action="transfer.process.requested",
                object_type="process", object_id=pid,
                details={"role": "consumer", "counterparty": tp.counterparty,
                         "agreement": agreement.id, "consumerPid": pid},
            )  # fmt: skip
        body = message("TransferRequestMessage", consumerPid=pid, agreementId=agreement_id,
                       format=transfer_format, callbackAddress=self.dsp_base)  # fmt: skip
        url = f"{tp.counterparty_address}/transfers/request"
        provider_pid = await self.ask(pid, url, body, "transfer")
        async with self.node.db.transaction() as session:
            tp = await self._load(session, pid)
            tp.provider_pid = tp.provider_pid or provider_pid
            raise_event(session, kind=self.kind, process=tp, event="requested")
        self.wake()
        return tp

    async def complete(
        self, *, transfer_id: str, sha256: str | None = None, size: int | None = None
    ) -> Transfer:
        """Tell the provider the data arrived (completion message), and complete here; what
        arrived (its sha-256 and size) is what a receipt from the provider must match."""
        async with self.node.db.transaction() as session:
            tp = await self._load(session, transfer_id)
            await self._move(session, tp, Move.COMPLETE)
            if sha256 is not None:
                tp.sha256, tp.bytes_served = sha256, size or 0
            self._to_them(session, tp, "TransferCompletionMessage", [])
        self.wake()
        return tp
