"""Policy equivalence (``same_terms``) and agreements made from offers: the same rules in any
JSON-LD spelling and order are the same terms; any change to a rule is not."""

from __future__ import annotations

import copy
import json
import random
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rhenus.dataspace.policy.schemas import AccessRequest
from rhenus.dataspace.policy.service import agreement_from_offer, check, evaluate, same_terms
from tests.dataspace.dsp_schemas import SHARED, validate

ODRL = "http://www.w3.org/ns/odrl/2/"
BERLIN, PARIS = "did:web:berlin.example.eu", "did:web:paris.example.eu"


def c(left: str, operator: str, right: Any) -> dict[str, Any]:
    return {"leftOperand": left, "operator": operator, "rightOperand": right}


STATS, EU, DAYS_30 = (
    c("purpose", "eq", "statistics"),
    c("spatial", "isPartOf", "EU"),
    c("elapsedTime", "lteq", "P30D"),
)
DELETE = {"action": "delete", "constraint": [c("elapsedTime", "gt", "P30D")]}
OFFER: dict[str, Any] = {
    "@id": "urn:offer:1",
    "@type": "Offer",
    "permission": [{"action": "use", "constraint": [STATS, EU, DAYS_30], "duty": [DELETE]}],
    "prohibition": [{"action": "distribute"}],
}


def with_rule(**changes: Any) -> dict[str, Any]:
    """OFFER with its permission changed."""
    return {**OFFER, "permission": [{**OFFER["permission"][0], **changes}]}


EXPANDED = {
    "@id": "urn:offer:other",
    "@type": [f"{ODRL}Offer"],
    f"{ODRL}permission": [{
        f"{ODRL}action": [{"@id": f"{ODRL}use"}],
        f"{ODRL}constraint": [
            {f"{ODRL}leftOperand": [{"@id": f"{ODRL}{left}"}],
             f"{ODRL}operator": [{"@id": f"{ODRL}{op}"}],
             f"{ODRL}rightOperand": [{"@value": right}]}
            for left, op, right in (("elapsedTime", "lteq", "P30D"),
                                    ("purpose", "eq", "statistics"), ("spatial", "isPartOf", "EU"))
        ],
        f"{ODRL}duty": [{
            f"{ODRL}action": [{"@id": f"{ODRL}delete"}],
            f"{ODRL}constraint": [{f"{ODRL}leftOperand": [{"@id": f"{ODRL}elapsedTime"}],
                                   f"{ODRL}operator": [{"@id": f"{ODRL}gt"}],
                                   f"{ODRL}rightOperand": [{"@value": "P30D"}]}],
        }],
    }],
    f"{ODRL}prohibition": [{f"{ODRL}action": [{"@id": f"{ODRL}distribute"}]}],
}  # fmt: skip

SAME = [
    pytest.param(copy.deepcopy(OFFER), id="identical"),
    pytest.param(with_rule(constraint=[
        {"leftOperand": "odrl:purpose", "operator": "odrl:eq", "rightOperand": "statistics"},
        {"leftOperand": f"{ODRL}spatial", "operator": f"{ODRL}isPartOf", "rightOperand": "EU"},
        DAYS_30]), id="prefixed_and_full_iri_terms"),
    pytest.param(with_rule(constraint=[DAYS_30, EU, STATS]), id="constraints_reordered"),
    pytest.param({"prohibition": {"action": "distribute"}, "permission": {
        "duty": {"action": "delete", "constraint": c("elapsedTime", "gt", "P30D")},
        "constraint": [STATS, EU, DAYS_30], "action": "use"}}, id="single_objects_for_lists"),
    pytest.param(with_rule(constraint=[
        c("purpose", "eq", {"@value": "statistics"}), c("spatial", "isPartOf", ["EU"]),
        c("elapsedTime", "lteq", {"@value": "P30D", "@type": "xsd:duration"})]),
        id="value_wrappers_and_one_item_lists"),
    pytest.param(with_rule(action={"@id": "odrl:use"}), id="action_as_id_object"),
    pytest.param(EXPANDED, id="expanded_json_ld"),
    pytest.param({**copy.deepcopy(OFFER), "@id": "urn:agreement:9", "@type": "Agreement",
                  "target": "urn:dataset:1", "assigner": BERLIN, "assignee": PARIS,
                  "timestamp": "2026-03-01T12:00:00Z", "odrl:timestamp": "2026-03-01",
                  "dspace:timestamp": "2026-03-01", "@context": [
                      "https://w3id.org/dspace/2025/1/context.jsonld"]},
                 id="policy_level_identity_and_parties_ignored"),
    pytest.param(with_rule(constraint=[STATS, EU, c("elapsedTime", "lteq", "PT720H")]),
                 id="P30D_is_PT720H"),
    pytest.param(with_rule(constraint=[STATS, c("spatial", "isPartOf", "eu"), DAYS_30]),
                 id="region_case"),
    pytest.param({"@context": {"o": ODRL}, "o:permission": [{
        "o:action": "o:use", "o:constraint": [STATS, EU, DAYS_30], "o:duty": [DELETE]}],
        "o:prohibition": [{"o:action": {"@id": "o:distribute"}}]}, id="prefix_declared_in_context"),
    pytest.param(with_rule(constraint=[{**STATS, "@type": "Constraint"}, EU, DAYS_30],
                           **{"@type": "Permission"}), id="rule_and_constraint_types_ignored"),
]  # fmt: skip


@pytest.mark.parametrize("other", SAME)
def test_same_terms(other: dict[str, Any]) -> None:
    assert same_terms(OFFER, other)
    assert same_terms(other, OFFER)


def pair(name: str, a: dict[str, Any], b: dict[str, Any]) -> Any:
    return pytest.param(a, b, id=name)


def offer_of(*constraints: dict[str, Any]) -> dict[str, Any]:
    return {"permission": [{"action": "use", "constraint": list(constraints)}]}


EQUAL_VALUES = [
    pair("count_int_and_typed_string", offer_of(c("count", "lteq", 10)),
         offer_of(c("count", "lteq", {"@value": "10", "@type": "xsd:integer"}))),
    pair("dateTime_in_any_offset", offer_of(c("dateTime", "lt", "2026-12-31T23:00:00Z")),
         offer_of(c("dateTime", "lt", "2027-01-01T00:00:00+01:00"))),
    pair("country_and_eu_authority_iri", offer_of(c("spatial", "eq", "FR")), offer_of(
        c("spatial", "eq", "http://publications.europa.eu/resource/authority/country/FRA"))),
    pair("isAnyOf_order_and_repeats", offer_of(c("purpose", "isAnyOf", ["a", "b"])),
         offer_of(c("purpose", "isAnyOf", ["b", "a", "b"]))),
    pair("or_operands_order", offer_of({"or": [STATS, EU]}), offer_of({"or": [EU, STATS]})),
    pair("assignee_wrapped", {"permission": [{"action": "use", "assignee": PARIS}]},
         {"permission": [{"action": "use", "assignee": {"@id": PARIS}}]}),
    pair("permissions_order", {"permission": [{"action": "read"}, {"action": "use"}]},
         {"permission": [{"action": "use"}, {"action": "odrl:read"}]}),
]  # fmt: skip

DIFFERENT = [
    pair("right_operand", OFFER, with_rule(constraint=[c("purpose", "eq", "research"), EU,
                                                       DAYS_30])),
    pair("extra_constraint", OFFER, with_rule(constraint=[STATS, EU, DAYS_30,
                                                          c("count", "lteq", 10)])),
    pair("missing_constraint", OFFER, with_rule(constraint=[STATS, EU])),
    pair("operator", OFFER, with_rule(constraint=[c("purpose", "neq", "statistics"), EU,
                                                  DAYS_30])),
    pair("action", OFFER, with_rule(action="read")),
    pair("duty_dropped", OFFER, with_rule(duty=[])),
    pair("prohibition_dropped", OFFER, {**OFFER, "prohibition": []}),
    pair("rule_assignee_added", OFFER, with_rule(assignee=PARIS)),
    pair("constraint_moved_to_prohibition", offer_of(STATS),
         {"permission": [{"action": "use"}], "prohibition": [{"action": "use",
                                                              "constraint": [STATS]}]}),
    pair("andSequence_order", offer_of({"andSequence": [STATS, EU]}),
         offer_of({"andSequence": [EU, STATS]})),
    pair("and_is_not_or", offer_of({"and": [STATS, EU]}), offer_of({"or": [STATS, EU]})),
    pair("xone_repeated_operand", offer_of({"xone": [STATS, STATS]}), offer_of({"xone": [STATS]})),
    pair("P1M_is_not_P30D", offer_of(c("elapsedTime", "lteq", "P1M")), offer_of(DAYS_30)),
    pair("EU_is_not_EEA", offer_of(EU), offer_of(c("spatial", "isPartOf", "EEA"))),
    pair("date_is_not_midnight", offer_of(c("dateTime", "lt", "2026-12-31")),
         offer_of(c("dateTime", "lt", "2026-12-31T00:00:00Z"))),
    pair("profile", {**OFFER, "profile": "https://example.eu/a"}, {**OFFER, "profile": "https://example.eu/b"}),
    pair("extension_property", with_rule(**{"dct:description": "one"}),
         with_rule(**{"dct:description": "two"})),
    pair("unreadable_actions_differ", {"permission": [{"action": [1, 2]}]},
         {"permission": [{"action": [3, 4]}]}),
    pair("malformed_constraints_differ", offer_of({"leftOperand": "count"}),
         offer_of({"leftOperand": "purpose"})),
]  # fmt: skip


@pytest.mark.parametrize(("a", "b"), EQUAL_VALUES)
def test_equal_values_are_the_same_terms(a: dict[str, Any], b: dict[str, Any]) -> None:
    assert same_terms(a, b)


@pytest.mark.parametrize(("a", "b"), DIFFERENT)
def test_any_change_to_a_rule_is_not_the_same_terms(a: dict[str, Any], b: dict[str, Any]) -> None:
    assert not same_terms(a, b)
    assert not same_terms(b, a)


def test_something_that_is_not_a_policy_has_no_terms() -> None:
    not_a_policy: Any = [OFFER]
    assert not same_terms(OFFER, not_a_policy)
    assert not same_terms(not_a_policy, not_a_policy)


# -- generated policies: any respelling is the same terms, any substitution is not -------------
POOL = [
    STATS, EU, DAYS_30, c("count", "lteq", 10), c("dateTime", "lt", "2026-06-01"),
    c("recipient", "isAnyOf", ["gx:LegalParticipant", PARIS]), c("spatial", "isNoneOf", ["US"]),
    {"or": [STATS, c("purpose", "eq", "research")]}, {"xone": [EU, c("spatial", "eq", "CH")]},
    {"andSequence": [c("count", "lt", 3), STATS]},
]  # fmt: skip
ACTIONS = ["use", "read", "distribute"]
# A generated policy: (kind, action, constraint indices into POOL) per rule.
Shape = list[tuple[str, str, list[int]]]
shapes = st.lists(
    st.tuples(
        st.sampled_from(["permission", "prohibition", "obligation"]),
        st.sampled_from(ACTIONS),
        st.lists(st.integers(0, len(POOL) - 1), max_size=4),
    ),
    min_size=1,
    max_size=4,
)
TERM_KEYS = {"permission", "prohibition", "obligation", "action", "constraint", "leftOperand",
             "operator", "rightOperand", "and", "or", "xone", "andSequence"}  # fmt: skip


def render(shape: Shape) -> dict[str, Any]:
    policy: dict[str, Any] = {}
    for kind, action, indices in shape:
        rule = {"action": action, "constraint": [copy.deepcopy(POOL[i]) for i in indices]}
        policy.setdefault(kind, []).append(rule)
    return policy


def respell(value: Any, rng: random.Random, key: str = "") -> Any:
    """``value`` written differently but equivalently: prefixed or full-IRI terms, ``@id`` and
    ``@value`` wrappers, one-item lists unwrapped, sets and keys reordered."""

    def spell(term: str) -> str:
        return rng.choice([term, f"odrl:{term}", f"{ODRL}{term}"])

    if isinstance(value, dict):
        items = list(value.items())
        rng.shuffle(items)
        return {(spell(k) if k in TERM_KEYS else k): respell(v, rng, key=k) for k, v in items}
    if isinstance(value, list):
        items = list(value)
        if key != "andSequence":
            rng.shuffle(items)
        items = [respell(item, rng, key=key) for item in items]
        unwrap = len(items) == 1 and key != "andSequence" and rng.random() < 0.5
        return items[0] if unwrap else items
    if key in {"action", "leftOperand", "operator"}:
        return rng.choice([spell(value), {"@id": f"odrl:{value}"}])
    if key == "rightOperand" and rng.random() < 0.5:
        return {"@value": value}
    return value


@settings(max_examples=100, deadline=None)
@given(shape=shapes, rng=st.randoms(use_true_random=False))
def test_a_respelt_policy_states_the_same_terms(shape: Shape, rng: random.Random) -> None:
    policy = render(shape)
    assert same_terms(policy, respell(policy, rng))
    assert same_terms(respell(policy, rng), respell(policy, rng))


@settings(max_examples=100, deadline=None)
@given(shape=shapes, data=st.data(), rng=st.randoms(use_true_random=False))
def test_a_substituted_constraint_or_action_changes_the_terms(
    shape: Shape, data: st.DataObject, rng: random.Random
) -> None:
    at = data.draw(st.integers(0, len(shape) - 1))
    kind, action, indices = shape[at]
    if indices and data.draw(st.booleans()):
        slot = data.draw(st.integers(0, len(indices) - 1))
        other = data.draw(st.integers(0, len(POOL) - 1).filter(lambda i: i != indices[slot]))
        changed = (kind, action, [*indices[:slot], other, *indices[slot + 1 :]])
    else:
        changed = (kind, data.draw(st.sampled_from([a for a in ACTIONS if a != action])), indices)
    mutated = [*shape[:at], changed, *shape[at + 1 :]]
    assert not same_terms(render(shape), respell(render(mutated), rng))


# -- agreements from offers --------------------------------------------------------------------
AGREED_AT = datetime(2026, 3, 1, 12, tzinfo=UTC)


def agree(offer: dict[str, Any], **changes: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "agreement_id": "urn:uuid:agreement-1", "target": "urn:uuid:dataset-1",
        "assigner": BERLIN, "assignee": PARIS, "timestamp": AGREED_AT,
    }  # fmt: skip
    return agreement_from_offer(offer=offer, **{**fields, **changes})


def test_agreement_from_offer_states_the_offer_between_the_parties() -> None:
    agreement = agree(OFFER)
    assert agreement == {
        "@id": "urn:uuid:agreement-1",
        "@type": "Agreement",
        "target": "urn:uuid:dataset-1",
        "assigner": BERLIN,
        "assignee": PARIS,
        "timestamp": "2026-03-01T12:00:00Z",
        "permission": OFFER["permission"],
        "prohibition": [{"action": "distribute"}],
    }
    assert same_terms(OFFER, agreement)
    validate(agreement, "negotiation/contract-schema.json")


def test_agreement_from_a_respelt_offer_is_written_compact_and_keeps_its_terms() -> None:
    agreement = agree(EXPANDED, timestamp=datetime.fromisoformat("2026-03-01T14:00:00+02:00"))
    assert agreement["timestamp"] == "2026-03-01T12:00:00Z"
    assert agreement["permission"][0]["action"] == "use"
    assert {"leftOperand": "purpose", "operator": "eq", "rightOperand": "statistics"} in (
        agreement["permission"][0]["constraint"]
    )
    assert same_terms(EXPANDED, agreement)
    assert same_terms(OFFER, agreement)
    validate(agreement, "negotiation/contract-schema.json")


def test_agreement_is_a_copy_of_the_offer() -> None:
    offer = copy.deepcopy(OFFER)
    agreement = agree(offer)
    agreement["permission"][0]["constraint"].clear()
    assert offer == OFFER


def test_agreement_binds_its_assignee() -> None:
    agreement = agree(OFFER)
    facts: dict[str, Any] = {"purpose": "statistics", "recipient_country": "FR", "now": AGREED_AT}
    assert evaluate(policy=agreement, request=AccessRequest(recipient=PARIS, **facts)).permitted
    other = evaluate(
        policy=agreement, request=AccessRequest(recipient="did:web:lyon.example.eu", **facts)
    )
    assert not other.permitted
    assert "it is assigned to 'did:web:paris.example.eu'" in other.reasons[0]


def test_an_offer_check_refuses_cannot_become_an_agreement() -> None:
    with pytest.raises(ValueError, match="unknown left operand 'partner'"):
        agree({"permission": [{"action": "use", "constraint": [c("partner", "eq", "gold")]}]})


# -- the DSP 2025-1 examples -------------------------------------------------------------------
def _example(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((SHARED / "negotiation" / "example" / name).read_text())
    return document


def test_the_dsp_request_example_offer_can_be_agreed() -> None:
    offer = _example("contract-request-message.json")["offer"]
    assert check(policy=offer) == []
    agreement = agree(offer)
    validate(agreement, "negotiation/contract-schema.json")
    assert same_terms(offer, agreement)
    request = AccessRequest(recipient=PARIS, now=datetime(2023, 12, 31, 6, tzinfo=UTC))
    assert evaluate(policy=agreement, request=request).permitted
    late = request.model_copy(update={"now": datetime(2023, 12, 31, 6, 1, tzinfo=UTC)})
    assert (
        "dateTime lteq '2023-12-31T06:00Z' not met"
        in evaluate(policy=agreement, request=late).reasons[0]
    )


def test_the_dsp_full_agreement_example_uses_an_operand_rhenus_does_not_know() -> None:
    agreement = _example("contract-agreement-message-full.json")["agreement"]
    assert "permission[1].constraint[0].and[0]: unknown left operand 'partner'" in check(
        policy=agreement
    )
    assert same_terms(agreement, copy.deepcopy(agreement))
