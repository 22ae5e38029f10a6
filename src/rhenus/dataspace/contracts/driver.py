"""The node's own moves in a negotiation, run as background jobs after the commit that asked
for them (see :mod:`rhenus.dataspace.driving`): the provider decides (policy check → agreement or
termination) and finalizes; the consumer verifies agreements and accepts counter-offers on the
terms it asked for. In conformance mode the TCK's fixture ids follow their case's script.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from rhenus.core.db import utcnow
from rhenus.core.errors import NotFound, Problem
from rhenus.core.node import Node
from rhenus.dataspace.catalogue import service as catalogue
from rhenus.dataspace.catalogue.client import fetch_dataset
from rhenus.dataspace.catalogue.dsp import BASE_PATH
from rhenus.dataspace.conformance import scripts
from rhenus.dataspace.contracts import agreements, service
from rhenus.dataspace.contracts.models import Agreement, Negotiation
from rhenus.dataspace.contracts.schemas import message
from rhenus.dataspace.contracts.states import Move, Role, State
from rhenus.dataspace.driving import Action, ProcessDriver, raise_event
from rhenus.dataspace.policy import service as policy
from rhenus.dataspace.policy.schemas import AccessRequest
from rhenus.trust.client import PeerRefused
from rhenus.trust.did import DidResolver, did_for_url

# What each event calls for, by default (the node's own behaviour).
DEFAULTS = {
    Role.PROVIDER: {"requested": ["decide"], "counter": ["decide"], "accepted": ["decide"],
                    "verified": ["finalize"]},
    Role.CONSUMER: {"requested": [], "offered": ["review"], "agreed": ["verify"]},
}  # fmt: skip
TERMINATION = "ContractNegotiationTerminationMessage"

_DATASETS_KEPT = 1000


class Driver(ProcessDriver):
    """Carries out the background moves of one node's negotiations."""

    kind = service.KIND
    terminations = TERMINATION

    def __init__(self, node: Node, transport: httpx.AsyncBaseTransport | None = None) -> None:
        super().__init__(node, transport)
        self._dataset_ttl = node.settings.dsp_catalog_cache_seconds
        # (provider URL, dataset id) -> (when read, the dataset as the provider signed it)
        self._datasets: dict[tuple[str, str], tuple[float, dict[str, Any]]] = {}

    def actions(self) -> Mapping[str, Action]:
        return {
            "decide": self._decide, "agree": self._agree, "offer": self._offer,
            "finalize": self._finalize, "terminate": self._terminate, "verify": self._verify,
            "review": self._review, "accept": self._accept, "counter": self._counter,
        }  # fmt: skip

    async def plan(self, pid: str, event: str, role: str | None = None) -> list[str]:
        if role and not self.conformance:
            return list(DEFAULTS[Role(role)].get(event, []))
        async with self.node.db.session() as session:
            neg = await session.get(Negotiation, pid)
        if neg is None:
            return []
        role = Role(neg.role)
        if self.conformance:
            script = scripts.negotiation(role.value, neg.dataset_id)
            if script is not None:
                return list(script.get(event, []))
        return list(DEFAULTS[role].get(event, []))

    async def _load(self, session: AsyncSession, pid: str) -> Negotiation:
        found = await session.get(Negotiation, pid, with_for_update=True)
        if found is None:
            raise NotFound(f"no negotiation {pid}")
        return found

    async def _move(
        self, session: AsyncSession, neg: Negotiation, step: Move, **kwargs: Any
    ) -> None:
        await service.move(
            session, neg, step, sender=Role(neg.role), audit=self.node.audit, actor=self.did,
            **kwargs,
        )  # fmt: skip

    def _to_them(
        self, session: AsyncSession, neg: Negotiation, path: str, body: dict[str, Any],
        then: list[str],
    ) -> None:  # fmt: skip
        self.send(session, neg.id, f"{neg.counterparty_address}/negotiations/{path}", body, then)

    # -- provider -----------------------------------------------------------------------------
    async def _decide(self, pid: str, then: list[str]) -> bool:
        """Agree if the offer's policy permits this consumer now; terminate with the reasons
        otherwise. Checking and agreeing are one unit of work: nothing can change between."""
        async with self.node.db.transaction() as session:
            neg = await self._load(session, pid)
            if neg.state not in (State.REQUESTED, State.ACCEPTED):
                return False  # a retried job, or it ended meanwhile
            offer = await catalogue.find_offer(session, offer_id=neg.offer_id)
            dataset = await catalogue.find_dataset(session, dataset_id=neg.dataset_id)
            if offer is None or dataset is None or dataset.status != "published":
                reasons = ["the dataset or its offer is gone"]
            else:
                action, facts = policy.agreement_request(policy=offer.policy)
                decision = policy.evaluate(
                    policy=offer.policy,
                    request=AccessRequest(
                        action=action,
                        compute=facts,
                        recipient=neg.counterparty,
                        recipient_country=neg.counterparty_country or None,
                        purpose=neg.purpose or None,
                        now=utcnow(),
                    ),
                )
                if decision.permitted:
                    await self._agree_on(session, neg, offer.policy, then)
                    return True
                reasons = decision.reasons
        return await self._terminate(pid, then, reasons)

    async def _agree(self, pid: str, then: list[str]) -> bool:
        async with self.node.db.transaction() as session:
            neg = await self._load(session, pid)
            if neg.state not in (State.REQUESTED, State.ACCEPTED):
                return False  # a retried job, or it ended meanwhile
            offer = await catalogue.find_offer(session, offer_id=neg.offer_id)
            await self._agree_on(
                session, neg, offer.policy if offer is not None else neg.offer, then
            )
        return True

    async def _agree_on(
        self, session: AsyncSession, neg: Negotiation, offer: dict[str, Any], then: list[str]
    ) -> None:
        """Agree to ``offer`` and send the agreement, in the caller's unit of work."""
        agreement = policy.agreement_from_offer(
            offer=offer,
            agreement_id=service.new_pid(),
            target=neg.dataset_id,
            assigner=self.did,
            assignee=neg.counterparty,
            timestamp=utcnow(),
        )
        await self._move(session, neg, Move.AGREE, payload=agreement)
        neg.agreement_id = agreement["@id"]
        session.add(
            Agreement(
                id=agreement["@id"], negotiation_id=neg.id, role=Role.PROVIDER.value,
                dataset_id=neg.dataset_id, provider=self.did, consumer=neg.counterparty,
                provider_address=self.dsp_base, policy=agreement, purpose=neg.purpose,
                signed_at=utcnow(), access_count=0,
            )
        )  # fmt: skip
        body = message("ContractAgreementMessage", providerPid=neg.provider_pid,
                       consumerPid=neg.consumer_pid, agreement=agreement)  # fmt: skip
        self._to_them(session, neg, f"{neg.consumer_pid}/agreement", body, then)

    async def _offer(self, pid: str, then: list[str]) -> bool:
        """Offer the published offer (with its target) back: REQUESTED → OFFERED."""
        async with self.node.db.transaction() as session:
            neg = await self._load(session, pid)
            if neg.state != State.REQUESTED:
                return False
            stored = await catalogue.find_offer(session, offer_id=neg.offer_id)
            offer = {**(stored.policy if stored else neg.offer), "target": neg.dataset_id}
            await self._move(session, neg, Move.OFFER, payload=offer)
            neg.offer = offer
            body = message("ContractOfferMessage", providerPid=neg.provider_pid,
                           consumerPid=neg.consumer_pid, offer=offer)  # fmt: skip
            self._to_them(session, neg, f"{neg.consumer_pid}/offers", body, then)
        return True

    async def _finalize(self, pid: str, then: list[str]) -> bool:
        async with self.node.db.transaction() as session:
            neg = await self._load(session, pid)
            if neg.state != State.VERIFIED:
                return False
            await self._move(session, neg, Move.FINALIZE)
            self._to_them(
                session, neg, f"{neg.consumer_pid}/events", self._event(neg, "FINALIZED"), then
            )
        return True

    # -- either side --------------------------------------------------------------------------
    async def _terminate(self, pid: str, then: list[str], reasons: list[str] | None = None) -> bool:
        reasons = reasons or [f"terminated by the {self.kind} script"]
        async with self.node.db.transaction() as session:
            neg = await self._load(session, pid)
            if service.is_final(neg):
                return False
            await self._move(session, neg, Move.TERMINATE, reason=reasons)
            theirs = neg.consumer_pid if neg.role == Role.PROVIDER else neg.provider_pid
            if not theirs:
                return False  # they never learned of it
            body = message(TERMINATION, providerPid=neg.provider_pid, consumerPid=neg.consumer_pid,
                           code="terminated", reason=reasons)  # fmt: skip
            self._to_them(session, neg, f"{theirs}/termination", body, then)
        return True

    async def end_locally(self, pid: str, reasons: list[str]) -> None:
        async with self.node.db.transaction() as session:
            neg = await self._load(session, pid)
            if not service.is_final(neg):
                await self._move(session, neg, Move.TERMINATE, reason=reasons)

    def _event(self, neg: Negotiation, event: str) -> dict[str, Any]:
        return message("ContractNegotiationEventMessage", providerPid=neg.provider_pid,
                       consumerPid=neg.consumer_pid, eventType=event)  # fmt: skip

    # -- consumer -----------------------------------------------------------------------------
    async def _verify(self, pid: str, then: list[str]) -> bool:
        """Verify the provider's agreement against what we asked for; terminate if it differs."""
        async with self.node.db.transaction() as session:
            neg = await self._load(session, pid)
            agreement = await agreements.find_agreement(
                session, agreement_id=neg.agreement_id or ""
            )
            if neg.state != State.AGREED or agreement is None:
                return False
            problems = self._agreement_problems(neg, agreement)
            if not problems:
                await self._move(session, neg, Move.VERIFY)
                body = message(
                    "ContractAgreementVerificationMessage",
                    providerPid=neg.provider_pid,
                    consumerPid=neg.consumer_pid,
                )
                path = f"{neg.provider_pid}/agreement/verification"
                self._to_them(session, neg, path, body, then)
                return True
        return await self._terminate(pid, then, problems)

    def _agreement_problems(self, neg: Negotiation, agreement: Agreement) -> list[str]:
        terms = agreement.policy
        problems = []
        if not policy.same_terms(terms, neg.offer):
            problems.append("the agreement's terms differ from the offer")
        if neg.dataset_id and terms.get("target") != neg.dataset_id:
            problems.append(f"the agreement is for {terms.get('target')!r}, not {neg.dataset_id}")
        if terms.get("assignee") not in (None, self.did) or agreement.consumer not in (
            "",
            self.did,
        ):
            problems.append("the agreement names another assignee")
        return problems

    async def _review(self, pid: str, then: list[str]) -> bool:
        """Accept a counter-offer on the terms we asked for; any other offer waits for a
        person."""
        async with self.node.db.session() as session:
            neg = await self._load(session, pid)
        if neg.requested is None or not policy.same_terms(neg.requested, neg.offer):
            return False
        return await self._accept(pid, then)

    async def _accept(self, pid: str, then: list[str]) -> bool:
        async with self.node.db.transaction() as session:
            neg = await self._load(session, pid)
            if neg.state != State.OFFERED:
                return False
            await self._move(session, neg, Move.ACCEPT)
            self._to_them(
                session, neg, f"{neg.provider_pid}/events", self._event(neg, "ACCEPTED"), then
            )
        return True

    async def _counter(self, pid: str, then: list[str]) -> bool:
        """Ask again for the offer on the table (a counter-request): OFFERED → REQUESTED."""
        async with self.node.db.transaction() as session:
            neg = await self._load(session, pid)
            if neg.state != State.OFFERED:
                return False
            await self._move(session, neg, Move.REQUEST, payload=neg.offer)
            body = message("ContractRequestMessage", providerPid=neg.provider_pid,
                           consumerPid=neg.consumer_pid, offer=neg.offer)  # fmt: skip
            self._to_them(session, neg, f"{neg.provider_pid}/request", body, then)
        return True

    # -- starting, for people -------------------------------------------------------------------
    async def negotiate(
        self, *, provider_url: str, dataset_id: str, offer_id: str | None, purpose: str,
        resolver: DidResolver,
    ) -> Negotiation:  # fmt: skip
        """Read the dataset from the provider's catalog (signed both ways), pick the offer
        (default: its first) and ask for it (see :meth:`start`).

        A dataset read less than ``dsp_catalog_cache_seconds`` ago is not read again, as
        connectors keep a federated catalog: the provider checks the offer at the request
        anyway. If it refuses one taken from the cache, the catalog is read afresh and the
        request made once more (the refused negotiation stays, terminated, with its reason)."""
        provider_url = provider_url.rstrip("/")
        key = (provider_url, dataset_id)
        cached = self._datasets.get(key)
        fresh = cached is None or time.monotonic() - cached[0] > self._dataset_ttl
        if not fresh and cached is not None:
            try:
                return await self._ask_for(provider_url, cached[1], dataset_id, offer_id, purpose)
            except Problem as exc:
                if exc.status not in (404, 409):  # not found or refused: read afresh
                    raise
        self._datasets.pop(key, None)
        try:
            dataset = await fetch_dataset(self.http(), provider_url, dataset_id, resolver=resolver)
        except PeerRefused as exc:
            raise Problem(f"the provider's catalog refused: {exc.detail}", status=409) from exc
        if self._dataset_ttl > 0:
            if len(self._datasets) >= _DATASETS_KEPT:
                self._datasets.clear()  # a crude bound; the cache only saves round trips
            self._datasets[key] = (time.monotonic(), dataset)
        return await self._ask_for(provider_url, dataset, dataset_id, offer_id, purpose)

    async def _ask_for(
        self, provider_url: str, dataset: dict[str, Any], dataset_id: str, offer_id: str | None,
        purpose: str,
    ) -> Negotiation:  # fmt: skip
        offers = [o for o in dataset.get("hasPolicy", []) if isinstance(o, dict)]
        chosen = [o for o in offers if offer_id in (None, o.get("@id"))]
        if not chosen:
            raise NotFound(f"the dataset has no offer {offer_id}")
        return await self.start(
            provider=did_for_url(provider_url), provider_address=provider_url + BASE_PATH,
            offer=chosen[0], dataset_id=dataset_id, purpose=purpose,
        )  # fmt: skip

    async def start(
        self, *, provider: str, provider_address: str, offer: dict[str, Any], dataset_id: str,
        purpose: str = "",
    ) -> Negotiation:  # fmt: skip
        """Ask ``provider`` (its DSP base ``provider_address``) for ``offer`` on ``dataset_id``:
        the request is sent now, so the caller learns at once if the provider refuses."""
        now = utcnow()
        pid = service.new_pid()
        requested = {**offer, "target": dataset_id}
        async with self.node.db.transaction() as session:
            neg = Negotiation(
                id=pid, role=Role.CONSUMER.value, provider_pid="", consumer_pid=pid,
                counterparty=provider, counterparty_country="",
                counterparty_address=provider_address.rstrip("/"), dataset_id=dataset_id,
                offer_id=str(offer.get("@id", "")), offer=requested, requested=requested,
                purpose=purpose, agreement_id=None, state=State.REQUESTED.value, reason=[],
                created_at=now, updated_at=now,
            )  # fmt: skip
            session.add(neg)
            await session.flush()
            await self.node.audit.record(
                session, actor=self.did, action="contract.negotiation.requested",
                object_type="negotiation", object_id=pid, payload=requested,
                details={"role": "consumer", "counterparty": provider, "dataset": dataset_id},
            )  # fmt: skip
        body = message("ContractRequestMessage", consumerPid=pid, offer=requested,
                       callbackAddress=self.dsp_base,
                       **({service.PURPOSE: purpose} if purpose else {}))  # fmt: skip
        url = f"{neg.counterparty_address}/negotiations/request"
        provider_pid = await self.ask(pid, url, body, "request")
        async with self.node.db.transaction() as session:
            neg = await self._load(session, pid)
            neg.provider_pid = neg.provider_pid or provider_pid
            raise_event(session, kind=self.kind, process=neg, event="requested")
        self.wake()
        return neg
