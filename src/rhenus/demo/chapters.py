"""Later chapters of the demo's story, each told by the live nodes of ``story``: a data pool
(Paris computes an aggregate over Berlin's data, which never leaves Berlin; then one aggregate
over Berlin's and Bayern's, merged at Paris) and the assistant
(a question to the open-weight model running inside Paris's node) and messaging (two agents
in a room of Paris's own Matrix homeserver)."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from rhenus.cli.pools import contributions_table, result_table
from rhenus.demo.nodes import LiveNode

Check = Callable[[httpx.Response], Any]

PATIENTS = {
    "title": {
        "de": "Krankenhausaufenthalte nach Bezirk (Einzelfälle)",
        "en": "Hospital stays by district (individual cases)",
    },
    "theme": "HEAL",
    "publisher": "Senatsverwaltung für Gesundheit Berlin",
    "license": "https://www.govdata.de/dl-de/by-2-0",
    "keywords": ["Krankenhaus", "Patienten"],
    "access": {"eu_only": True},
}
# Compute only: aggregates over groups of at least 5 patients, for statistics, in the EU.
COMPUTE_OFFER = {
    "permission": [
        {
            "action": "compute",
            "constraint": [
                {"leftOperand": "purpose", "operator": "eq", "rightOperand": "statistics"},
                {"leftOperand": "spatial", "operator": "isPartOf", "rightOperand": "EU"},
                {"leftOperand": "rhenus:minGroupSize", "operator": "gteq", "rightOperand": "5"},
            ],
        }
    ],
}
AGGREGATE = (
    "SELECT bezirk, count(*) AS patients, avg(lebensalter) AS mean_age, avg(tage) AS mean_days "
    "FROM data GROUP BY bezirk ORDER BY bezirk"
)


POOLED = (
    "SELECT count(*) AS patients, avg(lebensalter) AS mean_age, avg(tage) AS mean_days FROM data"
)
BERLIN_DISTRICTS = ["Mitte"] * 24 + ["Pankow"] * 18 + ["Spandau"] * 3
BAYERN_DISTRICTS = ["München"] * 31 + ["Nürnberg"] * 12


def patients(seed: int = 2026, districts: list[str] = BERLIN_DISTRICTS) -> list[tuple[Any, ...]]:
    """Individual hospital stays (synthetic, fixed seed): (id, district, age, days). Berlin's
    are many in Mitte and Pankow, three in Spandau — a group too small to release."""
    rng = random.Random(seed)  # noqa: S311 — synthetic data, reproducible on purpose
    return [
        (number, district, rng.randint(18, 95), rng.randint(1, 21))
        for number, district in enumerate(districts, start=1)
    ]


def patients_csv(seed: int = 2026, districts: list[str] = BERLIN_DISTRICTS) -> bytes:
    lines = ["patient_id,bezirk,lebensalter,tage"]
    lines += [",".join(map(str, row)) for row in patients(seed, districts)]
    return ("\n".join(lines) + "\n").encode()


def data_pool(
    console: Console,
    step: Callable[[str], None],
    check: Check,
    http: httpx.Client,
    paris: LiveNode,
    berlin: LiveNode,
    negotiate: Callable[[str], str],
) -> str:
    """Berlin offers patient records for computation only; Paris gets an agreement, then
    aggregates that Berlin computes where the data lies; a row-level query is refused. Returns
    the agreement."""
    step("Berlin offers individual hospital stays for computation only (groups of ≥ 5)")
    dataset = check(
        http.post(f"{berlin.url}/api/v1/datasets", headers=berlin.headers(), json=PATIENTS)
    )
    base = f"{berlin.url}/api/v1/datasets/{dataset['id']}"
    headers = {**berlin.headers(), "content-type": "text/csv"}
    check(http.put(f"{base}/content", content=patients_csv(), headers=headers))
    check(http.post(f"{base}/offers", headers=berlin.headers(), json={"policy": COMPUTE_OFFER}))
    check(http.post(f"{base}/publish", headers=berlin.headers()))
    console.print(f"  de-berlin: published {dataset['id']} (compute only; no download)")
    agreement = negotiate(dataset["id"])

    step("Paris computes an aggregate at Berlin: the rows never leave Berlin's node")
    query = {"agreement_id": agreement, "sql": AGGREGATE}
    answered = check(
        http.post(f"{paris.url}/api/v1/pools/queries", headers=paris.headers(), json=query)
    )
    result = answered["result"]
    table = Table(*result["columns"], title="released by de-berlin")
    for row in result["rows"]:
        table.add_row(*(f"{v:.1f}" if isinstance(v, float) else str(v) for v in row))
    console.print(table)
    console.print(
        f"  Spandau's 3 patients are below k = 5: no row for them; result sha-256 "
        f"{answered['result_sha256'][:16]}… in both audit logs"
    )
    refused = http.post(
        f"{paris.url}/api/v1/pools/queries",
        headers=paris.headers(),
        json={"agreement_id": agreement, "sql": "SELECT * FROM data"},
    )
    if refused.status_code != 400:
        raise RuntimeError(f"a row-level query was answered {refused.status_code}")
    reason = refused.json()["detail"]
    console.print(f"  a row-level query (SELECT *) → refused: {reason}")
    return agreement


def pooled(
    console: Console,
    step: Callable[[str], None],
    check: Check,
    http: httpx.Client,
    paris: LiveNode,
    agreements: dict[str, str],
    bayern: LiveNode,
    negotiate: Callable[[str, LiveNode], str],
) -> None:
    """Bayern offers its own hospital stays for computation; Paris sends one aggregate to
    Berlin and Bayern at once (``agreements``: Berlin's, by node name) and merges their partial
    sums and counts — the mean over both Länder, which neither computed nor could see."""
    step("Bayern joins the pool: its hospital stays, for computation only (groups of ≥ 5)")
    dataset = check(
        http.post(f"{bayern.url}/api/v1/datasets", headers=bayern.headers(), json=PATIENTS)
    )
    base = f"{bayern.url}/api/v1/datasets/{dataset['id']}"
    headers = {**bayern.headers(), "content-type": "text/csv"}
    check(http.put(f"{base}/content", content=patients_csv(7, BAYERN_DISTRICTS), headers=headers))
    check(http.post(f"{base}/offers", headers=bayern.headers(), json={"policy": COMPUTE_OFFER}))
    check(http.post(f"{base}/publish", headers=bayern.headers()))
    console.print(f"  {bayern.name}: published {dataset['id']} (compute only; no download)")
    agreements = {**agreements, bayern.name: negotiate(dataset["id"], bayern)}

    step("Paris runs one aggregate over Berlin's and Bayern's patients; each computes its part")
    merged = check(
        http.post(
            f"{paris.url}/api/v1/pools/federated-queries",
            headers=paris.headers(),
            json={"agreement_ids": list(agreements.values()), "sql": POOLED},
        )
    )
    console.print(result_table(merged, title="merged at fr-mininterieur"))
    names = {agreement: name for name, agreement in agreements.items()}
    console.print(contributions_table(merged, names))
    union = patients() + patients(7, BAYERN_DISTRICTS)
    expected = [len(union), sum(r[2] for r in union) / len(union)]
    if merged["rows"][0][:2] != expected:
        raise RuntimeError(f"the pooled mean {merged['rows']} is not the union's {expected}")
    console.print(
        f"  = the mean age of all {len(union)} patients of both Länder, exactly: Paris merged "
        "partial sums and counts; no row left Berlin or Bayern"
    )


def assistant(
    console: Console, step: Callable[[str], None], check: Check, http: httpx.Client, node: LiveNode
) -> None:
    """One question to the node's bundled open-weight model, through its OpenAI-compatible API;
    then one answered from a collection of French guides, with its sources (RAG)."""
    step("An agent asks the node's own open-weight model (OpenAI-compatible API, on this CPU)")
    model = check(http.get(f"{node.url}/v1/models", headers=node.headers()))["data"][0]["id"]
    question = "What is the capital of France? Answer in one sentence."
    started = time.perf_counter()
    answer = check(
        http.post(
            f"{node.url}/v1/chat/completions",
            headers=node.headers(),
            json={
                "model": model,
                "messages": [{"role": "user", "content": question}],
                "max_tokens": 40,
                "temperature": 0,
                "seed": 1,
            },
            timeout=120,
        )
    )
    seconds = time.perf_counter() - started
    text = " ".join(answer["choices"][0]["message"]["content"].split())
    usage = answer["usage"]
    console.print(f"  {model}: {question!r}")
    console.print(f"  → {text!r}")
    console.print(
        f"  {usage['prompt_tokens']} prompt + {usage['completion_tokens']} completion tokens "
        f"in {seconds:.1f} s, nothing sent outside the node"
    )

    from rhenus.demo.documents import GUIDES, QUESTION  # the collection's pages, in French

    step("The agent files three French guides in a collection and asks a question of them")
    collection = check(
        http.post(
            f"{node.url}/v1/collections",
            headers=node.headers(),
            json={"name": "Guides de la préfecture", "visibility": "shared"},
        )
    )["id"]
    uploaded = [
        check(
            http.post(
                f"{node.url}/v1/documents",
                headers=node.headers(),
                data={"collection": str(collection)},
                files={"file": (name, text.encode(), "text/markdown")},
            )
        )["id"]
        for name, text in GUIDES.items()
    ]
    for document_id in uploaded:  # indexed in the background by the node's job queue
        for _ in range(600):
            document = check(
                http.get(f"{node.url}/v1/documents/{document_id}", headers=node.headers())
            )
            if document["status"] in ("done", "failed"):
                break
            time.sleep(0.1)
        if document["status"] != "done":
            raise RuntimeError(f"{document['name']} was not indexed: {document['error']}")
    console.print(f"  {len(uploaded)} documents indexed: {', '.join(GUIDES)}")
    grounded = check(
        http.post(
            f"{node.url}/v1/chat/completions",
            headers=node.headers(),
            json={
                "model": model,
                "messages": [{"role": "user", "content": QUESTION}],
                "max_tokens": 32,
                "temperature": 0,
                "seed": 1,
                "search": True,
                # One passage: a 135M-parameter model mixes up the figures of two.
                "search_args": {"collections": [collection], "k": 1},
            },
            timeout=120,
        )
    )
    text = " ".join(grounded["choices"][0]["message"]["content"].split())
    console.print(f"  {QUESTION!r}\n  → {text!r}")
    if not grounded["search_results"]:
        raise RuntimeError("the question found nothing in the collection")
    for number, hit in enumerate(grounded["search_results"], start=1):
        page = hit["chunk"]["page"]
        section = " / ".join(hit["chunk"]["metadata"].get("headings") or [])
        console.print(
            f"  \\[{number}] {hit['document']['name']}, "
            f"{f'page {page}' if page is not None else 'no pages'}, «{section}» "
            f"(score {hit['score']:.3f})",
            highlight=False,
        )


def _matrix_register(
    check: Check, http: httpx.Client, node: LiveNode, user: str, token: str
) -> Any:
    """Register over the Matrix Client-Server API with a registration token, as clients do
    (User-Interactive Auth: token stage, then dummy)."""
    url = f"{node.url}/_matrix/client/v3/register"
    body: dict[str, Any] = {"username": user, "password": f"{user}-demo-matrix-password"}
    session = http.post(url, json=body).json()["session"]
    for stage in (
        {"type": "m.login.registration_token", "token": token},
        {"type": "m.login.dummy"},
    ):
        answer = http.post(url, json={**body, "auth": {**stage, "session": session}})
    return check(answer)


def messaging(
    console: Console, step: Callable[[str], None], check: Check, http: httpx.Client, node: LiveNode
) -> None:
    """Two agents of Paris talk in a room of the node's own Matrix homeserver."""
    step("Two French agents chat on Paris's own Matrix homeserver (Client-Server API)")
    token = check(
        http.post(
            f"{node.url}/api/v1/messaging/registration-tokens",
            headers=node.headers(),
            json={"uses_allowed": 2},
        )
    )["token"]
    jeanne = _matrix_register(check, http, node, "jeanne", token)
    paul = _matrix_register(check, http, node, "paul", token)

    def api(who: Any, method: str, path: str, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {who['access_token']}"}
        return check(
            http.request(method, f"{node.url}/_matrix/client/v3{path}", headers=headers, **kwargs)
        )

    room = api(
        jeanne,
        "POST",
        "/createRoom",
        json={"name": "Cellule de crise", "invite": [paul["user_id"]]},
    )
    room_id = room["room_id"]
    rule = api(jeanne, "GET", f"/rooms/{room_id}/state/im.vector.room.access_rules/")["rule"]
    console.print(
        f"  {jeanne['user_id']} created 'Cellule de crise' (access rule {rule}) and invited "
        f"{paul['user_id']}"
    )
    api(paul, "POST", f"/join/{room_id}", json={})
    since = api(paul, "GET", "/sync", params={"timeout": 0})["next_batch"]
    api(
        jeanne,
        "PUT",
        f"/rooms/{room_id}/send/m.room.message/demo1",
        json={"msgtype": "m.text", "body": "Bonjour Paul, point de situation à 15 h ?"},
    )
    timeline = api(paul, "GET", "/sync", params={"since": since, "timeout": 10000})["rooms"][
        "join"
    ][room_id]["timeline"]["events"]
    said = [e["content"]["body"] for e in timeline if e["type"] == "m.room.message"]
    if not said:
        raise RuntimeError("paul's sync did not deliver jeanne's message")
    console.print(f"  {paul['user_id']}'s long-polling sync received: {said[0]!r}")
