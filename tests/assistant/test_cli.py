"""``rhenus assistant ingest`` and ``ask`` against the live node, through its HTTP API with an
API key: a folder becomes a collection, each file indexed or failed with its reason, and a
question is answered from it with its sources."""

from __future__ import annotations

import secrets
from pathlib import Path

import httpx
from typer.testing import CliRunner

from rhenus.cli import app
from rhenus.demo.nodes import LiveNode
from tests.assistant import files
from tests.assistant.test_documents_rag import DOCX_SECTIONS, PDF_PAGES


def run(node: LiveNode, key: str, *args: str) -> tuple[int, str]:
    env = {"RHENUS_URL": node.url, "RHENUS_API_KEY": key, "COLUMNS": "200"}
    result = CliRunner().invoke(app, ["assistant", *args], env=env)
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


def folder(root: Path) -> Path:
    docs = root / "docs"
    (docs / "sub").mkdir(parents=True)
    (docs / "guide-passeport.pdf").write_bytes(files.pdf(PDF_PAGES))
    (docs / "sub" / "cantine.docx").write_bytes(files.docx(DOCX_SECTIONS))
    (docs / "velo.md").write_text(
        "# Prime au vélo\n\nLa commune verse une prime de 400 euros pour un vélo électrique.\n"
    )
    (docs / "photo.jpg").write_bytes(b"\xff\xd8\xff")  # not a document: skipped
    return docs


def collections(node: LiveNode, key: str) -> list[dict[str, object]]:
    got = httpx.get(f"{node.url}/v1/collections", headers={"Authorization": f"Bearer {key}"})
    assert got.status_code == 200, got.text
    data: list[dict[str, object]] = got.json()["data"]
    return data


def test_ingest_creates_the_collection_and_indexes_every_supported_file(
    assistant_node: tuple[LiveNode, str], tmp_path: Path
) -> None:
    node, key = assistant_node
    name = f"guides-{secrets.token_hex(3)}"
    code, out = run(node, key, "ingest", str(folder(tmp_path)), "--collection", name)
    assert code == 0, out
    assert f"Created collection {name}" in out
    assert "Uploading" in out  # the progress bars
    assert "Indexing" in out
    for line in ("guide-passeport.pdf │ done   │ 2      │ 2", "sub/cantine.docx", "velo.md"):
        assert line in out, out
    assert "3 of 3 documents indexed, 1 other files skipped." in out
    [made] = [c for c in collections(node, key) if c["name"] == name]
    assert made["documents"] == 3
    # Again into the same collection: found by name, not created twice.
    again = tmp_path / "again"
    again.mkdir()
    (again / "horaires.txt").write_text("La mairie est ouverte le samedi matin.\n")
    code, out = run(node, key, "ingest", str(again), "--collection", name)
    assert code == 0, out
    assert "Created collection" not in out
    assert [c["documents"] for c in collections(node, key) if c["name"] == name] == [4]


def test_ingest_exits_1_when_a_file_fails_and_shows_why(
    assistant_node: tuple[LiveNode, str], tmp_path: Path
) -> None:
    node, key = assistant_node
    docs = tmp_path / "mixed"
    docs.mkdir()
    (docs / "ok.md").write_text("# Horaires\n\nLe guichet ouvre à neuf heures.\n")
    (docs / "broken.pdf").write_bytes(b"%PDF-1.4\nthis is no pdf")
    code, out = run(node, key, "ingest", str(docs), "--collection", f"m-{secrets.token_hex(3)}")
    assert code == 1, out
    broken = next(line for line in out.splitlines() if "broken.pdf" in line)
    assert "failed" in broken
    assert "application/pdf" in broken
    assert "1 of 2 documents indexed." in out


def test_ingest_of_a_folder_without_documents_is_refused(
    assistant_node: tuple[LiveNode, str], tmp_path: Path
) -> None:
    node, key = assistant_node
    (tmp_path / "photo.jpg").write_bytes(b"\xff\xd8\xff")
    code, out = run(node, key, "ingest", str(tmp_path), "--collection", "nothing")
    assert code == 1
    assert "No supported file" in out


def test_ask_streams_a_grounded_answer_then_its_sources(
    assistant_node: tuple[LiveNode, str], tmp_path: Path
) -> None:
    node, key = assistant_node
    name = f"ask-{secrets.token_hex(3)}"
    code, out = run(node, key, "ingest", str(folder(tmp_path)), "--collection", name)
    assert code == 0, out
    code, out = run(
        node,
        key,
        "ask",
        "Quel est le délai de délivrance d'un passeport ?",
        "--collection",
        name,
        "--k",
        "2",
        "--max-tokens",
        "24",
    )
    assert code == 0, out
    answer, _, sources = out.partition("Sources")
    assert answer.strip()  # the model's words, streamed before the sources
    lines = [line for line in sources.splitlines() if line.startswith("[")]
    # At most k; only passages over the score threshold are given (here the PDF's page 2 alone).
    assert 1 <= len(lines) <= 2
    assert lines[0].startswith("[1] guide-passeport.pdf, page 2 (score ")
    assert all(line.startswith(f"[{n}] ") for n, line in enumerate(lines, start=1))


def test_ask_a_collection_that_does_not_exist_or_with_a_bad_key(
    assistant_node: tuple[LiveNode, str],
) -> None:
    node, key = assistant_node
    code, out = run(node, key, "ask", "Bonjour ?", "--collection", "no-such-collection")
    assert code == 1
    assert "No collection named 'no-such-collection'" in out
    code, out = run(node, "rk_wrong", "ask", "Bonjour ?", "--collection", "x")
    assert code == 1
    assert "401" in out
