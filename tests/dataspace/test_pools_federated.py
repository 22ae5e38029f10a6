"""Federated queries over a pool: Paris sends one query to Berlin and Zurich, each computes its
partial aggregates next to its own data, and Paris merges them — the mean over the union equals
the mean computed over all the rows together (exact without differential privacy)."""

from __future__ import annotations

from typing import Any

import pytest

from rhenus.dataspace.pools.federated import Part, merge, partial_query
from rhenus.dataspace.pools.sql_guard import Refused
from tests.dataspace.contracts_support import c, negotiate, negotiation, publish_with, settle
from tests.support.federation import Federation, FedNode

OFFER = {
    "@type": "Offer",
    "permission": [
        {
            "action": "compute",
            "constraint": [c("purpose", "eq", "statistics"), c("rhenus:minGroupSize", "gteq", "5")],
        }
    ],
}


def csv_of(rows: list[tuple[str, int]]) -> bytes:
    return ("region,age\n" + "".join(f"{r},{a}\n" for r, a in rows)).encode()


# Berlin: 6 in A, 7 in B. Zurich: 5 in A, 2 in B (below k there), 6 in C.
BERLIN = [("A", 30 + i) for i in range(6)] + [("B", 50 + i) for i in range(7)]
ZURICH = [("A", 20 + 3 * i) for i in range(5)] + [("B", 90), ("B", 91)]
ZURICH += [("C", 40 + i) for i in range(6)]


def test_the_partial_query_asks_for_sums_and_counts_instead_of_means() -> None:
    sql, parts = partial_query(
        "SELECT region, avg(age) AS mean, count(*) FROM data GROUP BY region"
    )
    assert sql == (
        'SELECT region, SUM(age) AS "part1 sum", COUNT(age) AS "part1 count", '
        'COUNT(*) AS "part2" FROM data GROUP BY region'
    )
    assert parts == [
        Part("region", "", (0,)),
        Part("mean", "avg", (1, 2)),
        Part("count(*)", "count", (3,)),
    ]


@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        ("SELECT stddev(age) FROM data", "stddev cannot be merged"),
        ("SELECT count(*) FROM data ORDER BY 1", "ORDER cannot be applied across providers"),
    ],
)
def test_queries_that_cannot_be_merged_are_refused(sql: str, reason: str) -> None:
    with pytest.raises(Refused, match=reason):
        partial_query(sql)


def test_merge_adds_counts_and_sums_takes_extremes_and_divides_for_means() -> None:
    parts = [
        Part("k", "", (0,)),
        Part("n", "count", (1,)),
        Part("s", "sum", (2,)),
        Part("lo", "min", (3,)),
        Part("hi", "max", (4,)),
        Part("mean", "avg", (5, 6)),
    ]
    one = [["a", 2, 10, 1, 9, 10, 2], ["b", 5, 5, 0, 3, 5, 5]]
    two = [["a", 3, 20, -1, 4, 20, 3], ["c", 6, None, None, None, None, 0]]
    assert merge(parts, [one, two]) == [
        ["a", 5, 30, -1, 9, 6.0],
        ["b", 5, 5, 0, 3, 1.0],
        ["c", 6, None, None, None, None],
    ]


async def agreed(
    fed: Federation, provider: FedNode, content: bytes, offer: dict[str, Any] = OFFER
) -> str:
    paris = fed.nodes[1]
    dataset_id, _ = await publish_with(provider, offer, content)
    started = await negotiate(paris, provider, dataset_id)
    await settle(fed)
    done = await negotiation(paris, started["id"])
    assert done["state"] == "FINALIZED", done
    return str(done["agreement_id"])


async def federated(member: FedNode, agreement_ids: list[str], sql: str) -> tuple[int, Any]:
    async with member.http() as http:
        response = await http.post(
            "/api/v1/pools/federated-queries",
            headers=await member.admin_headers(),
            json={"agreement_ids": agreement_ids, "sql": sql},
        )
    return response.status_code, response.json()


async def test_a_federated_mean_equals_the_mean_over_the_union(fed: Federation) -> None:
    paris, berlin, zurich = fed.nodes[1], fed.nodes[2], fed.nodes[3]
    at_berlin = await agreed(fed, berlin, csv_of(BERLIN))
    at_zurich = await agreed(fed, zurich, csv_of(ZURICH))
    status, body = await federated(
        paris, [at_berlin, at_zurich], "SELECT count(*) AS n, avg(age) AS mean FROM data"
    )
    assert status == 200, body
    union = BERLIN + ZURICH
    assert body["rows"] == [[len(union), sum(a for _, a in union) / len(union)]]
    assert [(p["provider"], p["state"], p["groups"]) for p in body["contributions"]] == [
        (berlin.did, "answered", 1),
        (zurich.did, "answered", 1),
    ]
    # Grouped: B at Zurich has 2 rows (below k), so B is Berlin's alone; C is Zurich's alone.
    status, body = await federated(
        paris,
        [at_berlin, at_zurich],
        "SELECT region, count(*) AS n, avg(age) AS mean, min(age) AS youngest FROM data "
        "GROUP BY region",
    )
    # min is not among the agreements' aggregate functions: both providers refuse, with why.
    assert (status, body["rows"]) == (200, [])
    for contribution in body["contributions"]:
        assert contribution["state"] == "refused"
        assert "min (it returns one row's value) is not allowed" in contribution["reason"]
    status, body = await federated(
        paris,
        [at_berlin, at_zurich],
        "SELECT region, count(*) AS n, sum(age) AS total, avg(age) AS mean FROM data "
        "GROUP BY region",
    )
    assert status == 200, body

    def expected(rows: list[tuple[str, int]]) -> list[Any]:
        ages = [a for _, a in rows]
        return [rows[0][0], len(ages), sum(ages), sum(ages) / len(ages)]

    a_rows = [r for r in BERLIN + ZURICH if r[0] == "A"]
    assert body["rows"] == [
        expected(a_rows),
        expected([r for r in BERLIN if r[0] == "B"]),
        expected([r for r in ZURICH if r[0] == "C"]),
    ]
    assert [p["groups"] for p in body["contributions"]] == [2, 2]


async def test_a_provider_that_refuses_is_reported_and_the_others_still_merge(
    fed: Federation,
) -> None:
    paris, berlin, zurich = fed.nodes[1], fed.nodes[2], fed.nodes[3]
    at_berlin = await agreed(fed, berlin, csv_of(BERLIN))
    at_zurich = await agreed(fed, zurich, csv_of(ZURICH))
    budgeted = {"@type": "Offer", "permission": [{**OFFER["permission"][0]}]}
    budgeted["permission"][0]["constraint"] = [
        *OFFER["permission"][0]["constraint"],
        c("rhenus:dpEpsilonBudget", "lteq", "1"),
    ]
    at_private = await agreed(fed, berlin, csv_of(BERLIN), budgeted)
    status, body = await federated(
        paris, [at_berlin, at_zurich, at_private], "SELECT count(*) AS n FROM data"
    )
    assert status == 200, body
    assert body["rows"] == [[len(BERLIN) + len(ZURICH)]]
    states = [(p["agreement_id"], p["state"]) for p in body["contributions"]]
    assert states == [(at_berlin, "answered"), (at_zurich, "answered"), (at_private, "refused")]
    assert "send epsilon" in body["contributions"][2]["reason"]
    status, body = await federated(
        paris, [at_berlin, "urn:uuid:unknown"], "SELECT count(*) FROM data"
    )
    assert status == 404
