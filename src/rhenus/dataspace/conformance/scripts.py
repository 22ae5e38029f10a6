"""What the node does, per TCK case, in conformance mode.

The TCK selects a case's expected behaviour only through the ids it uses: the dataset of a
negotiation, the agreement of a transfer (``sample.tck.properties`` and the test sequences of
``eclipse-dataspacetck/dsp-tck``: the mock calls a remote run skips are what the connector must
do itself). An event absent from a case's script calls for nothing; ids absent from the tables
get the node's normal behaviour.
"""

from __future__ import annotations

Script = dict[str, list[str]]  # event -> actions

# Provider negotiations, by the requested dataset (CN:01-01 … CN:03-04).
PROVIDER_NEGOTIATIONS: dict[str, Script] = {
    "ACN0101": {"requested": ["offer"]},
    "ACN0102": {"requested": ["offer"], "counter": ["terminate"]},
    "ACN0103": {"requested": ["offer"], "accepted": ["agree"], "verified": ["finalize"]},
    "ACN0104": {"requested": ["agree"], "verified": ["finalize"]},
    "ACN0201": {"requested": ["terminate"]},
    "ACN0202": {},
    "ACN0203": {"requested": ["agree"]},
    "ACN0204": {"requested": ["offer"]},
    "ACN0205": {"requested": ["offer", "terminate"]},
    "ACN0206": {"requested": ["offer"], "accepted": ["terminate"]},
    "ACN0207": {"requested": ["agree"], "verified": ["terminate"]},
    "ACN0301": {"requested": ["agree"], "verified": ["finalize"]},
    "ACN0302": {"requested": ["offer"]},
    "ACN0303": {"requested": ["offer"]},
    "ACN0304": {"requested": ["offer"]},
}

# Consumer negotiations, by the dataset the trigger named (CN_C:01-01 … CN_C:03-06).
CONSUMER_NEGOTIATIONS: dict[str, Script] = {
    "ACNC0101": {"offered": ["accept"], "agreed": ["verify"]},
    "ACNC0102": {"offered": ["counter"]},
    "ACNC0103": {"offered": ["terminate"]},
    "ACNC0104": {"agreed": ["verify"]},
    "ACNC0201": {},
    "ACNC0202": {"requested": ["terminate"]},
    "ACNC0203": {"agreed": ["terminate"]},
    "ACNC0204": {},
    "ACNC0205": {"offered": ["accept"]},
    "ACNC0206": {"agreed": ["verify"]},
    "ACNC0301": {},
    "ACNC0302": {},
    "ACNC0303": {},
    "ACNC0304": {"offered": ["accept"]},
    "ACNC0305": {"offered": ["accept"]},
    "ACNC0306": {"offered": ["accept"]},
}

# Provider transfers, by agreement (TP:01-01 … TP:03-06).
PROVIDER_TRANSFERS: dict[str, Script] = {
    "ATP0101": {"requested": ["start", "terminate"]},
    "ATP0102": {"requested": ["start", "complete"]},
    "ATP0103": {"requested": ["start", "suspend", "terminate"]},
    "ATP0104": {"requested": ["start", "suspend", "start", "complete"]},
    "ATP0105": {"requested": ["terminate"]},
    **{f"ATP0{n}": {"requested": ["start"]} for n in (201, 202, 203, 204, 303, 304, 305, 306)},
    **{f"ATP0{n}": {} for n in (205, 301, 302)},
}

# Consumer transfers, by agreement (TP_C:01-01 … TP_C:03-06).
CONSUMER_TRANSFERS: dict[str, Script] = {
    "ATPC0201": {"started": ["terminate"]},
    "ATPC0202": {"started": ["complete"]},
    "ATPC0203": {"started": ["suspend", "terminate"]},
    "ATPC0204": {"started": ["suspend", "start", "complete"]},
    "ATPC0205": {"requested": ["terminate"]},
}

CATALOG_DATASETS = ("CAT0101", "CAT0102")
PROVIDER_AGREEMENTS = tuple(PROVIDER_TRANSFERS)
CONSUMER_AGREEMENTS = tuple(
    f"ATPC0{n}" for n in (101, 102, 103, 104, 105, 201, 202, 203, 204, 205,
                          301, 302, 303, 304, 305, 306)
)  # fmt: skip


def offer_id(dataset_id: str) -> str:
    """The TCK's offer id of a fixture dataset (``CD123:ACN0101:456``)."""
    return f"CD123:{dataset_id}:456"


def negotiation(role: str, dataset_id: str) -> Script | None:
    table = PROVIDER_NEGOTIATIONS if role == "provider" else CONSUMER_NEGOTIATIONS
    return table.get(dataset_id)


def transfer(role: str, agreement_id: str) -> Script | None:
    table = PROVIDER_TRANSFERS if role == "provider" else CONSUMER_TRANSFERS
    if role == "consumer" and agreement_id in CONSUMER_AGREEMENTS:
        return table.get(agreement_id, {})
    return table.get(agreement_id)
