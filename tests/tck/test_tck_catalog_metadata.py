"""TCK catalog and metadata: CAT:01-01 … CAT:01-03, MET:01-01 (``Catalog01Test``,
``Metadata01Test``; ``/work/notes/dsp-tck.md`` §8). Each request carries the TCK's
Authorization, as every request of the TCK does.
"""

from __future__ import annotations

from typing import Any

from tests.dataspace.dsp_schemas import validate
from tests.tck.harness import Tck
from tests.tck.wire import problems, tck_message


def _datasets(catalog: dict[str, Any]) -> list[dict[str, Any]]:
    found = catalog.get("dataset", [])
    return found if isinstance(found, list) else [found]


def test_cat_01_01_catalog_request(tck: Tck) -> None:
    """CAT:01-01 — ``POST {url}/catalog/request`` (no filter): a valid Catalog listing
    ``CAT0101``."""
    url = f"{tck.node.dsp}/catalog/request"
    response = tck.http.post(url, json=tck_message("CatalogRequestMessage"))
    assert 200 <= response.status_code < 300, f"{response.status_code} {response.text[:500]}"
    catalog = response.json()
    assert not problems(catalog), problems(catalog)
    assert catalog["@type"] == "Catalog"
    ids = {d.get("@id") for d in _datasets(catalog)}
    assert "CAT0101" in ids, f"CAT0101 not in the catalog's datasets {sorted(map(str, ids))}"


def test_cat_01_02_dataset_request(tck: Tck) -> None:
    """CAT:01-02 — ``GET {url}/catalog/datasets/CAT0102``: a valid Dataset ``CAT0102``."""
    dataset = tck.get(f"{tck.node.dsp}/catalog/datasets/CAT0102", "Dataset")
    assert dataset["@id"] == "CAT0102"


def test_cat_01_03_dataset_request_not_found(tck: Tck) -> None:
    """CAT:01-03 — ``GET {url}/catalog/datasets/CAT0103`` (absent): any status, a CatalogError
    body (an empty body fails)."""
    response = tck.http.get(f"{tck.node.dsp}/catalog/datasets/CAT0103")
    assert response.content, f"{response.status_code} with an empty body"
    error = response.json()
    assert not problems(error), problems(error)
    assert error["@type"] == "CatalogError"
    assert response.status_code == 404  # what the spec asks; the TCK takes any status


def test_met_01_01_metadata_request(tck: Tck) -> None:
    """MET:01-01 — ``GET {base.url}/.well-known/dspace-version`` (plain JSON): a version
    ``2025-1`` with a path and a binding."""
    response = tck.http.get(f"{tck.node.base_url}/.well-known/dspace-version")
    assert 200 <= response.status_code < 300, f"{response.status_code} {response.text[:500]}"
    versions = response.json()
    validate(versions, "common/protocol-version-schema.json")
    found = [v for v in versions["protocolVersions"] if v.get("version") == "2025-1"]
    assert found, versions
    assert all(v.get("path") is not None and v.get("binding") is not None for v in found)
