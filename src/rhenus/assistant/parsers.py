"""A document's text as a sequence of blocks (headings and paragraphs), with page numbers where
the format has pages: PDF (pypdf), DOCX (python-docx), ODT (odfpy), HTML (trafilatura),
Markdown and plain text.

Parsing is synchronous and CPU-bound: the ingest runs it in a worker thread. Whatever a parser
cannot read raises :class:`ParseError`, whose message the document's ``error`` shows.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

PDF = "application/pdf"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
ODT = "application/vnd.oasis.opendocument.text"
HTML = "text/html"
MARKDOWN = "text/markdown"
TEXT = "text/plain"

# File name extension -> media type; the extension decides, the declared type is the fallback
# (browsers and SDKs often send application/octet-stream).
EXTENSIONS = {
    ".pdf": PDF,
    ".docx": DOCX,
    ".odt": ODT,
    ".html": HTML,
    ".htm": HTML,
    ".md": MARKDOWN,
    ".markdown": MARKDOWN,
    ".txt": TEXT,
    ".text": TEXT,
}
SUPPORTED = frozenset(EXTENSIONS.values())
_ALIASES = {"application/xhtml+xml": HTML, "text/x-markdown": MARKDOWN}


class ParseError(Exception):
    """The file is not a readable document of its type."""


@dataclass(frozen=True)
class Block:
    """A heading or a paragraph; ``page`` counts from 1 (None where the format has no pages)."""

    text: str
    heading: bool = False
    level: int = 0  # of a heading: 1 for a title
    page: int | None = None


@dataclass(frozen=True)
class Parsed:
    blocks: list[Block]
    page_count: int | None = None


def media_type_of(filename: str, declared: str | None) -> str | None:
    """The supported media type of an upload, from its name, else its declared type."""
    by_name = EXTENSIONS.get(PurePosixPath(filename or "").suffix.lower())
    if by_name is not None:
        return by_name
    declared = (declared or "").split(";")[0].strip().lower()
    declared = _ALIASES.get(declared, declared)
    return declared if declared in SUPPORTED else None


def parse(data: bytes, media_type: str) -> Parsed:
    """The blocks of a document of a supported ``media_type``."""
    parser = _PARSERS[media_type]
    try:
        parsed = parser(data)
    except ParseError:
        raise
    except Exception as exc:  # each library has its own errors for a broken file
        raise ParseError(f"not a readable {media_type} file: {type(exc).__name__}: {exc}") from exc
    if not any(block.text.strip() for block in parsed.blocks):
        raise ParseError("the document has no text (a scanned PDF needs OCR, not done here)")
    return parsed


def _paragraphs(text: str, page: int | None = None) -> Iterator[Block]:
    for paragraph in re.split(r"\n\s*\n", text):
        cleaned = " ".join(paragraph.split())
        if cleaned:
            yield Block(cleaned, page=page)


def _pdf(data: bytes) -> Parsed:
    from pypdf import PdfReader

    if not data.startswith(b"%PDF-"):
        raise ParseError("not a PDF file (no %PDF- header)")
    reader = PdfReader(io.BytesIO(data))
    if reader.is_encrypted and not reader.decrypt(""):
        raise ParseError("the PDF is encrypted")
    blocks: list[Block] = []
    for number, page in enumerate(reader.pages, start=1):
        text = page.extract_text() or ""
        # pypdf gives one line per text line and rarely a blank one: a page is often one
        # paragraph, which the chunker then cuts at sentence ends.
        blocks.extend(_paragraphs(text, page=number))
    return Parsed(blocks, page_count=len(reader.pages))


def _docx(data: bytes) -> Parsed:
    import docx
    from docx.table import Table

    document = docx.Document(io.BytesIO(data))
    blocks: list[Block] = []
    for item in document.iter_inner_content():
        if isinstance(item, Table):
            for row in item.rows:
                cells = [cell.text.strip() for cell in row.cells if cell.text.strip()]
                if cells:
                    blocks.append(Block(" | ".join(dict.fromkeys(cells))))
            continue
        text = " ".join(item.text.split())
        if not text:
            continue
        style = (item.style.name if item.style is not None else "") or ""
        level = _heading_level(style)
        blocks.append(Block(text, heading=level > 0, level=level))
    return Parsed(blocks)


def _heading_level(style: str) -> int:
    if style == "Title":
        return 1
    found = re.fullmatch(r"Heading (\d)", style)
    return int(found.group(1)) if found else 0


def _odt(data: bytes) -> Parsed:
    from odf import teletype
    from odf.opendocument import load

    document = load(io.BytesIO(data))
    blocks: list[Block] = []
    for element in _walk(document.text):
        if element.qname not in (_ODF_H, _ODF_P):
            continue
        content = " ".join(teletype.extractText(element).split())
        if not content:
            continue
        if element.qname == _ODF_H:
            level = int(element.getAttribute("outlinelevel") or 1)
            blocks.append(Block(content, heading=True, level=level))
        else:
            blocks.append(Block(content))
    return Parsed(blocks)


def _walk(node: Any) -> Iterator[Any]:
    """ODF elements in document order; a paragraph's own sub-elements are not walked."""
    for child in getattr(node, "childNodes", []):
        yield child
        if getattr(child, "qname", None) not in (_ODF_H, _ODF_P):
            yield from _walk(child)


_ODF_TEXT = "urn:oasis:names:tc:opendocument:xmlns:text:1.0"
_ODF_H, _ODF_P = (_ODF_TEXT, "h"), (_ODF_TEXT, "p")


def _html(data: bytes) -> Parsed:
    import trafilatura

    html = data.decode("utf-8", errors="replace")
    markdown = trafilatura.extract(
        html,
        output_format="markdown",
        include_formatting=True,
        include_tables=True,
        favor_recall=True,
    )
    if not markdown:
        markdown = trafilatura.html2txt(html) or ""
    return _markdown(markdown.encode())


_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")


def _markdown(data: bytes) -> Parsed:
    text = _decode(data)
    blocks: list[Block] = []
    paragraph: list[str] = []

    def flush() -> None:
        if paragraph:
            blocks.extend(_paragraphs("\n".join(paragraph)))
            paragraph.clear()

    for line in text.splitlines():
        found = _HEADING.match(line)
        if found:
            flush()
            blocks.append(Block(found.group(2), heading=True, level=len(found.group(1))))
        elif not line.strip():
            flush()
        else:
            paragraph.append(line)
    flush()
    return Parsed(blocks)


def _text(data: bytes) -> Parsed:
    return Parsed(list(_paragraphs(_decode(data))))


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


_PARSERS: dict[str, Callable[[bytes], Parsed]] = {
    PDF: _pdf,
    DOCX: _docx,
    ODT: _odt,
    HTML: _html,
    MARKDOWN: _markdown,
    TEXT: _text,
}
