"""Compute-to-data terms: the left operands, in the Rhenus namespace (``https://w3id.org/rhenus/``,
prefix ``rhenus:``), that constrain a permission to ``compute`` — an aggregate computed at the
provider, next to data that never leaves it (see ``docs/pools.md``).

They are ordinary ODRL 2.2 constraints (Information Model §2.5.1) on the permission, so that the
offer and its agreement stay in the DSP 2025-1 shape (a string ``action``, a list of
``constraint``s). Each compares a fact the provider states about the query it is about to run
(:class:`~rhenus.dataspace.policy.schemas.ComputeFacts`) with the bound the policy sets; the
pool enforces the bounds it reads with :func:`terms_of`, then asks the engine whether the query,
run that way, is within the policy — the same evaluation as any other use. They are accepted
only on a permission to compute: elsewhere they could not be enforced, so they are a problem.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from rhenus.dataspace.policy.model import Atomic, Constraint, Policy
from rhenus.dataspace.policy.operands import Comparison, Outcome
from rhenus.dataspace.policy.schemas import AccessRequest, ComputeFacts
from rhenus.dataspace.policy.values import Malformed, Scalar

RHENUS = "https://w3id.org/rhenus/"
MIN_GROUP_SIZE = RHENUS + "minGroupSize"
DP_EPSILON_BUDGET = RHENUS + "dpEpsilonBudget"
MAX_ROWS = RHENUS + "maxRows"
MAX_SECONDS = RHENUS + "maxSeconds"
MAX_MEMORY_MIB = RHENUS + "maxMemoryMiB"
AGGREGATE_FUNCTION = RHENUS + "aggregateFunction"

# The aggregate functions a query may name (a policy lists those it allows). min, max and
# median return one row's value: they are allowed only when a policy lists them.
AGGREGATES = frozenset({"count", "sum", "avg", "stddev", "variance", "min", "max", "median"})
DEFAULT_AGGREGATES = frozenset({"count", "sum", "avg", "stddev", "variance"})

OPERATORS_OF: Mapping[str, frozenset[str]] = {
    MIN_GROUP_SIZE: frozenset({"gteq"}),
    DP_EPSILON_BUDGET: frozenset({"lteq"}),
    MAX_ROWS: frozenset({"lteq"}),
    MAX_SECONDS: frozenset({"lteq"}),
    MAX_MEMORY_MIB: frozenset({"lteq"}),
    AGGREGATE_FUNCTION: frozenset({"isAnyOf"}),
}
MICRO = 1_000_000  # ε and seconds are kept in millionths: budgets add up exactly
Builder = Callable[[list[Scalar]], Comparison]
NOT_A_QUERY = "the request is not a query run by a pool (it states no compute facts)"


def short(left: str) -> str:
    """``rhenus:minGroupSize`` for the full IRI, for reasons and problems."""
    return "rhenus:" + left[len(RHENUS) :] if left.startswith(RHENUS) else left


def _one(values: list[Scalar]) -> Scalar:
    if len(values) != 1:
        raise Malformed(f"takes one value, not {len(values)}")
    return values[0]


def _positive_int(values: list[Scalar]) -> int:
    value = _one(values)
    if isinstance(value, str) and value.isascii() and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise Malformed(f"{value!r} is not a positive integer")
    return value


def micros(value: Scalar) -> int:
    """A positive decimal (``1``, ``0.5``, ``"0.25"``) in millionths, exactly."""
    if isinstance(value, bool):
        raise Malformed(f"{value!r} is not a positive decimal")
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise Malformed(f"{value!r} is not a positive decimal") from None
    scaled = number * MICRO
    if not number.is_finite() or number <= 0 or scaled != scaled.to_integral_value():
        raise Malformed(f"{value!r} is not a positive decimal of at most 6 decimal places")
    return int(scaled)


def shown(millionths: int) -> str:
    """Millionths as a decimal: 1500000 → '1.5'."""
    text = str(Decimal(millionths) / MICRO)
    return text.rstrip("0").rstrip(".") if "." in text else text


Fact = Callable[[ComputeFacts], int | None]
Run = Callable[[AccessRequest], Outcome]


def _bound(fact: Fact, template: str, limit: int, show: Callable[[int], str], low: bool) -> Run:
    """The test ``fact >= limit`` (``low``) or ``fact <= limit``; ``template`` says the fact."""

    def run(request: AccessRequest) -> Outcome:
        if request.compute is None:
            return False, NOT_A_QUERY
        value = fact(request.compute)
        if value is None:  # only ε can be missing: the query would run without noise
            return False, "the query would run without differential privacy"
        return (value >= limit if low else value <= limit), template.format(show(value))

    return run


def _integer(fact: Fact, template: str, *, low: bool = False) -> Builder:
    def builder(values: list[Scalar]) -> Comparison:
        limit = _positive_int(values)
        return Comparison(limit, _bound(fact, template, limit, str, low))

    return builder


def _decimal(fact: Fact, template: str) -> Builder:
    def builder(values: list[Scalar]) -> Comparison:
        limit = micros(_one(values))
        return Comparison(limit, _bound(fact, template, limit, shown, False))

    return builder


def _aggregates(values: list[Scalar]) -> Comparison:
    if not values:
        raise Malformed("the right operand is empty")
    names = set()
    for value in values:
        if not isinstance(value, str) or value.lower() not in AGGREGATES:
            raise Malformed(f"{value!r} is not one of {', '.join(sorted(AGGREGATES))}")
        names.add(value.lower())
    allowed = sorted(names)

    def run(request: AccessRequest) -> Outcome:
        facts = request.compute
        if facts is None:
            return False, NOT_A_QUERY
        used = sorted(facts.aggregates)
        return facts.aggregates <= set(allowed), f"the query uses {used}"

    return Comparison(allowed, run)


_BUILDERS: Mapping[str, Builder] = {
    MIN_GROUP_SIZE: _integer(
        lambda f: f.min_group_size, "minimum group size of the query {}", low=True
    ),
    MAX_ROWS: _integer(lambda f: f.max_rows, "row limit of the query {}"),
    MAX_MEMORY_MIB: _integer(lambda f: f.max_memory_mib, "memory limit of the query {} MiB"),
    DP_EPSILON_BUDGET: _decimal(
        lambda f: f.epsilon_spent_micro, "ε spent under the agreement, this query included, {}"
    ),
    MAX_SECONDS: _decimal(lambda f: f.max_seconds_micro, "time limit of the query {} s"),
    AGGREGATE_FUNCTION: _aggregates,
}


def comparison_for(left: str, operator: str, values: list[Scalar]) -> Comparison:
    """The test of a compute constraint; the caller checked ``operator`` (:data:`OPERATORS_OF`)."""
    del operator  # each operand takes exactly one
    return _BUILDERS[left](values)


@dataclass(frozen=True)
class ComputeTerms:
    """The bounds the compute permissions of a policy set (``None``: the policy sets none). With
    several compute permissions, or a bound stated twice, the strictest of all applies."""

    min_group_size: int | None = None
    epsilon_budget_micro: int | None = None
    max_rows: int | None = None
    max_seconds_micro: int | None = None
    max_memory_mib: int | None = None
    aggregates: frozenset[str] | None = None


def _atomics(constraints: Iterable[Constraint]) -> Iterable[Atomic]:
    for constraint in constraints:
        if isinstance(constraint, Atomic):
            yield constraint
        else:
            yield from _atomics(constraint.operands)


def lefts(constraints: Iterable[Constraint]) -> set[str]:
    """Every left operand named by the constraints, however deeply nested."""
    return {str(atomic.canon.get("leftOperand", "")) for atomic in _atomics(constraints)}


def terms_of(policy: Policy) -> ComputeTerms | None:
    """The compute bounds of a read policy, or ``None`` when it has no permission to compute."""
    rules = [rule for rule in policy.permission if rule.action == "compute"]
    if not rules:
        return None
    found: dict[str, list[Any]] = {}
    for rule in rules:
        for atomic in _atomics((*rule.refinement, *rule.constraint)):
            left = atomic.canon.get("leftOperand")
            if left in OPERATORS_OF and atomic.test is not None:
                found.setdefault(left, []).append(atomic.test.canon)

    def least(left: str) -> int | None:
        return min(found[left]) if left in found else None

    aggregates = None
    if AGGREGATE_FUNCTION in found:
        aggregates = frozenset(AGGREGATES)
        for listed in found[AGGREGATE_FUNCTION]:
            aggregates &= frozenset(listed)
    return ComputeTerms(
        min_group_size=max(found[MIN_GROUP_SIZE]) if MIN_GROUP_SIZE in found else None,
        epsilon_budget_micro=least(DP_EPSILON_BUDGET),
        max_rows=least(MAX_ROWS),
        max_seconds_micro=least(MAX_SECONDS),
        max_memory_mib=least(MAX_MEMORY_MIB),
        aggregates=aggregates,
    )
