"""TCK transfer process, the node as consumer: TP_C:01-01 … TP_C:03-06
(``TransferProcessConsumer0{1,2,3}Test``; ``/work/notes/dsp-tck.md`` §7, §9).

The TCK triggers the node (``POST /tck/transfers/requests``) to ask it for a transfer under
agreement ``ATPCxxxx``; then it starts, suspends, completes or terminates the transfer at the
node's callbackAddress and reads its state with ``GET {callbackAddress}/transfers/{consumerPid}``.
The TCK's start carries a data address at http://example.com, which the node must not pull.

TP_C:02-04 (consumer suspended, consumer started, consumer completed) is ``@Disabled`` in the
TCK, and the TCK registers no handler for a consumer's start: it is left out.
"""

from __future__ import annotations

from tests.tck.harness import ProviderTransfer, Tck


def test_tp_c_01_01_provider_started_provider_terminated(tck: Tck) -> None:
    """TP_C:01-01 — ⇐CTREQ(ATPC0101); →start; CHK(STARTED); →termination; CHK(TERMINATED)."""
    tp = tck.transfer_as_provider("ATPC0101")
    tp.requested()
    tp.start()
    tp.check("STARTED")
    tp.terminate()
    tp.check("TERMINATED")


def test_tp_c_01_02_provider_started_provider_completed(tck: Tck) -> None:
    """TP_C:01-02 — ⇐CTREQ(ATPC0102); →start; CHK(STARTED); →completion; CHK(COMPLETED)."""
    tp = tck.transfer_as_provider("ATPC0102")
    tp.requested()
    tp.start()
    tp.check("STARTED")
    tp.complete()
    tp.check("COMPLETED")


def test_tp_c_01_03_provider_started_suspended_terminated(tck: Tck) -> None:
    """TP_C:01-03 — ⇐CTREQ(ATPC0103); →start; CHK(STARTED); →suspension; CHK(SUSPENDED);
    →termination; CHK(TERMINATED)."""
    tp = tck.transfer_as_provider("ATPC0103")
    tp.requested()
    tp.start()
    tp.check("STARTED")
    tp.suspend()
    tp.check("SUSPENDED")
    tp.terminate()
    tp.check("TERMINATED")


def test_tp_c_01_04_provider_started_suspended_started_completed(tck: Tck) -> None:
    """TP_C:01-04 — ⇐CTREQ(ATPC0104); →start; CHK; →suspension; CHK; →start (resume);
    CHK(STARTED); →completion; CHK(COMPLETED)."""
    tp = tck.transfer_as_provider("ATPC0104")
    tp.requested()
    tp.start()
    tp.check("STARTED")
    tp.suspend()
    tp.check("SUSPENDED")
    tp.start()
    tp.check("STARTED")
    tp.complete()
    tp.check("COMPLETED")


def test_tp_c_01_05_provider_terminated(tck: Tck) -> None:
    """TP_C:01-05 — ⇐CTREQ; →termination (from REQUESTED); CHK(TERMINATED). The TCK's sample
    configuration uses ATPC0104 here, the agreement of 01-04: a second transfer under it."""
    tp = tck.transfer_as_provider("ATPC0104")
    tp.requested()
    tp.terminate()
    tp.check("TERMINATED")


def test_tp_c_02_01_provider_started_consumer_terminated(tck: Tck) -> None:
    """TP_C:02-01 — ⇐CTREQ(ATPC0201); →start; ⇐CTTRM; CHK(TERMINATED)."""
    tp = tck.transfer_as_provider("ATPC0201")
    tp.requested()
    terminated = tp.expect("termination")
    tp.start()
    terminated.wait()
    tp.check("TERMINATED")


def test_tp_c_02_02_provider_started_consumer_completed(tck: Tck) -> None:
    """TP_C:02-02 — ⇐CTREQ(ATPC0202); →start; ⇐CTCPL; CHK(COMPLETED)."""
    tp = tck.transfer_as_provider("ATPC0202")
    tp.requested()
    completed = tp.expect("completion")
    tp.start()
    completed.wait()
    tp.check("COMPLETED")


def test_tp_c_02_03_consumer_suspended_consumer_terminated(tck: Tck) -> None:
    """TP_C:02-03 — ⇐CTREQ(ATPC0203); →start; ⇐CTSUS; ⇐CTTRM (chained); CHK(TERMINATED)."""
    tp = tck.transfer_as_provider("ATPC0203")
    tp.requested()
    suspended = tp.expect("suspension")
    tp.start()
    suspended.wait()
    tp.expect("termination").wait()
    tp.check("TERMINATED")


# TP_C:02-04 is @Disabled in the TCK (see the module docstring).


def test_tp_c_02_05_request_consumer_terminated(tck: Tck) -> None:
    """TP_C:02-05 — ⇐CTREQ(ATPC0205); ⇐CTTRM (chained); CHK(TERMINATED)."""
    tp = tck.transfer_as_provider("ATPC0205")
    tp.requested()
    tp.expect("termination").wait()
    tp.check("TERMINATED")


def test_tp_c_03_01_completion_while_requested_is_rejected(tck: Tck) -> None:
    """TP_C:03-01 — ⇐CTREQ(ATPC0301); CHK(REQUESTED); →completion(err); CHK(REQUESTED)."""
    tp = tck.transfer_as_provider("ATPC0301")
    tp.requested()
    tp.check("REQUESTED")
    tp.complete(error=True)
    tp.check("REQUESTED")


def test_tp_c_03_02_suspension_while_requested_is_rejected(tck: Tck) -> None:
    """TP_C:03-02 — ⇐CTREQ(ATPC0302); CHK(REQUESTED); →suspension(err); CHK(REQUESTED)."""
    tp = tck.transfer_as_provider("ATPC0302")
    tp.requested()
    tp.check("REQUESTED")
    tp.suspend(error=True)
    tp.check("REQUESTED")


def test_tp_c_03_03_completion_while_suspended_is_rejected(tck: Tck) -> None:
    """TP_C:03-03 — ⇐CTREQ(ATPC0303); →start; CHK(STARTED); →suspension; CHK(SUSPENDED);
    →completion(err); CHK(SUSPENDED)."""
    tp = tck.transfer_as_provider("ATPC0303")
    tp.requested()
    tp.start()
    tp.check("STARTED")
    tp.suspend()
    tp.check("SUSPENDED")
    tp.complete(error=True)
    tp.check("SUSPENDED")


def _started_then_terminated(tck: Tck, agreement_id: str) -> ProviderTransfer:
    """The opening of TP_C:03-04 … 03-06: ⇐CTREQ; →start; →termination; CHK(TERMINATED)."""
    tp = tck.transfer_as_provider(agreement_id)
    tp.requested()
    tp.start()
    tp.terminate()
    tp.check("TERMINATED")
    return tp


def test_tp_c_03_04_start_in_terminated_is_rejected(tck: Tck) -> None:
    """TP_C:03-04 — ATPC0304 until TERMINATED; →start without dataAddress (err);
    CHK(TERMINATED)."""
    tp = _started_then_terminated(tck, "ATPC0304")
    tp.start(data_address=False, error=True)
    tp.check("TERMINATED")


def test_tp_c_03_05_suspension_in_terminated_is_rejected(tck: Tck) -> None:
    """TP_C:03-05 — ATPC0305 until TERMINATED; →suspension(err); CHK(TERMINATED)."""
    tp = _started_then_terminated(tck, "ATPC0305")
    tp.suspend(error=True)
    tp.check("TERMINATED")


def test_tp_c_03_06_completion_in_terminated_is_rejected(tck: Tck) -> None:
    """TP_C:03-06 — ATPC0306 until TERMINATED; →completion(err); CHK(TERMINATED)."""
    tp = _started_then_terminated(tck, "ATPC0306")
    tp.complete(error=True)
    tp.check("TERMINATED")
