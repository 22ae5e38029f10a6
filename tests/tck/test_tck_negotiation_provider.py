"""TCK contract negotiation, the node as provider: CN:01-01 … CN:03-04
(``ContractNegotiationProvider0{1,2,3}Test``; ``/work/notes/dsp-tck.md`` §4, §9).

The TCK requests ``CD123:<dataset>:456`` for dataset ``ACNxxxx``; the dataset id alone tells
the node what to do next. Steps: → the TCK sends, ⇐ the node sends, CHK a state check.
Beyond the TCK, every rejected message is followed by a CHK that the state did not change.
"""

from __future__ import annotations

from tests.tck.harness import Tck


def test_cn_01_01_request_offer_consumer_terminated(tck: Tck) -> None:
    """CN:01-01 — →REQ(ACN0101); ⇐OFR; →TRM; CHK(TERMINATED)."""
    neg = tck.negotiation_as_consumer("ACN0101")
    offered = neg.expect_offer()
    neg.request()
    offered.wait()
    neg.terminate()
    neg.check("TERMINATED")


def test_cn_01_02_request_offer_counter_request_provider_terminated(tck: Tck) -> None:
    """CN:01-02 — →REQ(ACN0102); ⇐OFR; →CTR(CD123:ACN0102:456); ⇐PTRM."""
    neg = tck.negotiation_as_consumer("ACN0102")
    offered = neg.expect_offer()
    neg.request()
    offered.wait()
    terminated = neg.expect_termination()
    neg.counter_request()
    terminated.wait()


def test_cn_01_03_request_offer_accept_agreement_verify_finalize(tck: Tck) -> None:
    """CN:01-03 — →REQ(ACN0103); ⇐OFR; →ACC; ⇐AGR; →VER; ⇐FIN."""
    neg = tck.negotiation_as_consumer("ACN0103")
    offered = neg.expect_offer()
    neg.request()
    offered.wait()
    agreed = neg.expect_agreement()
    neg.accept()
    agreed.wait()
    finalized = neg.expect_finalized()
    neg.verify()
    finalized.wait()


def test_cn_01_04_request_agreement_verify_finalize(tck: Tck) -> None:
    """CN:01-04 — →REQ(ACN0104); ⇐AGR; →VER; ⇐FIN."""
    neg = tck.negotiation_as_consumer("ACN0104")
    agreed = neg.expect_agreement()
    neg.request()
    agreed.wait()
    finalized = neg.expect_finalized()
    neg.verify()
    finalized.wait()


def test_cn_02_01_request_provider_terminated(tck: Tck) -> None:
    """CN:02-01 — →REQ(ACN0201); ⇐PTRM."""
    neg = tck.negotiation_as_consumer("ACN0201")
    terminated = neg.expect_termination()
    neg.request()
    terminated.wait()


def test_cn_02_02_request_consumer_terminated(tck: Tck) -> None:
    """CN:02-02 — →REQ(ACN0202); →TRM; CHK(TERMINATED). The node sends nothing."""
    neg = tck.negotiation_as_consumer("ACN0202")
    neg.request()
    neg.terminate()
    neg.check("TERMINATED")


def test_cn_02_03_request_agreement_consumer_terminated(tck: Tck) -> None:
    """CN:02-03 — →REQ(ACN0203); ⇐AGR; →TRM (in AGREED); CHK(TERMINATED)."""
    neg = tck.negotiation_as_consumer("ACN0203")
    agreed = neg.expect_agreement()
    neg.request()
    agreed.wait()
    neg.terminate()
    neg.check("TERMINATED")


def test_cn_02_04_request_offer_consumer_terminated(tck: Tck) -> None:
    """CN:02-04 — →REQ(ACN0204); ⇐OFR; →TRM; CHK(TERMINATED)."""
    neg = tck.negotiation_as_consumer("ACN0204")
    offered = neg.expect_offer()
    neg.request()
    offered.wait()
    neg.terminate()
    neg.check("TERMINATED")


def test_cn_02_05_request_offer_provider_terminated(tck: Tck) -> None:
    """CN:02-05 — →REQ(ACN0205); ⇐OFR; ⇐PTRM (chained: the TCK registers the termination
    handler only once the offer is in, so the node must retry on 404)."""
    neg = tck.negotiation_as_consumer("ACN0205")
    offered = neg.expect_offer()
    neg.request()
    offered.wait()
    neg.expect_termination().wait()


def test_cn_02_06_request_offer_accept_provider_terminated(tck: Tck) -> None:
    """CN:02-06 — →REQ(ACN0206); ⇐OFR; →ACC; ⇐PTRM (no agreement)."""
    neg = tck.negotiation_as_consumer("ACN0206")
    offered = neg.expect_offer()
    neg.request()
    offered.wait()
    terminated = neg.expect_termination()
    neg.accept()
    terminated.wait()


def test_cn_02_07_request_agreement_verify_provider_terminated(tck: Tck) -> None:
    """CN:02-07 — →REQ(ACN0207); ⇐AGR; →VER; ⇐PTRM (no FINALIZED)."""
    neg = tck.negotiation_as_consumer("ACN0207")
    agreed = neg.expect_agreement()
    neg.request()
    agreed.wait()
    terminated = neg.expect_termination()
    neg.verify()
    terminated.wait()


def test_cn_03_01_termination_when_finalized_is_rejected(tck: Tck) -> None:
    """CN:03-01 — →REQ(ACN0301); ⇐AGR; →VER; ⇐FIN; CHK(FINALIZED); →TRM(err)."""
    neg = tck.negotiation_as_consumer("ACN0301")
    agreed = neg.expect_agreement()
    neg.request()
    agreed.wait()
    finalized = neg.expect_finalized()
    neg.verify()
    finalized.wait()
    neg.check("FINALIZED")
    neg.terminate(error=True)
    neg.check("FINALIZED")


def test_cn_03_02_verification_while_offered_is_rejected(tck: Tck) -> None:
    """CN:03-02 — →REQ(ACN0302); ⇐OFR; →VER(err)."""
    neg = tck.negotiation_as_consumer("ACN0302")
    offered = neg.expect_offer()
    neg.request()
    offered.wait()
    neg.verify(error=True)
    neg.check("OFFERED")


def test_cn_03_03_verification_while_accepted_is_rejected(tck: Tck) -> None:
    """CN:03-03 — →REQ(ACN0303); ⇐OFR; →ACC; →VER(err). The node must not agree."""
    neg = tck.negotiation_as_consumer("ACN0303")
    offered = neg.expect_offer()
    neg.request()
    offered.wait()
    neg.accept()
    neg.verify(error=True)
    neg.check("ACCEPTED")


def test_cn_03_04_second_counter_request_while_requested_is_rejected(tck: Tck) -> None:
    """CN:03-04 — →REQ(ACN0304); ⇐OFR; →CTR; →CTR(err). The node stays REQUESTED, silent."""
    neg = tck.negotiation_as_consumer("ACN0304")
    offered = neg.expect_offer()
    neg.request()
    offered.wait()
    neg.counter_request()
    neg.counter_request(error=True)
    neg.check("REQUESTED")
