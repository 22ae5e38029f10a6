"""Data pools on live nodes: Paris's federated queries over three providers — Berlin, Bayern and
Zürich, each a ``rhenus run`` process with its own data — over TLS, through the API and through
``rhenus pools query --pool pool.toml``. Without differential privacy the merged mean is the
mean over the union of the providers' rows, exactly, grouped or not."""

from __future__ import annotations

import json
import re
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pytest
from typer.testing import CliRunner

from rhenus.cli import app
from rhenus.core.tls import client_ssl_context
from rhenus.dataspace.pools import poolfile
from rhenus.demo.nodes import Fleet, LiveNode, dev_tls, free_port
from rhenus.trust.did import did_for_url

FACTS: dict[str, dict[str, str]] = {
    "fr-mininterieur": {"legal_name": "Ministère de l'Intérieur", "vat_id": "FR40303265045",
                        "headquarters": "FR-75C", "legal_address": "FR-75C"},
    "de-berlin": {"legal_name": "Land Berlin", "vat_id": "DE136695976",
                  "headquarters": "DE-BE", "legal_address": "DE-BE"},
    "de-bayern": {"legal_name": "Freistaat Bayern", "vat_id": "DE129523996",
                  "headquarters": "DE-BY", "legal_address": "DE-BY"},
    "ch-zurich": {"legal_name": "Kanton Zürich", "lei_code": "5299000J2N45DDNE4Y28",
                  "headquarters": "CH-ZH", "legal_address": "CH-ZH"},
}  # fmt: skip
PROVIDERS = ("de-berlin", "de-bayern", "ch-zurich")


def c(left: str, op: str, right: Any) -> dict[str, Any]:
    return {"leftOperand": left, "operator": op, "rightOperand": right}


K5 = [c("purpose", "eq", "statistics"), c("rhenus:minGroupSize", "gteq", "5")]
COMPUTE = {"permission": [{"action": "compute", "constraint": K5}]}
BUDGETED = {
    "permission": [
        {"action": "compute", "constraint": [*K5, c("rhenus:dpEpsilonBudget", "lteq", "1")]}
    ]
}

# (region, age). Berlin: A 6, B 7. Bayern: A 5, B 3 (below k), C 8. Zürich: A 7, C 5, D 2.
ROWS: dict[str, list[tuple[str, int]]] = {
    "de-berlin": [("A", 30 + i) for i in range(6)] + [("B", 50 + i) for i in range(7)],
    "de-bayern": [("A", 21 + 2 * i) for i in range(5)] + [("B", 80 + i) for i in range(3)]
    + [("C", 40 + 3 * i) for i in range(8)],
    "ch-zurich": [("A", 60 + i) for i in range(7)] + [("C", 18 + i) for i in range(5)]
    + [("D", 99), ("D", 98)],
}  # fmt: skip


def csv_of(rows: list[tuple[str, int]]) -> bytes:
    return ("region,age\n" + "".join(f"{r},{a}\n" for r, a in rows)).encode()


def parquet_of(rows: list[tuple[str, int]], directory: Path) -> bytes:
    """The rows as a Parquet file (written by DuckDB), to read at the provider in place."""
    path = directory / "rows.parquet"
    conn = duckdb.connect()
    conn.execute("CREATE TABLE t (region VARCHAR, age INTEGER)")
    conn.executemany("INSERT INTO t VALUES (?, ?)", rows)
    conn.execute(f"COPY t TO '{path}' (FORMAT parquet)")
    conn.close()
    return path.read_bytes()


@dataclass
class Pool:
    nodes: dict[str, LiveNode]
    http: httpx.Client
    datasets: dict[str, str]  # provider → dataset id
    agreements: dict[str, str]  # provider → Paris's agreement id
    budgeted: str  # an agreement for Berlin's data under a differential-privacy budget

    @property
    def paris(self) -> LiveNode:
        return self.nodes["fr-mininterieur"]


def ok(response: httpx.Response) -> Any:
    assert not response.is_error, f"{response.request.url}: {response.status_code} {response.text}"
    return response.json()


def publish(http: httpx.Client, node: LiveNode, content: bytes, media: str, offer: Any) -> str:
    metadata = {"title": {"en": "Residents by age"}, "theme": "SOCI", "license": "CC-BY-4.0",
                "publisher": node.organisation}  # fmt: skip
    dataset = ok(http.post(f"{node.url}/api/v1/datasets", headers=node.headers(), json=metadata))
    base = f"{node.url}/api/v1/datasets/{dataset['id']}"
    ok(http.put(f"{base}/content", content=content,
                headers={**node.headers(), "content-type": media}))  # fmt: skip
    ok(http.post(f"{base}/offers", headers=node.headers(), json={"policy": offer}))
    ok(http.post(f"{base}/publish", headers=node.headers()))
    return str(dataset["id"])


def agree(http: httpx.Client, paris: LiveNode, provider: LiveNode, dataset_id: str) -> str:
    request = {"provider_url": provider.url, "dataset_id": dataset_id, "purpose": "statistics"}
    api = f"{paris.url}/api/v1/contracts/negotiations"
    started = ok(http.post(api, headers=paris.headers(), json=request))
    deadline = time.monotonic() + 30
    while True:
        neg = ok(http.get(f"{api}/{started['id']}", headers=paris.headers()))
        if neg["state"] in {"FINALIZED", "TERMINATED"} or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert neg["state"] == "FINALIZED", neg["reason"]
    return str(neg["agreement_id"])


@pytest.fixture(scope="module")
def pool() -> Iterator[Pool]:
    """An anchor, Paris and the three providers, certified; each provider's rows published for
    computation only (k = 5; Bayern's as Parquet); Paris's agreement with each."""
    with ExitStack() as stack:
        root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="rhenus-pools-")))
        ca_file, tls = dev_tls(root / "ca", ["anchor", *FACTS])
        port = free_port()
        trusted = {"RHENUS_TRUSTED_ANCHORS": json.dumps([did_for_url(f"https://127.0.0.1:{port}")])}
        fleet = stack.enter_context(Fleet())
        http = stack.enter_context(httpx.Client(timeout=60, verify=client_ssl_context(ca_file)))
        anchor_env = {**trusted, **tls["anchor"], "RHENUS_TRUST_ANCHOR": "true"}
        anchor = fleet.start("anchor", "Anchor", root / "anchor", port=port, extra_env=anchor_env)
        nodes = {}
        for name, facts in FACTS.items():
            node = fleet.start(name, facts["legal_name"], root / name,
                               extra_env={**trusted, **tls[name]})  # fmt: skip
            node.sign_in(http, f"{name}-test-password")
            api = f"{node.url}/api/v1/trust"
            ok(http.post(f"{api}/participant", headers=node.headers(), json=facts))
            ok(http.post(f"{api}/compliance-requests", headers=node.headers(),
                         json={"anchor_url": anchor.url}))  # fmt: skip
            nodes[name] = node
        datasets, agreements = {}, {}
        for name in PROVIDERS:
            if name == "de-bayern":
                content, media = parquet_of(ROWS[name], root), "application/vnd.apache.parquet"
            else:
                content, media = csv_of(ROWS[name]), "text/csv"
            datasets[name] = publish(http, nodes[name], content, media, COMPUTE)
            agreements[name] = agree(http, nodes["fr-mininterieur"], nodes[name], datasets[name])
        private = publish(http, nodes["de-berlin"], csv_of(ROWS["de-berlin"]), "text/csv", BUDGETED)
        budgeted = agree(http, nodes["fr-mininterieur"], nodes["de-berlin"], private)
        yield Pool(nodes, http, datasets, agreements, budgeted)


def federated(space: Pool, agreement_ids: list[str], sql: str) -> dict[str, Any]:
    paris = space.paris
    return dict(
        ok(
            space.http.post(
                f"{paris.url}/api/v1/pools/federated-queries",
                headers=paris.headers(),
                json={"agreement_ids": agreement_ids, "sql": sql},
            )
        )
    )


def expected(rows: list[tuple[str, int]]) -> list[Any]:
    ages = [a for _, a in rows]
    return [rows[0][0], len(ages), sum(ages), sum(ages) / len(ages)]


def released(name: str) -> list[tuple[str, int]]:
    """The rows of ``name`` in the groups it releases (at least k = 5 rows)."""
    rows = ROWS[name]
    return [r for r in rows if sum(1 for s in rows if s[0] == r[0]) >= 5]


def test_a_federated_mean_over_three_live_providers_equals_the_mean_over_their_union(
    pool: Pool,
) -> None:
    ids = [pool.agreements[name] for name in PROVIDERS]
    union = [r for name in PROVIDERS for r in ROWS[name]]
    body = federated(pool, ids, "SELECT count(*) AS n, avg(age) AS mean FROM data")
    assert body["columns"] == ["n", "mean"]
    assert body["rows"] == [[len(union), sum(a for _, a in union) / len(union)]]
    assert [(p["provider"], p["state"], p["groups"]) for p in body["contributions"]] == [
        (pool.nodes[name].did, "answered", 1) for name in PROVIDERS
    ]


def test_a_grouped_federated_query_merges_each_group_over_the_providers_that_release_it(
    pool: Pool,
) -> None:
    ids = [pool.agreements[name] for name in PROVIDERS]
    body = federated(
        pool, ids,
        "SELECT region, count(*) AS n, sum(age) AS total, avg(age) AS mean FROM data "
        "GROUP BY region",
    )  # fmt: skip
    # B is Berlin's alone (Bayern holds 3 of it, below k); D (2 rows at Zürich) is nobody's.
    union = [r for name in PROVIDERS for r in released(name)]
    assert body["rows"] == [
        expected([r for r in union if r[0] == region]) for region in ("A", "B", "C")
    ]
    assert [p["groups"] for p in body["contributions"]] == [2, 2, 2]


def rhenus_as(node: LiveNode, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), env={**node.env, "COLUMNS": "200"})
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


def pool_file(path: Path, space: Pool, *, with_budgeted: bool = False) -> Path:
    """Berlin by agreement and DID, Bayern by URL and dataset, Zürich by agreement; and, if
    asked, Berlin's budgeted agreement (which refuses a query without ε)."""
    berlin, bayern = space.nodes["de-berlin"], space.nodes["de-bayern"]
    text = f"""purpose = "statistics"

[[providers]]
name = "Berlin"
agreement_id = "{space.agreements["de-berlin"]}"
did = "{berlin.did}"

[[providers]]
name = "Bayern"
url = "{bayern.url}"
dataset_id = "{space.datasets["de-bayern"]}"

[[providers]]
agreement_id = "{space.agreements["ch-zurich"]}"
"""
    if with_budgeted:
        text += f'\n[[providers]]\nname = "Berlin (private)"\nagreement_id = "{space.budgeted}"\n'
    path.write_text(text)
    return path


def test_rhenus_pools_query_prints_the_merged_result_and_each_contribution(
    pool: Pool, tmp_path: Path
) -> None:
    spec = pool_file(tmp_path / "pool.toml", pool, with_budgeted=True)
    sql = "SELECT region, avg(age) FROM data GROUP BY region"
    code, out = rhenus_as(pool.paris, "pools", "query", "--pool", str(spec), sql)
    assert code == 0, out
    union = [r for name in PROVIDERS for r in released(name)]
    for region in ("A", "B", "C"):
        mean = expected([r for r in union if r[0] == region])[3]
        assert f"│ {region}      │ {mean:.2f} " in out, out
    assert "│ D " not in out
    assert "merged result" in out
    zurich = pool.nodes["ch-zurich"].did
    for label, did in (("Berlin", pool.nodes["de-berlin"].did),
                       ("Bayern", pool.nodes["de-bayern"].did), (zurich, zurich)):  # fmt: skip
        assert f"│ {label} " in out, out
        assert did in out
    lines = [line for line in out.splitlines() if "answered" in line]
    assert len(lines) == 3, out
    assert all("│ 2 " in line for line in lines), out
    refused = [line for line in out.splitlines() if "refused" in line]
    assert len(refused) == 1
    assert "Berlin (private)" in refused[0]
    assert "send epsilon" in refused[0]

    code, out = rhenus_as(pool.paris, "pools", "query", "--pool", str(spec), "--json", sql)
    assert code == 0, out
    merged = json.loads(out)
    assert merged["columns"] == ["region", "avg(age)"]
    assert merged["rows"] == [
        [region, expected([r for r in union if r[0] == region])[3]] for region in ("A", "B", "C")
    ]
    assert [p["state"] for p in merged["contributions"]] == [*["answered"] * 3, "refused"]


def test_rhenus_pools_query_refuses_a_pool_file_that_does_not_match_the_agreements(
    pool: Pool, tmp_path: Path
) -> None:
    sql = "SELECT count(*) FROM data"
    wrong = tmp_path / "wrong.toml"
    wrong.write_text(
        f'[[providers]]\nagreement_id = "{pool.agreements["de-berlin"]}"\n'
        f'url = "{pool.nodes["ch-zurich"].url}"\n'
    )
    code, out = rhenus_as(pool.paris, "pools", "query", "--pool", str(wrong), sql)
    assert code == 1, out
    assert f"is with {pool.nodes['de-berlin'].did}" in out.replace("\n", "")
    unknown = tmp_path / "unknown.toml"
    unknown.write_text('[[providers]]\ndataset_id = "urn:uuid:nothing-agreed"\n')
    code, out = rhenus_as(pool.paris, "pools", "query", "--pool", str(unknown), sql)
    assert code == 1
    assert "no agreement for the dataset urn:uuid:nothing-agreed" in out
    broken = tmp_path / "broken.toml"
    broken.write_text("[[providers]]\nname = 'only a name'\n")
    code, out = rhenus_as(pool.paris, "pools", "query", "--pool", str(broken), sql)
    assert code == 2
    assert "agreement_id" in out
    # Every provider refusing (min is not among the agreements' functions): exit 1, with why.
    spec = pool_file(tmp_path / "pool.toml", pool)
    code, out = rhenus_as(pool.paris, "pools", "query", "--pool", str(spec),
                          "SELECT min(age) FROM data")  # fmt: skip
    assert code == 1
    assert out.count("refused") == 3
    assert "no provider answered" in out


def test_the_pool_files_of_the_documentation_are_valid(tmp_path: Path) -> None:
    docs = Path(__file__).resolve().parents[2] / "docs" / "pools.md"
    sources = [docs.read_text(), poolfile.__doc__ or ""]
    for source, labels in zip(sources, (["Berlin", "Bayern", "urn:uuid:c2d9…"],
                                        ["de-berlin", "https://de-bayern.example.eu"]),
                              strict=True):  # fmt: skip
        found = re.search(r"```toml\n(.*?)\n```", source, re.S)
        assert found is not None
        (tmp_path / "pool.toml").write_text(found.group(1))
        spec = poolfile.load(tmp_path / "pool.toml")
        assert spec.purpose == "statistics"
        assert [p.label for p in spec.providers] == labels
