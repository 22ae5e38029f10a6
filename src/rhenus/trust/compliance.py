"""Compliance checks of self-descriptions: SHACL shapes, then the federation's own rules.

SHACL (pyshacl over the credential read as RDF) checks structure and formats; the rules check
what a shape cannot: that a VAT or LEI number passes its check digits (python-stdnum), that a
subdivision code exists in ISO 3166-2 (pycountry), and whether the headquarters are in the EU
(the condition of the "sovereign" label).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

import pycountry
from stdnum import lei
from stdnum.eu import vat

from rhenus.core.geo import EU_MEMBER_STATES
from rhenus.trust.credentials import expanded

if TYPE_CHECKING:
    from rdflib import Graph

# rdflib and pyshacl (~45 MiB together) are imported on the first check, not at start-up:
# a node that never reads a self-description never needs them.


@cache
def shapes() -> Graph:
    from rdflib import Graph

    graph = Graph()
    graph.parse(
        data=resources.files("rhenus.trust").joinpath("data", "shapes.ttl").read_text(),
        format="turtle",
    )
    return graph


def as_graph(credential: dict[str, Any]) -> Graph:
    """The credential as RDF, its contexts taken from package data."""
    from rdflib import Graph

    graph = Graph()
    graph.parse(data=json.dumps(expanded(credential)), format="json-ld")
    return graph


def shacl_errors(credential: dict[str, Any]) -> list[str]:
    """The SHACL violations of a credential, one message each (empty when it conforms)."""
    from pyshacl import validate
    from rdflib import Graph
    from rdflib.namespace import SH

    conforms, report, _ = validate(as_graph(credential), shacl_graph=shapes(), inference="none")
    if conforms:
        return []
    assert isinstance(report, Graph)
    messages = sorted({str(m) for m in report.objects(None, SH.resultMessage)})
    return messages or ["the credential does not conform to the shapes"]


def _value(subject: dict[str, Any], *path: str) -> str | None:
    node: Any = subject
    for key in path:
        node = node.get(key) if isinstance(node, dict) else None
    if isinstance(node, dict):
        node = node.get("@value")
    return node if isinstance(node, str) else None


@dataclass
class RuleReport:
    errors: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    country: str = ""


def participant_rules(subject: dict[str, Any]) -> RuleReport:
    """The federation's rules for a LegalParticipant subject."""
    report = RuleReport()
    number = subject.get("gx:legalRegistrationNumber", {})
    vat_id = _value(number, "gx:vatID")
    lei_code = _value(number, "gx:leiCode")
    if vat_id is not None and not vat.is_valid(vat_id):
        report.errors.append(f"gx:vatID {vat_id!r} is not a valid EU VAT number")
    if lei_code is not None and not lei.is_valid(lei_code):
        report.errors.append(f"gx:leiCode {lei_code!r} fails its ISO 17442 check digits")
    for place in ("gx:headquarterAddress", "gx:legalAddress"):
        code = _value(subject, place, "gx:countrySubdivisionCode")
        if code is not None and pycountry.subdivisions.get(code=code) is None:  # type: ignore[no-untyped-call]
            report.errors.append(f"{place}: {code!r} is not an ISO 3166-2 subdivision code")
    headquarters = _value(subject, "gx:headquarterAddress", "gx:countrySubdivisionCode") or ""
    report.country = headquarters[:2]
    if report.country in EU_MEMBER_STATES and not report.errors:
        report.labels.append("sovereign")
    return report
