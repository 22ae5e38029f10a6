"""TCK transfer process, the node as provider: TP:01-01 … TP:03-06
(``TransferProcessProvider0{1,2,3}Test``; ``/work/notes/dsp-tck.md`` §6, §9).

The TCK asks for a transfer under agreement ``ATPxxxx`` (``HttpData-PULL``); the agreement id
tells the node what to do. The node's messages one after another (start, then terminate…) are
chained: the TCK registers each handler once the previous message is in, so the node must wait
and retry on 404. Beyond the TCK, every rejected message is followed by a CHK that the state did
not change.
"""

from __future__ import annotations

from tests.tck.harness import ConsumerTransfer, Tck


def test_tp_01_01_provider_started_provider_terminated(tck: Tck) -> None:
    """TP:01-01 — →TREQ(ATP0101); ⇐PSTA; ⇐PTRM; CHK(TERMINATED)."""
    tp = tck.transfer_as_consumer("ATP0101")
    started = tp.expect("start")
    tp.request()
    started.wait()
    tp.expect("termination").wait()
    tp.check("TERMINATED")


def test_tp_01_02_provider_started_provider_completed(tck: Tck) -> None:
    """TP:01-02 — →TREQ(ATP0102); ⇐PSTA; ⇐PCPL; CHK(COMPLETED)."""
    tp = tck.transfer_as_consumer("ATP0102")
    started = tp.expect("start")
    tp.request()
    started.wait()
    tp.expect("completion").wait()
    tp.check("COMPLETED")


def test_tp_01_03_provider_started_suspended_terminated(tck: Tck) -> None:
    """TP:01-03 — →TREQ(ATP0103); ⇐PSTA; ⇐PSUS; ⇐PTRM; CHK(TERMINATED)."""
    tp = tck.transfer_as_consumer("ATP0103")
    started = tp.expect("start")
    tp.request()
    started.wait()
    tp.expect("suspension").wait()
    tp.expect("termination").wait()
    tp.check("TERMINATED")


def test_tp_01_04_provider_started_suspended_started_completed(tck: Tck) -> None:
    """TP:01-04 — →TREQ(ATP0104); ⇐PSTA; ⇐PSUS; ⇐PSTA; ⇐PCPL; CHK(COMPLETED)."""
    tp = tck.transfer_as_consumer("ATP0104")
    started = tp.expect("start")
    tp.request()
    started.wait()
    tp.expect("suspension").wait()
    tp.expect("start").wait()
    tp.expect("completion").wait()
    tp.check("COMPLETED")


def test_tp_01_05_provider_terminated(tck: Tck) -> None:
    """TP:01-05 — →TREQ(ATP0105); ⇐PTRM (from REQUESTED); CHK(TERMINATED)."""
    tp = tck.transfer_as_consumer("ATP0105")
    terminated = tp.expect("termination")
    tp.request()
    terminated.wait()
    tp.check("TERMINATED")


def test_tp_02_01_provider_started_consumer_terminated(tck: Tck) -> None:
    """TP:02-01 — →TREQ(ATP0201); ⇐PSTA; CHK(STARTED); →TTRM; CHK(TERMINATED)."""
    tp = tck.transfer_as_consumer("ATP0201")
    started = tp.expect("start")
    tp.request()
    started.wait()
    tp.check("STARTED")
    tp.terminate()
    tp.check("TERMINATED")


def test_tp_02_02_provider_started_consumer_completed(tck: Tck) -> None:
    """TP:02-02 — →TREQ(ATP0202); ⇐PSTA; CHK(STARTED); →TCPL; CHK(COMPLETED)."""
    tp = tck.transfer_as_consumer("ATP0202")
    started = tp.expect("start")
    tp.request()
    started.wait()
    tp.check("STARTED")
    tp.complete()
    tp.check("COMPLETED")


def test_tp_02_03_consumer_suspended_consumer_terminated(tck: Tck) -> None:
    """TP:02-03 — →TREQ(ATP0203); ⇐PSTA; CHK(STARTED); →TSUS; CHK(SUSPENDED); →TTRM;
    CHK(TERMINATED). The node must not resume by itself."""
    tp = tck.transfer_as_consumer("ATP0203")
    started = tp.expect("start")
    tp.request()
    started.wait()
    tp.check("STARTED")
    tp.suspend()
    tp.check("SUSPENDED")
    tp.terminate()
    tp.check("TERMINATED")


def test_tp_02_04_consumer_suspended_consumer_started_consumer_completed(tck: Tck) -> None:
    """TP:02-04 (``@Disabled`` in the TCK, kept here: a consumer may resume) — →TREQ(ATP0204);
    ⇐PSTA; →TSUS; →TSTA; →TCPL; and, beyond the TCK, CHK after each step."""
    tp = tck.transfer_as_consumer("ATP0204")
    started = tp.expect("start")
    tp.request()
    started.wait()
    tp.suspend()
    tp.check("SUSPENDED")
    tp.start()
    tp.check("STARTED")
    tp.complete()
    tp.check("COMPLETED")


def test_tp_02_05_request_consumer_terminated(tck: Tck) -> None:
    """TP:02-05 — →TREQ(ATP0205); CHK(REQUESTED); →TTRM; CHK(TERMINATED). No start."""
    tp = tck.transfer_as_consumer("ATP0205")
    tp.request()
    tp.check("REQUESTED")
    tp.terminate()
    tp.check("TERMINATED")


def test_tp_03_01_completion_while_requested_is_rejected(tck: Tck) -> None:
    """TP:03-01 — →TREQ(ATP0301); CHK(REQUESTED); →TCPL(err); CHK(REQUESTED)."""
    tp = tck.transfer_as_consumer("ATP0301")
    tp.request()
    tp.check("REQUESTED")
    tp.complete(error=True)
    tp.check("REQUESTED")


def test_tp_03_02_suspension_while_requested_is_rejected(tck: Tck) -> None:
    """TP:03-02 — →TREQ(ATP0302); CHK(REQUESTED); →TSUS(err); CHK(REQUESTED)."""
    tp = tck.transfer_as_consumer("ATP0302")
    tp.request()
    tp.check("REQUESTED")
    tp.suspend(error=True)
    tp.check("REQUESTED")


def test_tp_03_03_completion_while_suspended_is_rejected(tck: Tck) -> None:
    """TP:03-03 — →TREQ(ATP0303); ⇐PSTA; CHK(STARTED); →TSUS; CHK(SUSPENDED); →TCPL(err);
    CHK(SUSPENDED)."""
    tp = tck.transfer_as_consumer("ATP0303")
    started = tp.expect("start")
    tp.request()
    started.wait()
    tp.check("STARTED")
    tp.suspend()
    tp.check("SUSPENDED")
    tp.complete(error=True)
    tp.check("SUSPENDED")


def _started_then_terminated(tck: Tck, agreement_id: str) -> ConsumerTransfer:
    """The opening of TP:03-04 … 03-06: →TREQ; ⇐PSTA; CHK(STARTED); →TTRM; CHK(TERMINATED)."""
    tp = tck.transfer_as_consumer(agreement_id)
    started = tp.expect("start")
    tp.request()
    started.wait()
    tp.check("STARTED")
    tp.terminate()
    tp.check("TERMINATED")
    return tp


def test_tp_03_04_start_in_terminated_is_rejected(tck: Tck) -> None:
    """TP:03-04 — ATP0304 until TERMINATED; →TSTA(err); CHK(TERMINATED)."""
    tp = _started_then_terminated(tck, "ATP0304")
    tp.start(error=True)
    tp.check("TERMINATED")


def test_tp_03_05_suspension_in_terminated_is_rejected(tck: Tck) -> None:
    """TP:03-05 — ATP0305 until TERMINATED; →TSUS(err); CHK(TERMINATED)."""
    tp = _started_then_terminated(tck, "ATP0305")
    tp.suspend(error=True)
    tp.check("TERMINATED")


def test_tp_03_06_completion_in_terminated_is_rejected(tck: Tck) -> None:
    """TP:03-06 — ATP0306 until TERMINATED; →TCPL(err); CHK(TERMINATED)."""
    tp = _started_then_terminated(tck, "ATP0306")
    tp.complete(error=True)
    tp.check("TERMINATED")
