"""The catalogue: publishing datasets, and the DSP 2025-1 catalog each participant may see."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from jsonschema import ValidationError

from rhenus.dataspace.catalogue import api as catalogue_api
from tests.dataspace.dsp_schemas import validate
from tests.support.federation import Federation, FedNode

POLICY = {
    "@type": "Offer",
    "target": "ignored-in-catalog",
    "permission": [
        {
            "action": "use",
            "constraint": [
                {"leftOperand": "purpose", "operator": "eq", "rightOperand": "statistics"}
            ],
        }
    ],
}


async def publish(
    member: FedNode,
    title: str | dict[str, str],
    access: dict[str, Any] | None = None,
    content: bytes = b"commune;population\nBerlin;3755251\n",
    media_type: str = "text/csv",
    **metadata: Any,
) -> str:
    """Register, fill, offer and publish a dataset; ``metadata`` overrides the defaults."""
    headers = await member.admin_headers()
    async with member.http() as http:
        created = await http.post(
            "/api/v1/datasets",
            headers=headers,
            json={
                "title": title if isinstance(title, dict) else {"de": title, "en": title},
                "theme": "GOVE",
                "publisher": "Land Berlin",
                "license": "https://www.govdata.de/dl-de/by-2-0",
                "keywords": ["Bevölkerung"],
                "access": access or {},
                **metadata,
            },
        )
        assert created.status_code == 201, created.text
        dataset_id = created.json()["id"]
        uploaded = await http.put(
            f"/api/v1/datasets/{dataset_id}/content",
            content=content,
            headers={**headers, "content-type": media_type},
        )
        assert uploaded.status_code == 200, uploaded.text
        offer = await http.post(
            f"/api/v1/datasets/{dataset_id}/offers", headers=headers, json={"policy": POLICY}
        )
        assert offer.status_code == 201, offer.text
        published = await http.post(f"/api/v1/datasets/{dataset_id}/publish", headers=headers)
        assert published.json()["status"] == "published"
    return str(dataset_id)


async def catalog(
    requester: FedNode, provider: FedNode, body: Any = None, query: str = ""
) -> httpx.Response:
    message = (
        body
        if body is not None
        else {
            "@context": ["https://w3id.org/dspace/2025/1/context.jsonld"],
            "@type": "CatalogRequestMessage",
        }
    )
    async with requester.client() as client:
        return await client.post(f"{provider.url}/dsp/catalog/request{query}", json=message)


def titles(response: httpx.Response) -> set[str]:
    return {
        next(t["@value"] for t in d["dct:title"] if t["@language"] == "en")
        for d in response.json().get("dataset", [])
    }


async def test_each_participant_sees_only_what_its_access_policy_admits(fed: Federation) -> None:
    _, paris, berlin, zurich = fed.nodes
    await publish(berlin, "Open statistics")
    await publish(berlin, "EU only", {"eu_only": True})
    await publish(berlin, "For Bayern only", {"participants": ["did:web:de-bayern.test"]})
    seen_by_paris = await catalog(paris, berlin)
    assert seen_by_paris.status_code == 200, seen_by_paris.text
    validate(seen_by_paris.json(), "catalog/catalog-schema.json")
    assert titles(seen_by_paris) == {"Open statistics", "EU only"}
    assert titles(await catalog(zurich, berlin)) == {"Open statistics"}


async def test_offers_have_an_id_and_no_target(fed: Federation) -> None:
    _, paris, berlin, _ = fed.nodes
    await publish(berlin, "Open statistics")
    dataset = (await catalog(paris, berlin)).json()["dataset"][0]
    offer = dataset["hasPolicy"][0]
    assert offer["@id"].startswith("urn:uuid:")
    assert "target" not in offer
    assert offer["permission"] == POLICY["permission"]
    assert dataset["distribution"][0]["format"] == "HttpData-PULL"


async def test_dataset_by_id_and_hidden_or_unknown_is_a_404_catalog_error(fed: Federation) -> None:
    _, paris, berlin, _ = fed.nodes
    visible = await publish(berlin, "Open statistics")
    hidden = await publish(berlin, "For Bayern only", {"participants": ["did:web:x.test"]})
    async with paris.client() as client:
        found = await client.get(f"{berlin.url}/dsp/catalog/datasets/{visible}")
        assert found.status_code == 200
        validate(found.json(), "catalog/dataset-schema.json")
        for missing in (hidden, "urn:uuid:00000000-0000-0000-0000-000000000000"):
            refused = await client.get(f"{berlin.url}/dsp/catalog/datasets/{missing}")
            assert refused.status_code == 404
            validate(refused.json(), "catalog/catalog-error-schema.json")


async def test_unsupported_filter_is_a_400_catalog_error(fed: Federation) -> None:
    _, paris, berlin, _ = fed.nodes
    response = await catalog(
        paris,
        berlin,
        body={
            "@context": ["https://w3id.org/dspace/2025/1/context.jsonld"],
            "@type": "CatalogRequestMessage",
            "filter": [{"theme": "HEAL"}],
        },
    )
    assert response.status_code == 400
    validate(response.json(), "catalog/catalog-error-schema.json")
    assert "filter" in response.json()["reason"][0]


async def test_unsigned_catalog_request_is_refused_as_catalog_error(fed: Federation) -> None:
    _, _, berlin, _ = fed.nodes
    async with berlin.http() as http:
        response = await http.post(
            "/dsp/catalog/request",
            json={
                "@context": ["https://w3id.org/dspace/2025/1/context.jsonld"],
                "@type": "CatalogRequestMessage",
            },
        )
    assert response.status_code == 401
    validate(response.json(), "catalog/catalog-error-schema.json")


async def test_withdrawn_dataset_leaves_the_catalog(fed: Federation) -> None:
    _, paris, berlin, _ = fed.nodes
    dataset_id = await publish(berlin, "Soon gone")
    await publish(berlin, "Staying")
    async with berlin.http() as http:
        await http.post(
            f"/api/v1/datasets/{dataset_id}/withdraw", headers=await berlin.admin_headers()
        )
    assert titles(await catalog(paris, berlin)) == {"Staying"}


async def test_catalog_pages_with_link_headers(
    fed: Federation, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, paris, berlin, _ = fed.nodes
    for n in range(3):
        await publish(berlin, f"Dataset {n}", content=f"n;{n}\n".encode())
    monkeypatch.setattr(catalogue_api, "PAGE_SIZE", 2)
    first = await catalog(paris, berlin)
    assert len(first.json()["dataset"]) == 2
    assert 'rel="next"' in first.headers["link"]
    second = await catalog(paris, berlin, query="?page=2")
    assert len(second.json()["dataset"]) == 1
    assert 'rel="previous"' in second.headers["link"]


async def test_dspace_version_is_public_and_valid(fed: Federation) -> None:
    _, _, berlin, _ = fed.nodes
    async with berlin.http() as http:
        response = await http.get("/.well-known/dspace-version")
    validate(response.json(), "common/protocol-version-schema.json")
    assert response.json()["protocolVersions"][0]["version"] == "2025-1"


async def test_publishing_needs_content_and_an_offer(fed: Federation) -> None:
    _, _, berlin, _ = fed.nodes
    headers = await berlin.admin_headers()
    async with berlin.http() as http:
        created = await http.post(
            "/api/v1/datasets",
            headers=headers,
            json={
                "title": {"fr": "Vide"},
                "theme": "GOVE",
                "publisher": "x",
                "license": "etalab-2.0",
            },
        )
        dataset_id = created.json()["id"]
        early = await http.post(f"/api/v1/datasets/{dataset_id}/publish", headers=headers)
        assert early.status_code == 409
        assert "content" in early.json()["detail"]
        bad_theme = await http.post(
            "/api/v1/datasets",
            headers=headers,
            json={"title": {"fr": "x"}, "theme": "NOPE", "publisher": "x", "license": "etalab-2.0"},
        )
        assert bad_theme.status_code == 422


async def test_content_is_stored_encrypted_under_its_digest(fed: Federation) -> None:
    _, _, berlin, _ = fed.nodes
    content = b"Bezirk;Einwohner\nMitte;397134\n"
    dataset_id = await publish(berlin, "Bezirke", content=content)
    async with berlin.http() as http:
        listed = (await http.get("/api/v1/datasets", headers=await berlin.admin_headers())).json()
    entry = next(d for d in listed if d["id"] == dataset_id)
    assert entry["byte_size"] == len(content)
    assert await berlin.node.blobs.read_bytes(entry["sha256"]) == content
    raw = b"".join([c async for c in berlin.node.blobs.read_raw(entry["sha256"])])
    assert b"Mitte" not in raw


def test_schema_check_can_fail() -> None:
    with pytest.raises(ValidationError):
        validate({"@type": "Catalog"}, "catalog/catalog-schema.json")
