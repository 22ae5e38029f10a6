"""Reading a policy's JSON-LD into :mod:`.model` (ODRL 2.2 Information Model §2, in the JSON-LD
encoding of ODRL Vocabulary & Expression 2.2 §4 and of DSP 2025-1), collecting every problem.

The reader accepts what JSON-LD makes equivalent: compact terms, ``prefix:term`` names (the DSP
prefixes and those declared in the policy's own ``@context``) and full IRIs for keys and
vocabulary values; a single object where a list is allowed; ``{"@id"}``, ``{"@value"}`` and
``@list``/``@set`` wrappers; the expanded form. Everything it does not understand is a problem
— it never guesses — and an ODRL term it does not implement is a problem too, because a term
skipped could only let a request through that the policy meant to refuse."""

from __future__ import annotations

import copy
from typing import Any

from rhenus.dataspace.policy import compute
from rhenus.dataspace.policy.model import (
    RULE_KINDS,
    Atomic,
    Constraint,
    Logical,
    Policy,
    Rule,
    canonical_order,
    canons,
    key_of,
)
from rhenus.dataspace.policy.operands import OPERATORS_OF, comparison_for
from rhenus.dataspace.policy.values import Malformed, literals
from rhenus.dataspace.policy.vocabulary import (
    ACTIONS,
    COMMON_LEFT_OPERANDS,
    LOGICAL,
    OPERATORS,
    PARTY_FUNCTIONS,
    POLICY_TYPES,
    RDF,
    Names,
    declared_prefixes,
)

# What a rule of each kind nests (IM §2.6): a permission's duties, a prohibition's remedies, a
# duty's consequences.
_NESTED = {"permission": "duty", "prohibition": "remedy", "obligation": "consequence"}
_IDENTIFIERS = frozenset({"@id", "uid", "@type"})
_RULE_PROPERTIES = PARTY_FUNCTIONS | {"target", "output"}
_UNSUPPORTED_IN_CONSTRAINT = frozenset({"rightOperandReference", "unit", "status"})
# Policy-level properties that would change what the rules mean and that Rhenus does not apply.
_UNSUPPORTED_IN_POLICY = frozenset(
    {"inheritFrom", "inheritRelation", "action", "constraint", "duty", "refinement"}
)
# Every left operand the engine evaluates: the Common Vocabulary's six and the compute terms.
_OPERATORS_OF = {**OPERATORS_OF, **compute.OPERATORS_OF}


def parse(document: Any) -> Policy:
    """The policy ``document`` states, with the problems that keep it from being evaluated."""
    if not isinstance(document, dict):
        problem = f"a policy must be a JSON object, not {type(document).__name__}"
        return Policy((), (), (), None, key_of({}), {}, (problem,))
    return _Reader(Names(declared_prefixes(document.get("@context")))).policy(document)


def as_list(value: Any) -> list[Any]:
    """A JSON-LD value as the list of its items (a single object is a list of one)."""
    if isinstance(value, dict) and len(value) == 1 and ("@list" in value or "@set" in value):
        value = value.get("@list", value.get("@set"))
    return list(value) if isinstance(value, list) else [value]


def generic(value: Any) -> Any:
    """The canonical form of a value the engine does not interpret (an extension's property, an
    unreadable constraint): wrappers removed, unordered lists sorted, one-item lists unwrapped."""
    if isinstance(value, dict):
        if set(value) == {"@value"}:
            return generic(value["@value"])
        if set(value) == {"@list"}:
            return {"@list": [generic(item) for item in as_list(value["@list"])]}
        if set(value) == {"@set"}:
            return generic(as_list(value["@set"]))
        return {str(key): generic(item) for key, item in value.items()}
    if isinstance(value, list):
        unique = {key_of(item): item for item in (generic(part) for part in value)}
        items = [unique[key] for key in sorted(unique)]
        return items[0] if len(items) == 1 else items
    return value


def _simplified(value: Any) -> Any:
    """A right operand as compact JSON-LD writes it: ``{"@value": x}`` alone is ``x``, and a
    list of one is its item."""
    if isinstance(value, dict) and set(value) == {"@value"}:
        return _simplified(value["@value"])
    if isinstance(value, list):
        return _simplified(value[0]) if len(value) == 1 else [_simplified(v) for v in value]
    return copy.deepcopy(value)


def _shown(values: list[Any]) -> str:
    texts = sorted({repr(value) for value in values})
    return texts[0] if len(texts) == 1 and len(values) == 1 else "[" + ", ".join(texts) + "]"


class _Reader:
    def __init__(self, names: Names) -> None:
        self.names = names
        self.problems: list[str] = []

    def problem(self, path: str, message: str) -> None:
        self.problems.append(f"{path}: {message}" if path else message)

    def properties(self, node: dict[Any, Any], path: str) -> dict[str, tuple[str, Any]]:
        """The node's properties by resolved name, each with its key as written."""
        found: dict[str, tuple[str, Any]] = {}
        for key in sorted(node, key=str):
            written = str(key)
            name = self.names.name(written)
            if name in found:
                self.problem(path, f"{written!r} and {found[name][0]!r} are the same property")
            else:
                found[name] = (written, node[key])
        return found

    def term(self, value: Any) -> str | None:
        """A term or IRI written as a string, ``{"@id": …}`` or a list of one of those."""
        if isinstance(value, list) and len(value) == 1:
            return self.term(value[0])
        if isinstance(value, dict) and set(value) <= {"@id", "@type"}:
            value = value.get("@id")
        return value if isinstance(value, str) and value else None

    # -- policy (IM §2.1) ------------------------------------------------------------------
    def policy(self, document: dict[Any, Any]) -> Policy:
        props = self.properties(document, "")
        if "@type" in props:
            types = [self.names.name(t) for t in as_list(props["@type"][1]) if isinstance(t, str)]
            if not POLICY_TYPES.intersection(types):
                self.problem("", f"@type {props['@type'][1]!r} is not an ODRL policy class")
        rules: dict[str, list[Rule]] = {}
        for kind in RULE_KINDS:
            if kind in props:
                written, value = props[kind]
                rules[kind] = [
                    self.rule(kind, item, f"{written}[{index}]")
                    for index, item in enumerate(as_list(value))
                ]
        terms: dict[str, Any] = {
            kind: canons(canonical_order(found)) for kind, found in rules.items() if found
        }
        compact: dict[str, Any] = {
            kind: [rule.compact for rule in found] for kind, found in rules.items() if found
        }
        if "conflict" in props:
            conflict = self.names.name(self.term(props["conflict"][1]) or "")
            if conflict == "perm":
                # Rhenus always lets a prohibition win; a policy asking the opposite is refused
                # rather than decided against its author's intent.
                self.problem("conflict", "'perm' (permissions win) is not supported")
            elif conflict not in {"prohibit", "invalid"}:
                self.problem("conflict", f"{props['conflict'][1]!r} is not perm, prohibit, invalid")
            terms["conflict"] = compact["conflict"] = conflict
        if "profile" in props:
            profiles = sorted({str(p) for p in literals_or_none(props["profile"][1]) or []})
            if profiles:
                terms["profile"], compact["profile"] = profiles, list(profiles)
        assignee = self.party(props["assignee"][1], "assignee") if "assignee" in props else None
        for name in sorted(_UNSUPPORTED_IN_POLICY.intersection(props)):
            self.problem("", f"{props[name][0]!r} at the policy level is not supported")
        return Policy(
            permission=canonical_order(rules.get("permission", [])),
            prohibition=canonical_order(rules.get("prohibition", [])),
            obligation=canonical_order(rules.get("obligation", [])),
            assignee=assignee,
            terms=key_of(terms),
            compact=compact,
            problems=tuple(self.problems),
        )

    def party(self, value: Any, path: str) -> str | None:
        if isinstance(value, dict) and set(value) <= {"uid", "@type"}:
            value = value.get("uid")
        found = self.term(value)
        if found is None:
            self.problem(path, "only a party's identifier (a DID or IRI) is supported")
        return found

    # -- rules (IM §2.6) -------------------------------------------------------------------
    def rule(self, kind: str, node: Any, path: str) -> Rule:
        if not isinstance(node, dict):
            self.problem(path, f"a {_singular(kind)} must be a JSON object")
            return Rule("", (), (), (), None, {"invalid": generic(node)}, {})
        props = self.properties(node, path)
        action, refinement = self.action(props.get("action"), path)
        constraint = self.constraints(props.get("constraint"), path)
        nested = _NESTED[kind]
        duties: list[Rule] = []
        if nested in props:
            written, value = props[nested]
            duties = [
                self.rule("obligation", item, f"{path}.{written}[{index}]")
                for index, item in enumerate(as_list(value))
            ]
        assignee = (
            self.party(props["assignee"][1], f"{path}.assignee") if "assignee" in props else None
        )
        if not (kind == "permission" and action == "compute"):
            # A compute bound anywhere else could not be enforced: the pool reads it only from
            # a permission to compute (docs/pools.md).
            for left in sorted(compute.lefts((*refinement, *constraint))):
                if left in compute.OPERATORS_OF:
                    self.problem(
                        path,
                        f"{compute.short(left)} constrains a permission to compute only, "
                        f"not a {_singular(kind)} to {action or '?'}",
                    )
        # An unreadable action keeps what was written, so that two such rules still differ.
        written_action = props["action"][1] if "action" in props else None
        canon: dict[str, Any] = {"action": action or {"invalid": generic(written_action)}}
        action_compact: Any = action
        if refinement:
            canon["refinement"] = canons(canonical_order(refinement))
            action_compact = {
                "rdf:value": {"@id": f"odrl:{action}"},
                "refinement": [c.compact for c in refinement],
            }
        compact: dict[str, Any] = {"action": action_compact}
        if constraint:
            canon["constraint"] = canons(canonical_order(constraint))
            compact["constraint"] = [c.compact for c in constraint]
        if duties:
            canon[nested] = canons(canonical_order(duties))
            compact[nested] = [duty.compact for duty in duties]
        for name, (written, value) in props.items():
            if name in {"action", "constraint", nested} or name in _IDENTIFIERS:
                continue
            if name in _RULE_PROPERTIES:
                # A party or asset: its identifier, however it is wrapped.
                uid = value.get("uid") if isinstance(value, dict) else None
                identifier = self.term(uid if uid is not None else value)
                canon[name] = identifier or generic(value)
                compact[name] = identifier or copy.deepcopy(value)
                continue
            if ":" not in name:
                self.problem(path, f"a {_singular(kind)} cannot have {written!r}")
            canon[name] = generic(value)
            compact[name] = copy.deepcopy(value)
        return Rule(
            action=action,
            refinement=canonical_order(refinement),
            constraint=canonical_order(constraint),
            duties=canonical_order(duties),
            assignee=assignee,
            canon=canon,
            compact=compact,
        )

    def action(self, found: tuple[str, Any] | None, path: str) -> tuple[str, list[Constraint]]:
        """The action's local name and its refinement (IM §2.4)."""
        if found is None:
            self.problem(path, "a rule needs an action")
            return "", []
        items = as_list(found[1])
        if len(items) != 1:
            self.problem(path, "a rule has exactly one action")
            return "", []
        value, refinement = items[0], []
        if isinstance(value, dict) and not set(value) <= {"@id", "@type"}:
            props = self.properties(value, f"{path}.action")
            named = props.get("@id") or props.get(RDF + "value") or props.get("action")
            refinement = self.constraints(props.get("refinement"), f"{path}.action")
            for name, (written, _) in props.items():
                if name not in {"@id", "@type", RDF + "value", "action", "refinement"}:
                    self.problem(f"{path}.action", f"an action cannot have {written!r}")
            value = named[1] if named else None
        term = self.term(value)
        if term is None:
            self.problem(path, f"the action {found[1]!r} is not a term or IRI")
            return "", refinement
        name = self.names.name(term)
        if name not in ACTIONS:
            self.problem(path, f"unknown action {term!r}")
        return name, refinement

    # -- constraints (IM §2.5) -------------------------------------------------------------
    def constraints(self, found: tuple[str, Any] | None, path: str) -> list[Constraint]:
        if found is None:
            return []
        written, value = found
        return [
            self.constraint(item, f"{path}.{written}[{index}]")
            for index, item in enumerate(as_list(value))
        ]

    def constraint(self, node: Any, path: str) -> Constraint:
        if not isinstance(node, dict):
            self.problem(path, "a constraint must be a JSON object")
            return Atomic(repr(node), None, {"invalid": generic(node)}, {})
        props = self.properties(node, path)
        kinds = [kind for kind in LOGICAL if kind in props]
        if kinds:
            return self.logical(kinds, props, path)
        return self.atomic(props, path)

    def logical(self, kinds: list[str], props: dict[str, tuple[str, Any]], path: str) -> Logical:
        """A logical constraint (IM §2.5.2): exactly one operand property and its constraints."""
        kind = kinds[0]
        if len(kinds) > 1 or set(props) - _IDENTIFIERS - {kind}:
            self.problem(path, f"a logical constraint has one of {', '.join(LOGICAL)} and no more")
        operands = self.constraints(props[kind], path)
        if not operands:
            self.problem(path, f"{kind} needs at least one constraint")
        # A sequence is ordered (ODRL gives andSequence a list); the others are sets.
        ordered = tuple(operands) if kind == "andSequence" else canonical_order(operands)
        text = f"{kind}({'; '.join(operand.text for operand in ordered)})"
        canon = {kind: canons(ordered)}
        for name in sorted(set(props) - _IDENTIFIERS - {kind}):
            canon[name] = generic(props[name][1])
        return Logical(kind, ordered, text, canon, {kind: [o.compact for o in operands]})

    def atomic(self, props: dict[str, tuple[str, Any]], path: str) -> Atomic:
        missing = [n for n in ("leftOperand", "operator", "rightOperand") if n not in props]
        if missing:
            self.problem(path, f"a constraint needs {', '.join(missing)}")
            raw = {written: value for written, value in props.values()}
            return Atomic(repr(raw), None, {"invalid": generic(raw)}, {})
        left_written = self.term(props["leftOperand"][1])
        operator_written = self.term(props["operator"][1])
        if left_written is None or operator_written is None:
            self.problem(path, "leftOperand and operator must each be a term or IRI")
        left = self.names.name(left_written or "")
        operator = self.names.name(operator_written or "")
        right = props["rightOperand"][1]
        try:
            values, unreadable = literals(right), ""
            shown = _shown(values)
        except Malformed as error:
            values, shown, unreadable = [], repr(right), str(error)
        test = None
        if operator_written is not None and operator not in OPERATORS:
            self.problem(path, f"unknown operator {operator_written!r}")
        if left_written is not None and left not in _OPERATORS_OF:
            what = "unsupported" if left in COMMON_LEFT_OPERANDS else "unknown"
            self.problem(path, f"{what} left operand {left_written!r}")
        elif left_written is not None and operator in OPERATORS:
            if operator not in _OPERATORS_OF[left]:
                takes = ", ".join(sorted(_OPERATORS_OF[left]))
                self.problem(
                    path,
                    f"operator {operator!r} does not apply to {compute.short(left)!r} "
                    f"(it takes {takes})",
                )
            elif unreadable:
                self.problem(path, f"rightOperand: {unreadable}")
            else:
                try:
                    if left in compute.OPERATORS_OF:
                        test = compute.comparison_for(left, operator, values)
                    else:
                        test = comparison_for(left, operator, values)
                except Malformed as error:
                    self.problem(path, f"rightOperand of {compute.short(left)} {operator}: {error}")
        canon: dict[str, Any] = {
            "leftOperand": left,
            "operator": operator,
            "rightOperand": test.canon if test else generic(right),
        }
        compact: dict[str, Any] = {
            "leftOperand": left,
            "operator": operator,
            "rightOperand": _simplified(right),
        }
        for name, (written, value) in props.items():
            if name in {"leftOperand", "operator", "rightOperand"} or name in _IDENTIFIERS:
                continue
            if name == "dataType":  # a hint: the left operand fixes how the value is read
                compact[name] = copy.deepcopy(value)
                continue
            if name in _UNSUPPORTED_IN_CONSTRAINT:
                self.problem(path, f"{written!r} is not supported")
            elif ":" not in name:
                self.problem(path, f"a constraint cannot have {written!r}")
            canon[name] = generic(value)
            compact[name] = copy.deepcopy(value)
        return Atomic(f"{compute.short(left)} {operator} {shown}", test, canon, compact)


def literals_or_none(value: Any) -> list[Any] | None:
    try:
        return list(literals(value))
    except Malformed:
        return None


def _singular(kind: str) -> str:
    return "duty" if kind == "obligation" else kind
