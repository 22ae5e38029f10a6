"""A small catalogue for the web app's browser tests and screenshots (``make screenshots``):
a few datasets of a German Land with offers that read well in plain words."""

from __future__ import annotations

from typing import Any

import httpx

STATISTICS_EU_UNTIL_2026 = {
    "permission": [
        {
            "action": "use",
            "constraint": [
                {"leftOperand": "purpose", "operator": "eq", "rightOperand": "statistics"},
                {"leftOperand": "spatial", "operator": "isPartOf", "rightOperand": "EU"},
                {"leftOperand": "dateTime", "operator": "lteq", "rightOperand": "2026-12-31"},
                {"leftOperand": "count", "operator": "lteq", "rightOperand": 10},
            ],
            "duty": [{"action": "attribute"}],
        }
    ],
    "prohibition": [{"action": "distribute"}],
}
RESEARCH_90_DAYS = {
    "permission": [
        {
            "action": "use",
            "constraint": [
                {
                    "leftOperand": "purpose",
                    "operator": "isAnyOf",
                    "rightOperand": ["research", "statistics"],
                },
                {"leftOperand": "elapsedTime", "operator": "lteq", "rightOperand": "P90D"},
            ],
        }
    ]
}
OPEN_USE = {"permission": [{"action": "use"}]}
COMPUTE_ONLY = {
    "permission": [
        {
            "action": "compute",
            "constraint": [
                {"leftOperand": "rhenus:minGroupSize", "operator": "gteq", "rightOperand": 5},
                {
                    "leftOperand": "rhenus:aggregateFunction",
                    "operator": "isAnyOf",
                    "rightOperand": ["count", "avg"],
                },
            ],
        }
    ]
}

# (metadata, content, media type, offers)
SAMPLES: list[tuple[dict[str, Any], bytes, str, list[dict[str, Any]]]] = [
    (
        {
            "title": {
                "de": "Einwohner nach Bezirk",
                "en": "Residents by district",
                "fr": "Habitants par arrondissement",
            },
            "description": {
                "de": "Melderechtlich registrierte Einwohner Berlins am 31. Dezember, nach Bezirk.",
                "en": "Registered residents of Berlin on 31 December, by district.",
                "fr": "Habitants enregistrés de Berlin au 31 décembre, par arrondissement.",
            },
            "theme": "SOCI",
            "publisher": "Amt für Statistik Berlin-Brandenburg",
            "license": "https://www.govdata.de/dl-de/by-2-0",
            "keywords": ["Bevölkerung", "Bezirk", "population"],
        },
        b"bezirk;einwohner\nMitte;397134\nPankow;424307\nSpandau;257091\n",
        "text/csv",
        [STATISTICS_EU_UNTIL_2026],
    ),
    (
        {
            "title": {
                "de": "Krankenhäuser und Betten nach Bezirk",
                "en": "Hospitals and beds by district",
                "fr": "Hôpitaux et lits par arrondissement",
            },
            "description": {
                "fr": "Nombre de lits par hôpital et par arrondissement de Berlin.",
                "en": "Number of beds per hospital and district of Berlin.",
            },
            "theme": "HEAL",
            "publisher": "Senatsverwaltung für Gesundheit Berlin",
            "license": "https://www.govdata.de/dl-de/by-2-0",
            "keywords": ["Krankenhaus", "Gesundheit"],
        },
        b"bezirk;krankenhaeuser;betten\nMitte;9;5120\nPankow;4;1480\n",
        "text/csv",
        [RESEARCH_90_DAYS],
    ),
    (
        {
            "title": {"de": "Haltestellen des ÖPNV", "en": "Public transport stops"},
            "description": {"en": "Every bus, tram and underground stop, with its coordinates."},
            "theme": "TRAN",
            "publisher": "Verkehrsverbund Berlin-Brandenburg",
            "license": "https://creativecommons.org/licenses/by/4.0/",
            "keywords": ["ÖPNV", "transport"],
        },
        b'[{"stop": "Alexanderplatz", "lat": 52.5219, "lon": 13.4132}]',
        "application/json",
        [OPEN_USE],
    ),
    (
        {
            "title": {
                "de": "Patientenakten (nur Berechnung)",
                "en": "Patient records (computation only)",
            },
            "description": {
                "en": "Hospital stays by age group; only aggregates leave the provider."
            },
            "theme": "HEAL",
            "publisher": "Senatsverwaltung für Gesundheit Berlin",
            "license": "https://www.govdata.de/dl-de/by-2-0",
            "keywords": ["Gesundheit", "health"],
        },
        b"age_group,stays\n18-30,12\n31-50,30\n",
        "text/csv",
        [COMPUTE_ONLY],
    ),
]


def publish_samples(http: httpx.Client, url: str, headers: dict[str, str]) -> list[str]:
    """Register, fill, offer and publish every sample dataset as an admin; returns their ids."""
    ids = []
    for metadata, content, media_type, offers in SAMPLES:
        created = http.post(f"{url}/api/v1/datasets", headers=headers, json=metadata)
        created.raise_for_status()
        base = f"{url}/api/v1/datasets/{created.json()['id']}"
        http.put(
            f"{base}/content", content=content, headers={**headers, "content-type": media_type}
        ).raise_for_status()
        for policy in offers:
            http.post(f"{base}/offers", headers=headers, json={"policy": policy}).raise_for_status()
        http.post(f"{base}/publish", headers=headers).raise_for_status()
        ids.append(created.json()["id"])
    return ids


def create_agent(
    http: httpx.Client, url: str, headers: dict[str, str], username: str, password: str
) -> None:
    """An agent account with a password of its own (no one-time password to change)."""
    http.post(
        f"{url}/api/v1/users",
        headers=headers,
        json={"username": username, "password": password, "display_name": username},
    ).raise_for_status()
