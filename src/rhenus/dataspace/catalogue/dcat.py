"""DCAT-AP 3 export of the public part of the catalogue (Turtle and JSON-LD), the form the
administrations' open data portals (data.europa.eu, data.gouv.fr, GovData) harvest.

Only published datasets with no access restriction are exported. Every object gets the class
DCAT-AP's range shapes expect (licence document, concept, agent, media type, checksum).
"""

from __future__ import annotations

from collections.abc import Sequence

from rdflib import BNode, Graph, Literal, Namespace, URIRef
from rdflib.namespace import DCAT, DCTERMS, FOAF, RDF, SKOS, XSD

from rhenus.dataspace.catalogue.models import Dataset
from rhenus.dataspace.catalogue.schemas import EU_THEMES

SPDX = Namespace("http://spdx.org/rdf/terms#")
THEMES = "http://publications.europa.eu/resource/authority/data-theme/"
IANA = "https://www.iana.org/assignments/media-types/"
# DCAT 3 term; rdflib's DCAT namespace predates it.
DCAT_VERSION = URIRef("http://www.w3.org/ns/dcat#version")


def is_public(dataset: Dataset) -> bool:
    access = dataset.access or {}
    return (
        dataset.status == "published"
        and not access.get("eu_only")
        and access.get("countries") is None
        and access.get("participants") is None
    )


def _texts(graph: Graph, subject: URIRef, predicate: URIRef, texts: dict[str, str]) -> None:
    for lang, text in sorted(texts.items()):
        graph.add((subject, predicate, Literal(text, lang=lang)))


def catalogue_graph(*, public_url: str, organisation: str, datasets: Sequence[Dataset]) -> Graph:
    """The DCAT-AP graph of the node's public datasets."""
    graph = Graph()
    graph.bind("dcat", DCAT)
    graph.bind("dct", DCTERMS)
    graph.bind("foaf", FOAF)
    graph.bind("spdx", SPDX)
    catalog = URIRef(f"{public_url}/catalogue")
    publisher = URIRef(f"{public_url}/#organisation")
    graph.add((publisher, RDF.type, FOAF.Agent))
    graph.add((publisher, FOAF.name, Literal(organisation)))
    graph.add((catalog, RDF.type, DCAT.Catalog))
    graph.add((catalog, DCTERMS.title, Literal(f"Catalogue of {organisation}", lang="en")))
    graph.add(
        (
            catalog,
            DCTERMS.description,
            Literal(f"Datasets and services that {organisation} shares.", lang="en"),
        )
    )
    graph.add((catalog, DCTERMS.publisher, publisher))
    for dataset in datasets:
        if is_public(dataset):
            graph.add((catalog, DCAT.dataset, _dataset(graph, dataset, public_url)))
    return graph


def _dataset(graph: Graph, ds: Dataset, public_url: str) -> URIRef:
    node = URIRef(ds.id)
    graph.add((node, RDF.type, DCAT.Dataset))
    _texts(graph, node, DCTERMS.title, ds.title)
    # DCAT-AP makes a description mandatory; fall back to the title rather than invent one.
    _texts(graph, node, DCTERMS.description, ds.description or ds.title)
    for keyword in ds.keywords:
        graph.add((node, DCAT.keyword, Literal(keyword)))
    theme = URIRef(THEMES + ds.theme)
    graph.add((theme, RDF.type, SKOS.Concept))
    graph.add((theme, SKOS.prefLabel, Literal(EU_THEMES[ds.theme], lang="en")))
    graph.add((node, DCAT.theme, theme))
    agent = BNode()
    graph.add((agent, RDF.type, FOAF.Agent))
    graph.add((agent, FOAF.name, Literal(ds.publisher)))
    graph.add((node, DCTERMS.publisher, agent))
    graph.add((node, DCTERMS.modified, Literal(ds.updated_at.isoformat(), datatype=XSD.dateTime)))
    graph.add((node, DCAT_VERSION, Literal(str(ds.version))))
    distribution = URIRef(f"{ds.id}#distribution")
    graph.add((node, DCAT.distribution, distribution))
    graph.add((distribution, RDF.type, DCAT.Distribution))
    # Access goes through the Dataspace Protocol: the URL is the node's DSP endpoint.
    graph.add((distribution, DCAT.accessURL, URIRef(f"{public_url}/dsp")))
    license_doc = (
        URIRef(ds.license)
        if "://" in ds.license
        else URIRef(f"http://publications.europa.eu/resource/authority/licence/{ds.license}")
    )
    graph.add((license_doc, RDF.type, DCTERMS.LicenseDocument))
    graph.add((distribution, DCTERMS.license, license_doc))
    if ds.media_type:
        media = URIRef(IANA + ds.media_type)
        graph.add((media, RDF.type, DCTERMS.MediaType))
        graph.add((distribution, DCAT.mediaType, media))
    if ds.byte_size is not None:
        graph.add(
            (distribution, DCAT.byteSize, Literal(ds.byte_size, datatype=XSD.nonNegativeInteger))
        )
    if ds.sha256:
        checksum = BNode()
        graph.add((checksum, RDF.type, SPDX.Checksum))
        graph.add((SPDX.checksumAlgorithm_sha256, RDF.type, SPDX.ChecksumAlgorithm))
        graph.add((checksum, SPDX.algorithm, SPDX.checksumAlgorithm_sha256))
        graph.add((checksum, SPDX.checksumValue, Literal(ds.sha256, datatype=XSD.hexBinary)))
        graph.add((distribution, SPDX.checksum, checksum))
    return node
