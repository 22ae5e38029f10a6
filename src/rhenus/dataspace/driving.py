"""What the negotiation and transfer drivers share: events become actions, actions run as
background jobs, and the messages they decide are delivered by send jobs.

A received message (or our own request's acknowledgement) raises an *event* on a process
("requested", "accepted", "started", …). The driver turns it into a list of *actions* — by
default the node's own behaviour (decide on the policy, verify an agreement, …); in conformance
mode, for the TCK's fixture ids, the script that case expects (:mod:`.conformance.scripts`).
Each action runs in one transaction with the job that sends its message (transactional
outbox); the next action of a list runs only once that message was delivered, because a
counterparty (the TCK notably) registers its handler for our second message only after our
first arrived.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from rhenus.core import jobs
from rhenus.core.errors import Problem
from rhenus.core.node import Node
from rhenus.dataspace.catalogue.dsp import BASE_PATH
from rhenus.dataspace.machine import Process
from rhenus.dataspace.outbox import deliver, reason_of
from rhenus.trust.client import federation_client
from rhenus.trust.did import DidResolver, did_for_url

Action = Callable[[str, list[str]], Awaitable[bool]]  # (process id, actions after) -> sent?
# In conformance mode follow-ups wait this long after the answer that caused them: the TCK
# updates its own state only once it has read our answer (see docs/conformance.md).
CONFORMANCE_PACE = 0.5


class ProcessDriver(ABC):
    """Runs the events, actions and sends of one kind of DSP process (``kind`` prefix)."""

    kind: str  # "contracts" | "transfers"
    terminations: str  # @type of this protocol's termination message

    def __init__(self, node: Node, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.node, self.transport = node, transport
        self.did = did_for_url(node.settings.public_url)
        self.dsp_base = node.settings.public_url + BASE_PATH
        self.conformance = bool(node.settings.dsp_conformance_token.get_secret_value())
        self.pace = CONFORMANCE_PACE if self.conformance else 0.0
        self.runner: jobs.JobRunner | None = None  # set by the app that runs the jobs
        self.resolver: DidResolver | None = None  # the app's, where a driver verifies peers
        self._http: httpx.AsyncClient | None = None

    # -- what a driver provides ----------------------------------------------------------------
    @abstractmethod
    def actions(self) -> Mapping[str, Action]:
        """Action name -> coroutine running it."""

    @abstractmethod
    async def plan(self, pid: str, event: str, role: str | None = None) -> list[str]:
        """The actions an event calls for on process ``pid`` (whose ``role`` the event may
        carry: then no read is needed, unless a conformance script may apply)."""

    @abstractmethod
    async def end_locally(self, pid: str, reasons: list[str]) -> None:
        """Terminate on our side only (the counterparty refused or cannot be reached)."""

    # -- the machinery -------------------------------------------------------------------------
    def handlers(self) -> dict[str, jobs.Handler]:
        return {
            f"{self.kind}.act": jobs.Handler(self._act),
            f"{self.kind}.send": jobs.Handler(self._send, give_up=self._undeliverable),
        }

    def wake(self) -> None:
        """New jobs were committed: run them now rather than at the next poll."""
        if self.runner is not None:
            self.runner.wake()

    def http(self) -> httpx.AsyncClient:
        """The driver's signing client, kept for its life: connections to peers are reused
        (a TLS handshake per message would cost more than the message)."""
        if self._http is None or self._http.is_closed:
            settings = self.node.settings
            if self.conformance:  # the checker's callbacks are plain http on loopback
                settings = settings.model_copy(update={"federation_insecure_http": True})
            self._http = federation_client(settings, self.node.keyring, transport=self.transport)
        return self._http

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    def follow(self, session: AsyncSession, pid: str, actions: list[str]) -> None:
        """Run ``actions`` after the commit. The job deciding so (if any) ends in the same
        transaction, like every job that hands its work on (:func:`jobs.finish`)."""
        jobs.finish(session)
        if actions:
            jobs.enqueue(
                session,
                kind=f"{self.kind}.act",
                payload={"process": pid, "actions": actions},
                delay=self.pace,
            )

    async def ask(self, pid: str, url: str, body: dict[str, Any], what: str) -> str:
        """Send our initial request for process ``pid`` now (so the person who asked learns a
        refusal at once) and return the provider's pid; on failure end ``pid`` here with the
        reason and raise a problem naming it. DSP answers 201; the TCK answers 200 — any
        success carrying the process will do."""
        try:
            response = await self.http().post(url, json=body)
            answer = response.json() if response.content else {}
        except (httpx.HTTPError, ValueError) as exc:
            await self.end_locally(pid, [f"the provider could not be reached: {exc}"])
            raise Problem(f"the provider could not be reached: {exc}", status=502) from exc
        if not response.is_success or not isinstance(answer, dict):
            reason = reason_of(answer) or f"the provider answered {response.status_code}"
            await self.end_locally(pid, [reason])
            raise Problem(f"the provider refused the {what}: {reason}", status=409)
        return str(answer.get("providerPid", ""))

    async def _act(self, payload: dict[str, Any]) -> None:
        """Run the first of the job's actions — after planning them, for an event."""
        actions = payload.get("actions")
        if actions is None:
            actions = await self.plan(payload["process"], payload["event"], payload.get("role"))
            if actions and self.pace:
                async with self.node.db.transaction() as session:
                    self.follow(session, payload["process"], actions)
                return
        if not actions:
            return
        first, *rest = actions
        sent = await self.actions()[first](payload["process"], rest)
        if not sent and rest:
            async with self.node.db.transaction() as session:
                self.follow(session, payload["process"], rest)

    def send(
        self, session: AsyncSession, pid: str, url: str, body: dict[str, Any], then: list[str]
    ) -> None:
        """Deliver ``body`` after the commit; then run the actions ``then``."""
        jobs.finish(session)
        jobs.enqueue(
            session,
            kind=f"{self.kind}.send",
            payload={"process": pid, "url": url, "body": body, "then": then},
        )

    async def _send(self, payload: dict[str, Any]) -> None:
        refused = await deliver(self.http(), payload["url"], payload["body"])
        kind = payload["body"].get("@type")
        if refused is not None:
            if kind != self.terminations:
                await self.end_locally(payload["process"], [f"{kind}: {refused}"])
            return
        if payload.get("then"):
            async with self.node.db.transaction() as session:
                self.follow(session, payload["process"], payload["then"])

    async def _undeliverable(self, payload: dict[str, Any], error: str) -> None:
        if payload["body"].get("@type") != self.terminations:
            await self.end_locally(payload["process"], [f"undeliverable: {error}"])


def raise_event(session: AsyncSession, *, kind: str, process: Process, event: str) -> None:
    """Record that ``event`` happened to ``process``: the ``kind`` driver plans what it calls
    for and starts on it once the transaction commits. The role goes with the event, so that
    planning needs no read of the process."""
    payload = {"process": process.id, "role": process.role, "event": event, "actions": None}
    jobs.enqueue(session, kind=f"{kind}.act", payload=payload)
