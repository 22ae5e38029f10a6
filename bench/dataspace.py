"""Dataspace benchmark: contract negotiations per second, and data-plane throughput next to nginx.

On live nodes over TLS (``rhenus run`` processes on loopback with development certificates: a
trust anchor, Paris and Berlin, certified through the API as in the demo), it

1. runs ``--negotiations`` DSP 2025-1 negotiations, ``--concurrency`` at a time, each started
   with ``POST /api/v1/contracts/negotiations`` on Paris (which reads the dataset from Berlin's
   signed catalog, or reuses what it read less than ``RHENUS_DSP_CATALOG_CACHE_SECONDS`` ago,
   and sends the request), and times until every one is FINALIZED on *both*
   nodes (both APIs asked); reports negotiations/s, and the latency of each negotiation from
   the nodes' own timestamps (Paris's request to the later of the two FINALIZED);
2. has Paris start a pull transfer of a ``--size-mib`` file Berlin published and downloads it
   as Paris (signed with Paris's keys, the data address's bearer token) to nowhere, then the
   same plaintext file from nginx (the Debian package, its own minimal config, one worker, on
   loopback over TLS with Berlin's certificate), with the same httpx client code; then both
   again with curl, a client that is not itself the bottleneck (the data plane's RFC 9421
   signature is made for each curl request). ``--rounds`` times each, interleaved; reports
   MiB/s (median and best) and the ratios.

Goals: >= 100 negotiations/s; the data plane >= 50 % of nginx's throughput.

TLS, not plain HTTP: it is what federations run, and DSP callbacks must be https (only the
conformance mode allows plain-HTTP loopback callbacks). nginx is installed with apt-get when
missing and the bench runs as root (as the Makefile does for PostgreSQL). Usage:
``.venv/bin/python bench/dataspace.py [--negotiations 200] [--concurrency 24] [--size-mib 1024]
[--rounds 3] [--quick]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from rhenus.core.keys import Keyring
from rhenus.core.node import Node
from rhenus.core.tls import client_ssl_context
from rhenus.dataspace.transfers import service as transfers
from rhenus.demo.nodes import Fleet, LiveNode, dev_tls, free_port
from rhenus.trust.client import federation_client
from rhenus.trust.did import did_for_url
from rhenus.trust.httpsig import sign_request

from _dataspace_peers import curl, nginx  # isort: skip

MiB = 1024 * 1024
console = Console(width=160)
PARTICIPANTS = {
    "fr-mininterieur": {
        "legal_name": "Ministère de l'Intérieur",
        "vat_id": "FR40303265045",
        "headquarters": "FR-75C",
        "legal_address": "FR-75C",
    },
    "de-berlin": {
        "legal_name": "Land Berlin",
        "vat_id": "DE136695976",
        "headquarters": "DE-BE",
        "legal_address": "DE-BE",
    },
}
DATASET = {
    "title": {"en": "Random bytes"},
    "theme": "TECH",
    "license": "CC-BY-4.0",
    "publisher": "Land Berlin",
}
OFFER = {"permission": [{"action": "use"}]}
FINAL = {"FINALIZED", "TERMINATED"}


def check(response: httpx.Response) -> Any:
    if response.is_error:
        raise RuntimeError(f"{response.request.url}: {response.status_code} {response.text}")
    return response.json()


# -- the federation --------------------------------------------------------------------------
@dataclass
class Dataspace:
    anchor: LiveNode
    paris: LiveNode
    berlin: LiveNode
    ca_file: Path
    cert: tuple[Path, Path]  # Berlin's certificate chain and key, for nginx


def start_dataspace(stack: ExitStack, root: Path, upload_limit: int) -> Dataspace:
    """An anchor, Paris and Berlin running over TLS, both participants certified."""
    names = ["eu-trust-anchor", *PARTICIPANTS]
    ca_file, tls = dev_tls(root / "ca", names)
    port = free_port()
    common = {
        "RHENUS_TRUSTED_ANCHORS": json.dumps([did_for_url(f"https://127.0.0.1:{port}")]),
        "RHENUS_MAX_UPLOAD_BYTES": str(upload_limit),
        "RHENUS_AUDIT_CHECKPOINT_EVERY": "100",  # the default; the demo's 2 is for its story
    }
    fleet = stack.enter_context(Fleet())
    anchor = fleet.start(
        "eu-trust-anchor",
        "Federation trust anchor",
        root / "anchor",
        port=port,
        extra_env={**common, **tls["eu-trust-anchor"], "RHENUS_TRUST_ANCHOR": "true"},
    )
    nodes = []
    with httpx.Client(timeout=60, verify=client_ssl_context(ca_file)) as http:
        for name, facts in PARTICIPANTS.items():
            env = {**common, **tls[name]}
            node = fleet.start(name, facts["legal_name"], root / name, extra_env=env)
            node.sign_in(http, f"{name}-bench-password")
            url = f"{node.url}/api/v1/trust"
            check(http.post(f"{url}/participant", headers=node.headers(), json=facts))
            check(
                http.post(
                    f"{url}/compliance-requests",
                    headers=node.headers(),
                    json={"anchor_url": anchor.url},
                )
            )
            nodes.append(node)
    berlin = tls["de-berlin"]
    cert = (Path(berlin["RHENUS_TLS_CERT_FILE"]), Path(berlin["RHENUS_TLS_KEY_FILE"]))
    return Dataspace(anchor, nodes[0], nodes[1], ca_file, cert)


def publish(http: httpx.Client, berlin: LiveNode, plain: Path, size: int) -> tuple[str, float]:
    """Berlin publishes ``size`` random bytes (streamed up, and written to ``plain`` for nginx);
    the dataset id and the upload's MiB/s."""
    dataset = check(http.post(f"{berlin.url}/api/v1/datasets", headers=berlin.headers(),
                              json=DATASET))  # fmt: skip
    base = f"{berlin.url}/api/v1/datasets/{dataset['id']}"

    def chunks() -> Iterator[bytes]:
        with plain.open("wb") as file:
            for _ in range(size // MiB):
                chunk = os.urandom(MiB)
                file.write(chunk)
                yield chunk

    headers = {**berlin.headers(), "content-type": "application/octet-stream"}
    started = time.perf_counter()
    stored = check(http.put(f"{base}/content", content=chunks(), headers=headers))
    upload = size / MiB / (time.perf_counter() - started)
    if stored["byte_size"] != size:
        raise RuntimeError(f"Berlin stored {stored['byte_size']} bytes, not {size}")
    check(http.post(f"{base}/offers", headers=berlin.headers(), json={"policy": OFFER}))
    check(http.post(f"{base}/publish", headers=berlin.headers()))
    return dataset["id"], upload


# -- negotiations ----------------------------------------------------------------------------
@dataclass
class Negotiated:
    count: int
    seconds: float
    latencies: list[float]  # seconds, from the nodes' timestamps
    not_finalized: int
    cpu_ms: dict[str, float]  # CPU milliseconds per negotiation, per node process


def _at(stamp: str) -> float:
    return datetime.fromisoformat(stamp).timestamp()


async def _final(
    http: httpx.AsyncClient, node: LiveNode, ids: set[str], seen: dict[str, dict[str, Any]]
) -> None:
    """Add the processes among ``ids`` that are final to ``seen``: one call to the list API
    (its 200 most recently changed), and one GET for each open id the list did not show."""
    api = f"{node.url}/api/v1/contracts/negotiations"
    shown = set()
    for neg in check(await http.get(api, headers=node.headers())):
        shown.add(neg["id"])
        if neg["id"] in ids and neg["state"] in FINAL:
            seen[neg["id"]] = neg
    for pid in ids - shown - set(seen):
        neg = check(await http.get(f"{api}/{pid}", headers=node.headers()))
        if neg["state"] in FINAL:
            seen[pid] = neg


async def negotiate(
    space: Dataspace, dataset_id: str, count: int, concurrency: int, *, patience: float = 600
) -> Negotiated:
    """``count`` negotiations, ``concurrency`` at a time; timed until all are final on both.

    Only Paris is polled (every 0.25 s, so that polling costs the nodes little) until all are
    final there; Berlin finalizes before it tells Paris, and is asked once at the end."""
    paris, berlin = space.paris, space.berlin
    request = {"provider_url": berlin.url, "dataset_id": dataset_id, "purpose": "statistics"}
    limits = httpx.Limits(max_connections=concurrency + 2)
    verify = client_ssl_context(space.ca_file)
    async with httpx.AsyncClient(timeout=120, verify=verify, limits=limits) as http:
        gate = asyncio.Semaphore(concurrency)

        async def one() -> dict[str, Any]:
            async with gate:
                api = f"{paris.url}/api/v1/contracts/negotiations"
                begun: dict[str, Any] = check(
                    await http.post(api, headers=paris.headers(), json=request)
                )
                return begun

        cpu_before = {node.name: node.cpu_seconds() for node in (paris, berlin)}
        started = time.perf_counter()
        begun = await asyncio.gather(*(one() for _ in range(count)))
        mine: dict[str, dict[str, Any]] = {}
        theirs: dict[str, dict[str, Any]] = {}
        while len(mine) < count:
            if time.perf_counter() - started > patience:
                raise RuntimeError(f"after {patience} s, {len(mine)} of {count} are final")
            await asyncio.sleep(0.25)
            await _final(http, paris, {neg["id"] for neg in begun}, mine)
        await _final(http, berlin, {neg["provider_pid"] for neg in mine.values()}, theirs)
        seconds = time.perf_counter() - started
        cpu_ms = {
            node.name: (node.cpu_seconds() - cpu_before[node.name]) * 1000 / count
            for node in (paris, berlin)
        }
    if len(theirs) < count:
        raise RuntimeError(f"{count - len(theirs)} negotiations are not final at Berlin")
    latencies = [
        max(_at(neg["updated_at"]), _at(theirs[neg["provider_pid"]]["updated_at"]))
        - _at(neg["created_at"])
        for neg in mine.values()
    ]
    not_finalized = sum(n["state"] != "FINALIZED" for n in [*mine.values(), *theirs.values()])
    return Negotiated(count, seconds, latencies, not_finalized, cpu_ms)


# -- the data plane and nginx ----------------------------------------------------------------
async def data_address(space: Dataspace, dataset_id: str) -> tuple[str, str]:
    """Paris negotiates, starts a pull transfer, and reads the data address Berlin sent it
    (endpoint, token) from its own database."""
    paris, berlin = space.paris, space.berlin
    async with httpx.AsyncClient(timeout=60, verify=client_ssl_context(space.ca_file)) as http:

        async def until(path: str, done: set[str]) -> dict[str, Any]:
            for _ in range(1200):
                body: dict[str, Any] = check(
                    await http.get(f"{paris.url}{path}", headers=paris.headers())
                )
                if body["state"] in done:
                    return body
                await asyncio.sleep(0.05)
            raise RuntimeError(f"{path} stayed {body['state']}")

        neg = check(
            await http.post(
                f"{paris.url}/api/v1/contracts/negotiations",
                headers=paris.headers(),
                json={"provider_url": berlin.url, "dataset_id": dataset_id, "purpose": "bench"},
            )
        )
        neg = await until(f"/api/v1/contracts/negotiations/{neg['id']}", FINAL)
        if neg["state"] != "FINALIZED":
            raise RuntimeError(f"the negotiation ended {neg['state']}: {neg['reason']}")
        tp = check(
            await http.post(
                f"{paris.url}/api/v1/transfers",
                headers=paris.headers(),
                json={"agreement_id": neg["agreement_id"]},
            )
        )
        tp = await until(f"/api/v1/transfers/{tp['id']}", {"STARTED", "TERMINATED"})
        if tp["state"] != "STARTED":
            raise RuntimeError(f"the transfer ended {tp['state']}: {tp['reason']}")
    node = Node.open(paris.settings())
    try:
        async with node.db.session() as session:
            found = await transfers.get_transfer(session, pid=tp["id"], caller=None)
            address = dict(found.data_address or {})
    finally:
        await node.close()
    props = {p["name"]: p["value"] for p in address["endpointProperties"]}
    return address["endpoint"], props["authorization"]


async def download(client: httpx.AsyncClient, url: str, headers: dict[str, str]) -> float:
    """GET ``url`` to nowhere with httpx; MiB/s from the request to the last byte."""
    started = time.perf_counter()
    received = 0
    async with client.stream("GET", url, headers=headers) as response:
        if response.status_code != 200:
            await response.aread()
            raise RuntimeError(f"{url}: {response.status_code} {response.text[:300]}")
        expected = int(response.headers["content-length"])
        async for chunk in response.aiter_raw():
            received += len(chunk)
    if received != expected:
        raise RuntimeError(f"{url}: {received} bytes of {expected}")
    return received / MiB / (time.perf_counter() - started)


@dataclass
class Throughput:
    """MiB/s of each download, by server and client."""

    runs: dict[str, list[float]] = field(default_factory=dict)

    def add(self, key: str, value: float) -> None:
        self.runs.setdefault(key, []).append(value)

    def median(self, key: str) -> float:
        return statistics.median(self.runs[key])


async def throughput(
    space: Dataspace, endpoint: str, token: str, nginx_url: str, size: int, rounds: int
) -> Throughput:
    """``rounds`` downloads from each server with each client, interleaved."""
    settings = space.paris.settings()
    keyring = Keyring.load(settings.keys_dir)
    bearer = {"Authorization": f"Bearer {token}"}
    client = federation_client(settings, keyring, timeout=httpx.Timeout(120, connect=10))
    result = Throughput()
    async with client:
        for _ in range(rounds):
            result.add("dataplane httpx", await download(client, endpoint, bearer))
            result.add("nginx httpx", await download(client, nginx_url, {}))
            signed = httpx.Request("GET", endpoint, headers=bearer)
            sign_request(signed, keyring=keyring, did=did_for_url(settings.public_url))
            wanted = ("authorization", "signature", "signature-input", "content-digest")
            headers = {k: v for k, v in signed.headers.items() if k.lower() in wanted}
            result.add("dataplane curl", curl(endpoint, headers, space.ca_file, size))
            result.add("nginx curl", curl(nginx_url, {}, space.ca_file, size))
    return result


# -- the run ---------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--negotiations", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=24)
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=3, help="downloads per server and client")
    parser.add_argument(
        "--quick", action="store_true", help="40 negotiations (8 at a time), 128 MiB, one round"
    )
    args = parser.parse_args()
    if args.quick:
        args.negotiations, args.concurrency, args.size_mib, args.rounds = 40, 8, 128, 1
    size = args.size_mib * MiB
    load_before = os.getloadavg()[0]
    with ExitStack() as stack:
        root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="rhenus-bench-")))
        console.print("starting an anchor, Paris and Berlin (TLS, development CA)…")
        space = start_dataspace(stack, root, size + MiB)
        plain = root / "plain.bin"
        with httpx.Client(timeout=600, verify=client_ssl_context(space.ca_file)) as http:
            console.print(f"Berlin publishes {args.size_mib} MiB…")
            dataset_id, upload = publish(http, space.berlin, plain, size)
        console.print("a first negotiation and transfer (also warms the caches)…")
        endpoint, token = asyncio.run(data_address(space, dataset_id))
        console.print(f"{args.negotiations} negotiations, {args.concurrency} at a time…")
        negotiated = asyncio.run(negotiate(space, dataset_id, args.negotiations, args.concurrency))
        nginx_url, version = stack.enter_context(nginx(root / "nginx", plain, space.cert))
        console.print(f"downloading {args.size_mib} MiB, {args.rounds} x per server and client…")
        speed = asyncio.run(throughput(space, endpoint, token, nginx_url, size, args.rounds))
    load_after = os.getloadavg()[0]

    rate = negotiated.count / negotiated.seconds
    latencies = sorted(negotiated.latencies)
    p50, p95 = (latencies[int(q * (len(latencies) - 1))] for q in (0.5, 0.95))
    table = Table(
        "measure", "result", "goal", "detail",
        title=f"Dataspace: {os.cpu_count()} cores ({platform.machine()}), Python "
        f"{platform.python_version()}, load average {load_before:.1f} → {load_after:.1f}",
    )  # fmt: skip
    table.add_row(
        "negotiations", f"{rate:,.1f} /s", "≥ 100 /s",
        f"{negotiated.count} requested → FINALIZED on both, {args.concurrency} at a time, "
        f"{negotiated.seconds:.1f} s; latency p50 {p50:.2f} s, p95 {p95:.2f} s; "
        f"{negotiated.not_finalized} not finalized",
    )  # fmt: skip
    busiest = max(negotiated.cpu_ms.values())
    table.add_row(
        "CPU per negotiation", f"{busiest:.1f} ms", "≤ 10 ms",
        ", ".join(f"{name} {ms:.1f} ms" for name, ms in negotiated.cpu_ms.items())
        + f" (node processes; the busier one bounds the rate at {1000 / busiest:,.0f}/s a core)",
    )  # fmt: skip

    def best(key: str) -> str:
        return f"best {max(speed.runs[key]):,.0f}, median of {len(speed.runs[key])}"

    for client in ("httpx", "curl"):
        ours, theirs = speed.median(f"dataplane {client}"), speed.median(f"nginx {client}")
        table.add_row(
            f"data plane, {client}", f"{ours:,.0f} MiB/s", "",
            f"{args.size_mib} MiB, GET /dataplane/{{pid}} over TLS, signed as Paris, decrypted "
            f"on the fly; {best(f'dataplane {client}')}",
        )  # fmt: skip
        table.add_row(
            f"nginx, {client}", f"{theirs:,.0f} MiB/s", "",
            f"{version}, 1 worker, TLS, the same plaintext file; {best(f'nginx {client}')}",
        )  # fmt: skip
        table.add_row(f"data plane / nginx, {client}", f"{ours / theirs:.0%}", "≥ 50 %", "medians")
    table.add_row(
        "upload (for reference)", f"{upload:,.0f} MiB/s", "",
        f"PUT /api/v1/datasets/{{id}}/content of the {args.size_mib} MiB, encrypted into the "
        "blob store",
    )  # fmt: skip
    console.print(table)


if __name__ == "__main__":
    main()
