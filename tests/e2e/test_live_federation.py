"""A trust anchor and two participant nodes as real processes on loopback, over TLS with the
development CA, driven by the CLI: self-descriptions, compliance, signed calls both ways,
revocation."""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rhenus.cli import app
from rhenus.demo.nodes import Fleet, LiveNode, dev_tls, free_port
from rhenus.trust.did import did_for_url


def rhenus_as(node: LiveNode, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), env={**node.env, "COLUMNS": "200"})
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


@pytest.fixture(scope="module")
def federation() -> Iterator[dict[str, LiveNode]]:
    with ExitStack() as stack:
        root = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        _, tls = dev_tls(root / "ca", ["anchor", "paris", "berlin"])
        port = free_port()
        common = {
            "RHENUS_TRUSTED_ANCHORS": json.dumps([did_for_url(f"https://127.0.0.1:{port}")]),
            "RHENUS_COMPLIANCE_CACHE_SECONDS": "0",
        }
        fleet = stack.enter_context(Fleet())
        anchor_env = {**common, **tls["anchor"], "RHENUS_TRUST_ANCHOR": "true"}
        nodes = {
            "anchor": fleet.start(
                "anchor", "Anchor", root / "anchor", port=port, extra_env=anchor_env
            ),
            "paris": fleet.start(
                "fr-mininterieur", "Ministère", root / "paris", extra_env={**common, **tls["paris"]}
            ),
            "berlin": fleet.start(
                "de-berlin", "Land Berlin", root / "berlin", extra_env={**common, **tls["berlin"]}
            ),
        }
        assert all(node.url.startswith("https://") for node in nodes.values())
        yield nodes


FACTS = {
    "paris": [
        "--legal-name",
        "Ministère de l'Intérieur",
        "--vat",
        "FR40303265045",
        "--headquarters",
        "FR-75C",
        "--legal-address",
        "FR-75C",
    ],
    "berlin": [
        "--legal-name",
        "Land Berlin",
        "--vat",
        "DE136695976",
        "--headquarters",
        "DE-BE",
        "--legal-address",
        "DE-BE",
    ],
}


def test_participants_obtain_compliance_and_call_each_other(
    federation: dict[str, LiveNode],
) -> None:
    anchor = federation["anchor"]
    for name in ("paris", "berlin"):
        node = federation[name]
        code, out = rhenus_as(node, "federation", "ping", federation["anchor"].url)
        assert code == 1
        assert "publishes no compliance credential" in out or "has no compliance" in out
        assert rhenus_as(node, "trust", "participant", "create", *FACTS[name])[0] == 0
        code, out = rhenus_as(node, "trust", "request-compliance", "--anchor", anchor.url)
        assert code == 0, out
        assert "Compliant" in out
        assert "sovereign" in out
        code, out = rhenus_as(node, "trust", "status")
        assert anchor.did in out
    for sender, receiver in (("paris", "berlin"), ("berlin", "paris")):
        code, out = rhenus_as(federation[sender], "federation", "ping", federation[receiver].url)
        assert code == 0, out
        assert f"verified this node as {federation[sender].did}" in out


def test_a_node_crawls_another_and_finds_exactly_what_it_may_see(
    federation: dict[str, LiveNode], tmp_path: Path
) -> None:
    """Two live nodes over TLS: Berlin publishes three datasets with different access
    policies; Paris follows Berlin, crawls, and finds the two meant for it; Berlin withdraws
    one; after the next crawl Paris no longer finds it."""
    paris, berlin = federation["paris"], federation["berlin"]
    data = tmp_path / "haltestellen.csv"
    data.write_text("haltestelle;linie\nAlexanderplatz;U2\n")
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({"permission": [{"action": "use"}]}))
    published = {}
    for title, access in (
        ("de:Haltestellen für alle", []),
        ("de:Haltestellen für Paris", ["--participant", paris.did]),
        ("de:Haltestellen für Wien", ["--participant", "did:web:wien.gv.at"]),
    ):
        code, out = rhenus_as(
            berlin, "datasets", "add", str(data), "--title", title, "--policy", str(policy), *access
        )
        assert code == 0, out
        published[title[3:]] = out.split("Published ")[1].split(" ")[0]

    assert rhenus_as(paris, "catalogue", "peers", "add", berlin.url)[0] == 0
    code, out = rhenus_as(paris, "catalogue", "crawl")
    assert code == 0, out
    assert berlin.did in out

    def titles_found() -> set[str]:
        code, out = rhenus_as(paris, "catalogue", "search", "Haltestelle", "--json")
        assert code == 0, out
        result = json.loads(out)
        assert all(hit["origin"] == berlin.did for hit in result["hits"])
        return {hit["title"]["de"] for hit in result["hits"]}

    assert titles_found() == {"Haltestellen für alle", "Haltestellen für Paris"}
    code, out = rhenus_as(berlin, "datasets", "withdraw", published["Haltestellen für Paris"])
    assert code == 0, out
    assert titles_found() == {"Haltestellen für alle", "Haltestellen für Paris"}  # not yet
    assert rhenus_as(paris, "catalogue", "crawl")[0] == 0
    assert titles_found() == {"Haltestellen für alle"}


def test_contract_negotiated_data_pulled_and_receipts_verified_from_the_cli(
    federation: dict[str, LiveNode], tmp_path: Path
) -> None:
    """``rhenus contracts negotiate``, ``contracts list``, ``transfers pull`` and
    ``audit verify --receipts`` between two live nodes."""
    paris, berlin = federation["paris"], federation["berlin"]
    data = tmp_path / "bezirke.csv"
    data.write_bytes(b"bezirk;einwohner\n" + b"Mitte;397134\n" * 5000)
    policy = tmp_path / "policy.json"
    policy.write_text(
        json.dumps({"permission": [{"action": "use", "constraint": [
            {"leftOperand": "purpose", "operator": "eq", "rightOperand": "statistics"}]}]})
    )  # fmt: skip
    code, out = rhenus_as(
        berlin, "datasets", "add", str(data), "--title", "de:Bezirke", "--policy", str(policy)
    )
    assert code == 0, out
    dataset = out.split("Published ")[1].split(" ")[0]

    code, out = rhenus_as(paris, "contracts", "negotiate", dataset, "--from", berlin.url,
                          "--purpose", "marketing")  # fmt: skip
    assert code == 1, out
    assert "TERMINATED" in out
    assert "purpose" in out
    code, out = rhenus_as(paris, "contracts", "negotiate", dataset, "--from", berlin.url,
                          "--purpose", "statistics")  # fmt: skip
    assert code == 0, out
    assert "FINALIZED" in out
    agreement = out.split("Agreement ")[1].split()[0]
    code, out = rhenus_as(paris, "contracts", "list")
    assert code == 0
    assert agreement[:20] in out.replace("\n", "")

    target = tmp_path / "pulled.csv"
    code, out = rhenus_as(paris, "transfers", "pull", agreement, "-o", str(target))
    assert code == 0, out
    assert target.read_bytes() == data.read_bytes()
    assert "verified" in out
    for node in (paris, berlin):
        for _ in range(100):  # the receipt is signed and countersigned in the background
            code, out = rhenus_as(node, "audit", "verify", "--receipts")
            if "1 of 1 receipts verified" in out:
                break
            time.sleep(0.1)
        assert code == 0, out
        assert "1 of 1 receipts verified" in out


def test_revoked_participant_is_refused(federation: dict[str, LiveNode]) -> None:
    paris, berlin = federation["paris"], federation["berlin"]
    code, out = rhenus_as(federation["anchor"], "trust", "revoke", paris.did)
    assert code == 0, out
    code, out = rhenus_as(paris, "federation", "ping", berlin.url)
    assert code == 1
    assert "403" in out
    assert "revoked" in out
    assert rhenus_as(berlin, "federation", "ping", paris.url)[0] == 0  # Berlin is still fine


def test_plain_http_is_refused_unless_allowed_and_loopback(tmp_path: Path) -> None:
    env = {"RHENUS_HOME": str(tmp_path), "COLUMNS": "200"}
    assert CliRunner().invoke(app, ["init"], env=env).exit_code == 0
    cases = [
        ({}, "http://127.0.0.1:9"),  # loopback, but insecure HTTP not allowed
        ({"RHENUS_FEDERATION_INSECURE_HTTP": "true"}, "http://peer.invalid:8080"),
    ]
    for extra, target in cases:
        result = CliRunner().invoke(app, ["federation", "ping", target], env={**env, **extra})
        assert result.exit_code == 1
        assert "refusing plain HTTP" in result.output
