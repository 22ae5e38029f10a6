"""The ODRL 2.2 policy engine's decisions: one row per left operand, operator and logical
operand (permit and deny), then prohibitions, duties, reproducibility and robustness."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rhenus.dataspace.policy.schemas import AccessRequest
from rhenus.dataspace.policy.service import check, evaluate

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
PARIS = "did:web:paris.example.eu"
LEGAL = "gx:LegalParticipant"
ODRL = "http://www.w3.org/ns/odrl/2/"


def c(left: str, operator: str, right: Any) -> dict[str, Any]:
    return {"leftOperand": left, "operator": operator, "rightOperand": right}


def offer(*constraints: dict[str, Any], action: str = "use") -> dict[str, Any]:
    rule = {"action": action, "constraint": list(constraints)}
    return {"@id": "urn:offer:1", "@type": "Offer", "permission": [rule]}


def request(**changes: Any) -> AccessRequest:
    facts: dict[str, Any] = {
        "recipient": PARIS,
        "recipient_credentials": frozenset({LEGAL}),
        "recipient_country": "FR",
        "purpose": "statistics",
        "now": NOW,
    }
    return AccessRequest(**{**facts, **changes})


def case(name: str, policy: dict[str, Any], permitted: bool, reason: str, **facts: Any) -> Any:
    return pytest.param(policy, facts, permitted, reason, id=name)


DAY = timedelta(days=1)
EU_AUTHORITY_FRA = "http://publications.europa.eu/resource/authority/country/FRA"
STATS, EU = c("purpose", "eq", "statistics"), c("spatial", "isPartOf", "EU")
RESEARCH = c("purpose", "eq", "research")

CASES = [
    # purpose
    case("purpose_eq_matches_permits", offer(STATS), True, "purpose eq 'statistics' met"),
    case("purpose_eq_other_purpose_denies", offer(STATS), False,
         "constraint purpose eq 'statistics' not met: purpose is 'marketing'", purpose="marketing"),
    case("purpose_eq_undeclared_denies", offer(STATS), False, "no purpose was declared",
         purpose=None),
    case("purpose_neq_other_permits", offer(c("purpose", "neq", "marketing")), True, "met"),
    case("purpose_neq_same_denies", offer(c("purpose", "neq", "marketing")), False,
         "purpose neq 'marketing' not met", purpose="marketing"),
    case("purpose_isAnyOf_listed_permits",
         offer(c("purpose", "isAnyOf", ["research", "statistics"])), True, "isAnyOf"),
    case("purpose_isAnyOf_unlisted_denies",
         offer(c("purpose", "isAnyOf", ["research", "statistics"])), False,
         "purpose isAnyOf ['research', 'statistics'] not met", purpose="marketing"),
    case("purpose_isNoneOf_listed_denies", offer(c("purpose", "isNoneOf", ["statistics"])),
         False, "purpose isNoneOf 'statistics' not met"),
    case("purpose_isPartOf_listed_permits",
         offer(c("purpose", "isPartOf", ["statistics", "audit"])), True, "isPartOf"),
    case("purpose_iri_right_operand_permits",
         offer(c("purpose", "eq", {"@id": "https://w3id.org/dpv#ResearchAndDevelopment"})),
         True, "met", purpose="https://w3id.org/dpv#ResearchAndDevelopment"),
    case("purpose_lt_denies", offer(c("purpose", "lt", "statistics")), False,
         "operator 'lt' does not apply to 'purpose'"),
    # spatial
    case("spatial_eq_country_permits", offer(c("spatial", "eq", "FR")), True, "location is 'FR'"),
    case("spatial_eq_other_country_denies", offer(c("spatial", "eq", "DE")), False,
         "spatial eq 'DE' not met: location is 'FR'"),
    case("spatial_isPartOf_EU_from_FR_permits", offer(EU), True, "spatial isPartOf 'EU' met"),
    case("spatial_isPartOf_EU_from_US_denies", offer(EU), False,
         "spatial isPartOf 'EU' not met: location is 'US'", recipient_country="US"),
    case("spatial_isPartOf_EEA_from_NO_permits", offer(c("spatial", "isPartOf", "EEA")), True,
         "location is 'NO'", recipient_country="NO"),
    case("spatial_isPartOf_EU_from_NO_denies", offer(EU), False, "location is 'NO'",
         recipient_country="NO"),
    case("spatial_location_overrides_headquarters_denies", offer(EU), False,
         "location is 'US'", location="US"),
    case("spatial_isNoneOf_US_from_FR_permits", offer(c("spatial", "isNoneOf", ["US", "CN"])),
         True, "met"),
    case("spatial_neq_EU_from_CH_permits", offer(c("spatial", "neq", "EU")), True,
         "location is 'CH'", recipient_country="CH"),
    case("spatial_eu_authority_iri_permits", offer(c("spatial", "eq", EU_AUTHORITY_FRA)), True,
         "location is 'FR'"),
    case("spatial_unknown_location_denies", offer(EU), False, "the location is unknown",
         recipient_country=None),
    case("spatial_not_a_country_denies", offer(c("spatial", "eq", "Europe")), False,
         "'Europe' is not an ISO 3166-1 alpha-2 country code"),
    case("spatial_gt_denies", offer(c("spatial", "gt", "FR")), False,
         "operator 'gt' does not apply to 'spatial'"),
    # dateTime
    case("dateTime_lteq_future_permits", offer(c("dateTime", "lteq", "2026-12-31T23:59:59Z")),
         True, "now is 2026-03-01T12:00:00Z"),
    case("dateTime_lt_past_denies", offer(c("dateTime", "lt", "2026-01-01T00:00:00Z")), False,
         "dateTime lt '2026-01-01T00:00:00Z' not met: now is 2026-03-01T12:00:00Z"),
    case("dateTime_gteq_start_date_same_day_permits", offer(c("dateTime", "gteq", "2026-03-01")),
         True, "met"),
    case("dateTime_lteq_date_admits_the_whole_day_permits",
         offer(c("dateTime", "lteq", {"@value": "2026-03-01", "@type": "xsd:date"})), True, "met"),
    case("dateTime_lt_date_on_the_day_denies", offer(c("dateTime", "lt", "2026-03-01")), False,
         "dateTime lt '2026-03-01' not met"),
    case("dateTime_dsp_minutes_form_permits", offer(c("dateTime", "lteq", "2026-12-31T06:00Z")),
         True, "met"),
    case("dateTime_not_a_date_denies", offer(c("dateTime", "lt", "next week")), False,
         "is not an xsd:dateTime or xsd:date"),
    # elapsedTime
    case("elapsedTime_lteq_P30D_day_29_permits", offer(c("elapsedTime", "lteq", "P30D")), True,
         "the period ends at 2026-03-02T12:00:00Z", agreed_at=NOW - 29 * DAY),
    case("elapsedTime_lteq_P30D_day_31_denies", offer(c("elapsedTime", "lteq", "P30D")), False,
         "elapsedTime lteq 'P30D' not met", agreed_at=NOW - 31 * DAY),
    case("elapsedTime_at_agreement_time_permits", offer(c("elapsedTime", "lteq", "P30D")), True,
         "agreed at 2026-03-01T12:00:00Z"),
    case("elapsedTime_PT12H_after_13_hours_denies", offer(c("elapsedTime", "lt", "PT12H")),
         False, "the period ends at 2026-03-01T11:00:00Z", agreed_at=NOW - timedelta(hours=13)),
    case("elapsedTime_P1M_from_31_january_ends_28_february_denies",
         offer(c("elapsedTime", "lteq", "P1M")), False, "the period ends at 2026-02-28T12:00:00Z",
         agreed_at=datetime(2026, 1, 31, 12, tzinfo=UTC)),
    case("elapsedTime_gt_P7D_embargo_over_permits", offer(c("elapsedTime", "gt", "P7D")), True,
         "met", agreed_at=NOW - 8 * DAY),
    case("elapsedTime_not_a_duration_denies", offer(c("elapsedTime", "lteq", "30 days")), False,
         "'30 days' is not an xsd:duration"),
    # count
    case("count_lteq_10_10th_access_permits", offer(c("count", "lteq", 10)), True,
         "this would be use number 10", count=9),
    case("count_lteq_10_11th_access_denies", offer(c("count", "lteq", 10)), False,
         "constraint count lteq 10 not met: this would be use number 11", count=10),
    case("count_eq_1_first_use_permits", offer(c("count", "eq", 1)), True, "number 1"),
    case("count_typed_string_permits",
         offer(c("count", "lt", {"@value": "5", "@type": "xsd:integer"})), True, "met", count=3),
    case("count_negative_denies", offer(c("count", "lteq", -1)), False,
         "-1 is not a non-negative integer"),
    # recipient
    case("recipient_eq_did_permits", offer(c("recipient", "eq", PARIS)), True, "met"),
    case("recipient_eq_other_did_denies", offer(c("recipient", "eq", "did:web:lyon.example.eu")),
         False, f"recipient is {PARIS!r} holding ['gx:LegalParticipant']"),
    case("recipient_eq_credential_permits", offer(c("recipient", "eq", LEGAL)), True, "met"),
    case("recipient_isAnyOf_dids_permits",
         offer(c("recipient", "isAnyOf", ["did:web:lyon.example.eu", PARIS])), True, "met"),
    case("recipient_isNoneOf_denylist_denies", offer(c("recipient", "isNoneOf", [PARIS])), False,
         "recipient isNoneOf"),
    case("recipient_isA_credential_permits", offer(c("recipient", "isA", LEGAL)), True, "met"),
    case("recipient_isA_did_denies", offer(c("recipient", "isA", PARIS)), False,
         "recipient isA"),
    case("recipient_isAllOf_missing_credential_denies",
         offer(c("recipient", "isAllOf", [LEGAL, "ComplianceCredential"])), False,
         "recipient isAllOf"),
    case("recipient_without_credentials_denies", offer(c("recipient", "eq", LEGAL)), False,
         "holding no credential", recipient_credentials=frozenset()),
    # logical constraints
    case("and_both_met_permits", offer({"and": [STATS, EU]}), True, "and met"),
    case("and_one_unmet_denies", offer({"and": [STATS, EU]}), False,
         "and not met (1 of its 2 not met)", recipient_country="US"),
    case("or_one_met_permits", offer({"or": [RESEARCH, STATS]}), True, "or met"),
    case("or_none_met_denies", offer({"or": [RESEARCH, STATS]}), False,
         "or not met (none of its 2 is met)", purpose="marketing"),
    case("xone_one_true_permits", offer({"xone": [RESEARCH, STATS]}), True, "xone met"),
    case("xone_two_true_denies", offer({"xone": [EU, STATS]}), False,
         "xone not met (2 of its 2 are met, exactly one must be)"),
    case("xone_none_true_denies", offer({"xone": [RESEARCH, EU]}), False,
         "xone not met (none of its 2 is met)", recipient_country="US"),
    case("andSequence_all_met_permits", offer({"andSequence": [STATS, EU]}), True,
         "andSequence met"),
    case("nested_or_of_ands_permits",
         offer({"or": [{"and": [RESEARCH, c("spatial", "eq", "DE")]}, {"and": [STATS, EU]}]}),
         True, "or met"),
    case("nested_and_in_xone_both_true_denies",
         offer({"xone": [{"and": [STATS, EU]}, c("count", "lteq", 5)]}), False,
         "xone not met (2 of its 2 are met"),
    # terms, actions and parties
    case("unknown_operand_denies", offer(c("partner", "eq", "gold")), False,
         "unknown left operand 'partner'"),
    case("unsupported_common_operand_denies", offer(c("industry", "eq", "health")), False,
         "unsupported left operand 'industry'"),
    case("unknown_operator_denies", offer(c("count", "term-lteq", 3)), False,
         "unknown operator 'term-lteq'"),
    case("missing_right_operand_denies", offer({"leftOperand": "count", "operator": "lt"}),
         False, "a constraint needs rightOperand"),
    case("unknown_action_in_policy_denies", offer(action="fly"), False, "unknown action 'fly'"),
    case("no_permission_for_action_denies", offer(action="read"), False,
         "no permission covers the action 'use' (it permits read)"),
    case("use_covers_compute_permits", offer(STATS), True, "permission to use",
         action="compute"),
    case("present_covers_print_permits", offer(action="present"), True, "to present",
         action="odrl:print"),
    case("prefixed_and_iri_terms_permits",
         offer({"leftOperand": "odrl:purpose", "operator": "http://www.w3.org/ns/odrl/2/eq",
                "rightOperand": {"@value": "statistics"}}), True, "purpose eq 'statistics' met"),
    case("policy_assignee_other_recipient_denies",
         {**offer(STATS), "assignee": "did:web:lyon.example.eu"}, False,
         "it is assigned to 'did:web:lyon.example.eu', not to"),
]  # fmt: skip


@pytest.mark.parametrize(("policy", "facts", "permitted", "reason"), CASES)
def test_decision_table(
    policy: dict[str, Any], facts: dict[str, Any], permitted: bool, reason: str
) -> None:
    decision = evaluate(policy=policy, request=request(**facts))
    assert decision.permitted is permitted, decision.reasons
    assert decision.reasons, "every decision says why"
    assert any(reason in r for r in decision.reasons), decision.reasons


# -- prohibitions ------------------------------------------------------------------------------
def test_prohibition_overrides_permission() -> None:
    policy = {
        "prohibition": [{"action": "use", "constraint": [c("spatial", "eq", "US")]}],
        "permission": [{"action": "use", "constraint": [STATS]}],
    }
    assert evaluate(policy=policy, request=request(location="FR")).permitted
    denied = evaluate(policy=policy, request=request(location="US"))
    assert not denied.permitted
    assert denied.reasons == [
        "the prohibition to use applies: constraint spatial eq 'US' met: location is 'US'"
    ]
    assert denied.duties == []


def test_prohibition_of_a_broader_action_covers_a_narrower_request() -> None:
    policy = {"permission": [{"action": "use"}], "prohibition": [{"action": "use"}]}
    denied = evaluate(policy=policy, request=request(action="read"))
    assert not denied.permitted
    assert denied.reasons == ["the prohibition to use applies: it has no constraint"]


def test_prohibition_of_a_narrower_action_applies_only_to_that_action() -> None:
    policy = {"permission": [{"action": "use"}], "prohibition": [{"action": "distribute"}]}
    assert evaluate(policy=policy, request=request(action="use")).permitted
    denied = evaluate(policy=policy, request=request(action="distribute"))
    assert not denied.permitted
    assert "the prohibition to distribute applies" in denied.reasons[0]


def test_prohibition_assigned_to_another_party_does_not_apply() -> None:
    policy = {
        "permission": [{"action": "use"}],
        "prohibition": [{"action": "use", "assignee": "did:web:lyon.example.eu"}],
    }
    assert evaluate(policy=policy, request=request()).permitted
    assert not evaluate(
        policy=policy, request=request(recipient="did:web:lyon.example.eu")
    ).permitted


def test_denial_lists_the_prohibition_and_every_unmet_constraint() -> None:
    policy = {
        "permission": [{"action": "use", "constraint": [STATS, EU]}],
        "prohibition": [{"action": "use", "constraint": [c("purpose", "eq", "marketing")]}],
    }
    denied = evaluate(policy=policy, request=request(purpose="marketing", location="US"))
    assert denied.reasons == [
        "the prohibition to use applies: constraint purpose eq 'marketing' met: purpose is "
        "'marketing'",
        "permission to use: constraint purpose eq 'statistics' not met: purpose is 'marketing'",
        "permission to use: constraint spatial isPartOf 'EU' not met: location is 'US'",
    ]


# -- duties ------------------------------------------------------------------------------------
DELETE_AFTER_30_DAYS = {
    "action": "odrl:delete",
    "constraint": {"leftOperand": "elapsedTime", "operator": "gt", "rightOperand": "P30D"},
}


def test_duties_of_the_permitting_permission_and_the_obligations_are_returned() -> None:
    policy = {
        "permission": [{"action": "use", "constraint": [STATS], "duty": [DELETE_AFTER_30_DAYS]}],
        "obligation": [{"action": "inform", "informedParty": "did:web:berlin.example.eu"}],
    }
    decision = evaluate(policy=policy, request=request())
    assert decision.permitted
    assert decision.duties == [
        {
            "action": "delete",
            "constraint": [
                {"leftOperand": "elapsedTime", "operator": "gt", "rightOperand": "P30D"}
            ],
        },
        {"action": "inform", "informedParty": "did:web:berlin.example.eu"},
    ]
    decision.duties[0]["action"] = "changed by the caller"
    assert evaluate(policy=policy, request=request()).duties[0]["action"] == "delete"


def test_no_duties_on_a_denial() -> None:
    policy = {
        "permission": [{"action": "use", "constraint": [STATS], "duty": [DELETE_AFTER_30_DAYS]}]
    }
    decision = evaluate(policy=policy, request=request(purpose="marketing"))
    assert not decision.permitted
    assert decision.duties == []


def test_of_two_permissions_that_would_do_the_one_with_fewer_duties_permits() -> None:
    heavy = {"action": "use", "duty": [DELETE_AFTER_30_DAYS, {"action": "attribute"}]}
    light = {"action": "use", "constraint": [STATS], "duty": [{"action": "inform"}]}
    decision = evaluate(policy={"permission": [heavy, light]}, request=request())
    assert decision.duties == [{"action": "inform"}]
    decision = evaluate(policy={"permission": [heavy, light]}, request=request(purpose="x"))
    assert len(decision.duties) == 2


def test_action_refinement_is_a_constraint_on_the_rule() -> None:
    refined = {
        "rdf:value": {"@id": "odrl:use"},
        "refinement": [c("purpose", "isAnyOf", ["statistics", "research"])],
    }
    policy = {"permission": [{"action": refined}]}
    assert evaluate(policy=policy, request=request()).permitted
    denied = evaluate(policy=policy, request=request(purpose="marketing"))
    assert "purpose isAnyOf ['research', 'statistics'] not met" in denied.reasons[0]


# -- reproducibility ---------------------------------------------------------------------------
POOL = [
    STATS, EU, RESEARCH, c("count", "lteq", 3), c("dateTime", "lt", "2026-06-01"),
    c("elapsedTime", "lteq", "P30D"), c("recipient", "eq", LEGAL), {"or": [RESEARCH, STATS]},
    {"xone": [EU, c("spatial", "eq", "US")]}, c("spatial", "isNoneOf", ["US", "CN"]),
    {"and": [c("purpose", "neq", "marketing"), c("count", "lt", 5)]},
]  # fmt: skip
rule_constraints = st.lists(st.sampled_from(POOL), max_size=4)
requests = st.builds(
    request,
    purpose=st.sampled_from(["statistics", "research", "marketing", None]),
    recipient_country=st.sampled_from(["FR", "DE", "US", "NO", None]),
    count=st.integers(0, 6),
    agreed_at=st.integers(0, 40).map(lambda days: NOW - days * DAY),
)


def _policy(permissions: list[list[Any]], prohibitions: list[list[Any]]) -> dict[str, Any]:
    return {
        "permission": [
            {"action": "use", "constraint": cs, "duty": [DELETE_AFTER_30_DAYS] if i % 2 else []}
            for i, cs in enumerate(permissions)
        ],
        "prohibition": [{"action": "distribute", "constraint": cs} for cs in prohibitions],
    }


def _reversed_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _reversed_keys(v) for k, v in reversed(list(value.items()))}
    if isinstance(value, list):
        return [_reversed_keys(v) for v in value]
    return value


@settings(max_examples=150, deadline=None)
@given(
    permissions=st.lists(rule_constraints, min_size=1, max_size=3),
    prohibitions=st.lists(rule_constraints, max_size=2),
    asked=requests,
    action=st.sampled_from(["use", "read", "distribute"]),
    data=st.data(),
)
def test_same_policy_and_request_give_the_same_decision_in_any_order(
    permissions: list[list[Any]],
    prohibitions: list[list[Any]],
    asked: AccessRequest,
    action: str,
    data: st.DataObject,
) -> None:
    asked = asked.model_copy(update={"action": action})
    policy = _policy(permissions, prohibitions)
    first = evaluate(policy=policy, request=asked)
    assert first.reasons
    assert evaluate(policy=_policy(permissions, prohibitions), request=asked) == first
    permuted = {
        kind: [
            {**rule, "constraint": data.draw(st.permutations(rule["constraint"]))}
            for rule in data.draw(st.permutations(rules))
        ]
        for kind, rules in reversed(list(policy.items()))
    }
    assert evaluate(policy=_reversed_keys(permuted), request=asked) == first


# -- robustness: never raises; check() predicts every denial it reports --------------------------
KEYS = [
    "permission", "prohibition", "obligation", "action", "constraint", "leftOperand", "operator",
    "rightOperand", "and", "or", "xone", "andSequence", "duty", "refinement", "assignee",
    "@id", "@value", "@list", "@type", "@context", "odrl:permission", "conflict", "profile",
]  # fmt: skip
TERMS = ["use", "read", "purpose", "spatial", "count", "eq", "lteq", "isAnyOf", "EU", "P30D",
         "2026-01-01", "statistics", "odrl:", "perm", "Offer", "x:y", ""]  # fmt: skip
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.sampled_from(TERMS),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(KEYS), inner, max_size=4)
    ),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(policy=st.dictionaries(st.sampled_from(KEYS), json_values, max_size=5), asked=requests)
def test_any_json_is_decided_without_raising(policy: dict[str, Any], asked: AccessRequest) -> None:
    decision = evaluate(policy=policy, request=asked)
    problems = check(policy=policy)
    assert all(isinstance(p, str) and p for p in problems)
    assert decision.reasons
    if problems:
        assert not decision.permitted


def test_a_policy_that_is_not_an_object_is_denied() -> None:
    not_a_policy: Any = [{"action": "use"}]
    decision = evaluate(policy=not_a_policy, request=request())
    assert not decision.permitted
    assert "a policy must be a JSON object, not list" in decision.reasons[0]
