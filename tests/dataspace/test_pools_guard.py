"""The compute-to-data guard and its DuckDB, without nodes: what the ODRL engine accepts on a
permission to compute, what the guard refuses and rewrites, what the locked-down DuckDB refuses
on its own, and — for random aggregate queries over random data — that no released row ever
comes from fewer than k rows."""

from __future__ import annotations

import csv
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rhenus.dataspace.policy.schemas import AccessRequest, ComputeFacts
from rhenus.dataspace.policy.service import agreement_request, check, compute_terms, evaluate
from rhenus.dataspace.pools import engine
from rhenus.dataspace.pools.release import laplace, release
from rhenus.dataspace.pools.sql_guard import Refused, plan

ALL = frozenset({"count", "sum", "avg", "stddev", "variance", "min", "max", "median"})
LIMITS = engine.Limits(max_rows=100_000, seconds=20, memory_mib=128, threads=1)


def c(left: str, op: str, right: Any) -> dict[str, Any]:
    return {"leftOperand": left, "operator": op, "rightOperand": right}


# -- the policy terms --------------------------------------------------------------------------
def test_check_accepts_compute_terms_on_a_permission_to_compute() -> None:
    offer = {"permission": [{"action": "compute", "constraint": [
        c("purpose", "eq", "statistics"), c("rhenus:minGroupSize", "gteq", 10),
        c("rhenus:dpEpsilonBudget", "lteq", "1.5"), c("rhenus:maxRows", "lteq", 1_000_000),
        c("rhenus:maxSeconds", "lteq", 5), c("https://w3id.org/rhenus/maxMemoryMiB", "lteq", 256),
        c("rhenus:aggregateFunction", "isAnyOf", ["count", "sum", "max"]),
    ]}]}  # fmt: skip
    assert check(policy=offer) == []
    terms = compute_terms(policy=offer)
    assert terms is not None
    assert (terms.min_group_size, terms.epsilon_budget_micro, terms.max_rows) == (
        10, 1_500_000, 1_000_000
    )  # fmt: skip
    assert (terms.max_seconds_micro, terms.max_memory_mib) == (5_000_000, 256)
    assert terms.aggregates == {"count", "sum", "max"}
    # Agreeing to it is decided for the action compute, within the offer's own bounds.
    action, facts = agreement_request(policy=offer)
    assert action == "compute"
    assert facts is not None
    assert facts.min_group_size == 10


def test_check_refuses_compute_terms_anywhere_but_on_a_permission_to_compute() -> None:
    offer = {
        "permission": [{"action": "use", "constraint": [c("rhenus:minGroupSize", "gteq", 5)]}],
        "prohibition": [{"action": "compute", "constraint": [c("rhenus:maxRows", "lteq", 9)]}],
    }
    assert check(policy=offer) == [
        "permission[0]: rhenus:minGroupSize constrains a permission to compute only, "
        "not a permission to use",
        "prohibition[0]: rhenus:maxRows constrains a permission to compute only, "
        "not a prohibition to compute",
    ]


@pytest.mark.parametrize(
    ("constraint", "problem"),
    [
        (c("rhenus:minGroupSize", "lteq", 5), "operator 'lteq' does not apply"),
        (c("rhenus:minGroupSize", "gteq", 0), "0 is not a positive integer"),
        (c("rhenus:dpEpsilonBudget", "lteq", "0.0000001"), "at most 6 decimal places"),
        (c("rhenus:aggregateFunction", "isAnyOf", ["count", "list"]), "'list' is not one of"),
        (c("rhenus:maxCpu", "lteq", 1), "unknown left operand 'rhenus:maxCpu'"),
    ],
)
def test_check_reports_malformed_compute_terms(constraint: dict[str, Any], problem: str) -> None:
    problems = check(policy={"permission": [{"action": "compute", "constraint": [constraint]}]})
    assert len(problems) == 1
    assert problem in problems[0]


def test_the_engine_decides_the_budget_from_the_query_facts() -> None:
    agreement = {"permission": [{"action": "compute", "constraint": [
        c("rhenus:dpEpsilonBudget", "lteq", 1), c("rhenus:minGroupSize", "gteq", 5),
    ]}]}  # fmt: skip

    def decide(spent: int | None, k: int = 5) -> tuple[bool, list[str]]:
        facts = ComputeFacts(
            min_group_size=k, epsilon_spent_micro=spent, max_rows=1, max_seconds_micro=1,
            max_memory_mib=1, aggregates=frozenset({"count"}),
        )  # fmt: skip
        request = AccessRequest(
            action="compute", recipient="did:web:x.test", now=datetime.now(UTC), compute=facts
        )
        decision = evaluate(policy=agreement, request=request)
        return decision.permitted, decision.reasons

    assert decide(1_000_000)[0]
    assert decide(1_000_001) == (False, [
        "permission to compute: constraint rhenus:dpEpsilonBudget lteq 1 not met: ε spent under "
        "the agreement, this query included, 1.000001"
    ])  # fmt: skip
    assert decide(None)[1] == [
        "permission to compute: constraint rhenus:dpEpsilonBudget lteq 1 not met: the query "
        "would run without differential privacy"
    ]
    assert not decide(0, k=4)[0]
    # A use (a download) is no compute: the permission does not cover it.
    download = AccessRequest(recipient="did:web:x.test", now=datetime.now(UTC))
    assert not evaluate(policy=agreement, request=download).permitted


# -- the guard -----------------------------------------------------------------------------------
def test_the_rewrite_adds_the_group_size_and_what_the_filter_left_out() -> None:
    found = plan(
        "SELECT region, count(*) AS n FROM data WHERE age > 30 GROUP BY region",
        min_group_size=5, allowed=ALL,
    )  # fmt: skip
    assert found.sql == (
        'SELECT "region" AS "__rhenus_c0", COUNT(*) FILTER(WHERE "age" > 30) AS "__rhenus_c1", '
        'COUNT(*) FILTER(WHERE "age" > 30) AS "__rhenus_n", '
        'COUNT(*) - (COUNT(*) FILTER(WHERE "age" > 30)) AS "__rhenus_out" '
        'FROM data GROUP BY "region" HAVING COUNT(*) FILTER(WHERE "age" > 30) >= 5 AND '
        '(COUNT(*) - (COUNT(*) FILTER(WHERE "age" > 30)) = 0 OR '
        'COUNT(*) - (COUNT(*) FILTER(WHERE "age" > 30)) >= 5)'
    )
    assert [o.name for o in found.outputs] == ["region", "n"]


@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        ("SELECT data.* FROM data", "SELECT * returns rows"),
        ("SELECT COLUMNS('.*') FROM data", "the function columns is not allowed in SELECT"),
        ("SELECT count(*) FROM main.data", "FROM must name the table data"),
        ("SELECT count(*) FROM data TABLESAMPLE 1 ROWS", "FROM must name the table data"),
        ("SELECT count(*) FROM data USING SAMPLE 10%", "SAMPLE is not allowed"),
        ("SELECT DISTINCT region FROM data GROUP BY region", "DISTINCT is not allowed"),
        ("SELECT region, count(*) FROM data GROUP BY ALL", "GROUP BY ALL is not allowed"),
        ("SELECT region FROM data GROUP BY ROLLUP (region)", "group by bare columns only"),
        ("SELECT count(*) AS __rhenus_n FROM data", "is not a column name the pool accepts"),
        ("SELECT sum(__rhenus_n) FROM data", "is not a column of data"),
        ("SELECT count(*) FROM data WHERE region = $1", "is not allowed in WHERE"),
        ("SELECT count(*) FROM data WHERE CAST(region AS INT) > 1", "not allowed in WHERE"),
        ("SELECT count(*) FROM data WHERE getenv('HOME') = 'x'", "getenv is not allowed"),
        ("SELECT count(*) FROM data HAVING min(age) > 3", "min (it returns one row's value)"),
        ("SELECT count(*) FROM data ORDER BY age", "ORDER BY age: order by output columns"),
        ("SELECT count(*) FROM data LIMIT (SELECT 1)", "LIMIT takes a whole number"),
        ("SELECT sum(DISTINCT age) FROM data", "DISTINCT only in count(DISTINCT column)"),
        ("EXPLAIN SELECT count(*) FROM data", "only a SELECT of aggregates"),
        ("SELECT count(*) FROM data UNION SELECT count(*) FROM data", "not UNION"),
        ("SELECT list(age) FROM data", "the function array_agg is not allowed"),
        ("", "the query is empty"),
        ("SELECT count(*) FROM data WHERE (", "the query cannot be read as SQL"),
    ],
)
def test_the_guard_refuses_with_a_reason(sql: str, reason: str) -> None:
    with pytest.raises(Refused) as refused:
        plan(sql, min_group_size=5, allowed=frozenset({"count", "sum", "avg"}))
    assert reason.lower() in str(refused.value).lower(), str(refused.value)


# -- the locked-down DuckDB ------------------------------------------------------------------------
def write(path: Path, rows: list[tuple[Any, ...]], header: tuple[str, ...]) -> Path:
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def test_duckdb_itself_refuses_files_and_settings_after_loading(tmp_path: Path) -> None:
    """Were the guard ever fooled, the connection can reach no file and change no setting."""
    secret = tmp_path / "secret.csv"
    secret.write_text("x\n1\n")
    for sql in (
        f"SELECT count(*) FROM read_csv('{secret}')",
        "SET enable_external_access = true",
        f"COPY (SELECT 1) TO '{tmp_path / 'out.csv'}'",
        "INSTALL httpfs",
    ):
        data = write(tmp_path / "data.csv", [(1, "A")] * 6, ("id", "region"))
        with pytest.raises(engine.QueryFailed, match="the query failed while running"):
            engine.run(data, parquet=False, sql=sql, limits=LIMITS)
        assert not data.exists()  # the plaintext is removed once loaded
    assert not (tmp_path / "out.csv").exists()


def parquet(path: Path, rows: int) -> Path:
    """A Parquet file of ``rows`` rows (id, region), written by DuckDB."""
    conn = duckdb.connect()
    conn.execute(
        f"COPY (SELECT i AS id, ['A', 'B'][1 + i % 2] AS region FROM range({rows}) t(i)) "
        f"TO '{path}' (FORMAT parquet)"
    )
    conn.close()
    return path


def test_a_parquet_dataset_is_read_in_place_and_is_the_only_file_duckdb_may_open(
    tmp_path: Path,
) -> None:
    """Parquet is queried through a view over its file, not loaded: that one file is allowed,
    nothing else, no setting can change, and the file is removed once the query has run."""
    sql = plan("SELECT region, count(*) AS n FROM data GROUP BY region", min_group_size=5,
               allowed=ALL).sql  # fmt: skip
    data = parquet(tmp_path / "data.parquet", 20)
    rows = engine.run(data, parquet=True, sql=sql, limits=LIMITS)
    assert sorted(r[:2] for r in rows) == [("A", 10), ("B", 10)]
    assert not data.exists()
    secret = tmp_path / "secret.csv"
    secret.write_text("x\n1\n")
    for attack in (
        f"SELECT count(*) FROM read_csv('{secret}')",
        f"SELECT count(*) FROM read_parquet('{tmp_path / 'other.parquet'}')",
        f"SET allowed_paths = ['{secret}']",
        "SET enable_external_access = true",
        f"COPY (SELECT * FROM data) TO '{tmp_path / 'out.csv'}'",
    ):
        parquet(tmp_path / "other.parquet", 10)
        data = parquet(tmp_path / "data.parquet", 20)
        with pytest.raises(engine.QueryFailed, match="the query failed while running"):
            engine.run(data, parquet=True, sql=attack, limits=LIMITS)
        assert not data.exists()
    assert not (tmp_path / "out.csv").exists()
    data = parquet(tmp_path / "data.parquet", 2_000)
    few = engine.Limits(max_rows=1_000, seconds=20, memory_mib=128, threads=1)
    with pytest.raises(engine.QueryFailed, match="more than 1000 rows"):
        engine.run(data, parquet=True, sql=sql, limits=few)
    assert not data.exists()


def test_a_dataset_over_the_row_or_memory_limit_is_refused(tmp_path: Path) -> None:
    rows = [(i, "x" * 200) for i in range(40_000)]
    sql = plan("SELECT count(*) FROM data", min_group_size=5, allowed=ALL).sql
    data = write(tmp_path / "big.csv", rows, ("id", "text"))
    few = engine.Limits(max_rows=1_000, seconds=20, memory_mib=128, threads=1)
    with pytest.raises(engine.QueryFailed, match="more than 1000 rows"):
        engine.run(data, parquet=False, sql=sql, limits=few)
    data = write(tmp_path / "big.csv", rows, ("id", "text"))
    small = engine.Limits(max_rows=100_000, seconds=20, memory_mib=2, threads=1)
    with pytest.raises(engine.QueryFailed, match="does not fit in the query's 2 MiB"):
        engine.run(data, parquet=False, sql=sql, limits=small)


def test_a_query_past_its_time_limit_is_stopped(tmp_path: Path) -> None:
    data = write(tmp_path / "d.csv", [(1, "A")] * 6, ("id", "region"))
    sql = plan("SELECT count(*) FROM data", min_group_size=5, allowed=ALL).sql
    instant = engine.Limits(max_rows=100, seconds=1e-6, memory_mib=64, threads=1)
    with pytest.raises(engine.QueryFailed, match="took longer than 1e-06 s"):
        engine.run(data, parquet=False, sql=sql, limits=instant)


def test_laplace_noise_has_the_scale_it_is_asked_for() -> None:
    draws = [laplace(2.0) for _ in range(20_000)]
    mean_abs = sum(abs(d) for d in draws) / len(draws)  # E|X| = scale
    assert 1.8 < mean_abs < 2.2
    assert abs(sum(draws) / len(draws)) < 0.15


# -- the property: no released row from fewer than k rows ---------------------------------------
KEYS = ("a", "b", "c")
row_strategy = st.tuples(
    st.sampled_from(["x", "y", "z"]), st.sampled_from(["p", "q"]), st.integers(0, 9),
    st.integers(-50, 50),
)  # fmt: skip


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    rows=st.lists(row_strategy, min_size=0, max_size=60),
    keys=st.lists(st.sampled_from(KEYS), unique=True, max_size=3),
    threshold=st.one_of(st.none(), st.integers(-1, 10)),
    k=st.integers(2, 8),
)
def test_no_released_row_comes_from_fewer_than_k_rows(
    tmp_path: Path, rows: list[tuple[Any, ...]], keys: list[str], threshold: int | None, k: int
) -> None:
    where = f" WHERE c > {threshold}" if threshold is not None else ""
    group = f" GROUP BY {', '.join(keys)}" if keys else ""
    select = ", ".join([*keys, "count(*) AS n", "sum(v) AS total"])
    found = plan(f"SELECT {select} FROM data{where}{group}", min_group_size=k, allowed=ALL)
    data = write(tmp_path / "p.csv", rows, ("a", "b", "c", "v"))
    raw = engine.run(data, parquet=False, sql=found.sql, limits=LIMITS) if rows else []
    released = release(found, raw, None)

    def key(row: tuple[Any, ...]) -> tuple[Any, ...]:
        return tuple(row[KEYS.index(name)] for name in keys)

    def passes(row: tuple[Any, ...]) -> bool:
        return threshold is None or row[2] > threshold

    kept = Counter(key(r) for r in rows if passes(r))
    left_out = Counter(key(r) for r in rows if not passes(r))
    expected = {
        group_key: (n, sum(r[3] for r in rows if key(r) == group_key and passes(r)))
        for group_key, n in kept.items()
        if n >= k and (left_out[group_key] == 0 or left_out[group_key] >= k)
    }
    got = {tuple(row[: len(keys)]): (row[len(keys)], row[len(keys) + 1]) for row in released}
    assert got == expected
    assert all(n >= k for n, _ in got.values())


def test_the_offer_in_pools_md_is_accepted_and_reads_as_documented() -> None:
    import json
    import re

    text = (Path(__file__).resolve().parents[2] / "docs" / "pools.md").read_text()
    offer = next(
        json.loads(block)
        for block in re.findall(r"```json\n(.*?)\n```", text, re.S)
        if '"Offer"' in block
    )
    assert check(policy=offer) == []
    terms = compute_terms(policy=offer)
    assert terms is not None
    assert (terms.min_group_size, terms.epsilon_budget_micro, terms.max_rows) == (
        10, 1_000_000, 1_000_000
    )  # fmt: skip
    assert terms.aggregates == {"count", "sum", "avg", "min", "max"}


TOKENS = [
    "SELECT", "FROM", "data", "WHERE", "(", ")", "count", "*", ",", "'x'", "1", "GROUP", "BY",
    "a", "=", "AND", "OR", "NOT", "IN", "sum", "HAVING", "ORDER", "LIMIT", ";", "::", "[", "]",
    "$1", "?", '"q"', "OVER", "FILTER", "CASE", "WHEN", "END", "-", "read_csv",
]  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(TOKENS), max_size=20))
def test_any_text_is_planned_or_refused_with_a_reason(tokens: list[str]) -> None:
    reason = ""
    try:
        plan(" ".join(tokens), min_group_size=5, allowed=ALL)
    except Refused as refused:
        reason = str(refused) or "(no reason)"
    assert reason != "(no reason)"


def test_a_pathologically_nested_query_is_refused() -> None:
    deep = "SELECT count(*) FROM data WHERE " + "(" * 3000 + "a = 1" + ")" * 3000
    with pytest.raises(Refused, match="nested too deeply"):
        plan(deep, min_group_size=5, allowed=ALL)
