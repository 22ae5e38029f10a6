"""Compute-to-data between live in-process nodes: Paris negotiates a compute-only agreement with
Berlin, sends aggregate queries through its API, and gets back only aggregates of groups of at
least k rows — exact without differential privacy, noised and budgeted with it. Everything else
is refused with a reason and leaks nothing; both audit logs record every query."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from rhenus.core.audit import list_entries
from rhenus.dataspace.catalogue.dsp import BASE_PATH
from rhenus.dataspace.pools.release import result_digest
from tests.dataspace.contracts_support import (
    RecordingRouter,
    c,
    check_messages,
    negotiate,
    negotiation,
    publish_with,
    settle,
)
from tests.support.federation import PARTICIPANTS, Federation, FedNode, certify

K = 5
# 27 residents: 12 in A, 12 in B, 3 in C (a group below k). Ids are unique; incomes distinct.
ROWS = [
    (i, "A" if i <= 12 else "B" if i <= 24 else "C", 20 + i, 1000 + 37 * i * i)
    for i in range(1, 28)
]
CSV = ("id,region,age,income\n" + "".join(f"{i},{r},{a},{m}\n" for i, r, a, m in ROWS)).encode()


def compute_offer(*constraints: dict[str, Any]) -> dict[str, Any]:
    return {
        "@type": "Offer",
        "permission": [
            {
                "action": "compute",
                "constraint": [
                    c("purpose", "isAnyOf", ["statistics", "research"]),
                    c("rhenus:minGroupSize", "gteq", str(K)),
                    *constraints,
                ],
            }
        ],
    }


@pytest.fixture
async def fed(tmp_path: Path, db_url: str) -> AsyncIterator[Federation]:
    federation = Federation(tmp_path, router=RecordingRouter())
    await federation.add("anchor", anchor=True)
    for name in ("fr-mininterieur", "de-berlin", "ch-zurich"):
        member = await federation.add(name, db_url=db_url if name == "de-berlin" else None)
        await certify(member, **PARTICIPANTS[name])
    yield federation
    await federation.close()


async def agreed(fed: Federation, offer: dict[str, Any]) -> str:
    """Berlin publishes the residents under ``offer``; Paris negotiates; the agreement id."""
    paris, berlin = fed.nodes[1], fed.nodes[2]
    dataset_id, _ = await publish_with(berlin, offer, CSV)
    started = await negotiate(paris, berlin, dataset_id)
    await settle(fed)
    done = await negotiation(paris, started["id"])
    assert done["state"] == "FINALIZED", done
    return str(done["agreement_id"])


async def ask(member: FedNode, agreement_id: str, sql: str, **extra: Any) -> tuple[int, Any]:
    async with member.http() as http:
        response = await http.post(
            "/api/v1/pools/queries",
            headers=await member.admin_headers(),
            json={"agreement_id": agreement_id, "sql": sql, **extra},
        )
    return response.status_code, response.json()


def rows_of(body: dict[str, Any]) -> list[list[Any]]:
    rows: list[list[Any]] = body["result"]["rows"]
    return rows


async def test_allowed_aggregates_give_exact_results_without_differential_privacy(
    fed: Federation,
) -> None:
    paris, berlin = fed.nodes[1], fed.nodes[2]
    agreement_id = await agreed(fed, compute_offer())
    status, body = await ask(
        paris,
        agreement_id,
        "SELECT region, count(*) AS n, sum(income) AS total, avg(age) AS mean_age "
        "FROM data GROUP BY region ORDER BY region",
    )
    assert status == 200, body
    assert body["state"] == "answered"
    assert body["result"]["columns"] == ["region", "n", "total", "mean_age"]
    expected = []
    for region in ("A", "B"):  # C has 3 rows, fewer than k: absent
        group = [r for r in ROWS if r[1] == region]
        expected.append(
            [region, len(group), sum(r[3] for r in group), sum(r[2] for r in group) / len(group)]
        )
    assert rows_of(body) == expected
    assert body["result_sha256"] == result_digest(body["result"]["columns"], expected)
    # The whole table is one group of 27 rows.
    status, whole = await ask(paris, agreement_id, "SELECT count(*), stddev(age) FROM data")
    assert status == 200, whole
    assert rows_of(whole)[0][0] == 27
    # The negotiation of the compute offer spoke schema-valid DSP 2025-1.
    assert isinstance(fed.router, RecordingRouter)
    assert check_messages(fed.router.messages) >= 4
    # Both audit logs hold the query with the same result digest.
    for member in (paris, berlin):
        async with member.node.db.session() as session:
            entries = await list_entries(session, limit=1000)
        answered = [e for e in entries if e.action == "pool.query.answered"]
        assert [e.details["resultSha256"] for e in answered] == [
            body["result_sha256"],
            whole["result_sha256"],
        ]


REFUSED = [
    ("SELECT * FROM data", "SELECT * returns rows"),
    ("SELECT id FROM data", "id is neither in GROUP BY nor aggregated"),
    ("SELECT id, income FROM data GROUP BY id", "income is neither in GROUP BY nor aggregated"),
    ("SELECT count(*) FROM read_csv('/etc/passwd')", "FROM must name the table data"),
    ("SELECT count(*) FROM '/etc/passwd'", "FROM must name the table data"),
    ("SELECT sum(length(read_text('/etc/passwd'))) FROM data", "an aggregate takes a bare column"),
    ("SELECT count(*) FROM data WHERE region = read_csv('/etc/passwd')", "read_csv is not allowed"),
    ("SELECT count(*) FROM data WHERE region IN (SELECT * FROM glob('/*'))", "IN takes a list"),
    ("SELECT count(*) FROM data WHERE region = (SELECT max(region) FROM data)", "subqueries"),
    ("ATTACH '/tmp/stolen.db' AS stolen", "not ATTACH"),
    ("COPY data TO '/tmp/stolen.csv'", "not COPY"),
    ("COPY (SELECT * FROM data) TO '/tmp/stolen.parquet'", "not COPY"),
    ("INSTALL httpfs", "not INSTALL"),
    ("LOAD httpfs", "not LOAD"),
    ("SET enable_external_access = true", "not SET"),
    ("PRAGMA database_list", "not PRAGMA"),
    ("SELECT count(*) FROM data; COPY data TO '/tmp/x.csv'", "send one statement, not 2"),
    ("WITH d AS (SELECT * FROM data) SELECT count(*) FROM d", "WITH is not allowed"),
    ("SELECT max(income) FROM data", "max (it returns one row's value) is not allowed"),
    ("SELECT sum(income) OVER () FROM data", "window functions"),
    ("SELECT sum(income * (id = 7)::int) FROM data", "an aggregate takes a bare column"),
    ("SELECT count(*) FILTER (WHERE id = 7) FROM data", "FILTER is not allowed"),
    ("SELECT region, count(*) FROM data GROUP BY region = 'C'", "group by bare columns only"),
    ("SELECT count(*) FROM data WHERE 1 / (id - 7) > 0", "is not allowed in WHERE"),
]


async def test_row_level_selects_escapes_and_other_statements_are_refused_leaking_nothing(
    fed: Federation,
) -> None:
    paris, berlin = fed.nodes[1], fed.nodes[2]
    agreement_id = await agreed(fed, compute_offer())
    for sql, reason in REFUSED:
        status, body = await ask(paris, agreement_id, sql)
        assert status == 400, (sql, body)
        assert reason in body["detail"], (sql, body["detail"])
        assert body["query"]["state"] == "refused"
        assert body["query"]["result"] is None
        text = json.dumps(body)
        assert "root:" not in text  # nothing of /etc/passwd
        assert not any(str(r[3]) in text for r in ROWS if r[3] > 9999)  # no income
    assert not Path("/tmp/stolen.db").exists()
    assert not Path("/tmp/stolen.csv").exists()
    # Each refusal is in Berlin's audit log with its reason.
    async with berlin.node.db.session() as session:
        entries = await list_entries(session, limit=1000)
    refused = [e for e in entries if e.action == "pool.query.refused"]
    assert [e.details["query"] for e in refused] == [sql for sql, _ in REFUSED]


async def test_groups_below_k_are_absent_and_a_unique_key_releases_nothing(
    fed: Federation,
) -> None:
    paris = fed.nodes[1]
    agreement_id = await agreed(fed, compute_offer())
    status, body = await ask(paris, agreement_id, "SELECT id, count(*) FROM data GROUP BY id")
    assert (status, rows_of(body)) == (200, [])
    status, body = await ask(
        paris, agreement_id, "SELECT region, sum(income) FROM data GROUP BY region"
    )
    assert status == 200, body
    assert sorted(row[0] for row in rows_of(body)) == ["A", "B"]
    small = sum(r[3] for r in ROWS if r[1] == "C")
    assert small not in {row[1] for row in rows_of(body)}


async def test_differencing_attack_is_blocked(fed: Federation) -> None:
    """count(*)/sum over everyone, then over everyone but resident 7: the second would give
    resident 7's income by subtraction. The filter leaves out 1 row (fewer than k) of the
    group, so the group is left out: nothing comes back."""
    paris = fed.nodes[1]
    agreement_id = await agreed(fed, compute_offer())
    status, everyone = await ask(paris, agreement_id, "SELECT count(*), sum(income) FROM data")
    assert (status, rows_of(everyone)) == (200, [[27, sum(r[3] for r in ROWS)]])
    status, but_one = await ask(
        paris, agreement_id, "SELECT count(*), sum(income) FROM data WHERE id <> 7"
    )
    assert (status, rows_of(but_one)) == (200, [])
    # Per group too: region A loses resident 7 and is left out; B is whole and released.
    status, grouped = await ask(
        paris, agreement_id, "SELECT region, sum(income) FROM data WHERE id <> 7 GROUP BY region"
    )
    assert status == 200
    assert rows_of(grouped) == [["B", sum(r[3] for r in ROWS if r[1] == "B")]]
    # A filter that leaves out k or more rows of a group is fine: adults over 30.
    status, over = await ask(paris, agreement_id, "SELECT count(*) FROM data WHERE age > 30")
    assert rows_of(over) == [[sum(1 for r in ROWS if r[2] > 30)]]


async def test_queries_need_an_agreement_of_the_caller_and_its_purpose(fed: Federation) -> None:
    paris, berlin, zurich = fed.nodes[1], fed.nodes[2], fed.nodes[3]
    agreement_id = await agreed(fed, compute_offer())
    status, body = await ask(paris, "urn:uuid:no-such-agreement", "SELECT count(*) FROM data")
    assert status == 404
    # Zurich signs a query with Paris's agreement id: the same answer as for none at all.
    async with zurich.client() as http:
        response = await http.post(
            f"{berlin.url}{BASE_PATH}/pools/queries",
            json={"agreementId": agreement_id, "query": "SELECT count(*) FROM data"},
        )
    assert response.status_code == 404
    assert response.json()["detail"] == f"no agreement {agreement_id} with you"
    # Outside the agreement's purposes.
    status, body = await ask(paris, agreement_id, "SELECT count(*) FROM data", purpose="marketing")
    assert status == 403, body
    assert "purpose isAnyOf" in body["detail"]
    assert "purpose is 'marketing'" in body["detail"]
    status, body = await ask(paris, agreement_id, "SELECT count(*) FROM data", purpose="research")
    assert status == 200, body


async def test_a_compute_only_agreement_gives_no_download(fed: Federation) -> None:
    paris = fed.nodes[1]
    agreement_id = await agreed(fed, compute_offer())
    async with paris.http() as http:
        started = await http.post(
            "/api/v1/transfers",
            headers=await paris.admin_headers(),
            json={"agreement_id": agreement_id},
        )
        await settle(fed)
        if started.status_code == 201:
            shown = await http.get(
                f"/api/v1/transfers/{started.json()['id']}", headers=await paris.admin_headers()
            )
            tp = shown.json()
            assert tp["state"] == "TERMINATED", tp
            assert "no permission covers the action 'use'" in " ".join(tp["reason"])
        else:
            assert "no permission covers the action 'use'" in started.text


async def test_differential_privacy_noises_debits_and_refuses_past_the_budget(
    fed: Federation,
) -> None:
    paris, berlin = fed.nodes[1], fed.nodes[2]
    agreement_id = await agreed(fed, compute_offer(c("rhenus:dpEpsilonBudget", "lteq", "1.0")))
    sql = "SELECT region, count(*), avg(age) FROM data GROUP BY region"
    status, body = await ask(paris, agreement_id, sql)
    assert status == 400
    assert "send epsilon" in body["detail"]
    status, body = await ask(paris, agreement_id, sql, epsilon="0.4")
    assert status == 400
    assert "needs bounds for age" in body["detail"]
    for refused, reason in [
        ("SELECT sum(income) FROM data HAVING sum(income) > 5", "HAVING is not allowed with"),
        ("SELECT stddev(age) FROM data", "stddev cannot be made differentially private"),
    ]:
        status, body = await ask(paris, agreement_id, refused, epsilon="0.1")
        assert (status, reason in body["detail"]) == (400, True), body
    lefts = []
    for _ in range(2):
        status, body = await ask(paris, agreement_id, sql, epsilon="0.4", bounds={"age": [0, 60]})
        assert status == 200, body
        lefts.append(body["epsilon_left"])
        rows = rows_of(body)
        assert [row[0] for row in rows] == ["A", "B"] or sorted(r[0] for r in rows) == ["A", "B"]
        for row in rows:
            assert isinstance(row[1], int)
            assert row[1] >= 0
            assert row[2] is None or 0 <= row[2] <= 60
    assert lefts == ["0.6", "0.2"]
    status, body = await ask(paris, agreement_id, sql, epsilon="0.4", bounds={"age": [0, 60]})
    assert status == 409, body
    assert "exceed the agreement's budget (0.2 left)" in body["detail"]
    status, body = await ask(paris, agreement_id, "SELECT count(*) FROM data", epsilon="0.2")
    assert status == 200, body
    assert body["epsilon_left"] == "0"
    status, body = await ask(paris, agreement_id, "SELECT count(*) FROM data", epsilon="0.000001")
    assert status == 409
    async with berlin.node.db.session() as session:
        entries = await list_entries(session, limit=1000)
    accepted = [e.details["epsilonLeft"] for e in entries if e.action == "pool.query.accepted"]
    assert accepted == ["0.6", "0.2", "0"]


async def test_a_tracker_the_guard_cannot_see_is_noised_under_differential_privacy(
    fed: Federation,
) -> None:
    """Two filters that each leave out many rows can still differ by one resident (age > 30
    and age > 31: resident 11 is 31): a tracker, which no syntactic rule stops. Without a
    budget the difference is exact (the documented gap); with one, both counts are noised (at
    ε = 0.05 the difference has a standard deviation of about 28)."""
    paris = fed.nodes[1]
    exact = await agreed(fed, compute_offer())
    _, wide = await ask(paris, exact, "SELECT count(*) FROM data WHERE age > 30")
    _, narrow = await ask(paris, exact, "SELECT count(*) FROM data WHERE age > 31")
    assert rows_of(wide)[0][0] - rows_of(narrow)[0][0] == 1
    private = await agreed(fed, compute_offer(c("rhenus:dpEpsilonBudget", "lteq", "10")))
    differences = set()
    for _ in range(5):
        _, wide = await ask(
            paris, private, "SELECT count(*) FROM data WHERE age > 30", epsilon="0.05"
        )
        _, narrow = await ask(
            paris, private, "SELECT count(*) FROM data WHERE age > 31", epsilon="0.05"
        )
        differences.add(rows_of(wide)[0][0] - rows_of(narrow)[0][0])
    assert differences != {1}
