"""Offers in plain words: each ODRL term the engine evaluates, told in en, fr and de."""

from __future__ import annotations

from typing import Any

import pytest

from rhenus.demo.web_sample import COMPUTE_ONLY, RESEARCH_90_DAYS, STATISTICS_EU_UNTIL_2026
from rhenus.web.offers import describe


def use(*constraints: dict[str, Any]) -> dict[str, Any]:
    return {"permission": [{"action": "use", "constraint": list(constraints)}]}


def c(left: str, operator: str, right: Any) -> dict[str, Any]:
    return {"leftOperand": left, "operator": operator, "rightOperand": right}


@pytest.mark.parametrize(
    ("lang", "expected"),
    [
        ("en", "Use: for statistics, EU only, until December 31, 2026, 10 downloads"),
        (
            "fr",
            "Utilisation : pour la statistique, uniquement l'UE, jusqu'au 31 décembre 2026, "
            "10 téléchargements",
        ),
        ("de", "Nutzung: für Statistik, nur EU, bis 31. Dezember 2026, 10 Downloads"),
    ],
)
def test_the_issue_example_in_each_language(lang: str, expected: str) -> None:
    told = describe(STATISTICS_EU_UNTIL_2026, lang)
    assert told.readable
    assert told.permissions == [expected]


def test_conditions_are_told_in_a_natural_order_whatever_the_policy_order() -> None:
    policy = use(c("count", "lt", 4), c("spatial", "eq", "FR"), c("purpose", "eq", "research"))
    assert describe(policy, "en").permissions == ["Use: for research, France only, 3 downloads"]


def test_prohibitions_and_duties() -> None:
    told = describe(STATISTICS_EU_UNTIL_2026, "en")
    assert told.prohibitions == ["Not allowed: Redistribution"]
    assert told.duties == ["Required: credit the provider"]


def test_several_purposes_and_a_period_after_the_agreement() -> None:
    assert describe(RESEARCH_90_DAYS, "en").permissions == [
        "Use: for research or statistics, for 90 days after the agreement"
    ]
    assert describe(RESEARCH_90_DAYS, "de").permissions == [
        "Nutzung: für Forschung oder Statistik, für 90 Tage nach dem Vertrag"
    ]


def test_countries_by_name_and_exclusions() -> None:
    policy = use(c("spatial", "isAnyOf", ["FR", "DE"]), c("purpose", "neq", "ai-training"))
    assert describe(policy, "en").permissions == [
        "Use: not for training AI models, France and Germany only"
    ]
    assert describe(policy, "fr").permissions == [
        "Utilisation : pas pour l'entraînement de modèles d'IA, uniquement Allemagne et France"
    ]


def test_dates_from_and_a_logical_or() -> None:
    policy = use(
        c("dateTime", "gteq", "2027-01-01"),
        {"or": [c("spatial", "eq", "FR"), c("spatial", "eq", "BE")]},
    )
    assert describe(policy, "en").permissions == [
        "Use: from January 1, 2027, Belgium only or France only"
    ]


def test_recipients_by_host() -> None:
    policy = use(c("recipient", "eq", "did:web:paris.example.fr"))
    assert describe(policy, "en").permissions == ["Use: only for paris.example.fr"]


def test_compute_only_offer() -> None:
    assert describe(COMPUTE_ONLY, "en").permissions == [
        "Computation next to the data (aggregates only): groups of at least 5, "
        "aggregates: avg, count"
    ]


def test_no_condition_at_all() -> None:
    assert describe({"permission": [{"action": "use"}]}, "de").permissions == [
        "Nutzung: ohne weitere Bedingungen"
    ]


def test_an_offer_the_engine_cannot_read_is_not_guessed() -> None:
    told = describe(use(c("industry", "eq", "health")), "en")
    assert not told.readable
    assert told.permissions == []
    assert not describe({"prohibition": [{"action": "use"}]}, "en").readable
