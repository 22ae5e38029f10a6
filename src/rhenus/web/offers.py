"""Offers in plain words: an ODRL policy (as the policy engine reads it) told as a civil servant
would say it — "Use: for statistics, EU only, until 31 December 2026, 10 downloads".

Only what the engine evaluates is told in words (``docs/policy.md``); a constraint it does not
read is shown as the engine writes it, and an offer it cannot read says so rather than guess.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from rhenus.dataspace.policy.compute import (
    AGGREGATE_FUNCTION,
    DP_EPSILON_BUDGET,
    MAX_MEMORY_MIB,
    MAX_ROWS,
    MAX_SECONDS,
    MICRO,
    MIN_GROUP_SIZE,
)
from rhenus.dataspace.policy.model import Atomic, Constraint, Rule
from rhenus.dataspace.policy.normalise import parse
from rhenus.web import i18n
from rhenus.web.i18n import N_

ACTIONS = {
    "use": N_("Use"),
    "compute": N_("Computation next to the data (aggregates only)"),
    "read": N_("Read"),
    "display": N_("Display"),
    "present": N_("Presentation"),
    "print": N_("Print"),
    "reproduce": N_("Copies"),
    "distribute": N_("Redistribution"),
    "transfer": N_("Transfer to others"),
    "sell": N_("Sale"),
    "give": N_("Giving away"),
    "derive": N_("Derived works"),
    "modify": N_("Modification"),
    "aggregate": N_("Aggregation"),
    "anonymize": N_("Anonymisation"),
    "index": N_("Indexing"),
    "archive": N_("Archiving"),
    "translate": N_("Translation"),
    "stream": N_("Streaming"),
}
DUTIES = {
    "attribute": N_("credit the provider"),
    "inform": N_("inform the provider"),
    "delete": N_("delete the data afterwards"),
    "anonymize": N_("anonymise the data"),
    "compensate": N_("pay the provider"),
    "obtainConsent": N_("obtain consent"),
    "watermark": N_("watermark copies"),
    "nextPolicy": N_("pass these terms on"),
}
PURPOSES = {
    "statistics": N_("statistics"),
    "research": N_("research"),
    "public-service": N_("public service"),
    "public-interest": N_("the public interest"),
    "policy-making": N_("policy making"),
    "health": N_("health care"),
    "education": N_("education"),
    "ai-training": N_("training AI models"),
    "archiving": N_("archiving"),
}
# The order in which a rule's conditions are told: why, where, until when, how much, who.
_ORDER = [
    "purpose",
    "spatial",
    "dateTime",
    "elapsedTime",
    "count",
    "recipient",
    MIN_GROUP_SIZE,
    AGGREGATE_FUNCTION,
    DP_EPSILON_BUDGET,
    MAX_ROWS,
    MAX_SECONDS,
    MAX_MEMORY_MIB,
]
_COUNTED_AS_DOWNLOADS = {"use", "read", "reproduce", "transfer"}


@dataclass(frozen=True)
class OfferText:
    """What one offer allows, forbids and requires, each in one line."""

    offer_id: str
    permissions: list[str] = field(default_factory=list)
    prohibitions: list[str] = field(default_factory=list)
    duties: list[str] = field(default_factory=list)
    readable: bool = True


def describe(policy: dict[str, Any], lang: str) -> OfferText:
    """``policy`` in words, in ``lang``."""
    offer_id = str(policy.get("@id", ""))
    read = parse(policy)
    if read.problems or not read.permission:
        return OfferText(offer_id, readable=False)
    teller = _Teller(lang)
    duties = [teller.duty(duty) for rule in read.permission for duty in rule.duties]
    duties += [teller.duty(rule) for rule in read.obligation]
    return OfferText(
        offer_id,
        permissions=[teller.permission(rule) for rule in read.permission],
        prohibitions=[teller.prohibition(rule) for rule in read.prohibition],
        duties=duties,
    )


class _Teller:
    def __init__(self, lang: str) -> None:
        self.lang = lang
        self.t = i18n.translations(lang)

    def _(self, message: str, **values: Any) -> str:
        return self.t.gettext(message) % values if values else self.t.gettext(message)

    def action(self, name: str) -> str:
        return self._(ACTIONS[name]) if name in ACTIONS else name

    def permission(self, rule: Rule) -> str:
        conditions = self.conditions(rule)
        if not conditions:
            return self._("%(action)s: no further conditions", action=self.action(rule.action))
        return self._(
            "%(action)s: %(conditions)s", action=self.action(rule.action), conditions=conditions
        )

    def prohibition(self, rule: Rule) -> str:
        conditions = self.conditions(rule)
        what = self.action(rule.action)
        if conditions:
            return self._(
                "Not allowed: %(action)s (%(conditions)s)", action=what, conditions=conditions
            )
        return self._("Not allowed: %(action)s", action=what)

    def duty(self, rule: Rule) -> str:
        what = self._(DUTIES[rule.action]) if rule.action in DUTIES else self.action(rule.action)
        return self._("Required: %(duty)s", duty=what)

    def conditions(self, rule: Rule) -> str:
        told = sorted((*rule.refinement, *rule.constraint), key=_rank)
        return ", ".join(self.constraint(c, rule.action) for c in told)

    def constraint(self, node: Constraint, action: str) -> str:
        if not isinstance(node, Atomic):
            parts = [self.constraint(operand, action) for operand in node.operands]
            if node.kind == "xone":
                return self._(
                    "exactly one of: %(choices)s", choices=i18n.listed(parts, self.lang, style="or")
                )
            if node.kind == "or":
                return i18n.listed(parts, self.lang, style="or")
            return i18n.listed(parts, self.lang)
        if node.test is None:
            return node.text
        left = str(node.compact.get("leftOperand", ""))
        operator = str(node.compact.get("operator", ""))
        told = self.atomic(left, operator, node.test.canon, action)
        return told if told is not None else node.text

    def atomic(self, left: str, operator: str, canon: Any, action: str) -> str | None:
        negated = operator in {"neq", "isNoneOf"}
        if left == "purpose":
            purposes = [self._(PURPOSES[p]) if p in PURPOSES else _readable(p) for p in canon]
            shown = i18n.listed(purposes, self.lang, style="or")
            return (
                self._("not for %(purposes)s", purposes=shown)
                if negated
                else self._("for %(purposes)s", purposes=shown)
            )
        if left == "spatial":
            shown = i18n.listed(sorted(self.place(p) for p in canon), self.lang)
            return (
                self._("not in %(places)s", places=shown)
                if negated
                else self._("%(places)s only", places=shown)
            )
        if left == "dateTime":
            return self.when(operator, canon)
        if left == "elapsedTime":
            months, micro = canon
            length = i18n.period(months, timedelta(microseconds=micro), self.lang)
            if operator in {"lt", "lteq"}:
                return self._("for %(period)s after the agreement", period=length)
            if operator in {"gt", "gteq"}:
                return self._("from %(period)s after the agreement", period=length)
            return None
        if left == "count":
            return self.count(operator, int(canon), action)
        if left == "recipient":
            who = i18n.listed([_participant(r) for r in canon], self.lang, style="or")
            if operator == "isA":
                return self._("only for holders of %(credential)s", credential=who)
            return (
                self._("not for %(who)s", who=who)
                if negated
                else self._("only for %(who)s", who=who)
            )
        return self.compute(left, canon)

    def place(self, name: str) -> str:
        if name == "EU":
            return self._("EU")
        if name == "EEA":
            return self._("EEA")
        return i18n.country_name(name, self.lang)

    def when(self, operator: str, canon: list[str]) -> str | None:
        kind, value = canon
        shown = (
            i18n.long_date(value, self.lang)
            if kind == "date"
            else i18n.short_datetime(_aware(value), self.lang)
        )
        phrases = {
            "lteq": N_("until %(date)s"),
            "lt": N_("before %(date)s"),
            "gteq": N_("from %(date)s"),
            "gt": N_("after %(date)s"),
            "eq": N_("on %(date)s"),
            "neq": N_("except on %(date)s"),
        }
        return self._(phrases[operator], date=shown) if operator in phrases else None

    def count(self, operator: str, limit: int, action: str) -> str | None:
        allowed = {"lteq": limit, "lt": limit - 1}.get(operator)
        if allowed is None:
            return None
        if action in _COUNTED_AS_DOWNLOADS:
            return self.t.ngettext("%(num)d download", "%(num)d downloads", allowed) % {
                "num": allowed
            }
        return self.t.ngettext("%(num)d use", "%(num)d uses", allowed) % {"num": allowed}

    def compute(self, left: str, canon: Any) -> str | None:
        if left == MIN_GROUP_SIZE:
            return self._("groups of at least %(num)d", num=canon)
        if left == AGGREGATE_FUNCTION:
            return self._("aggregates: %(functions)s", functions=", ".join(canon))
        if left == DP_EPSILON_BUDGET:
            return self._("privacy budget ε of at most %(epsilon)s", epsilon=_decimal(canon))
        if left == MAX_ROWS:
            return self._("at most %(num)d rows", num=canon)
        if left == MAX_SECONDS:
            return self._("at most %(seconds)s seconds per query", seconds=_decimal(canon))
        if left == MAX_MEMORY_MIB:
            return self._("at most %(num)d MiB of memory", num=canon)
        return None


def _rank(node: Constraint) -> int:
    if isinstance(node, Atomic):
        left = str(node.compact.get("leftOperand", ""))
        return _ORDER.index(left) if left in _ORDER else len(_ORDER)
    return len(_ORDER)


def _readable(term: str) -> str:
    """The last segment of an IRI, words apart: ``https://x.eu/purpose/open-data`` → open data."""
    tail = term.rstrip("/").rsplit("/", 1)[-1].rsplit("#", 1)[-1].rsplit(":", 1)[-1]
    return tail.replace("-", " ").replace("_", " ") or term


def _participant(did: str) -> str:
    """A did:web participant by its host (``did:web:berlin.de`` → berlin.de)."""
    if did.startswith("did:web:"):
        return did.removeprefix("did:web:").split(":")[0].replace("%3A", ":")
    return did


def _decimal(micro: int) -> str:
    return f"{micro / MICRO:g}"


def _aware(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))
