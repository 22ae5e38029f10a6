"""Offers refused before they are published (``check``), the access request's own rules, the
readers of durations, dates and places, and the policies of docs/policy.md."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from rhenus.core.geo import EU_MEMBER_STATES
from rhenus.dataspace.policy import values
from rhenus.dataspace.policy.service import check, evaluate
from tests.dataspace.test_policy import (
    DELETE_AFTER_30_DAYS,
    EU,
    NOW,
    ODRL,
    RESEARCH,
    STATS,
    c,
    offer,
    request,
)


# -- check(): offers refused at publish time ---------------------------------------------------
def bad(name: str, policy: Any, problem: str) -> Any:
    return pytest.param(policy, problem, id=name)


BAD_POLICIES = [
    bad("not_an_object", "use", "a policy must be a JSON object, not str"),
    bad("no_rule", {"@type": "Offer"}, "the policy has no permission"),
    bad("prohibition_only", {"prohibition": [{"action": "use"}]}, "the policy has no permission"),
    bad("unknown_operand", offer(c("partner", "eq", "gold")),
        "permission[0].constraint[0]: unknown left operand 'partner'"),
    bad("foreign_operand", offer(c("dspace:purpose", "eq", "x")),
        "unknown left operand 'dspace:purpose'"),
    bad("unknown_operator", offer(c("count", "between", 3)), "unknown operator 'between'"),
    bad("operator_not_for_operand", offer(c("count", "isAnyOf", [1, 2])),
        "operator 'isAnyOf' does not apply to 'count'"),
    bad("unknown_action", offer(action="fly"), "unknown action 'fly'"),
    bad("two_actions", {"permission": [{"action": ["use", "read"]}]}, "exactly one action"),
    bad("no_action", {"permission": [{"constraint": [STATS]}]}, "a rule needs an action"),
    bad("eq_with_two_values", offer(c("purpose", "eq", ["a", "b"])), "eq takes one value, not 2"),
    bad("empty_or", offer({"or": []}), "or needs at least one constraint"),
    bad("two_logical_operands", offer({"and": [STATS], "or": [EU]}),
        "a logical constraint has one of"),
    bad("unit", offer({**c("count", "lt", 5), "unit": "http://qudt.org/vocab/unit/HR"}),
        "'unit' is not supported"),
    bad("right_operand_reference",
        offer({**c("purpose", "eq", "x"), "rightOperandReference": "https://example.eu/p"}),
        "'rightOperandReference' is not supported"),
    bad("right_operand_object", offer(c("purpose", "eq", {"name": "statistics"})),
        "is not a literal, an IRI or a list of them"),
    bad("right_operand_empty_list", offer(c("purpose", "isAnyOf", [])),
        "the right operand is empty"),
    bad("count_as_float", offer(c("count", "lteq", 2.5)), "2.5 is not a non-negative integer"),
    bad("negative_duration", offer(c("elapsedTime", "lteq", "-P1D")), "is a negative duration"),
    bad("february_30", offer(c("dateTime", "lt", "2026-02-30")), "is not a valid date"),
    bad("conflict_perm", {**offer(STATS), "conflict": "perm"}, "'perm' (permissions win)"),
    bad("inherit_from", {**offer(STATS), "inheritFrom": "urn:policy:parent"},
        "'inheritFrom' at the policy level is not supported"),
    bad("not_a_policy_type", {**offer(STATS), "@type": "Dataset"}, "not an ODRL policy class"),
    bad("unknown_rule_property", {"permission": [{"action": "use", "when": "now"}]},
        "permission[0]: a permission cannot have 'when'"),
    bad("duty_on_prohibition",
        {"permission": [{"action": "use"}],
         "prohibition": [{"action": "distribute", "duty": [{"action": "inform"}]}]},
        "a prohibition cannot have 'duty'"),
    bad("party_collection",
        {"permission": [{"action": "use", "assignee": {"@type": "PartyCollection",
                                                       "refinement": [EU]}}]},
        "only a party's identifier"),
    bad("same_property_twice", {"permission": [{"action": "use"}], "odrl:permission": []},
        "'permission' and 'odrl:permission' are the same property"),
    bad("bad_duty_constraint",
        {"permission": [{"action": "use", "duty": [{"action": "delete", "constraint": [
            c("elapsedTime", "gt", "soon")]}]}]},
        "permission[0].duty[0].constraint[0]: rightOperand of elapsedTime gt: 'soon' is not"),
    bad("nested_bad_constraint", offer({"or": [STATS, {"and": [c("colour", "eq", "red")]}]}),
        "permission[0].constraint[0].or[1].and[0]: unknown left operand 'colour'"),
]  # fmt: skip


@pytest.mark.parametrize(("policy", "problem"), BAD_POLICIES)
def test_check_reports_what_makes_every_request_denied(policy: Any, problem: str) -> None:
    problems = check(policy=policy)
    assert any(problem in p for p in problems), problems
    decision = evaluate(policy=policy, request=request())
    assert not decision.permitted
    assert decision.reasons


GOOD_POLICIES = [
    offer(STATS, EU, c("elapsedTime", "lteq", "P30D")),
    offer({"or": [RESEARCH, {"and": [STATS, c("count", "lteq", 10)]}]}),
    {"permission": {"action": {"@id": "odrl:read"}}, "prohibition": {"action": "distribute"}},
    {"@context": {"o": "http://www.w3.org/ns/odrl/2/"}, "o:permission": [{"o:action": "o:use"}]},
    {**offer(STATS), "conflict": "prohibit", "profile": "https://w3id.org/rhenus/odrl"},
    {"permission": [{"action": "use", "duty": [DELETE_AFTER_30_DAYS],
                     "dct:description": "an annotation, not a term we evaluate"}]},
]  # fmt: skip


@pytest.mark.parametrize("policy", GOOD_POLICIES, ids=lambda p: json.dumps(p)[:50])
def test_check_accepts_policies_it_can_evaluate(policy: dict[str, Any]) -> None:
    assert check(policy=policy) == []


def test_check_names_each_problem_once_with_its_path() -> None:
    problems = check(policy=offer(STATS, c("partner", "eq", "gold"), c("count", "lt", "x")))
    assert problems == [
        "permission[0].constraint[1]: unknown left operand 'partner'",
        "permission[0].constraint[2]: rightOperand of count lt: 'x' is not a non-negative integer",
    ]


# -- the request -------------------------------------------------------------------------------
def test_request_needs_an_aware_time() -> None:
    with pytest.raises(ValidationError, match="timezone-aware"):
        request(now=datetime(2026, 3, 1, 12))


def test_request_reads_times_in_utc_and_countries_in_upper_case() -> None:
    paris_time = datetime.fromisoformat("2026-03-01T13:00:00+01:00")
    asked = request(now=paris_time, recipient_country="fr", location="de")
    assert asked.now == NOW
    assert asked.now.tzinfo == UTC
    assert (asked.recipient_country, asked.location) == ("FR", "DE")
    with pytest.raises(ValidationError, match="not an ISO 3166-1"):
        request(location="FRA")


def test_request_is_frozen_and_defaults_to_use() -> None:
    asked = request()
    assert (asked.action, asked.count, asked.agreed_at) == ("use", 0, None)
    with pytest.raises(ValidationError):
        asked.purpose = "marketing"  # type: ignore[misc]


def test_requested_action_may_be_an_iri_and_must_be_known() -> None:
    policy = offer(STATS)
    assert evaluate(policy=policy, request=request(action=f"{ODRL}read")).permitted
    denied = evaluate(policy=policy, request=request(action="fly"))
    assert denied.reasons == ["unknown action 'fly'"]


# -- docs/policy.md ----------------------------------------------------------------------------
def test_every_policy_in_the_documentation_is_accepted() -> None:
    text = (Path(__file__).resolve().parents[2] / "docs" / "policy.md").read_text()
    blocks = [json.loads(b) for b in re.findall(r"```json\n(.*?)\n```", text, re.S)]
    policies = [b for b in blocks if isinstance(b, dict) and "permission" in b]
    assert len(policies) >= 5
    for policy in policies:
        assert check(policy=policy) == [], policy


# -- the value readers -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "months", "seconds"),
    [
        ("P30D", 0, 30 * 86_400),
        ("PT12H", 0, 12 * 3_600),
        ("P1Y6M", 18, 0),
        ("P1Y2M3DT4H5M6S", 14, ((3 * 24 + 4) * 60 + 5) * 60 + 6),
        ("PT90M", 0, 5_400),
        ("PT0S", 0, 0),
        ("P0D", 0, 0),
    ],
)
def test_durations_are_read_as_months_and_seconds(text: str, months: int, seconds: int) -> None:
    assert values.duration(text) == values.Duration(months, seconds * 1_000_000)


def test_duration_seconds_keep_their_fraction_to_the_microsecond() -> None:
    assert values.duration("PT1.5S").microseconds == 1_500_000
    assert values.duration("PT0.0000019S").microseconds == 1


@pytest.mark.parametrize("text", ["P", "PT", "P1DT", "P1.5D", "1D", "P1H", "PT1D", "P1W", "p1d",
                                  "P-1D", "-P1D", " P1D"])  # fmt: skip
def test_what_is_not_an_xsd_duration_is_refused(text: str) -> None:
    with pytest.raises(values.Malformed):
        values.duration(text)


@pytest.mark.parametrize(
    ("start", "period", "end"),
    [
        ("2026-01-31T12:00:00Z", "P1M", "2026-02-28T12:00:00Z"),
        ("2024-01-31T00:00:00Z", "P1M", "2024-02-29T00:00:00Z"),
        ("2024-02-29T00:00:00Z", "P1Y", "2025-02-28T00:00:00Z"),
        ("2026-12-15T00:00:00Z", "P1M20D", "2027-02-04T00:00:00Z"),
        ("2026-03-28T23:00:00Z", "PT2H", "2026-03-29T01:00:00Z"),
    ],
)
def test_periods_add_calendar_months_then_time(start: str, period: str, end: str) -> None:
    moment = datetime.fromisoformat(start)
    assert values.add(moment, values.duration(period)) == datetime.fromisoformat(end)


def test_a_period_past_year_9999_never_ends() -> None:
    assert values.add(NOW, values.duration("P8000Y")) is None
    assert values.add(NOW, values.duration("P2000000000D")) is None
    eternal = offer(c("elapsedTime", "lteq", "P8000Y"))
    decision = evaluate(policy=eternal, request=request(agreed_at=NOW))
    assert decision.permitted
    assert "the period never ends" in decision.reasons[0]


@pytest.mark.parametrize(
    ("text", "read"),
    [
        ("2026-12-31", date(2026, 12, 31)),
        ("2026-12-31Z", date(2026, 12, 31)),
        ("2026-12-31T23:00:00Z", datetime(2026, 12, 31, 23, tzinfo=UTC)),
        ("2027-01-01T00:00:00+01:00", datetime(2026, 12, 31, 23, tzinfo=UTC)),
        ("2026-12-31T23:00:00", datetime(2026, 12, 31, 23, tzinfo=UTC)),
        ("2026-12-31T23:00Z", datetime(2026, 12, 31, 23, tzinfo=UTC)),
    ],
)
def test_dates_and_times_are_read_in_utc(text: str, read: date) -> None:
    assert values.moment(text) == read


@pytest.mark.parametrize(
    ("token", "countries"),
    [("fr", {"FR"}), ("EU", set(EU_MEMBER_STATES)), ("EEA", {*EU_MEMBER_STATES, "IS", "LI", "NO"}),
     (f"{values.AUTHORITY_COUNTRY}DEU", {"DE"})],
)  # fmt: skip
def test_spatial_right_operands(token: str, countries: set[str]) -> None:
    assert values.area(token)[1] == countries
