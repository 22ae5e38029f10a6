"""The left operands Rhenus evaluates (ODRL 2.2 Common Vocabulary, "Constraint Left Operands"):
``purpose``, ``spatial``, ``dateTime``, ``elapsedTime``, ``count`` and ``recipient`` — which
operators apply to each, how its right operand is read, and what it compares in the request.

A constraint is compiled once into a :class:`Comparison`: its right operand in canonical form
(so that two policies can be compared, see :mod:`.normalise`) and the function that judges a
request."""

from __future__ import annotations

import operator as op
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from rhenus.dataspace.policy.schemas import AccessRequest
from rhenus.dataspace.policy.values import Malformed, Scalar, add, area, duration, iso, moment
from rhenus.dataspace.policy.vocabulary import ORDERED

Outcome = tuple[bool, str]
"""Whether the request meets the constraint, and what the request had (for the reason)."""


@dataclass(frozen=True)
class Comparison:
    """A constraint ready to judge requests: ``canon`` is its right operand as read."""

    canon: Any
    run: Callable[[AccessRequest], Outcome]


_EQUALITY = frozenset({"eq", "neq"})
_MEMBERSHIP = frozenset({"isAnyOf", "isNoneOf", "isPartOf"})
_NEGATED = frozenset({"neq", "isNoneOf"})

OPERATORS_OF: Mapping[str, frozenset[str]] = {
    "purpose": _EQUALITY | _MEMBERSHIP | {"isA"},
    "spatial": _EQUALITY | _MEMBERSHIP,
    "dateTime": ORDERED,
    "elapsedTime": ORDERED,
    "count": ORDERED,
    "recipient": _EQUALITY | _MEMBERSHIP | {"isA", "isAllOf"},
}


_RELATION: Mapping[str, Callable[[Any, Any], bool]] = {
    "eq": op.eq, "neq": op.ne, "lt": op.lt, "lteq": op.le, "gt": op.gt, "gteq": op.ge,
}  # fmt: skip


def _compare(operator: str, left: Any, right: Any) -> bool:
    return _RELATION[operator](left, right)


def _one(operator: str, values: Sequence[Scalar]) -> Scalar:
    if len(values) != 1:
        raise Malformed(f"{operator} takes one value, not {len(values)} (isAnyOf takes a list)")
    return values[0]


def _strings(values: list[Scalar]) -> list[str]:
    if not values:
        raise Malformed("the right operand is empty")
    for value in values:
        if not isinstance(value, str) or not value:
            raise Malformed(f"{value!r} is not a non-empty string")
    return sorted({str(value) for value in values})


def _purpose(operator: str, values: list[Scalar]) -> Comparison:
    wanted = _strings(values)
    if operator in {"eq", "neq", "isA"}:
        _one(operator, wanted)
    negated = operator in _NEGATED

    def run(request: AccessRequest) -> Outcome:
        if request.purpose is None:
            return False, "no purpose was declared"
        return (request.purpose in wanted) != negated, f"purpose is {request.purpose!r}"

    return Comparison(wanted, run)


def _spatial(operator: str, values: list[Scalar]) -> Comparison:
    names: list[str] = []
    covered: set[str] = set()
    for token in _strings(values):
        name, countries = area(token)
        names.append(name)
        covered |= countries
    names = sorted(set(names))
    if operator in _EQUALITY:
        _one(operator, names)
    # eq EU (and eq FR) reads "where the data is used is (in) the EU": a region stands for its
    # countries, so eq and isPartOf agree, and neq and isNoneOf.
    negated = operator in _NEGATED

    def run(request: AccessRequest) -> Outcome:
        where = request.location or request.recipient_country
        if where is None:
            return False, "the location is unknown (none declared, and no certified country)"
        source = "" if request.location else " (the recipient's certified headquarters)"
        return (where in covered) != negated, f"location is {where!r}{source}"

    return Comparison(names, run)


def _date_time(operator: str, values: list[Scalar]) -> Comparison:
    value = _one(operator, values)
    if not isinstance(value, str):
        raise Malformed(f"{value!r} is not an xsd:dateTime or xsd:date")
    limit = moment(value)

    def run(request: AccessRequest) -> Outcome:
        # Against a date, the day of the request counts (in UTC): lteq 2026-12-31 admits the
        # whole of 31 December.
        left: date | datetime = request.now if isinstance(limit, datetime) else request.now.date()
        return _compare(operator, left, limit), f"now is {iso(request.now)}"

    if isinstance(limit, datetime):
        return Comparison(["dateTime", iso(limit)], run)
    return Comparison(["date", limit.isoformat()], run)


def _elapsed_time(operator: str, values: list[Scalar]) -> Comparison:
    value = _one(operator, values)
    if not isinstance(value, str):
        raise Malformed(f"{value!r} is not an xsd:duration")
    period = duration(value)

    def run(request: AccessRequest) -> Outcome:
        # elapsed ⋚ period  ⇔  now ⋚ start + period; adding the period to the start keeps
        # months calendar months (P1M from 31 January ends on the last day of February).
        start = request.agreed_at or request.now
        end = add(start, period)
        when = f"agreed at {iso(start)}, now is {iso(request.now)}"
        if end is None:  # the period ends after year 9999: now is before its end
            return operator in {"lt", "lteq", "neq"}, f"{when}; the period never ends"
        return _compare(operator, request.now, end), f"{when}; the period ends at {iso(end)}"

    return Comparison([period.months, period.microseconds], run)


def _count(operator: str, values: list[Scalar]) -> Comparison:
    value = _one(operator, values)
    if isinstance(value, str) and value.isascii() and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise Malformed(f"{value!r} is not a non-negative integer")
    limit = value

    def run(request: AccessRequest) -> Outcome:
        # The request is judged as the use it would be: lteq 10 admits the 10th, not the 11th.
        this = request.count + 1
        return _compare(operator, this, limit), f"this would be use number {this}"

    return Comparison(limit, run)


def _recipient(operator: str, values: list[Scalar]) -> Comparison:
    wanted = _strings(values)
    if operator in {"eq", "neq", "isA"}:
        _one(operator, wanted)

    def run(request: AccessRequest) -> Outcome:
        held = request.recipient_credentials | {request.recipient}
        credentials = sorted(request.recipient_credentials)
        who = f"recipient is {request.recipient!r} holding " + (
            repr(credentials) if credentials else "no credential"
        )
        if operator == "isA":  # an instance of a class: a credential type, not an identifier
            return wanted[0] in request.recipient_credentials, who
        if operator == "isAllOf":
            return set(wanted) <= held, who
        return bool(held.intersection(wanted)) != (operator in _NEGATED), who

    return Comparison(wanted, run)


_BUILDERS: Mapping[str, Callable[[str, list[Scalar]], Comparison]] = {
    "purpose": _purpose,
    "spatial": _spatial,
    "dateTime": _date_time,
    "elapsedTime": _elapsed_time,
    "count": _count,
    "recipient": _recipient,
}


def comparison_for(left: str, operator: str, values: list[Scalar]) -> Comparison:
    """The test of ``left operator values``; the caller has checked that ``operator`` applies
    to ``left`` (:data:`OPERATORS_OF`). Raises :class:`Malformed` for an unreadable value."""
    return _BUILDERS[left](operator, values)
