"""The Dataspace Protocol 2025-1 catalog binding's JSON-LD (DSP 2025-1, "Catalog Protocol" and
its HTTPS binding): Catalog, Dataset, Distribution, DataService, CatalogError, versions."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

from rhenus.dataspace.catalogue.models import Dataset, Offer

CONTEXT = "https://w3id.org/dspace/2025/1/context.jsonld"
VERSION = "2025-1"
BASE_PATH = "/dsp"
SPDX = "http://spdx.org/rdf/terms#"


def service_id(public_url: str) -> str:
    return f"{public_url}{BASE_PATH}#data-service"


def data_service(public_url: str) -> dict[str, Any]:
    return {
        "@id": service_id(public_url),
        "@type": "DataService",
        "endpointURL": f"{public_url}{BASE_PATH}",
    }


def dataset(ds: Dataset, offers: list[Offer], public_url: str) -> dict[str, Any]:
    """A Dataset: its offers (``hasPolicy``, with ``@id`` and no ``target``), one distribution
    per access mode, and its DCAT metadata."""
    body: dict[str, Any] = {
        "@id": ds.id,
        "@type": "Dataset",
        "hasPolicy": [dict(o.policy) for o in offers],
        "distribution": [
            {
                "@type": "Distribution",
                "format": "HttpData-PULL",
                "accessService": service_id(public_url),
            }
        ],
        "dct:title": [{"@value": t, "@language": lang} for lang, t in sorted(ds.title.items())],
        "dct:description": [
            {"@value": t, "@language": lang} for lang, t in sorted(ds.description.items())
        ],
        "dcat:keyword": ds.keywords,
        "dcat:theme": f"http://publications.europa.eu/resource/authority/data-theme/{ds.theme}",
        "dct:license": ds.license,
        "dct:publisher": ds.publisher,
        "dct:modified": ds.updated_at.isoformat(),
        "dcat:version": str(ds.version),
    }
    if ds.media_type:
        body["dcat:mediaType"] = ds.media_type
    if ds.byte_size is not None:
        body["dcat:byteSize"] = ds.byte_size
    if ds.sha256:
        # Full IRIs: the DSP schemas allow only context URLs, and the DSP context has no spdx.
        body[f"{SPDX}checksum"] = {
            f"{SPDX}algorithm": f"{SPDX}checksumAlgorithm_sha256",
            f"{SPDX}checksumValue": ds.sha256,
        }
    return body


def catalog(
    *, public_url: str, participant_id: str, datasets: list[dict[str, Any]]
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "@context": [CONTEXT],
        "@id": f"{public_url}{BASE_PATH}/catalog",
        "@type": "Catalog",
        "participantId": participant_id,
        "service": [data_service(public_url)],
    }
    if datasets:  # the schema wants at least one item when the key is present
        body["dataset"] = datasets
    return body


def catalog_error(status: int, code: str, reason: str) -> JSONResponse:
    """A CatalogError with the HTTP status of the failure (DSP 2025-1 catalog binding)."""
    return JSONResponse(
        {"@context": [CONTEXT], "@type": "CatalogError", "code": code, "reason": [reason]},
        status_code=status,
    )


def render_catalog_error(status: int, code: str, reason: str, _request: Request) -> JSONResponse:
    """Error renderer for the /dsp/catalog routes (see ``core.errors.ERROR_RENDERERS``)."""
    return catalog_error(status, code, reason)


def versions() -> dict[str, Any]:
    return {"protocolVersions": [{"version": VERSION, "path": BASE_PATH, "binding": "HTTPS"}]}
