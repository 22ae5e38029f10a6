"""What the catalogue pages show, in the reader's language: facet values named as people name
them (themes, countries, licences), search hits and a dataset's page built from the DSP
Dataset the publishing node sent (metadata and its offers in plain words)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from rhenus.dataspace.catalogue.schemas import FACETS, Hit, SearchResult
from rhenus.web import i18n
from rhenus.web.i18n import N_
from rhenus.web.offers import OfferText, describe

FACET_LABELS = {
    "theme": N_("Theme"),
    "publisher": N_("Publisher"),
    "country": N_("Country"),
    "format": N_("Format"),
    "license": N_("Licence"),
}
# The EU Publications Office data themes (the codes of catalogue.schemas.EU_THEMES).
THEMES = {
    "AGRI": N_("Agriculture, fisheries, forestry and food"),
    "ECON": N_("Economy and finance"),
    "EDUC": N_("Education, culture and sport"),
    "ENER": N_("Energy"),
    "ENVI": N_("Environment"),
    "GOVE": N_("Government and public sector"),
    "HEAL": N_("Health"),
    "INTR": N_("International issues"),
    "JUST": N_("Justice, legal system and public safety"),
    "OP_DATPRO": N_("Provisional data"),
    "REGI": N_("Regions and cities"),
    "SOCI": N_("Population and society"),
    "TECH": N_("Science and technology"),
    "TRAN": N_("Transport"),
}
# Licences by their usual names (data.gouv.fr, GovData); others are shown as given.
LICENCES = {
    "https://www.govdata.de/dl-de/by-2-0": "Datenlizenz Deutschland \N{EN DASH} Namensnennung 2.0",
    "https://www.govdata.de/dl-de/zero-2-0": "Datenlizenz Deutschland \N{EN DASH} Zero 2.0",
    "https://www.etalab.gouv.fr/licence-ouverte-open-licence": "Licence Ouverte 2.0",
    "https://www.etalab.gouv.fr/wp-content/uploads/2017/04/ETALAB-Licence-Ouverte-v2.0.pdf": (
        "Licence Ouverte 2.0"
    ),
    "https://creativecommons.org/licenses/by/4.0/": "CC BY 4.0",
    "https://creativecommons.org/publicdomain/zero/1.0/": "CC0 1.0",
    "http://data.europa.eu/eli/dec_impl/2021/1853/oj": "CC BY 4.0 (EU)",
}


def facet_value_label(facet: str, value: str, lang: str) -> str:
    """A facet value as a reader names it (a theme's name, a country's, a licence's)."""
    t = i18n.translations(lang)
    if facet == "theme" and value in THEMES:
        return t.gettext(THEMES[value])
    if facet == "country" and value:
        return i18n.country_name(value, lang)
    if facet == "license":
        return LICENCES.get(value, value)
    return value or t.gettext("(none)")


def control_id(facet: str, value: str) -> str:
    """The id of a facet value's checkbox, the same in every result: htmx gives focus back to
    the element of the same id after a swap, so a keyboard user stays on the box just ticked."""
    return f"facet-{facet}-{hashlib.sha256(value.encode()).hexdigest()[:12]}"


@dataclass(frozen=True)
class FacetOption:
    facet: str
    value: str
    label: str
    count: int
    chosen: bool
    control_id: str


@dataclass(frozen=True)
class FacetGroup:
    name: str
    label: str  # a msgid
    options: list[FacetOption]


def facet_groups(result: SearchResult, chosen: dict[str, list[str]], lang: str) -> list[FacetGroup]:
    """The facets of a result, each value with its count and whether the reader chose it."""
    order = ("theme", "publisher", "country", "format", "license")
    groups = []
    for name in (f for f in order if f in FACETS):
        values = result.facets.get(name, [])
        options = [
            FacetOption(
                name,
                v.value,
                facet_value_label(name, v.value, lang),
                v.count,
                v.value in chosen.get(name, []),
                control_id(name, v.value),
            )
            for v in values
        ]
        # A chosen value the result no longer counts stays visible, so it can be unchosen.
        for extra in chosen.get(name, []):
            if extra not in {v.value for v in values}:
                label = facet_value_label(name, extra, lang)
                options.append(FacetOption(name, extra, label, 0, True, control_id(name, extra)))
        if options:
            groups.append(FacetGroup(name, FACET_LABELS[name], options))
    return groups


@dataclass(frozen=True)
class HitView:
    origin: str
    dataset_id: str
    title: str
    description: str
    publisher: str
    theme: str
    format: str
    country: str
    modified: Any
    offers: int


def hit_view(hit: Hit, lang: str) -> HitView:
    return HitView(
        origin=hit.origin,
        dataset_id=hit.dataset_id,
        title=i18n.pick(hit.title, lang),
        description=_excerpt(i18n.pick(hit.description, lang)),
        publisher=hit.publisher,
        theme=facet_value_label("theme", hit.theme, lang) if hit.theme else "",
        format=hit.format,
        country=i18n.country_name(hit.country, lang) if hit.country else "",
        modified=hit.modified,
        offers=hit.offers,
    )


def _excerpt(text: str, size: int = 240) -> str:
    if len(text) <= size:
        return text
    return text[:size].rsplit(" ", 1)[0] + "…"


@dataclass(frozen=True)
class DatasetPage:
    """A dataset's page: its metadata and its offers in words."""

    origin: str
    dataset_id: str
    ours: bool
    title: str
    description: str
    keywords: list[str]
    publisher: str
    theme: str
    licence: str
    licence_url: str
    format: str
    country: str
    modified: Any
    byte_size: int | None
    version: str
    offers: list[OfferText]


def dataset_page(entry: Any, *, own_did: str, lang: str) -> DatasetPage:
    """The page of a catalogue entry (as :func:`.entries.find_entry` returns it)."""
    document: dict[str, Any] = entry.document or {}
    policies = document.get("hasPolicy", [])
    if isinstance(policies, dict):
        policies = [policies]
    size = document.get("dcat:byteSize")
    licence = str(entry.license or "")
    return DatasetPage(
        origin=entry.origin,
        dataset_id=entry.dataset_id,
        ours=entry.origin == own_did,
        title=i18n.pick(entry.title, lang),
        description=i18n.pick(entry.description, lang),
        keywords=list(entry.keywords or []),
        publisher=entry.publisher,
        theme=facet_value_label("theme", entry.theme, lang) if entry.theme else "",
        licence=LICENCES.get(licence, licence),
        licence_url=licence if licence.startswith(("https://", "http://")) else "",
        format=entry.format,
        country=i18n.country_name(entry.country, lang) if entry.country else "",
        modified=entry.modified,
        byte_size=size if isinstance(size, int) and not isinstance(size, bool) else None,
        version=str(document.get("dcat:version", "")),
        offers=[describe(p, lang) for p in policies if isinstance(p, dict)],
    )
