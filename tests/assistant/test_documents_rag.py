"""Document collections, ingest, search and retrieval-augmented chat (the Albert API's RAG), on
a live node: a PDF, a DOCX and an HTML page are uploaded, indexed, searched and cited."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from rhenus.assistant.rag import NOTHING_FOUND
from rhenus.demo.nodes import LiveNode
from tests.assistant import files
from tests.assistant.conftest import CHAT_MODEL

PASSWORD = "a-long-enough-password"

PDF_PAGES = [
    [
        "Accueil du public de la préfecture",
        "Le guichet est ouvert du lundi au vendredi de neuf heures à seize heures.",
        "Un rendez-vous en ligne évite l'attente.",
    ],
    [
        "Passeport biométrique",
        "Le délai de délivrance d'un passeport est de trois semaines après le dépôt.",
        "Le timbre fiscal d'un passeport pour un adulte coûte 86 euros.",
    ],
]
DOCX_SECTIONS = [
    ("Cantine scolaire", ["Le repas de la cantine coûte 3 euros pour chaque enfant."]),
    ("Inscription à la cantine", ["L'inscription se fait en mairie avant le premier septembre."]),
]
HTML_SECTIONS = [
    ("Prime au vélo électrique", ["La commune verse une prime de 400 euros pour un vélo."]),
    ("Conditions de la prime", ["Il faut habiter la commune depuis au moins un an."]),
]


class Agent:
    """A user of the node, with an API key, speaking /v1 with httpx and the OpenAI SDK."""

    def __init__(self, node: LiveNode, key: str) -> None:
        self.http = httpx.Client(
            base_url=f"{node.url}/v1", headers={"Authorization": f"Bearer {key}"}, timeout=120
        )
        self.sdk = openai.OpenAI(base_url=f"{node.url}/v1", api_key=key, max_retries=0)

    def collection(self, visibility: str = "private") -> int:
        made = self.http.post(
            "/collections", json={"name": f"c-{secrets.token_hex(3)}", "visibility": visibility}
        )
        assert made.status_code == 201, made.text
        return int(made.json()["id"])

    def upload(self, collection: int, name: str, data: bytes, media_type: str) -> dict[str, Any]:
        sent = self.http.post(
            "/documents",
            data={"collection": str(collection)},
            files={"file": (name, data, media_type)},
        )
        assert sent.status_code == 201, sent.text
        body: dict[str, Any] = sent.json()
        return body

    def indexed(self, document_id: int) -> dict[str, Any]:
        """The document once its ingest has ended (done or failed)."""
        for _ in range(600):
            got = self.http.get(f"/documents/{document_id}")
            assert got.status_code == 200, got.text
            body: dict[str, Any] = got.json()
            if body["status"] in ("done", "failed"):
                return body
            time.sleep(0.1)
        raise AssertionError(f"document {document_id} still {body['status']}")

    def search(self, collections: list[int], prompt: str, **args: Any) -> list[dict[str, Any]]:
        found = self.http.post(
            "/search", json={"collections": collections, "prompt": prompt, **args}
        )
        assert found.status_code == 200, found.text
        data: list[dict[str, Any]] = found.json()["data"]
        return data


def make_agent(node: LiveNode) -> Agent:
    name = f"rag-{secrets.token_hex(4)}"
    with httpx.Client(base_url=node.url, timeout=30) as admin:
        made = admin.post(
            "/api/v1/users", headers=node.headers(), json={"username": name, "password": PASSWORD}
        )
        assert made.status_code == 201, made.text
        login = admin.post("/api/v1/auth/login", json={"username": name, "password": PASSWORD})
        token = login.json()["access_token"]
        key = admin.post(
            "/api/v1/me/api-keys",
            headers={"Authorization": f"Bearer {token}"},
            json={"name": "rag"},
        ).json()["key"]
    return Agent(node, key)


@pytest.fixture(scope="module")
def alice(assistant_node: tuple[LiveNode, str]) -> Iterator[Agent]:
    agent = make_agent(assistant_node[0])
    yield agent
    agent.http.close()


@pytest.fixture(scope="module")
def bob(assistant_node: tuple[LiveNode, str]) -> Iterator[Agent]:
    agent = make_agent(assistant_node[0])
    yield agent
    agent.http.close()


@pytest.fixture(scope="module")
def library(alice: Agent) -> dict[str, Any]:
    """Alice's private collection holding the PDF, the DOCX and the HTML page, indexed."""
    collection = alice.collection()
    uploads = {
        "pdf": alice.upload(
            collection, "guide-passeport.pdf", files.pdf(PDF_PAGES), "application/pdf"
        ),
        "docx": alice.upload(
            collection,
            "cantine.docx",
            files.docx(DOCX_SECTIONS),
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        ),
        "html": alice.upload(
            collection, "prime-velo.html", files.html("Aides", HTML_SECTIONS), "text/html"
        ),
    }
    return {
        "collection": collection,
        "uploaded": uploads,
        "documents": {kind: alice.indexed(d["id"]) for kind, d in uploads.items()},
    }


def test_an_upload_is_queued_then_indexed_with_its_pages_and_chunks(
    library: dict[str, Any],
) -> None:
    for kind, uploaded in library["uploaded"].items():
        assert uploaded["object"] == "document"
        assert uploaded["status"] == "queued", kind
        assert uploaded["chunks"] == 0
    pdf, docx, html = (library["documents"][k] for k in ("pdf", "docx", "html"))
    assert all(d["status"] == "done" and d["error"] is None for d in (pdf, docx, html))
    assert (pdf["pages"], pdf["chunks"]) == (2, 2)  # one chunk per page: a page starts a chunk
    assert pdf["media_type"] == "application/pdf"
    assert docx["pages"] is None
    assert docx["chunks"] == 2  # one per heading
    assert html["chunks"] == 2


def test_documents_are_listed_by_collection(alice: Agent, library: dict[str, Any]) -> None:
    listed = alice.http.get("/documents", params={"collection": library["collection"]})
    assert listed.status_code == 200
    names = [d["name"] for d in listed.json()["data"]]
    assert names == ["guide-passeport.pdf", "cantine.docx", "prime-velo.html"]
    paged = alice.http.get(
        "/documents", params={"collection": library["collection"], "limit": 1, "offset": 1}
    )
    assert [d["name"] for d in paged.json()["data"]] == ["cantine.docx"]
    got = alice.http.get(f"/collections/{library['collection']}").json()
    assert got["documents"] == 3
    assert got["visibility"] == "private"


def test_semantic_search_finds_the_page_that_answers(alice: Agent, library: dict[str, Any]) -> None:
    [best, *_] = alice.search(
        [library["collection"]],
        "Combien de temps faut-il pour obtenir un passeport ?",
        method="semantic",
    )
    assert best["document"]["name"] == "guide-passeport.pdf"
    assert best["chunk"]["page"] == 2
    assert "trois semaines" in best["chunk"]["content"]
    assert 0 < best["score"] <= 1
    assert best["method"] == "semantic"


def test_keyword_search_matches_stemmed_words(alice: Agent, library: dict[str, Any]) -> None:
    # "primes" and "vélos" are found as "prime" and "vélo"; "velo" without its accent too.
    hits = alice.search([library["collection"]], "primes velos", method="keyword")
    assert hits
    assert {h["document"]["name"] for h in hits} == {"prime-velo.html"}
    assert hits[0]["score"] >= hits[-1]["score"] > 0


def test_hybrid_search_fuses_both_rankings(alice: Agent, library: dict[str, Any]) -> None:
    prompt = "inscription cantine mairie"
    collections = [library["collection"]]
    keyword = alice.search(collections, prompt, method="keyword", k=10)
    semantic = alice.search(collections, prompt, method="semantic", k=10)
    hybrid = alice.search(collections, prompt, method="hybrid", k=10)
    rank = {
        name: {h["chunk"]["id"]: r for r, h in enumerate(hits, start=1)}
        for name, hits in (("keyword", keyword), ("semantic", semantic))
    }
    for hit in hybrid:
        chunk = hit["chunk"]["id"]
        expected = sum(1 / (60 + ranks[chunk]) for ranks in rank.values() if chunk in ranks)
        assert hit["score"] == pytest.approx(expected)
    assert [h["score"] for h in hybrid] == sorted((h["score"] for h in hybrid), reverse=True)
    assert hybrid[0]["chunk"]["content"].startswith("L'inscription se fait en mairie")
    assert hybrid[0]["chunk"]["metadata"]["headings"] == ["Inscription à la cantine"]


def test_search_filters_on_metadata_and_threshold(alice: Agent, library: dict[str, Any]) -> None:
    collections = [library["collection"]]
    only_page_1 = alice.search(collections, "passeport", method="semantic", metadata={"page": 1})
    assert only_page_1
    assert {h["chunk"]["page"] for h in only_page_1} == {1}
    assert alice.search(collections, "passeport", method="semantic", score_threshold=0.99) == []


def test_chat_with_search_answers_from_the_document_and_cites_it(
    alice: Agent, library: dict[str, Any]
) -> None:
    completion = alice.sdk.chat.completions.create(
        model=CHAT_MODEL,
        messages=[{"role": "user", "content": "Quel est le délai de délivrance d'un passeport ?"}],
        max_tokens=48,
        temperature=0,
        extra_body={
            "search": True,
            "search_args": {"collections": [library["collection"]], "k": 3},
        },
    )
    assert completion.choices[0].message.content.strip()
    assert completion.choices[0].message.content != NOTHING_FOUND
    results = completion.model_extra["search_results"]  # type: ignore[index]
    # [1] of the system prompt is search_results[0]: the PDF's second page.
    assert results[0]["document"]["id"] == library["documents"]["pdf"]["id"]
    assert results[0]["chunk"]["page"] == 2
    assert "trois semaines" in results[0]["chunk"]["content"]
    assert completion.usage is not None
    assert completion.usage.prompt_tokens > 60  # the passages were in the prompt


def test_chat_with_search_streams_the_results_first(alice: Agent, library: dict[str, Any]) -> None:
    with alice.http.stream(
        "POST",
        "/chat/completions",
        json={
            "model": CHAT_MODEL,
            "messages": [{"role": "user", "content": "Combien coûte le repas de la cantine ?"}],
            "max_tokens": 8,
            "stream": True,
            "search": True,
            "search_args": {"collections": [library["collection"]], "method": "semantic"},
        },
    ) as response:
        assert response.status_code == 200
        first = next(line for line in response.iter_lines() if line.startswith("data: "))
    assert '"search_results"' in first
    assert "cantine.docx" in first


def test_chat_with_search_finding_nothing_says_so_without_the_model(
    alice: Agent, library: dict[str, Any]
) -> None:
    completion = alice.sdk.chat.completions.create(
        model=CHAT_MODEL,
        messages=[{"role": "user", "content": "Quelle est la recette de la tarte Tatin ?"}],
        # Its best passage is about 0.14 similar; the default threshold is 0.3.
        extra_body={"search": True, "search_args": {"collections": [library["collection"]]}},
    )
    assert completion.choices[0].message.content == NOTHING_FOUND
    assert completion.model_extra["search_results"] == []  # type: ignore[index]
    assert completion.usage is not None
    assert completion.usage.total_tokens == 0


def test_another_user_cannot_read_search_or_delete_a_private_collection(
    alice: Agent, bob: Agent, library: dict[str, Any]
) -> None:
    collection = library["collection"]
    document = library["documents"]["pdf"]["id"]
    assert bob.http.get(f"/collections/{collection}").status_code == 404
    assert collection not in [c["id"] for c in bob.http.get("/collections").json()["data"]]
    assert bob.http.get("/documents", params={"collection": collection}).status_code == 404
    assert document not in [d["id"] for d in bob.http.get("/documents").json()["data"]]
    assert bob.http.get(f"/documents/{document}").status_code == 404
    searched = bob.http.post("/search", json={"collections": [collection], "prompt": "passeport"})
    assert searched.status_code == 404
    assert searched.json()["error"]["code"] == "collection_not_found"
    chat = bob.http.post(
        "/chat/completions",
        json={
            "model": CHAT_MODEL,
            "messages": [{"role": "user", "content": "passeport ?"}],
            "search": True,
            "search_args": {"collections": [collection]},
        },
    )
    assert chat.status_code == 404
    assert bob.http.delete(f"/documents/{document}").status_code == 404
    assert bob.http.delete(f"/collections/{collection}").status_code == 404
    uploaded = bob.http.post(
        "/documents",
        data={"collection": str(collection)},
        files={"file": ("x.txt", b"x", "text/plain")},
    )
    assert uploaded.status_code == 404
    assert alice.http.get(f"/documents/{document}").json()["status"] == "done"  # all still there


def test_a_shared_collection_is_read_by_all_but_changed_by_its_owner(
    alice: Agent, bob: Agent
) -> None:
    shared = alice.collection("shared")
    document = alice.upload(shared, "note.md", b"# Note\n\nLa salle du conseil est au premier.", "")
    assert alice.indexed(document["id"])["status"] == "done"
    assert (
        bob.http.get(f"/collections/{shared}").json()["owner"]
        == alice.http.get(f"/collections/{shared}").json()["owner"]
    )
    hits = bob.search([shared], "salle du conseil", method="keyword")
    assert hits[0]["document"]["name"] == "note.md"
    refused = bob.http.delete(f"/collections/{shared}")
    assert refused.status_code == 403
    assert refused.json()["error"]["type"] == "permission_error"
    assert bob.http.delete(f"/documents/{document['id']}").status_code == 403
    added = bob.http.post(
        "/documents",
        data={"collection": str(shared)},
        files={"file": ("b.txt", b"b", "text/plain")},
    )
    assert added.status_code == 403
    assert alice.http.delete(f"/documents/{document['id']}").status_code == 204
    assert alice.http.get(f"/documents/{document['id']}").status_code == 404
    assert bob.search([shared], "salle du conseil", method="keyword") == []
    assert alice.http.delete(f"/collections/{shared}").status_code == 204
    assert bob.http.get(f"/collections/{shared}").status_code == 404


def test_an_unsupported_file_type_is_415_in_openais_shape(alice: Agent) -> None:
    collection = alice.collection()
    sent = alice.http.post(
        "/documents",
        data={"collection": str(collection)},
        files={"file": ("tableau.xlsx", b"PK\x03\x04 not really", "application/vnd.ms-excel")},
    )
    assert sent.status_code == 415
    error = sent.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert (error["type"], error["param"], error["code"]) == (
        "invalid_request_error",
        "file",
        "unsupported_file_type",
    )


def test_a_document_over_the_limit_is_413(alice: Agent) -> None:
    collection = alice.collection()
    limit = 20 * 1024 * 1024  # assistant_max_document_bytes, by default
    sent = alice.http.post(
        "/documents",
        data={"collection": str(collection)},
        files={"file": ("big.txt", b"a" * (limit + 1), "text/plain")},
    )
    assert sent.status_code == 413
    assert sent.json()["error"]["code"] == "file_too_large"
    assert alice.http.get("/documents", params={"collection": collection}).json()["data"] == []


def test_an_unknown_collection_is_404(alice: Agent) -> None:
    sent = alice.http.post(
        "/documents", data={"collection": "999999"}, files={"file": ("a.txt", b"a", "text/plain")}
    )
    assert sent.status_code == 404
    assert sent.json()["error"]["code"] == "collection_not_found"
    assert alice.http.get("/collections/999999").status_code == 404
    with pytest.raises(openai.NotFoundError):
        alice.sdk.post("/search", body={"collections": [999999], "prompt": "x"}, cast_to=object)


def test_a_file_its_parser_cannot_read_fails_with_the_reason(alice: Agent) -> None:
    collection = alice.collection()
    broken = alice.upload(collection, "broken.pdf", b"%PDF-1.4\nthis is no pdf", "application/pdf")
    assert broken["status"] == "queued"
    indexed = alice.indexed(broken["id"])
    assert indexed["status"] == "failed"
    assert "application/pdf" in indexed["error"]
    assert indexed["chunks"] == 0


def test_search_true_needs_search_args(alice: Agent) -> None:
    sent = alice.http.post(
        "/chat/completions",
        json={"model": CHAT_MODEL, "messages": [{"role": "user", "content": "x"}], "search": True},
    )
    assert sent.status_code == 400
    assert "search_args" in sent.json()["error"]["message"]


def test_deleting_a_collection_deletes_its_documents(alice: Agent) -> None:
    # Made with the OpenAI SDK's own client, as docs/assistant.md shows.
    made: Any = alice.sdk.post("/collections", body={"name": "Marché"}, cast_to=object)
    collection = made["id"]
    document: Any = alice.sdk.post(
        "/documents",
        cast_to=object,
        body={"collection": str(collection)},
        files={"file": ("a.txt", b"Le marche a lieu le samedi.")},
        options={"headers": {"Content-Type": "multipart/form-data"}},
    )
    assert alice.indexed(document["id"])["status"] == "done"
    assert alice.http.delete(f"/collections/{collection}").status_code == 204
    assert alice.http.get(f"/documents/{document['id']}").status_code == 404
    assert (
        alice.http.post(
            "/search", json={"collections": [collection], "prompt": "marché"}
        ).status_code
        == 404
    )
