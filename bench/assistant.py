"""Assistant benchmark: streaming chat next to llama-cpp-python itself, and retrieval quality.

On a live node (``rhenus run`` on its default models, plain HTTP on loopback, an API key of its
first administrator), it

A. streams ``--runs`` chat completions (``POST /v1/chat/completions``, ``stream: true``, the
   local model alias, ``temperature`` 0 and a ``seed``, the same prompt and ``max_tokens``)
   and, interleaved with them in this process, the same generation through llama-cpp-python
   directly: ``llama_cpp.Llama`` on the same GGUF file (located as the node locates it, loaded
   with the node's ``n_ctx`` and threads), once with ``create_chat_completion(stream=True)``
   (what a program would call) and once with the bare ``Llama.generate`` token loop (the
   engine alone: the floor). Each is warmed up once. Time to first token (TTFT) is from the
   call (the request) to the first non-empty piece of text; tokens/s is the decode rate,
   (completion tokens - 1) / (last piece - first piece). Medians, and the node's ratios; and
   the node's cost of a request without a model (``GET /v1/models`` with the same key).
   Then ``--ttft-runs`` generations of 2 tokens on each path, interleaved, join the TTFT
   sample: the prompt's evaluation varies by ±100 ms from run to run and needs many samples.
B. creates a collection (``POST /v1/collections``), uploads the French evaluation corpus
   (``bench/assistant_corpus/pages/*.md``, ``POST /v1/documents`` multipart ``file`` and
   ``collection``) and times until every document's ``status`` (``GET /v1/documents/{id}``) is
   final: ingest pages/s. Then asks each question of ``eval.jsonl`` with ``POST /v1/search``
   (``k`` 5) for the methods keyword, semantic (vectors) and hybrid, and reports hit@1, hit@5
   and MRR. A result is a hit when its chunk contains the question's passage, or at least half
   of the passage's characters in one piece (the chunk cut it), whitespace and case
   normalised, and its document is the passage's page. A node without these routes (404)
   gets "retrieval unavailable" rather than numbers.

Goals: streamed through the node >= 95 % of direct tokens/s; TTFT overhead <= 20 ms.
The exit code is 0 whether the goals are met or not: this is a measurement. Usage:
``.venv/bin/python bench/assistant.py [--runs 5] [--max-tokens 128] [--ttft-runs 30]
[--part a|b|both] [--misses]``
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import platform
import re
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from rhenus.demo.nodes import Fleet, LiveNode

# Run as ``python bench/assistant.py``: bench/ is on sys.path, so its sibling imports directly.
from _assistant_direct import CHAT, MESSAGES, SEED, Direct, Run, Timer  # isort: skip

console = Console(width=160)
CORPUS = Path(__file__).parent / "assistant_corpus"
METHODS = ("keyword", "semantic", "hybrid")
PENDING = {"queued", "processing"}  # then "done" or "failed"


def check(response: httpx.Response) -> Any:
    if response.is_error:
        raise RuntimeError(f"{response.request.url}: {response.status_code} {response.text}")
    return response.json()


def start_node(fleet: Fleet, root: Path) -> tuple[LiveNode, str]:
    """A node on its default models, and an API key of its first administrator."""
    node = fleet.start("fr-mininterieur", "Ministère de l'Intérieur", root / "paris")
    with httpx.Client(timeout=30) as http:
        node.sign_in(http, "a-good-long-bench-password")
        key = check(
            http.post(
                f"{node.url}/api/v1/me/api-keys", headers=node.headers(), json={"name": "bench"}
            )
        )
    return node, str(key["key"])


# -- part A: streaming ---------------------------------------------------------------------
def through_node(http: httpx.Client, node: LiveNode, key: str, max_tokens: int) -> Run:
    body = {
        "model": CHAT.alias,
        "messages": MESSAGES,
        "stream": True,
        "stream_options": {"include_usage": True},
        "max_tokens": max_tokens,
        "temperature": 0,
        "seed": SEED,
    }
    headers = {"Authorization": f"Bearer {key}"}
    tokens = 0
    timer = Timer()
    with http.stream("POST", f"{node.url}/v1/chat/completions", json=body, headers=headers) as r:
        if r.status_code != 200:
            r.read()
            raise RuntimeError(f"chat completion: {r.status_code} {r.text}")
        for line in r.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            event = json.loads(line.removeprefix("data: "))
            if event.get("usage"):
                tokens = event["usage"]["completion_tokens"]
            for choice in event["choices"]:
                timer.piece(choice["delta"].get("content") or "")
    return timer.run(tokens)


def http_floor(http: httpx.Client, node: LiveNode, key: str) -> float:
    """Milliseconds of one ``GET /v1/models``: the node's cost of a request, without a model."""
    started = time.perf_counter()
    check(http.get(f"{node.url}/v1/models", headers={"Authorization": f"Bearer {key}"}))
    return (time.perf_counter() - started) * 1000


def part_a(
    node: LiveNode, key: str, runs: int, max_tokens: int, ttft_runs: int, table: Table
) -> None:
    console.print(f"loading {CHAT.path} in this process too…")
    direct = Direct()
    paths: dict[str, Callable[[], Run]] = {}
    results: dict[str, list[Run]] = {}
    with httpx.Client(timeout=300) as http:
        paths["node"] = lambda: through_node(http, node, key, max_tokens)
        paths["create_chat_completion"] = lambda: direct.chat_completion(max_tokens)
        paths["generate"] = lambda: direct.generate(max_tokens)
        for name, call in paths.items():  # warm-up: the node loads its model on first use
            call()
            results[name] = []
        console.print(f"{runs} streamed generations of each, interleaved…")
        # CPU time of the process that generates: less sensitive to other jobs than wall time.
        clocks = {"node": node.cpu_seconds}
        cpu: dict[str, list[float]] = {name: [] for name in paths}
        for _ in range(runs):
            for name, call in paths.items():
                clock = clocks.get(name, time.process_time)
                before = clock()
                results[name].append(call())
                cpu[name].append((clock() - before) * 1000)
        # TTFT is the prompt's evaluation, whose spread from run to run (±100 ms for the same
        # 81 tokens on every path) needs more samples than decoding: short generations.
        short: dict[str, list[Run]] = {name: [] for name in paths}
        shorts = {
            "node": lambda: through_node(http, node, key, 2),
            "create_chat_completion": lambda: direct.chat_completion(2),
            "generate": lambda: direct.generate(2),
        }
        for _ in range(ttft_runs):
            for name, call in shorts.items():
                short[name].append(call())
        floor = [http_floor(http, node, key) for _ in range(20)]

    def median(name: str, what: Callable[[Run], float]) -> float:
        return statistics.median(what(r) for r in results[name])

    def best(name: str, what: Callable[[Run], float], pick: Callable[..., float]) -> float:
        return pick(what(r) for r in results[name])

    def rate(r: Run) -> float:
        return r.rate

    def ttft(r: Run) -> float:
        return r.ttft * 1000

    def ttfts(name: str) -> list[float]:
        return [ttft(r) for r in results[name] + short[name]]

    same = len({r.text for rs in results.values() for r in rs}) == 1
    prompt = len(direct.prompt())
    detail = {
        "node": f"POST /v1/chat/completions over HTTP, {CHAT.alias}, stream; "
        f"{results['node'][0].tokens} completion tokens (usage), prompt {prompt} tokens",
        "create_chat_completion": "llama_cpp.Llama.create_chat_completion(stream=True) here",
        "generate": "llama_cpp.Llama.generate token loop here (the engine alone)",
    }
    for name in paths:
        table.add_row(
            f"{name}: tokens/s", f"{median(name, rate):,.1f}", "",
            f"{detail[name]}; best {best(name, rate, max):,.1f}",
        )  # fmt: skip
        table.add_row(
            f"{name}: TTFT", f"{statistics.median(ttfts(name)):,.1f} ms", "",
            f"best {min(ttfts(name)):,.1f} ms, worst {max(ttfts(name)):,.1f} ms; "
            f"{len(ttfts(name))} requests",
        )  # fmt: skip
        table.add_row(
            f"{name}: CPU", f"{statistics.median(cpu[name]):,.0f} ms", "",
            f"CPU time of the generating process per generation, median; best "
            f"{min(cpu[name]):,.0f} ms",
        )  # fmt: skip
    for peer in ("create_chat_completion", "generate"):
        ratio = median("node", rate) / median(peer, rate)
        table.add_row(
            f"node / {peer}, tokens/s", f"{ratio:.1%}", "≥ 95 %",
            f"medians; bests {best('node', rate, max) / best(peer, rate, max):.1%}",
        )  # fmt: skip
        table.add_row(
            f"node - {peer}, TTFT",
            f"{statistics.median(ttfts('node')) - statistics.median(ttfts(peer)):+,.1f} ms",
            "≤ 20 ms", f"medians; bests {min(ttfts('node')) - min(ttfts(peer)):+,.1f} ms",
        )  # fmt: skip
    extra = statistics.median(cpu["node"]) - statistics.median(cpu["generate"])
    table.add_row(
        "node - generate, CPU", f"{extra:+,.0f} ms", "",
        f"medians; per token {extra / max(1, results['node'][0].tokens):+,.2f} ms",
    )  # fmt: skip
    table.add_row(
        "node HTTP floor", f"{statistics.median(floor):,.1f} ms", "",
        f"GET /v1/models with the same key (HTTP, authentication, JSON), median of {len(floor)}",
    )  # fmt: skip
    table.add_row(
        "same text", "yes" if same else "NO", "yes",
        f"{max_tokens} max_tokens, temperature 0, seed {SEED}; {runs} runs each after a warm-up, "
        f"interleaved; then {ttft_runs} of 2 tokens each for TTFT",
    )  # fmt: skip


# -- part B: retrieval ---------------------------------------------------------------------
def normalised(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().lower()


def is_hit(chunk: str, passage: str) -> bool:
    """The chunk holds the passage, or at least half of its characters in one piece."""
    chunk, passage = normalised(chunk), normalised(passage)
    if passage in chunk:
        return True
    match = difflib.SequenceMatcher(None, passage, chunk, autojunk=False).find_longest_match()
    return match.size >= len(passage) / 2


def rank_of_hit(hits: list[dict[str, Any]], page: str, passage: str) -> int | None:
    """The rank of the first result from ``page`` whose chunk holds ``passage``."""
    for rank, hit in enumerate(hits, 1):
        if hit["document"]["name"] == page and is_hit(hit["chunk"]["content"], passage):
            return rank
    return None


def ingest(
    http: httpx.Client, node: LiveNode, headers: dict[str, str], collection: Any
) -> tuple[float, int]:
    """Upload every page to ``collection``; pages/s until all are final, and the failures."""
    pages = sorted((CORPUS / "pages").glob("*.md"))
    started = time.perf_counter()
    ids = []
    for page in pages:
        files = {"file": (page.name, page.read_bytes(), "text/markdown")}
        created = http.post(
            f"{node.url}/v1/documents",
            headers=headers,
            files=files,
            data={"collection": str(collection)},
        )
        ids.append(check(created)["id"])
    failed, waiting = 0, set(ids)
    while waiting:
        for doc in list(waiting):
            status = check(http.get(f"{node.url}/v1/documents/{doc}", headers=headers))["status"]
            if status not in PENDING:
                waiting.discard(doc)
                failed += status != "done"
        if waiting:
            if time.perf_counter() - started > 600:
                raise RuntimeError(f"{len(waiting)} documents still not indexed after 600 s")
            time.sleep(0.05)
    return len(pages) / (time.perf_counter() - started), failed


def part_b(node: LiveNode, key: str, table: Table, misses: bool) -> None:
    questions = [json.loads(line) for line in (CORPUS / "eval.jsonl").read_text().splitlines()]
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(timeout=120) as http:
        made = http.post(f"{node.url}/v1/collections", headers=headers, json={"name": "bench"})
        if made.status_code in (404, 405):
            console.print("[bold]retrieval unavailable[/]: this node has no /v1/collections yet")
            table.add_row("retrieval", "unavailable", "", "POST /v1/collections answers 404")
            return
        collection = check(made)["id"]
        console.print(f"uploading {len(list((CORPUS / 'pages').glob('*.md')))} pages…")
        rate, failed = ingest(http, node, headers, collection)
        table.add_row(
            "ingest", f"{rate:,.2f} pages/s", "",
            f"upload of each page (one at a time) until every status is final; {failed} failed",
        )  # fmt: skip
        for method in METHODS:
            ranks: list[int | None] = []
            started = time.perf_counter()
            for q in questions:
                body = {"prompt": q["question"], "collections": [collection], "k": 5,
                        "method": method}  # fmt: skip
                found = check(http.post(f"{node.url}/v1/search", headers=headers, json=body))
                ranks.append(rank_of_hit(found["data"][:5], q["page"], q["passage"]))
            ms = (time.perf_counter() - started) * 1000 / len(questions)
            hit1 = sum(r == 1 for r in ranks) / len(ranks)
            hit5 = sum(r is not None for r in ranks) / len(ranks)
            mrr = sum(1 / r for r in ranks if r) / len(ranks)
            table.add_row(
                f"{method} search", f"hit@1 {hit1:.2f}", "",
                f"hit@5 {hit5:.2f}, MRR {mrr:.3f}; {len(ranks)} questions, {ms:,.0f} ms each",
            )  # fmt: skip
            if misses:
                missed = [q["id"] for q, r in zip(questions, ranks, strict=True) if r is None]
                console.print(f"{method}: not in the top 5: {', '.join(missed) or 'none'}")


# -- the run ---------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="timed generations of each path")
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--ttft-runs", type=int, default=30, help="short generations, for TTFT")
    parser.add_argument("--part", choices=["a", "b", "both"], default="both")
    parser.add_argument("--misses", action="store_true", help="list the questions missed")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    table = Table(
        "measure", "result", "goal", "detail",
        title="Assistant",  # completed below, once the load after is known
    )  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="rhenus-bench-") as tmp, Fleet() as fleet:
        console.print("starting a node…")
        node, key = start_node(fleet, Path(tmp))
        if args.part in ("a", "both"):
            part_a(node, key, args.runs, args.max_tokens, args.ttft_runs, table)
        if args.part in ("b", "both"):
            part_b(node, key, table, args.misses)
    table.title = (
        f"Assistant: {os.cpu_count()} cores ({platform.machine()}), Python "
        f"{platform.python_version()}, load average {load_before:.1f} → {os.getloadavg()[0]:.1f}"
    )
    console.print(table)


if __name__ == "__main__":
    main()
