"""Ingest and search on both engines (SQLite FTS5, PostgreSQL tsvector), through the service
functions a benchmark calls, with the real embedding model; and the pure parts: parsers,
chunking, rank fusion, the RAG prompt."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from sqlalchemy import delete, func, select
from starlette.datastructures import State

from rhenus.accounts.models import User
from rhenus.assistant import chunking, parsers, rag
from rhenus.assistant.ingest import Ingester
from rhenus.assistant.models import Chunk, Collection, Document
from rhenus.assistant.search import SearchResult, embedder_for, fuse, search
from rhenus.assistant.service import Assistant
from rhenus.core.db import utcnow
from rhenus.core.node import Node
from tests.assistant import files

NOTES = [
    ("Déchetterie", ["La déchetterie ouvre le samedi matin pour les encombrants."]),
    ("État civil", ["Un acte de naissance se demande en ligne, gratuitement."]),
]


async def _ingest(node: Node, state: State, data: bytes, name: str, media_type: str) -> int:
    info = await node.blobs.put([data])
    now = utcnow()
    async with node.db.transaction() as session:
        owner = await session.scalar(select(User.id).where(User.username == "admin"))
        assert owner is not None
        collection = Collection(
            name="c", description="", owner_id=owner, visibility="private",
            created_at=now, updated_at=now,
        )  # fmt: skip
        session.add(collection)
        await session.flush()
        document = Document(
            collection_id=collection.id, name=name, media_type=media_type,
            blob_sha256=info.sha256, size=info.size, status="queued", error="",
            chunk_count=0, page_count=None, created_at=now, updated_at=now,
        )  # fmt: skip
        session.add(document)
        await session.flush()
        document_id = document.id
    await Ingester(state).run({"document_id": document_id})
    return document_id


@pytest.fixture
def state(node: Node) -> State:
    state = State()
    state.node = node
    state.assistant = Assistant(node.settings.assistant_models, owner="t", max_waiting=4)
    return state


async def test_each_engine_indexes_searches_and_forgets_a_document(
    node: Node, state: State
) -> None:
    document_id = await _ingest(node, state, files.odt(NOTES), "notes.odt", parsers.ODT)
    embed = embedder_for(state.assistant, node.settings)
    async with node.db.session() as session:
        document = await session.get(Document, document_id)
        assert document is not None
        assert (document.status, document.chunk_count) == ("done", 2)
        collections = [document.collection_id]

        async def found(prompt: str, method: Any) -> list[SearchResult]:
            return await search(
                session, embed, collections=collections, prompt=prompt, k=5, method=method
            )

        keyword = await found("encombrants samedi", "keyword")
        assert [r.text for r in keyword] == [NOTES[0][1][0]]
        assert keyword[0].score > 0
        semantic = await found("Comment obtenir un extrait d'acte de naissance ?", "semantic")
        assert semantic[0].metadata["headings"] == ["État civil"]
        hybrid = await found("acte de naissance", "hybrid")
        assert hybrid[0].text == NOTES[1][1][0]
        assert hybrid[0].score == pytest.approx(2 / 61)  # first in both rankings
    async with node.db.transaction() as session:
        await session.execute(delete(Document).where(Document.id == document_id))
    async with node.db.session() as session:
        assert await session.scalar(select(func.count()).select_from(Chunk)) == 0
        assert await found("encombrants samedi", "keyword") == []  # the index forgot it too
        assert await found("acte de naissance", "semantic") == []


def test_a_pdf_gives_its_text_page_by_page() -> None:
    parsed = parsers.parse(files.pdf([["Page one (a)."], ["Page two, é."]]), parsers.PDF)
    assert parsed.page_count == 2
    assert [(b.page, b.text) for b in parsed.blocks] == [(1, "Page one (a)."), (2, "Page two, é.")]


def test_markdown_and_text_split_into_headings_and_paragraphs() -> None:
    parsed = parsers.parse(b"# Titre\n\nUn.\nDeux.\n\n## Sous\n\nTrois.", parsers.MARKDOWN)
    assert [(b.heading, b.level, b.text) for b in parsed.blocks] == [
        (True, 1, "Titre"),
        (False, 0, "Un. Deux."),
        (True, 2, "Sous"),
        (False, 0, "Trois."),
    ]
    assert [b.text for b in parsers.parse(b"a\n\nb", parsers.TEXT).blocks] == ["a", "b"]


def test_a_document_without_text_is_a_parse_error() -> None:
    with pytest.raises(parsers.ParseError, match="no text"):
        parsers.parse(b"  \n\n ", parsers.TEXT)


def test_the_media_type_comes_from_the_name_then_the_declared_type() -> None:
    assert parsers.media_type_of("Rapport.PDF", "application/octet-stream") == parsers.PDF
    assert parsers.media_type_of("page", "text/html; charset=utf-8") == parsers.HTML
    assert parsers.media_type_of("x.xlsx", "application/vnd.ms-excel") is None


def test_chunks_follow_headings_and_pages_and_overlap_inside_a_section() -> None:
    sentence = "Une phrase de quarante caractères ici. "
    blocks = [
        parsers.Block("Titre", heading=True, level=1, page=1),
        parsers.Block(sentence * 10, page=1),
        parsers.Block("Sur la page deux.", page=2),
        parsers.Block("Annexe", heading=True, level=1, page=2),
        parsers.Block("Fin.", page=2),
    ]
    pieces = chunking.chunks(blocks, size=200, overlap=50)
    assert all(len(p.text) <= 200 + 50 for p in pieces)
    first_page = [p for p in pieces if p.page == 1]
    assert len(first_page) >= 2
    assert all(p.headings == ["Titre"] for p in first_page)
    # Each cut inside the section repeats the end of the chunk before it.
    for before, after in itertools.pairwise(first_page):
        assert after.text[:30] in before.text
    assert (pieces[-2].text, pieces[-2].page) == ("Sur la page deux.", 2)
    assert (pieces[-1].text, pieces[-1].headings) == ("Fin.", ["Annexe"])


def test_reciprocal_rank_fusion_adds_one_over_sixty_plus_rank() -> None:
    fused = dict(fuse([[(1, 9.0), (2, 8.0)], [(2, 0.9), (3, 0.8)]]))
    assert fused == pytest.approx({1: 1 / 61, 2: 1 / 62 + 1 / 61, 3: 1 / 62})
    assert [i for i, _ in fuse([[(1, 9.0), (2, 8.0)], [(2, 0.9), (3, 0.8)]])] == [2, 1, 3]


def _result(n: int, text: str, page: int | None) -> SearchResult:
    return SearchResult(
        chunk_id=n, document_id=1, document_name="guide.pdf", collection_id=1, index=n,
        page=page, text=text, metadata={}, score=1.0, method="semantic",
    )  # fmt: skip


def test_the_rag_prompt_numbers_the_passages_in_the_order_of_search_results() -> None:
    results = [_result(1, "Premier passage.", 2), _result(2, "Second passage.", None)]
    messages = rag.with_passages(
        [{"role": "system", "content": "Sois bref."}, {"role": "user", "content": "Q ?"}], results
    )
    assert [m["role"] for m in messages] == ["system", "user"]
    system = messages[0]["content"]
    assert system.startswith("Sois bref.\n\n" + rag.INSTRUCTIONS)
    assert "[1] (guide.pdf, page 2)\nPremier passage." in system
    assert "[2] (guide.pdf)\nSecond passage." in system
    added = rag.with_passages([{"role": "user", "content": "Q ?"}], results)
    assert added[0]["role"] == "system"


def test_passages_are_kept_to_what_fits_the_context() -> None:
    results = [_result(1, "a" * 500, 1), _result(2, "b" * 500, 1), _result(3, "c" * 500, 1)]
    assert [r.chunk_id for r in rag.fitting(results, 1200)] == [1, 2]
    [only] = rag.fitting(results, 100)
    assert only.text == "a" * 100
