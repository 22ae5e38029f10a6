"""Documents made by the tests: a PDF written object by object, a DOCX, an ODT, an HTML page."""

from __future__ import annotations

import io


def _pdf_string(text: str) -> bytes:
    escaped = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
    return b"(" + escaped.encode("cp1252") + b")"


def pdf(pages: list[list[str]]) -> bytes:
    """A valid PDF 1.4 of one page per item, each line of text in Helvetica (WinAnsi), as a
    PDF writer lays it out: a catalog, a page tree, pages, a font, content streams, an xref."""
    objects: dict[int, bytes] = {}
    font, tree = 3, 2
    kids = []
    number = 4
    for lines in pages:
        content = [b"BT", b"/F1 11 Tf", b"14 TL", b"72 770 Td"]
        for line in lines:
            content.append(_pdf_string(line) + b" Tj T*")
        content.append(b"ET")
        stream = b"\n".join(content)
        objects[number + 1] = (
            b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream"
        )
        objects[number] = (
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
            b"/Resources << /Font << /F1 3 0 R >> >> /Contents "
            + str(number + 1).encode()
            + b" 0 R >>"
        )
        kids.append(number)
        number += 2
    objects[1] = b"<< /Type /Catalog /Pages 2 0 R >>"
    objects[tree] = (
        b"<< /Type /Pages /Kids ["
        + b" ".join(f"{k} 0 R".encode() for k in kids)
        + b"] /Count "
        + str(len(kids)).encode()
        + b" >>"
    )
    objects[font] = (
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"
    )
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = {}
    for n in sorted(objects):
        offsets[n] = out.tell()
        out.write(f"{n} 0 obj\n".encode() + objects[n] + b"\nendobj\n")
    xref = out.tell()
    count = max(objects) + 1
    out.write(f"xref\n0 {count}\n0000000000 65535 f \n".encode())
    for n in range(1, count):
        out.write(f"{offsets[n]:010d} 00000 n \n".encode())
    out.write(f"trailer\n<< /Size {count} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode())
    return out.getvalue()


def docx(sections: list[tuple[str, list[str]]]) -> bytes:
    """A Word document: each section a Heading 1 and its paragraphs."""
    import docx as python_docx

    document = python_docx.Document()
    for heading, paragraphs in sections:
        document.add_heading(heading, level=1)
        for paragraph in paragraphs:
            document.add_paragraph(paragraph)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def odt(sections: list[tuple[str, list[str]]]) -> bytes:
    """An OpenDocument text: each section a level-1 heading and its paragraphs."""
    from odf.opendocument import OpenDocumentText
    from odf.text import H, P

    document = OpenDocumentText()
    for heading, paragraphs in sections:
        document.text.addElement(H(outlinelevel=1, text=heading))
        for paragraph in paragraphs:
            document.text.addElement(P(text=paragraph))
    out = io.BytesIO()
    document.write(out)
    return out.getvalue()


def html(title: str, sections: list[tuple[str, list[str]]]) -> bytes:
    """A web page with navigation around an article of sections."""
    body = "".join(
        f"<h2>{heading}</h2>" + "".join(f"<p>{p}</p>" for p in paragraphs)
        for heading, paragraphs in sections
    )
    page = (
        f"<!doctype html><html lang='fr'><head><meta charset='utf-8'><title>{title}</title>"
        "</head><body><nav><a href='/'>Accueil</a> <a href='/contact'>Contact</a></nav>"
        f"<main><article><h1>{title}</h1>{body}</article></main>"
        "<footer>Mentions légales</footer></body></html>"
    )
    return page.encode()
