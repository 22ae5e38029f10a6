"""The policy engine's interface: decide a request under a policy, check an offer before it is
published, compare two policies' terms, and turn an accepted offer into an agreement (ODRL 2.2
Information Model §2.1: Offer and Agreement; DSP 2025-1 Contract Negotiation: the agreement
states the offer's terms with target, assigner, assignee and timestamp filled in)."""

from __future__ import annotations

import copy
import logging
from datetime import UTC, datetime
from typing import Any

from rhenus.dataspace.policy import compute, logic
from rhenus.dataspace.policy.compute import ComputeTerms
from rhenus.dataspace.policy.normalise import parse
from rhenus.dataspace.policy.schemas import AccessRequest, ComputeFacts, Decision
from rhenus.dataspace.policy.values import iso

logger = logging.getLogger(__name__)


def evaluate(*, policy: dict[str, Any], request: AccessRequest) -> Decision:
    """The decision on ``request`` under ``policy``; never raises: a policy that cannot be read
    is a denial whose reasons say what is wrong with it."""
    try:
        return logic.decide(parse(policy), request)
    except Exception:
        # An engine that guards data must fail closed: a bug here denies, and is logged.
        logger.exception("policy evaluation failed")
        return Decision(
            permitted=False, reasons=["the policy could not be evaluated (internal error)"]
        )


def check(*, policy: dict[str, Any]) -> list[str]:
    """The problems that would make :func:`evaluate` deny every request under ``policy`` —
    unknown or unsupported terms, malformed constraints, no permission — or ``[]``."""
    try:
        read = parse(policy)
    except Exception:
        logger.exception("policy check failed")
        return ["the policy could not be read (internal error)"]
    problems = list(read.problems)
    if not read.permission:
        problems.append("the policy has no permission: every request would be denied")
    return problems


def compute_terms(*, policy: dict[str, Any]) -> ComputeTerms | None:
    """The bounds of ``policy``'s permissions to compute (group size, ε budget, rows, time,
    memory, aggregate functions; the strictest where several say it), or ``None`` when it has no
    permission to compute or cannot be evaluated."""
    try:
        read = parse(policy)
    except Exception:
        logger.exception("policy reading failed")
        return None
    return None if read.problems else compute.terms_of(read)


def agreement_request(*, policy: dict[str, Any]) -> tuple[str, ComputeFacts | None]:
    """The action a request to agree to ``policy`` is decided on, and its compute facts: ``use``;
    or, for an offer that permits only computing (data that never leaves the provider),
    ``compute`` run within the offer's own bounds (which the pool enforces at every query)."""
    try:
        read = parse(policy)
    except Exception:
        logger.exception("policy reading failed")
        return "use", None
    actions = {rule.action for rule in read.permission}
    terms = compute.terms_of(read)
    if actions != {"compute"} or terms is None:
        return "use", None
    return "compute", ComputeFacts(
        min_group_size=terms.min_group_size or 1,
        epsilon_spent_micro=0 if terms.epsilon_budget_micro is not None else None,
        max_rows=terms.max_rows or 0,
        max_seconds_micro=terms.max_seconds_micro or 0,
        max_memory_mib=terms.max_memory_mib or 0,
    )


def same_terms(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether two policies state the same rules, whatever their JSON-LD spelling and order;
    ``@id``, ``@type``, ``target``, ``assigner``, ``assignee`` and ``timestamp`` of the policies
    themselves are not terms (an agreement fills them in)."""
    if not isinstance(a, dict) or not isinstance(b, dict):
        return False
    try:
        return parse(a).terms == parse(b).terms
    except Exception:
        logger.exception("policy comparison failed")
        return False


def agreement_from_offer(
    *,
    offer: dict[str, Any],
    agreement_id: str,
    target: str,
    assigner: str,
    assignee: str,
    timestamp: datetime,
) -> dict[str, Any]:
    """The ``Agreement`` (compact, DSP 2025-1 context) granting ``assignee`` the offer's rules
    over ``target`` from ``assigner``. Raises ``ValueError`` for an offer :func:`check` refuses:
    agreeing to terms that cannot be evaluated would make a contract no request can use."""
    problems = check(policy=offer)
    if problems:
        raise ValueError("the offer cannot become an agreement: " + "; ".join(problems))
    if timestamp.tzinfo is None:
        timestamp = timestamp.replace(tzinfo=UTC)
    return {
        "@id": agreement_id,
        "@type": "Agreement",
        "target": target,
        "assigner": assigner,
        "assignee": assignee,
        "timestamp": iso(timestamp),
        **copy.deepcopy(parse(offer).compact),
    }
