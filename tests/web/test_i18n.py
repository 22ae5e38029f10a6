"""Every string of the web app is translated: templates hold no text of their own, and the fr
and de catalogues translate every message the code and templates use."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from rhenus.web import i18n
from rhenus.web.pages import TEMPLATES

WEB = TEMPLATES.parent
METHODS = [("templates/**.html", "jinja2"), ("**.py", "python")]
# Attributes people read (or hear): their values must come from the catalogues too.
READ_ATTRIBUTES = ("aria-label", "title", "placeholder", "alt", "aria-description")


def extracted() -> set[str | tuple[str, str]]:
    found: set[str | tuple[str, str]] = set()
    for _, _, message, _, _ in extract_from_dir(str(WEB), METHODS):
        found.add(message if isinstance(message, str) else (message[0], message[1]))
    return found


def text_outside_tags(template: str) -> list[str]:
    """The words a template would show that are not gettext calls."""
    without_jinja = re.sub(r"\{#.*?#\}|\{%.*?%\}|\{\{.*?\}\}", " ", template, flags=re.S)
    without_tags = re.sub(r"<[^>]*>", " ", without_jinja, flags=re.S)
    return [word for word in without_tags.split() if re.search(r"[^\W\d_]", word)]


@pytest.mark.parametrize("template", sorted(p.name for p in TEMPLATES.glob("*.html")))
def test_templates_hold_no_text_of_their_own(template: str) -> None:
    source = (TEMPLATES / template).read_text()
    assert text_outside_tags(source) == []
    without_jinja = re.sub(r"\{\{.*?\}\}", "", source, flags=re.S)
    for attribute in READ_ATTRIBUTES:
        literal = re.findall(rf'{attribute}="([^"]*[^\W\d_][^"]*)"', without_jinja)
        assert literal == [], f"{attribute} written in the template: {literal}"


@pytest.mark.parametrize("lang", ["fr", "de"])
def test_catalogue_translates_every_message(lang: str) -> None:
    path = i18n.LOCALES / lang / "LC_MESSAGES" / "messages.po"
    with path.open("rb") as source:
        catalogue = read_po(source, locale=lang)
    translated = {
        m.id if isinstance(m.id, str) else tuple(m.id)
        for m in catalogue
        if m.id and not m.fuzzy and all(m.string if isinstance(m.string, tuple) else [m.string])
    }
    missing = sorted(map(str, extracted() - translated))
    assert missing == [], f"untranslated in {path.relative_to(Path.cwd())}: run make messages"


def test_english_catalogue_knows_every_message() -> None:
    with (i18n.LOCALES / "en" / "LC_MESSAGES" / "messages.po").open("rb") as source:
        known = {m.id if isinstance(m.id, str) else tuple(m.id) for m in read_po(source) if m.id}
    assert sorted(map(str, extracted() - known)) == []


def test_accept_language_picks_the_preferred_language_we_speak() -> None:
    assert i18n.from_accept_language("de-AT,de;q=0.9,en;q=0.8") == "de"
    assert i18n.from_accept_language("es-ES, fr;q=0.4, en;q=0.6") == "en"
    assert i18n.from_accept_language("fr;q=0, de;q=0.1") == "de"
    assert i18n.from_accept_language("es, it") is None
    assert i18n.choose(None, "nl") == "en"
    assert i18n.choose("fr", "de") == "fr"
    assert i18n.choose("xx", "de") == "de"


def test_plural_forms_follow_each_language() -> None:
    assert i18n.translations("fr").ngettext("%(num)d offer", "%(num)d offers", 0) == "%(num)d offre"
    assert i18n.translations("de").ngettext("%(num)d offer", "%(num)d offers", 0) == (
        "%(num)d Angebote"
    )
