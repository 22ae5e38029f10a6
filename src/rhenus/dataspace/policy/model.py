"""A policy as the engine holds it once read (ODRL 2.2 Information Model: §2.1 Policy, §2.5
Constraint and Logical Constraint, §2.6 Permission, Prohibition and Duty).

Every node carries three forms of itself: what it needs to be evaluated, its *canonical* form (a
JSON value in which sets are sorted and every term is resolved, so that two policies stating the
same terms have equal canonical forms), and its *compact* JSON-LD (for duties and agreements)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from rhenus.dataspace.policy.operands import Comparison

RULE_KINDS = ("permission", "prohibition", "obligation")


def key_of(canon: Any) -> str:
    """The canonical form as text: what nodes are sorted and compared by."""
    return json.dumps(
        canon, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=repr
    )


@dataclass(frozen=True)
class Atomic:
    text: str  # "purpose eq 'statistics'", for reasons
    test: Comparison | None  # None when it cannot be evaluated (the policy has a problem)
    canon: Any
    compact: dict[str, Any]
    key: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", key_of(self.canon))


@dataclass(frozen=True)
class Logical:
    kind: str  # and, andSequence, or, xone
    operands: tuple[Constraint, ...]  # in evaluation order: canonical, or as given for a sequence
    text: str
    canon: Any
    compact: dict[str, Any]
    key: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", key_of(self.canon))


Constraint = Atomic | Logical


@dataclass(frozen=True)
class Rule:
    action: str  # the ODRL action's local name ("" when unreadable)
    refinement: tuple[Constraint, ...]
    constraint: tuple[Constraint, ...]
    duties: tuple[Rule, ...]  # a permission's duties (a prohibition's remedies, a duty's
    #                           consequences: kept in the terms, never evaluated)
    assignee: str | None
    canon: Any
    compact: dict[str, Any]
    key: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", key_of(self.canon))


@dataclass(frozen=True)
class Policy:
    permission: tuple[Rule, ...]
    prohibition: tuple[Rule, ...]
    obligation: tuple[Rule, ...]
    assignee: str | None  # the policy-level assignee, which every rule without its own has
    terms: str  # canonical text of the rules and of what changes their meaning
    compact: dict[str, Any]  # the rules (and profile, conflict) as compact JSON-LD
    problems: tuple[str, ...]


class _Keyed(Protocol):
    @property
    def key(self) -> str: ...


N = TypeVar("N", bound=_Keyed)


def canonical_order(nodes: Iterable[N]) -> tuple[N, ...]:
    """Nodes sorted by their canonical form: the order in which they are evaluated, so that a
    decision and its reasons do not depend on the order in which a policy lists them."""
    return tuple(sorted(nodes, key=lambda node: node.key))


def canons(nodes: Sequence[Atomic | Logical | Rule]) -> list[Any]:
    return [node.canon for node in nodes]
