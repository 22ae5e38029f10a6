"""Deciding one request under one read policy (ODRL 2.2 Information Model §2.5 constraints and
logical constraints, §2.6 permissions, prohibitions and duties, and its policy conflict rule).

A request is permitted when some permission covers its action, applies to its recipient and has
every constraint (and action refinement) met, and no prohibition covering the action applies
with every constraint met: a prohibition always wins, whatever the order of the rules (ODRL's
``prohibit`` conflict strategy; ``invalid``, ODRL's default, denies the same requests). Rules
and constraints are evaluated in canonical order, so that the same policy written in another
order gives the same decision with the same reasons."""

from __future__ import annotations

import copy
from typing import Any

from rhenus.dataspace.policy.model import Atomic, Constraint, Policy, Rule
from rhenus.dataspace.policy.schemas import AccessRequest, Decision
from rhenus.dataspace.policy.vocabulary import ACTIONS, Names, includes


def holds(constraint: Constraint, request: AccessRequest) -> tuple[bool, str]:
    """Whether the request meets the constraint, and why (or why not), in words."""
    if isinstance(constraint, Atomic):
        if constraint.test is None:  # only reached by a policy with problems
            return False, f"constraint {constraint.text} cannot be evaluated"
        ok, found = constraint.test.run(request)
        return ok, f"constraint {constraint.text} {'met' if ok else 'not met'}: {found}"
    results = [holds(operand, request) for operand in constraint.operands]
    kind, total = constraint.kind, len(results)
    met = [why for ok, why in results if ok]
    unmet = [why for ok, why in results if not ok]
    # IM §2.5.2: and / andSequence all, or at least one, xone exactly one. The sequence's order
    # is a matter of when each is checked; at one instant it is an and.
    if kind in {"and", "andSequence"}:
        if unmet:
            return False, f"{kind} not met ({len(unmet)} of its {total} not met): " + _list(unmet)
        return True, f"{kind} met: " + _list(met)
    if kind == "or":
        if met:
            return True, "or met: " + _list(met)
        return False, f"or not met (none of its {total} is met): " + _list(unmet)
    if len(met) == 1:
        return True, "xone met: " + met[0]
    if met:
        return False, f"xone not met ({len(met)} of its {total} are met, exactly one must be): " + (
            _list(met)
        )
    return False, f"xone not met (none of its {total} is met): " + _list(unmet)


def _list(reasons: list[str]) -> str:
    return reasons[0] if len(reasons) == 1 else "[" + "; ".join(reasons) + "]"


def applies(rule: Rule, policy: Policy, request: AccessRequest) -> tuple[bool, list[str]]:
    """Whether the rule applies to this request — its assignee (or the policy's) is the
    recipient, and every refinement and constraint is met — with the reasons either way."""
    assignee = rule.assignee or policy.assignee
    if assignee is not None and assignee != request.recipient:
        return False, [f"it is assigned to {assignee!r}, not to {request.recipient!r}"]
    results = [holds(c, request) for c in (*rule.refinement, *rule.constraint)]
    unmet = [why for ok, why in results if not ok]
    return not unmet, unmet or [why for _, why in results]


def decide(policy: Policy, request: AccessRequest) -> Decision:
    """The decision on ``request`` under a read ``policy`` (see the module's docstring)."""
    if policy.problems:
        return _deny([f"the policy cannot be evaluated: {p}" for p in policy.problems])
    action = Names().name(request.action)
    if action not in ACTIONS:
        return _deny([f"unknown action {request.action!r}"])
    candidates = [rule for rule in policy.permission if includes(rule.action, action)]
    if not candidates:
        granted_actions = sorted({rule.action for rule in policy.permission})
        offered = (
            f"it permits {', '.join(granted_actions)}"
            if granted_actions
            else "the policy has no permission"
        )
        return _deny([f"no permission covers the action {action!r} ({offered})"])

    prohibited = []
    for rule in policy.prohibition:
        if includes(rule.action, action):
            applying, why = applies(rule, policy, request)
            if applying:
                detail = "; ".join(why) if why else "it has no constraint"
                prohibited.append(f"the prohibition to {rule.action} applies: {detail}")

    granted: list[tuple[Rule, list[str]]] = []
    refused: list[str] = []
    for rule in candidates:
        applying, why = applies(rule, policy, request)
        if applying:
            granted.append((rule, why))
        else:
            refused.extend(f"permission to {rule.action}: {reason}" for reason in why)
    if prohibited or not granted:
        return _deny(prohibited + refused)

    # Of the permissions that would do, the one with the fewest duties: the recipient may
    # exercise any of them, and would choose the lightest (ties: canonical order).
    rule, why = min(granted, key=lambda found: (len(found[0].duties), found[0].key))
    detail = "; ".join(why) if why else "it has no constraint"
    duties: list[dict[str, Any]] = [
        copy.deepcopy(duty.compact) for duty in (*rule.duties, *policy.obligation)
    ]
    return Decision(
        permitted=True, reasons=[f"permitted by the permission to {rule.action}: {detail}"],
        duties=duties,
    )  # fmt: skip


def _deny(reasons: list[str]) -> Decision:
    return Decision(permitted=False, reasons=reasons, duties=[])
