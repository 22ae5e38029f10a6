"""The French evaluation set of ``bench/assistant.py`` is well-formed (no model needed).

``bench/assistant_corpus/pages/*.md`` are public-service pages; ``eval.jsonl`` asks questions
whose answer is a passage of one page. Retrieval scores mean something only if every passage
is really in its page, word for word.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

CORPUS = Path(__file__).parents[2] / "bench" / "assistant_corpus"
PAGES = CORPUS / "pages"
FIELDS = {"id", "question", "page", "passage"}


def _entries() -> list[dict[str, Any]]:
    lines = (CORPUS / "eval.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def _page(name: str) -> str:
    return (PAGES / name).read_text(encoding="utf-8")


def test_the_corpus_has_at_least_30_pages_of_300_to_700_words_with_headings() -> None:
    pages = sorted(PAGES.glob("*.md"))
    assert len(pages) >= 30
    for page in pages:
        text = page.read_text(encoding="utf-8")
        assert 300 <= len(text.split()) <= 700, page.name
        assert text.startswith("# "), page.name
        assert "\n## " in text, page.name


def test_the_set_has_at_least_50_questions() -> None:
    assert len(_entries()) >= 50


def test_every_entry_has_exactly_the_four_fields_as_non_empty_strings() -> None:
    for entry in _entries():
        assert set(entry) == FIELDS, entry
        assert all(isinstance(entry[f], str) and entry[f].strip() for f in FIELDS), entry


def test_ids_are_unique() -> None:
    ids = [entry["id"] for entry in _entries()]
    assert len(ids) == len(set(ids))


def test_every_page_file_exists() -> None:
    for entry in _entries():
        assert (PAGES / entry["page"]).is_file(), entry["page"]
        assert Path(entry["page"]).name == entry["page"], "a file name, not a path"


@pytest.mark.parametrize("entry", _entries(), ids=lambda e: e["id"])
def test_every_passage_is_an_exact_substring_of_its_page(entry: dict[str, Any]) -> None:
    assert entry["passage"] in _page(entry["page"])


def test_questions_paraphrase_rather_than_copy_their_passage() -> None:
    for entry in _entries():
        assert entry["passage"] not in entry["question"], entry["id"]
        assert entry["question"] not in _page(entry["page"]), entry["id"]


def test_most_pages_are_asked_about() -> None:
    asked = {entry["page"] for entry in _entries()}
    assert len(asked) >= 0.9 * len(list(PAGES.glob("*.md")))
