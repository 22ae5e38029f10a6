"""Search of the catalogue by agents: stemmed full text in French and German, facets, sort
and pages — the same answers on SQLite (FTS5) and PostgreSQL (tsvector)."""

from __future__ import annotations

from typing import Any

import httpx

from tests.dataspace.test_catalogue import publish
from tests.support.federation import Federation, FedNode


async def find(member: FedNode, **params: Any) -> httpx.Response:
    async with member.http() as http:
        return await http.get(
            "/api/v1/catalogue/search", params=params, headers=await member.admin_headers()
        )


def titles(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    hits = response.json()["hits"]
    return [
        next(hit["title"][lang] for lang in ("fr", "de", "en") if lang in hit["title"])
        for hit in hits
    ]


async def test_french_and_german_queries_find_inflected_forms(fed: Federation) -> None:
    berlin = fed.nodes[2]
    await publish(berlin, {"fr": "Capacité de chaque hôpital de Berlin"})
    await publish(berlin, {"de": "Standorte der Krankenhaus-Träger"})
    await publish(berlin, {"fr": "Écoles primaires", "de": "Grundschulen"})

    assert titles(await find(berlin, q="hôpitaux")) == ["Capacité de chaque hôpital de Berlin"]
    assert titles(await find(berlin, q="hopitaux")) == ["Capacité de chaque hôpital de Berlin"]
    assert titles(await find(berlin, q="Krankenhäuser")) == ["Standorte der Krankenhaus-Träger"]
    assert titles(await find(berlin, q="école")) == ["Écoles primaires"]
    assert titles(await find(berlin, q="hôpitaux Grundschulen")) == []  # every word must match


async def test_a_title_match_ranks_above_a_description_match(fed: Federation) -> None:
    berlin = fed.nodes[2]
    await publish(
        berlin,
        "Haushalt 2025",
        description={"de": "Ausgaben der Krankenhäuser, Schulen, Straßen und Verwaltung"},
    )
    await publish(berlin, "Krankenhäuser: Betten und Personal")
    assert titles(await find(berlin, q="Krankenhaus")) == [
        "Krankenhäuser: Betten und Personal",
        "Haushalt 2025",
    ]


async def test_facets_filters_sort_and_pages(fed: Federation) -> None:
    berlin = fed.nodes[2]
    await publish(berlin, "Luftqualität", theme="ENVI", publisher="Umweltamt")
    await publish(
        berlin,
        "Wartezeiten Notaufnahme",
        theme="HEAL",
        content=b"%PDF-1.4\n",
        media_type="application/pdf",
    )
    await publish(berlin, "Lärmkarte", theme="ENVI", publisher="Umweltamt")

    everything = await find(berlin)
    body = everything.json()
    assert body["total"] == 3
    assert titles(everything) == ["Lärmkarte", "Wartezeiten Notaufnahme", "Luftqualität"]
    facets = {
        name: {v["value"]: v["count"] for v in values} for name, values in body["facets"].items()
    }
    assert facets["theme"] == {"ENVI": 2, "HEAL": 1}
    assert facets["publisher"] == {"Umweltamt": 2, "Land Berlin": 1}
    assert facets["format"] == {"CSV": 2, "PDF": 1}
    assert facets["country"] == {"DE": 3}

    assert titles(await find(berlin, theme="ENVI", sort="date")) == ["Lärmkarte", "Luftqualität"]
    assert titles(await find(berlin, format="PDF")) == ["Wartezeiten Notaufnahme"]
    assert titles(await find(berlin, theme=["ENVI", "HEAL"], publisher="Land Berlin")) == [
        "Wartezeiten Notaufnahme"
    ]
    second = await find(berlin, per_page=2, page=2)
    assert second.json()["total"] == 3
    assert titles(second) == ["Luftqualität"]


async def test_withdrawn_datasets_are_no_longer_found(fed: Federation) -> None:
    berlin = fed.nodes[2]
    dataset_id = await publish(berlin, "Radwege")
    assert titles(await find(berlin, q="Radweg")) == ["Radwege"]
    async with berlin.http() as http:
        withdrawn = await http.post(
            f"/api/v1/datasets/{dataset_id}/withdraw", headers=await berlin.admin_headers()
        )
        assert withdrawn.status_code == 200
    assert titles(await find(berlin, q="Radweg")) == []


async def test_bad_search_input_is_a_problem_not_a_crash(fed: Federation) -> None:
    berlin = fed.nodes[2]
    for params in ({"per_page": 0}, {"per_page": 1000}, {"sort": "random"}, {"q": "x" * 501}):
        answer = await find(berlin, **params)
        assert answer.status_code == 422, params
        assert answer.headers["content-type"].startswith("application/problem+json")
    # Query syntax of either engine is just text here.
    for odd in ('"unbalanced', "a OR AND NOT", "x:* & | !", "NEAR(a b)", "*"):
        answer = await find(berlin, q=odd)
        assert answer.status_code == 200, (odd, answer.text)


async def test_search_needs_a_signed_in_user(fed: Federation) -> None:
    async with fed.nodes[2].http() as http:
        answer = await http.get("/api/v1/catalogue/search", params={"q": "x"})
    assert answer.status_code == 401
