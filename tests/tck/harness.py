"""The Eclipse DSP TCK, re-created in Python against a live node (``/work/notes/dsp-tck.md``).

:class:`Tck` is the TCK's HTTP client (§2.1) plus its callback server (§2.2, in
:mod:`tests.tck.callbacks`); the four pipelines play one side of one negotiation or transfer,
with the TCK's own pids (bare UUIDs) and its own strict state machine (§3.3):

- :class:`ConsumerNegotiation` — the TCK as consumer, the node as provider (CN:…, §4);
- :class:`ProviderNegotiation` — the TCK as provider, the node as consumer (CN_C:…, §5);
- :class:`ConsumerTransfer` — the TCK as consumer, the node as provider (TP:…, §6);
- :class:`ProviderTransfer` — the TCK as provider, the node as consumer (TP_C:…, §7).

Their methods are the TCK's pipeline steps: ``expect_…`` registers a handler (before the step
that provokes the message, as the TCK does; after the previous wait for a *chained* message, as
the TCK does too, so the node must retry on 404), sends are the TCK's messages, ``check`` is
CHK. A case fails if the node answers what the TCK would not take, sends what the TCK would
refuse, or sends anything the case does not expect (checked by :meth:`Tck.finish` after a short
grace period).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from threading import Lock
from typing import Any, ClassVar

import httpx

from tests.tck.callbacks import WAIT, Callbacks, Expectation, Received, Refused, Reply
from tests.tck.wire import (
    FORMAT,
    TCK_PARTICIPANT,
    TOKEN,
    problems,
    state_body,
    tck_message,
    uid,
    use_policy,
)

Take = Callable[[dict[str, Any]], None]  # checks a message further, learns from it, or refuses

PAUSE = 0.1  # the TCK's pause before VER, TRM and the negotiation state checks
GRACE = 1.5  # how long a case listens for unexpected messages after its last message
CN_CHECK_FOR = 3.0  # the TCK's negotiation CHK is one GET; we allow the state this long

# The protocol's error type for each process type.
ERRORS = {"ContractNegotiation": "ContractNegotiationError", "TransferProcess": "TransferError"}

NEGOTIATION_MOVES = {
    "INITIAL": {"REQUESTED"},
    "REQUESTED": {"OFFERED", "AGREED", "TERMINATED"},
    "OFFERED": {"REQUESTED", "ACCEPTED", "TERMINATED"},
    "ACCEPTED": {"AGREED", "TERMINATED"},
    "AGREED": {"VERIFIED", "TERMINATED"},
    "VERIFIED": {"FINALIZED", "TERMINATED"},
}
TRANSFER_MOVES = {
    "INITIAL": {"REQUESTED"},
    "REQUESTED": {"STARTED", "TERMINATED"},
    "STARTED": {"COMPLETED", "SUSPENDED", "TERMINATED"},
    "SUSPENDED": {"STARTED", "TERMINATED"},
}


@dataclass(frozen=True)
class NodeUnderTest:
    """The TCK's configuration of the node (§1)."""

    base_url: str  # dataspacetck.dsp.connector.http.base.url
    agent_id: str  # dataspacetck.dsp.connector.agent.id: the node's did:web

    @property
    def dsp(self) -> str:  # dataspacetck.dsp.connector.http.url
        return f"{self.base_url}/dsp"

    @property
    def negotiation_trigger(self) -> str:
        return f"{self.base_url}/tck/negotiations/requests"

    @property
    def transfer_trigger(self) -> str:
        return f"{self.base_url}/tck/transfers/requests"


class Tck:
    """One case of the TCK: its HTTP client towards the node and its callback handlers."""

    def __init__(self, node: NodeUnderTest, callbacks: Callbacks, http: httpx.Client) -> None:
        self.node, self.callbacks, self.http = node, callbacks, http

    @property
    def callback_address(self) -> str:  # dataspacetck.callback.address (no path)
        return self.callbacks.url

    # -- the pipelines -----------------------------------------------------------------------
    def negotiation_as_consumer(self, dataset_id: str) -> ConsumerNegotiation:
        """CN:…: the TCK asks the node for ``CD123:<dataset>:456``."""
        return ConsumerNegotiation(self, dataset_id)

    def negotiation_as_provider(self, dataset_id: str) -> ProviderNegotiation:
        """CN_C:…: the TCK has the node ask it for ``offer<dataset>``."""
        return ProviderNegotiation(self, dataset_id)

    def transfer_as_consumer(self, agreement_id: str) -> ConsumerTransfer:
        """TP:…: the TCK asks the node for a transfer under one of its agreements."""
        return ConsumerTransfer(self, agreement_id)

    def transfer_as_provider(self, agreement_id: str) -> ProviderTransfer:
        """TP_C:…: the TCK has the node ask it for a transfer."""
        return ProviderTransfer(self, agreement_id)

    # -- HTTP, as HttpFunctions does it (§2.1) -----------------------------------------------
    def post(self, url: str, body: dict[str, Any], *, answer: str, error: bool = False) -> Any:
        """POST a message; the node's answer (``None`` if empty), checked.

        ``answer`` is the @type a success may carry (``ContractNegotiation``…), or ``""`` for a
        non-DSP endpoint. Without ``error``: 2xx; a 4xx other than 404 is retried twice (200,
        then 400 ms); 404 and 5xx fail. With ``error``: 4xx but not 404, carrying the protocol's
        error (``ContractNegotiationError`` / ``TransferError``).
        """
        delays = [] if error else [0.2, 0.4]
        while True:
            response = self.http.post(url, json=body)
            self.callbacks.exchanged()
            status = response.status_code
            if error or not (400 <= status < 500 and status != 404 and delays):
                break
            time.sleep(delays.pop(0))
        sent = f"POST {url} {body.get('@type', '')}"
        if error:
            wrong = not 400 <= status < 500 or status == 404
            assert not wrong, f"{sent}: expected 4xx but 404, got {status} {response.text[:500]}"
            return self._checked(response, sent, ERRORS[answer])
        assert 200 <= status < 300, f"{sent}: expected 2xx, got {status} {response.text[:500]}"
        if not answer:
            return None
        return self._checked(response, sent, answer, empty_ok=True)

    def get(self, url: str, kind: str) -> dict[str, Any]:
        """GET a DSP resource (``getJson``): 2xx and a valid ``kind``."""
        response = self.http.get(url)
        sent = f"GET {url}"
        assert 200 <= response.status_code < 300, (
            f"{sent}: expected 2xx, got {response.status_code} {response.text[:500]}"
        )
        body: dict[str, Any] = self._checked(response, sent, kind)
        return body

    def _checked(
        self, response: httpx.Response, sent: str, kind: str, *, empty_ok: bool = False
    ) -> Any:
        if not response.content and empty_ok:
            return None
        try:
            body = response.json()
        except ValueError:
            raise AssertionError(f"{sent}: the answer is not JSON: {response.text[:300]}") from None
        found = problems(body)
        assert not found, f"{sent}: the TCK refuses the answer {body}: {found}"
        assert body["@type"] == kind, f"{sent}: expected a {kind}, got {body['@type']}"
        return body

    # -- end of a case -----------------------------------------------------------------------
    def finish(self) -> None:
        """After the last step: listen until no DSP message has gone either way for ``GRACE``
        seconds, then fail on anything the TCK would have refused or not expected."""
        while (last := self.callbacks.quiet_since()) is not None:
            left = last + GRACE - time.monotonic()
            if left <= 0:
                break
            time.sleep(left)
        found = self.callbacks.loose_ends()
        assert not found, "\n".join(found)


class _Pipeline:
    """One negotiation or transfer as the TCK holds it: pids, its state, the node's base."""

    moves: ClassVar[dict[str, set[str]]]
    process: ClassVar[str]  # "ContractNegotiation" | "TransferProcess"

    def __init__(self, tck: Tck) -> None:
        self.tck = tck
        self.state = "INITIAL"
        self.provider_pid: str | None = None
        self.consumer_pid: str | None = None
        self._lock = Lock()

    def _expect(
        self,
        description: str,
        path: str,
        kind: str,
        to: str,
        *,
        reply: str = "state",
        take: Take | None = None,
    ) -> Expectation:
        """Register a handler for ``kind`` on ``path``: the TCK moves to ``to`` and answers with
        its state (``reply="state"``) or an empty 200 (``"empty"``); ``take`` may check the
        message further and learn from it (raising :class:`Refused`)."""

        def handle(received: Received) -> Reply:
            with self._lock:
                if received.problems:
                    self._refuse("; ".join(received.problems))
                body = received.body
                if body.get("@type") != kind:
                    self._refuse(f"expected a {kind}, got {body.get('@type')!r}")
                for key, known in (
                    ("providerPid", self.provider_pid),
                    ("consumerPid", self.consumer_pid),
                ):
                    if known is not None and body.get(key) != known:
                        self._refuse(f"{key} {body.get(key)!r} is not {known!r}")
                if take is not None:
                    take(body)
                if to not in self.moves.get(self.state, set()):
                    self._refuse(f"the TCK's {self.process} is {self.state}, not ready for {to}")
                self.state = to
                if reply == "empty":
                    return 200, None
                return 200, self._state_body()

        return self.tck.callbacks.register(Expectation(description, path, handle))

    def _state_body(self) -> dict[str, Any]:
        assert self.provider_pid
        assert self.consumer_pid
        return state_body(
            self.process,
            provider_pid=self.provider_pid,
            consumer_pid=self.consumer_pid,
            state=self.state,
        )

    def _refuse(self, reason: str) -> None:
        raise Refused(reason, 500)

    def _pids(self) -> dict[str, str]:
        assert self.provider_pid, "no providerPid yet"
        assert self.consumer_pid, "no consumerPid yet"
        return {"providerPid": self.provider_pid, "consumerPid": self.consumer_pid}

    def _sent(self, to: str, *, error: bool) -> None:
        """The node took the TCK's message: the TCK's own state follows (not on errors)."""
        if not error:
            with self._lock:
                self.state = to


# -- negotiations --------------------------------------------------------------------------------
class _Negotiation(_Pipeline):
    moves = NEGOTIATION_MOVES
    process = "ContractNegotiation"

    def _check_state(self, url: str, state: str) -> None:
        """CHK: 100 ms after the previous step, GET the negotiation. The TCK reads once; a state
        that is late by less than ``CN_CHECK_FOR`` seconds is allowed here."""
        time.sleep(PAUSE)
        deadline = time.monotonic() + CN_CHECK_FOR
        while True:
            found = self.tck.get(url, "ContractNegotiation")
            if found["state"] == state or time.monotonic() > deadline:
                break
            time.sleep(PAUSE)
        assert found["state"] == state, f"GET {url}: state {found['state']}, expected {state}"
        assert (found["providerPid"], found["consumerPid"]) == (
            self.provider_pid,
            self.consumer_pid,
        ), f"GET {url}: pids {found}"


class ConsumerNegotiation(_Negotiation):
    """The TCK as consumer (``ProviderNegotiationPipelineImpl``, §4): it sends to the node's DSP
    base, the node calls back on ``/negotiations/{consumerPid}/…``."""

    def __init__(self, tck: Tck, dataset_id: str) -> None:
        super().__init__(tck)
        self.dataset_id = dataset_id
        self.offer_id = f"CD123:{dataset_id}:456"
        self.consumer_pid = uid()

    @property
    def _node(self) -> str:
        return f"{self.tck.node.dsp}/negotiations/{self.provider_pid}"

    def _callback(self, suffix: str) -> str:
        return f"/negotiations/{self.consumer_pid}/{suffix}"

    # The node's messages (OFR, AGR, FIN, PTRM).
    def expect_offer(self) -> Expectation:
        def take(body: dict[str, Any]) -> None:
            if body["offer"].get("target") != self.dataset_id:
                raise Refused(f"the offer's target is not {self.dataset_id}", 500)

        return self._expect(
            "ContractOfferMessage", self._callback("offers"), "ContractOfferMessage", "OFFERED",
            take=take,
        )  # fmt: skip

    def expect_agreement(self) -> Expectation:
        def take(body: dict[str, Any]) -> None:
            agreement = body["agreement"]
            if agreement.get("target") != self.dataset_id:
                raise Refused(f"the agreement's target is not {self.dataset_id}", 500)
            if agreement.get("assignee") != TCK_PARTICIPANT:
                raise Refused(f"the agreement's assignee is not {TCK_PARTICIPANT}", 500)
            if agreement.get("assigner") != self.tck.node.agent_id:
                raise Refused(f"the agreement's assigner is not {self.tck.node.agent_id}", 500)

        return self._expect(
            "ContractAgreementMessage", self._callback("agreement"), "ContractAgreementMessage",
            "AGREED", reply="empty", take=take,
        )  # fmt: skip

    def expect_finalized(self) -> Expectation:
        return self._expect(
            "FINALIZED event", self._callback("events"), "ContractNegotiationEventMessage",
            "FINALIZED", reply="empty", take=_event("FINALIZED"),
        )  # fmt: skip

    def expect_termination(self) -> Expectation:
        return self._expect(
            "ContractNegotiationTerminationMessage", self._callback("termination"),
            "ContractNegotiationTerminationMessage", "TERMINATED",
        )  # fmt: skip

    # The TCK's messages (REQ, CTR, ACC, VER, TRM) and CHK.
    def request(self) -> None:
        """REQ: the initial ContractRequestMessage; the answer gives the node's providerPid."""
        offer = use_policy("Offer", self.offer_id, target=self.dataset_id)
        body = tck_message(
            "ContractRequestMessage",
            consumerPid=self.consumer_pid,
            offer=offer,
            callbackAddress=self.tck.callback_address,
        )
        url = f"{self.tck.node.dsp}/negotiations/request"
        answer = self.tck.post(url, body, answer="ContractNegotiation")
        assert answer is not None, f"POST {url}: no ContractNegotiation in the answer"
        assert answer["consumerPid"] == self.consumer_pid, answer
        assert answer["state"] == "REQUESTED", answer
        with self._lock:
            self.provider_pid = answer["providerPid"]
            self.state = "REQUESTED"

    def counter_request(self, *, error: bool = False) -> None:
        """CTR: a counter-request on the offer, as CN:01-02 and CN:03-04 send it."""
        offer = use_policy("Offer", self.offer_id, target=self.dataset_id, assignee=TCK_PARTICIPANT)
        body = tck_message("ContractRequestMessage", **self._pids(), offer=offer)
        self.tck.post(f"{self._node}/request", body, answer="ContractNegotiation", error=error)
        self._sent("REQUESTED", error=error)

    def accept(self) -> None:
        """ACC: the ACCEPTED event."""
        body = tck_message("ContractNegotiationEventMessage", **self._pids(), eventType="ACCEPTED")
        self.tck.post(f"{self._node}/events", body, answer="ContractNegotiation")
        self._sent("ACCEPTED", error=False)

    def verify(self, *, error: bool = False) -> None:
        """VER: 100 ms pause, then the agreement verification."""
        time.sleep(PAUSE)
        body = tck_message("ContractAgreementVerificationMessage", **self._pids())
        url = f"{self._node}/agreement/verification"
        self.tck.post(url, body, answer="ContractNegotiation", error=error)
        self._sent("VERIFIED", error=error)

    def terminate(self, *, error: bool = False) -> None:
        """TRM: 100 ms pause, then the consumer's termination (code "1")."""
        time.sleep(PAUSE)
        body = tck_message("ContractNegotiationTerminationMessage", **self._pids(), code="1")
        self.tck.post(f"{self._node}/termination", body, answer="ContractNegotiation", error=error)
        self._sent("TERMINATED", error=error)

    def check(self, state: str) -> None:
        """CHK(state) at the provider: ``GET {url}/negotiations/{providerPid}``."""
        self._check_state(self._node, state)


class ProviderNegotiation(_Negotiation):
    """The TCK as provider (``ConsumerNegotiationPipelineImpl``, §5): the trigger makes the node
    send its request; the TCK then calls the node's ``callbackAddress``."""

    def __init__(self, tck: Tck, dataset_id: str) -> None:
        super().__init__(tck)
        self.dataset_id = dataset_id
        self.offer_id = f"offer{dataset_id}"  # API/connector/IdGenerator
        self.callback: str | None = None

    @property
    def _node(self) -> str:
        assert self.callback, "no request from the node yet"
        return f"{self.callback}/negotiations/{self.consumer_pid}"

    def _callback(self, suffix: str) -> str:
        return f"/negotiations/{self.provider_pid}/{suffix}"

    def requested(self) -> None:
        """Trigger the node, which must send CREQ: the TCK registers its handler, calls the
        trigger endpoint, and waits for the request."""

        def take(body: dict[str, Any]) -> None:
            offer = body["offer"]
            if offer.get("@id") != self.offer_id or offer.get("target") != self.dataset_id:
                raise Refused(f"the offer is not {self.offer_id} for {self.dataset_id}", 500)
            self.consumer_pid = body["consumerPid"]
            self.callback = str(body["callbackAddress"]).rstrip("/")
            self.provider_pid = uid()

        request = self._expect(
            "ContractRequestMessage", "/negotiations/request", "ContractRequestMessage",
            "REQUESTED", take=take,
        )  # fmt: skip
        trigger = {
            "providerId": TCK_PARTICIPANT,
            "offerId": self.offer_id,
            "datasetId": self.dataset_id,
            "connectorAddress": self.tck.callback_address,
        }
        self.tck.post(self.tck.node.negotiation_trigger, trigger, answer="")
        request.wait()

    # The node's messages (CACC, CCTR, CVER, CTRM).
    def expect_accepted(self) -> Expectation:
        return self._expect(
            "ACCEPTED event", self._callback("events"), "ContractNegotiationEventMessage",
            "ACCEPTED", reply="empty", take=_event("ACCEPTED"),
        )  # fmt: skip

    def expect_counter_request(self) -> Expectation:
        def take(body: dict[str, Any]) -> None:
            offer = body["offer"]
            if offer.get("@id") != self.offer_id or offer.get("target") != self.dataset_id:
                raise Refused(f"the offer is not {self.offer_id} for {self.dataset_id}", 500)

        return self._expect(
            "counter-request", self._callback("request"), "ContractRequestMessage", "REQUESTED",
            take=take,
        )  # fmt: skip

    def expect_verification(self) -> Expectation:
        return self._expect(
            "ContractAgreementVerificationMessage", self._callback("agreement/verification"),
            "ContractAgreementVerificationMessage", "VERIFIED", reply="empty",
        )  # fmt: skip

    def expect_termination(self) -> Expectation:
        return self._expect(
            "ContractNegotiationTerminationMessage", self._callback("termination"),
            "ContractNegotiationTerminationMessage", "TERMINATED",
        )  # fmt: skip

    # The TCK's messages (OFR, AGR, FIN, TRM) and CHK.
    def offer(self, *, error: bool = False) -> None:
        """OFR: the TCK's offer, assigned to the node."""
        offer = use_policy(
            "Offer", self.offer_id, target=self.dataset_id,
            assignee=self.tck.node.agent_id, assigner=TCK_PARTICIPANT,
        )  # fmt: skip
        body = tck_message("ContractOfferMessage", **self._pids(), offer=offer)
        self.tck.post(f"{self._node}/offers", body, answer="ContractNegotiation", error=error)
        self._sent("OFFERED", error=error)

    def agree(self, *, error: bool = False) -> None:
        """AGR: the TCK's agreement (with the extra callbackAddress the node must ignore)."""
        agreement = use_policy(
            "Agreement", uid(), target=self.dataset_id,
            timestamp=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            assignee=self.tck.node.agent_id, assigner=TCK_PARTICIPANT,
        )  # fmt: skip
        body = tck_message(
            "ContractAgreementMessage",
            **self._pids(),
            agreement=agreement,
            callbackAddress=self.tck.callback_address,
        )
        self.tck.post(f"{self._node}/agreement", body, answer="ContractNegotiation", error=error)
        self._sent("AGREED", error=error)

    def finalize(self, *, error: bool = False) -> None:
        """FIN: the FINALIZED event."""
        body = tck_message("ContractNegotiationEventMessage", **self._pids(), eventType="FINALIZED")
        self.tck.post(f"{self._node}/events", body, answer="ContractNegotiation", error=error)
        self._sent("FINALIZED", error=error)

    def terminate(self) -> None:
        """TRM: 100 ms pause, then the provider's termination (code "1")."""
        time.sleep(PAUSE)
        body = tck_message("ContractNegotiationTerminationMessage", **self._pids(), code="1")
        self.tck.post(f"{self._node}/termination", body, answer="ContractNegotiation")
        self._sent("TERMINATED", error=False)

    def check(self, state: str) -> None:
        """CHK(state) at the consumer: ``GET {callbackAddress}/negotiations/{consumerPid}``."""
        self._check_state(self._node, state)


def _event(event_type: str) -> Take:
    def take(body: dict[str, Any]) -> None:
        if body.get("eventType") != event_type:
            raise Refused(f"expected eventType {event_type}, got {body.get('eventType')!r}", 500)

    return take


# -- transfers -----------------------------------------------------------------------------------
# What each message moves the process to, and its @type.
_TRANSFER_MESSAGES = {
    "start": ("TransferStartMessage", "STARTED"),
    "completion": ("TransferCompletionMessage", "COMPLETED"),
    "suspension": ("TransferSuspensionMessage", "SUSPENDED"),
    "termination": ("TransferTerminationMessage", "TERMINATED"),
}


class _Transfer(_Pipeline):
    moves = TRANSFER_MOVES
    process = "TransferProcess"

    def __init__(self, tck: Tck, agreement_id: str) -> None:
        super().__init__(tck)
        self.agreement_id = agreement_id

    def _refuse(self, reason: str) -> None:
        """The TCK's transfer endpoints answer a refused message 409 + TransferError."""
        body = tck_message(
            "TransferError",
            providerPid=self.provider_pid or "",
            consumerPid=self.consumer_pid or "",
            code="409",
            reason=[reason],
        )
        raise Refused(reason, 409, body)

    @property
    def _node(self) -> str:
        raise NotImplementedError

    def _callback(self, suffix: str) -> str:
        raise NotImplementedError

    def expect(self, message: str) -> Expectation:
        """The node's ``start`` / ``completion`` / ``suspension`` / ``termination``."""
        kind, to = _TRANSFER_MESSAGES[message]
        return self._expect(kind, self._callback(message), kind, to)

    def _send(self, message: str, *, error: bool, **fields: Any) -> None:
        kind, to = _TRANSFER_MESSAGES[message]
        body = tck_message(kind, **self._pids(), **fields)
        self.tck.post(f"{self._node}/{message}", body, answer="TransferProcess", error=error)
        self._sent(to, error=error)

    def terminate(self, *, error: bool = False) -> None:
        self._send("termination", error=error, code="1")

    def suspend(self, *, error: bool = False) -> None:
        self._send("suspension", error=error, code="1")

    def complete(self, *, error: bool = False) -> None:
        self._send("completion", error=error)

    def check(self, state: str) -> None:
        """CHK(state): poll ``GET …/transfers/{pid}`` until the state matches (≤ 15 s)."""
        deadline = time.monotonic() + WAIT
        while True:
            found = self.tck.get(self._node, "TransferProcess")
            if found["state"] == state or time.monotonic() > deadline:
                break
            time.sleep(PAUSE)
        assert found["state"] == state, f"GET {self._node}: state {found['state']}, not {state}"
        assert (found["providerPid"], found["consumerPid"]) == (
            self.provider_pid,
            self.consumer_pid,
        ), f"GET {self._node}: pids {found}"


class ConsumerTransfer(_Transfer):
    """The TCK as consumer (``ProviderTransferProcessPipelineImpl``, §6)."""

    def __init__(self, tck: Tck, agreement_id: str) -> None:
        super().__init__(tck, agreement_id)
        self.consumer_pid = uid()

    @property
    def _node(self) -> str:
        return f"{self.tck.node.dsp}/transfers/{self.provider_pid}"

    def _callback(self, suffix: str) -> str:
        return f"/transfers/{self.consumer_pid}/{suffix}"

    def request(self) -> None:
        """TREQ: the TransferRequestMessage (pull, no dataAddress)."""
        body = tck_message(
            "TransferRequestMessage",
            consumerPid=self.consumer_pid,
            agreementId=self.agreement_id,
            format=FORMAT,
            callbackAddress=self.tck.callback_address,
        )
        url = f"{self.tck.node.dsp}/transfers/request"
        answer = self.tck.post(url, body, answer="TransferProcess")
        assert answer is not None, f"POST {url}: no TransferProcess in the answer"
        assert answer["consumerPid"] == self.consumer_pid, answer
        assert answer["state"] == "REQUESTED", answer
        with self._lock:
            self.provider_pid = answer["providerPid"]
            self.state = "REQUESTED"

    def start(self, *, error: bool = False) -> None:
        """TSTA: the consumer restarts a suspended transfer (no dataAddress)."""
        self._send("start", error=error)


class ProviderTransfer(_Transfer):
    """The TCK as provider (``ConsumerTransferProcessPipelineImpl``, §7)."""

    def __init__(self, tck: Tck, agreement_id: str) -> None:
        super().__init__(tck, agreement_id)
        self.callback: str | None = None

    @property
    def _node(self) -> str:
        assert self.callback, "no request from the node yet"
        return f"{self.callback}/transfers/{self.consumer_pid}"

    def _callback(self, suffix: str) -> str:
        return f"/transfers/{self.provider_pid}/{suffix}"

    def requested(self) -> None:
        """Trigger the node, which must send CTREQ for the agreement."""

        def take(body: dict[str, Any]) -> None:
            if body.get("agreementId") != self.agreement_id or body.get("format") != FORMAT:
                self._refuse(f"expected agreement {self.agreement_id} in format {FORMAT}")
            self.consumer_pid = body["consumerPid"]
            self.callback = str(body["callbackAddress"]).rstrip("/")
            self.provider_pid = uid()

        request = self._expect(
            "TransferRequestMessage", "/transfers/request", "TransferRequestMessage",
            "REQUESTED", take=take,
        )  # fmt: skip
        trigger = {
            "providerId": TCK_PARTICIPANT,
            "agreementId": self.agreement_id,
            "format": FORMAT,
            "connectorAddress": self.tck.callback_address,
        }
        self.tck.post(self.tck.node.transfer_trigger, trigger, answer="")
        request.wait()

    def start(self, *, data_address: bool = True, error: bool = False) -> None:
        """The TCK's start: an HTTP data address at example.com, no endpoint properties (none
        at all in TP_C:03-04's invalid start)."""
        fields: dict[str, Any] = {}
        if data_address:
            fields["dataAddress"] = {
                "@type": "DataAddress",
                "endpoint": "http://example.com",
                "endpointType": "https://w3id.org/idsa/v4.1/HTTP",
            }
        self._send("start", error=error, **fields)


__all__ = ["TOKEN", "NodeUnderTest", "Tck"]
