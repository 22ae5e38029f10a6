"""TCK contract negotiation, the node as consumer: CN_C:01-01 … CN_C:03-06
(``ContractNegotiationConsumer0{1,2,3}Test``; ``/work/notes/dsp-tck.md`` §5, §9).

The TCK triggers the node (``POST /tck/negotiations/requests``) to ask it for
``offer<dataset>``; the dataset id ``ACNCxxxx`` tells the node how to react. Steps: → the TCK
sends (to the node's callbackAddress), ⇐ the node sends, CHK a state check at the node.
"""

from __future__ import annotations

from tests.tck.harness import Tck


def test_cn_c_01_01_offer_accept_agreement_verify_finalize(tck: Tck) -> None:
    """CN_C:01-01 — ⇐CREQ(ACNC0101); →OFR; ⇐CACC; →AGR; ⇐CVER; →FIN; CHK(FINALIZED)."""
    neg = tck.negotiation_as_provider("ACNC0101")
    neg.requested()
    accepted = neg.expect_accepted()
    neg.offer()
    accepted.wait()
    verified = neg.expect_verification()
    neg.agree()
    verified.wait()
    neg.finalize()
    neg.check("FINALIZED")


def test_cn_c_01_02_offer_counter_request_provider_terminated(tck: Tck) -> None:
    """CN_C:01-02 — ⇐CREQ(ACNC0102); →OFR; ⇐CCTR; →TRM."""
    neg = tck.negotiation_as_provider("ACNC0102")
    neg.requested()
    countered = neg.expect_counter_request()
    neg.offer()
    countered.wait()
    neg.terminate()


def test_cn_c_01_03_offer_consumer_terminated(tck: Tck) -> None:
    """CN_C:01-03 — ⇐CREQ(ACNC0103); →OFR; ⇐CTRM; CHK(TERMINATED)."""
    neg = tck.negotiation_as_provider("ACNC0103")
    neg.requested()
    terminated = neg.expect_termination()
    neg.offer()
    terminated.wait()
    neg.check("TERMINATED")


def test_cn_c_01_04_agreement_verify_finalize(tck: Tck) -> None:
    """CN_C:01-04 — ⇐CREQ(ACNC0104); →AGR (from REQUESTED); ⇐CVER; →FIN; CHK(FINALIZED)."""
    neg = tck.negotiation_as_provider("ACNC0104")
    neg.requested()
    verified = neg.expect_verification()
    neg.agree()
    verified.wait()
    neg.finalize()
    neg.check("FINALIZED")


def test_cn_c_02_01_request_provider_terminated(tck: Tck) -> None:
    """CN_C:02-01 — ⇐CREQ(ACNC0201); →TRM; CHK(TERMINATED)."""
    neg = tck.negotiation_as_provider("ACNC0201")
    neg.requested()
    neg.terminate()
    neg.check("TERMINATED")


def test_cn_c_02_02_request_consumer_terminated(tck: Tck) -> None:
    """CN_C:02-02 — ⇐CREQ(ACNC0202); ⇐CTRM (chained: registered once the request is in, so
    the node must retry on 404); CHK(TERMINATED)."""
    neg = tck.negotiation_as_provider("ACNC0202")
    neg.requested()
    neg.expect_termination().wait()
    neg.check("TERMINATED")


def test_cn_c_02_03_agreement_consumer_terminated(tck: Tck) -> None:
    """CN_C:02-03 — ⇐CREQ(ACNC0203); →AGR; ⇐CTRM; CHK(TERMINATED)."""
    neg = tck.negotiation_as_provider("ACNC0203")
    neg.requested()
    terminated = neg.expect_termination()
    neg.agree()
    terminated.wait()
    neg.check("TERMINATED")


def test_cn_c_02_04_offer_provider_terminated(tck: Tck) -> None:
    """CN_C:02-04 — ⇐CREQ(ACNC0204); →OFR; CHK(OFFERED); →TRM; CHK(TERMINATED). The node
    must not accept the offer by itself."""
    neg = tck.negotiation_as_provider("ACNC0204")
    neg.requested()
    neg.offer()
    neg.check("OFFERED")
    neg.terminate()
    neg.check("TERMINATED")


def test_cn_c_02_05_offer_accept_provider_terminated(tck: Tck) -> None:
    """CN_C:02-05 — ⇐CREQ(ACNC0205); →OFR; ⇐CACC; →TRM (in ACCEPTED); CHK(TERMINATED)."""
    neg = tck.negotiation_as_provider("ACNC0205")
    neg.requested()
    accepted = neg.expect_accepted()
    neg.offer()
    accepted.wait()
    neg.terminate()
    neg.check("TERMINATED")


def test_cn_c_02_06_agreement_verify_provider_terminated(tck: Tck) -> None:
    """CN_C:02-06 — ⇐CREQ(ACNC0206); →AGR; ⇐CVER; →TRM (in VERIFIED); CHK(TERMINATED)."""
    neg = tck.negotiation_as_provider("ACNC0206")
    neg.requested()
    verified = neg.expect_verification()
    neg.agree()
    verified.wait()
    neg.terminate()
    neg.check("TERMINATED")


def test_cn_c_03_01_finalized_while_requested_is_rejected(tck: Tck) -> None:
    """CN_C:03-01 — ⇐CREQ(ACNC0301); →FIN(err); CHK(REQUESTED)."""
    neg = tck.negotiation_as_provider("ACNC0301")
    neg.requested()
    neg.finalize(error=True)
    neg.check("REQUESTED")


def test_cn_c_03_02_agreement_while_offered_is_rejected(tck: Tck) -> None:
    """CN_C:03-02 — ⇐CREQ(ACNC0302); →OFR; CHK(OFFERED); →AGR(err); CHK(OFFERED)."""
    neg = tck.negotiation_as_provider("ACNC0302")
    neg.requested()
    neg.offer()
    neg.check("OFFERED")
    neg.agree(error=True)
    neg.check("OFFERED")


def test_cn_c_03_03_finalized_while_offered_is_rejected(tck: Tck) -> None:
    """CN_C:03-03 — ⇐CREQ(ACNC0303); →OFR; →FIN(err); CHK(OFFERED)."""
    neg = tck.negotiation_as_provider("ACNC0303")
    neg.requested()
    neg.offer()
    neg.finalize(error=True)
    neg.check("OFFERED")


def test_cn_c_03_04_finalized_while_accepted_is_rejected(tck: Tck) -> None:
    """CN_C:03-04 — ⇐CREQ(ACNC0304); →OFR; ⇐CACC; →FIN(err); CHK(ACCEPTED)."""
    neg = tck.negotiation_as_provider("ACNC0304")
    neg.requested()
    accepted = neg.expect_accepted()
    neg.offer()
    accepted.wait()
    neg.finalize(error=True)
    neg.check("ACCEPTED")


def test_cn_c_03_05_offer_while_accepted_is_rejected(tck: Tck) -> None:
    """CN_C:03-05 — ⇐CREQ(ACNC0305); →OFR; ⇐CACC; →OFR(err); CHK(ACCEPTED)."""
    neg = tck.negotiation_as_provider("ACNC0305")
    neg.requested()
    accepted = neg.expect_accepted()
    neg.offer()
    accepted.wait()
    neg.offer(error=True)
    neg.check("ACCEPTED")


def test_cn_c_03_06_finalized_while_agreed_is_rejected(tck: Tck) -> None:
    """CN_C:03-06 — ⇐CREQ(ACNC0306); →OFR; ⇐CACC; →AGR; →FIN(err); CHK(AGREED). The node
    must not verify the agreement by itself."""
    neg = tck.negotiation_as_provider("ACNC0306")
    neg.requested()
    accepted = neg.expect_accepted()
    neg.offer()
    accepted.wait()
    neg.agree()
    neg.finalize(error=True)
    neg.check("AGREED")
