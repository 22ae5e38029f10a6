"""The federation's story, told by live nodes on this machine (``make demo``).

Each issue extends it. Today: a trust anchor and three sovereign nodes — a French ministry and
two German Länder — start from nothing, each with its own keys, database, encrypted blob store
and audit log; administrators sign in and register agents; each organisation signs its Gaia-X
self-description and obtains a compliance credential from the anchor; Paris and Berlin call
each other with requests signed by their did:web keys; Berlin publishes datasets, Paris crawls
the catalogs of the anchor's participants and a French agent's search for "hôpitaux" finds
Berlin's "Krankenhäuser"; Paris negotiates a contract for Berlin's residents dataset under its
usage policy and pulls the data under the agreement, and both audit logs hold the receipt
Berlin signed and Paris countersigned; Berlin offers patient records for computation only and
Paris runs an aggregate that Berlin computes where the data lies (groups under k withheld, a
row-level query refused), then one aggregate over the patient records of Berlin and Bayern,
merged at Paris while the rows stay with each Land; an agent asks the open-weight model inside
Paris's node; two agents chat on Paris's Matrix homeserver; every node proves its audit log
intact. Every process the demo starts is stopped at the end.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from rhenus.core.keys import Keyring
from rhenus.core.tls import client_ssl_context
from rhenus.demo import chapters
from rhenus.demo.nodes import Fleet, LiveNode, dev_tls, free_port
from rhenus.trust.client import ping
from rhenus.trust.did import did_for_url

console = Console()

BERLIN_DATASET = {
    "title": {
        "de": "Einwohner nach Bezirk",
        "en": "Residents by district",
        "fr": "Habitants par arrondissement",
    },
    "theme": "SOCI",
    "publisher": "Amt für Statistik Berlin-Brandenburg",
    "license": "https://www.govdata.de/dl-de/by-2-0",
    "keywords": ["Bevölkerung", "Bezirk"],
    "access": {"eu_only": True},
}
BERLIN_CSV = b"bezirk;einwohner\nMitte;397134\nPankow;424307\nSpandau;257091\n"
BERLIN_HOSPITALS = {
    "title": {"de": "Krankenhäuser und Betten nach Bezirk"},
    "description": {"fr": "Nombre de lits par hôpital et par arrondissement de Berlin."},
    "theme": "HEAL",
    "publisher": "Senatsverwaltung für Gesundheit Berlin",
    "license": "https://www.govdata.de/dl-de/by-2-0",
    "keywords": ["Krankenhaus", "Gesundheit"],
    "access": {"eu_only": True},
}
BERLIN_HOSPITALS_CSV = b"bezirk;krankenhaeuser;betten\nMitte;9;5120\nPankow;4;1480\n"
STATISTICS_OFFER = {
    "permission": [
        {
            "action": "use",
            "constraint": [
                {"leftOperand": "purpose", "operator": "eq", "rightOperand": "statistics"},
                {"leftOperand": "spatial", "operator": "isPartOf", "rightOperand": "EU"},
            ],
        }
    ],
}

PARTICIPANTS: dict[str, dict[str, Any]] = {
    "fr-mininterieur": {
        "organisation": "Ministère de l'Intérieur",
        "facts": {
            "legal_name": "Ministère de l'Intérieur",
            "vat_id": "FR40303265045",
            "headquarters": "FR-75C",
            "legal_address": "FR-75C",
        },
        "agent": ("jeanne.dupont", "jeanne.dupont@interieur.gouv.fr"),
    },
    "de-berlin": {
        "organisation": "Land Berlin",
        "facts": {
            "legal_name": "Land Berlin",
            "vat_id": "DE136695976",
            "headquarters": "DE-BE",
            "legal_address": "DE-BE",
        },
        "agent": ("max.mustermann", "max.mustermann@berlin.de"),
    },
    "de-bayern": {
        "organisation": "Freistaat Bayern",
        "facts": {
            "legal_name": "Freistaat Bayern",
            "vat_id": "DE129523996",
            "headquarters": "DE-BY",
            "legal_address": "DE-BY",
        },
        "agent": ("anna.huber", "anna.huber@bayern.de"),
    },
}


def _step(text: str) -> None:
    console.print(f"\n[bold cyan]▶ {text}[/]")


def _check(response: httpx.Response) -> Any:
    """The JSON body of a successful response; the demo stops on any error."""
    if response.is_error:
        raise RuntimeError(
            f"{response.request.url} answered {response.status_code}: {response.text}"
        )
    return response.json()


def _publish(http: httpx.Client, node: LiveNode, metadata: dict[str, Any], csv: bytes) -> Any:
    """Register a dataset, upload its content, offer it for statistics and publish it."""
    dataset = _check(
        http.post(f"{node.url}/api/v1/datasets", headers=node.headers(), json=metadata)
    )
    base = f"{node.url}/api/v1/datasets/{dataset['id']}"
    content_headers = {**node.headers(), "content-type": "text/csv"}
    _check(http.put(f"{base}/content", content=csv, headers=content_headers))
    _check(http.post(f"{base}/offers", headers=node.headers(), json={"policy": STATISTICS_OFFER}))
    return _check(http.post(f"{base}/publish", headers=node.headers()))


def _until(http: httpx.Client, url: str, node: LiveNode, done: set[str]) -> Any:
    """Poll ``url`` until its ``state`` is one of ``done``; the states seen on the way too."""
    seen: list[str] = []
    for _ in range(300):
        body = _check(http.get(url, headers=node.headers()))
        if not seen or seen[-1] != body["state"]:
            seen.append(body["state"])
        if body["state"] in done:
            return body, seen
        time.sleep(0.05)
    raise RuntimeError(f"{url} stayed {seen[-1]}")


def _negotiate(http: httpx.Client, paris: LiveNode, berlin: LiveNode, dataset: str) -> str:
    """Paris negotiates for one of a provider's (``berlin``'s) datasets until both nodes hold
    the agreement."""
    started = _check(
        http.post(
            f"{paris.url}/api/v1/contracts/negotiations",
            headers=paris.headers(),
            json={"provider_url": berlin.url, "dataset_id": dataset, "purpose": "statistics"},
        )
    )
    final = {"FINALIZED", "TERMINATED"}
    url = f"{paris.url}/api/v1/contracts/negotiations/{started['id']}"
    mine, seen = _until(http, url, paris, final)
    console.print(f"  fr-mininterieur (consumer): {' → '.join(['REQUESTED', *seen[1:]])}")
    theirs, _ = _until(
        http, f"{berlin.url}/api/v1/contracts/negotiations/{mine['provider_pid']}", berlin, final
    )
    console.print(
        f"  {berlin.name} (provider): {theirs['state']}; the offer's policy (purpose statistics, "
        "EU only) was evaluated for Paris's certified identity"
    )
    if mine["state"] != "FINALIZED":
        raise RuntimeError(f"the negotiation ended {mine['state']}: {mine['reason']}")
    console.print(f"  agreement {mine['agreement_id']} held by both nodes")
    return str(mine["agreement_id"])


def _negotiate_and_pull(
    http: httpx.Client, paris: LiveNode, berlin: LiveNode, dataset: str
) -> None:
    _step("Paris negotiates a contract for Berlin's residents dataset (DSP 2025-1)")
    agreement = _negotiate(http, paris, berlin, dataset)

    _step("Paris pulls the data under the agreement; it is decrypted at Berlin on the way out")
    tp = _check(
        http.post(
            f"{paris.url}/api/v1/transfers",
            headers=paris.headers(),
            json={"agreement_id": agreement},
        )
    )
    _until(http, f"{paris.url}/api/v1/transfers/{tp['id']}", paris, {"STARTED", "TERMINATED"})
    pulled = _check(
        http.post(f"{paris.url}/api/v1/transfers/{tp['id']}/pull", headers=paris.headers())
    )
    console.print(
        f"  {pulled['size']} bytes, sha-256 {pulled['sha256'][:16]}… checked against Berlin's "
        f"Repr-Digest; transfer {pulled['transfer']['state']}"
    )
    provider_side, _ = _until(
        http, f"{berlin.url}/api/v1/transfers/{tp['provider_pid']}", berlin, {"COMPLETED"}
    )
    console.print(
        f"  de-berlin: transfer {provider_side['state']}, {provider_side['bytes_served']} bytes "
        "served to the token holder whose signature matched the agreement"
    )

    _step("Berlin signs a receipt of the delivery; Paris checks it and countersigns")
    for node in (berlin, paris):
        entry = _receipt_entry(http, node)
        console.print(
            f"  {node.name} audit #{entry['seq']}: {entry['action']} — receipt "
            f"{entry['details']['receipt'][:12]}…, countersignature "
            f"{entry['details']['countersignature'][:12]}…"
        )


def _receipt_entry(http: httpx.Client, node: LiveNode) -> Any:
    """The node's audit entry of the countersigned receipt (waits for it briefly)."""
    for _ in range(200):
        entries = _check(
            http.get(f"{node.url}/api/v1/audit", params={"limit": 500}, headers=node.headers())
        )
        found = [e for e in entries if e["action"] == "transfer.receipt.countersigned"]
        if found:
            return found[-1]
        time.sleep(0.05)
    raise RuntimeError(f"{node.name} has no countersigned receipt in its audit log")


def run_demo() -> None:
    """Tell the story; raises if any step does not hold."""
    with ExitStack() as stack:
        root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="rhenus-demo-")))
        _step("A development CA issues TLS certificates: did:web needs HTTPS, even on loopback")
        ca_file, tls = dev_tls(root / "ca", ["eu-trust-anchor", *PARTICIPANTS])
        console.print(f"  CA {ca_file}; one certificate for 127.0.0.1 per node")
        fleet = stack.enter_context(Fleet())  # stopped last: after the client below is closed
        http = stack.enter_context(httpx.Client(timeout=60, verify=client_ssl_context(ca_file)))
        anchor_port = free_port()
        anchor_did = did_for_url(f"https://127.0.0.1:{anchor_port}")
        trusted = {"RHENUS_TRUSTED_ANCHORS": json.dumps([anchor_did])}

        _step("A trust anchor and three organisations start their own sovereign nodes")
        anchor_env = {**trusted, **tls["eu-trust-anchor"], "RHENUS_TRUST_ANCHOR": "true"}
        anchor = fleet.start(
            "eu-trust-anchor",
            "Federation trust anchor",
            root / "anchor",
            port=anchor_port,
            extra_env=anchor_env,
        )
        nodes: dict[str, LiveNode] = {}
        for name, about in PARTICIPANTS.items():
            nodes[name] = fleet.start(
                name, str(about["organisation"]), root / name, extra_env={**trusted, **tls[name]}
            )
        for node in (anchor, *nodes.values()):
            console.print(f"  {node.organisation:<28} {node.url}  {node.did}")

        _step("Each administrator signs in with the one-time password and sets a new one")
        for node in (anchor, *nodes.values()):
            node.sign_in(http, f"{node.name}-demo-password")
            console.print(f"  {node.name}: signed in as admin")

        _step("Each organisation registers one of its agents")
        for name, node in nodes.items():
            username, email = PARTICIPANTS[name]["agent"]
            _check(
                http.post(
                    f"{node.url}/api/v1/users",
                    headers=node.headers(),
                    json={"username": username, "email": email},
                )
            )
            console.print(f"  {name}: created agent {username} <{email}>")

        _step("Each organisation signs its Gaia-X self-description; the anchor checks it")
        for name, node in nodes.items():
            _check(
                http.post(
                    f"{node.url}/api/v1/trust/participant",
                    headers=node.headers(),
                    json=PARTICIPANTS[name]["facts"],
                )
            )
            answer = _check(
                http.post(
                    f"{node.url}/api/v1/trust/compliance-requests",
                    headers=node.headers(),
                    json={"anchor_url": anchor.url},
                )
            )
            labels = ", ".join(answer["labels"]) or "none"
            console.print(
                f"  {name}: compliant (labels: {labels}), credential {answer['digest'][:20]}…"
            )
        registry = _check(http.get(f"{anchor.url}/api/v1/trust/participants"))
        console.print(f"  anchor registry: {', '.join(p['legal_name'] for p in registry)}")

        _step("Each node calls the other with a signed request (RFC 9421, keys from did:web)")
        pairs = [
            (nodes["fr-mininterieur"], nodes["de-berlin"]),
            (nodes["de-berlin"], nodes["fr-mininterieur"]),
        ]
        for sender, receiver in pairs:
            settings = sender.settings()
            answer_ping = asyncio.run(
                ping(settings, Keyring.load(settings.keys_dir), receiver.url, f"from {sender.name}")
            )
            console.print(
                f"  {receiver.name} verified {answer_ping.sender} "
                f"(key {answer_ping.key_id.rpartition('#')[2]}, compliant)"
            )

        _step("Berlin publishes two datasets for EU participants, under a statistics-only offer")
        berlin, paris = nodes["de-berlin"], nodes["fr-mininterieur"]
        dataset = _publish(http, berlin, BERLIN_DATASET, BERLIN_CSV)
        console.print(f"  de-berlin: published {dataset['id']} (encrypted at rest, EU only)")
        hospitals = _publish(http, berlin, BERLIN_HOSPITALS, BERLIN_HOSPITALS_CSV)
        console.print(f"  de-berlin: published {hospitals['id']} (Krankenhäuser, EU only)")

        _step("Paris crawls the catalogs of the anchor's participants (signed DSP, both ways)")
        for report in _check(
            http.post(f"{paris.url}/api/v1/catalogue/crawl", headers=paris.headers())
        ):
            console.print(
                f"  fr-mininterieur crawled {report['did']}: {report['status']}, "
                f"{report['total']} datasets ({report['added']} new), signatures verified"
            )

        _step("A French agent searches 'hôpitaux' and finds Berlin's Krankenhäuser")
        found = _check(
            http.get(
                f"{paris.url}/api/v1/catalogue/search",
                params={"q": "hôpitaux"},
                headers=paris.headers(),
            )
        )
        for hit in found["hits"]:
            title = hit["title"].get("de") or next(iter(hit["title"].values()))
            console.print(
                f"  {title!r} from {hit['publisher']} ({hit['country']}, {hit['format']}, "
                f"theme {hit['theme']}, {hit['offers']} offer)"
            )
        if not found["hits"]:
            raise RuntimeError("the search found nothing")

        _negotiate_and_pull(http, paris, berlin, dataset["id"])

        def negotiate(dataset_id: str, provider: LiveNode = berlin) -> str:
            _step("Paris negotiates the right to compute on it (DSP 2025-1, action compute)")
            return _negotiate(http, paris, provider, dataset_id)

        at_berlin = chapters.data_pool(console, _step, _check, http, paris, berlin, negotiate)
        chapters.pooled(
            console, _step, _check, http, paris, {berlin.name: at_berlin}, nodes["de-bayern"],
            negotiate,
        )  # fmt: skip
        chapters.assistant(console, _step, _check, http, paris)
        chapters.messaging(console, _step, _check, http, paris)

        _step("Each node proves its audit log is intact (hash chain + signed checkpoints)")
        table = Table("node", "entries", "checkpoints", "verdict")
        for node in (anchor, *nodes.values()):
            result = _check(http.get(f"{node.url}/api/v1/audit/verify", headers=node.headers()))
            if not result["ok"]:
                raise RuntimeError(f"{node.name}: audit log does not verify: {result['reason']}")
            table.add_row(
                node.name, str(result["entries"]), str(result["checkpoints"]), "[green]intact[/]"
            )
        console.print(table)
    console.print(
        "\n[bold green]Demo complete.[/] Every node was stopped. "
        "`make run` starts one, with its web app at http://127.0.0.1:8080/."
    )
