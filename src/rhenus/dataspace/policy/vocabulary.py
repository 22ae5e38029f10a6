"""The ODRL 2.2 terms the engine knows (ODRL Vocabulary & Expression 2.2: the Core and Common
Vocabularies): the policy classes, the actions and their ``includedIn``
hierarchy, the operators and left operands; and how a JSON-LD key or value written as a compact
term (``purpose``), a prefixed name (``odrl:purpose``) or a full IRI resolves to one of them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

ODRL = "http://www.w3.org/ns/odrl/2/"
RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"

# The prefixes the DSP 2025-1 context declares: a policy may use them without declaring them.
PREFIXES: Mapping[str, str] = {
    "odrl": ODRL,
    "rdf": RDF,
    "rdfs": "http://www.w3.org/2000/01/rdf-schema#",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
    "dct": "http://purl.org/dc/terms/",
    "dcat": "http://www.w3.org/ns/dcat#",
    "dspace": "https://w3id.org/dspace/2025/1/",
    # Not the DSP context's: Rhenus's own terms (compute-to-data constraints, the purpose of a
    # request), known so that an offer may write rhenus:minGroupSize without a @context.
    "rhenus": "https://w3id.org/rhenus/",
}

# ODRL Information Model §2.1: Policy and its subclasses (the Common Vocabulary adds the others).
POLICY_TYPES = frozenset(
    {"Policy", "Set", "Offer", "Agreement", "Request", "Ticket", "Assertion", "Privacy"}
)

# IM §2.4 and the Common Vocabulary's actions: every action, with the action it is
# ``includedIn``. ``use`` and ``transfer`` are the two roots of ODRL's hierarchy. The tree is
# deliberately shallow: besides the roots, only present ⊇ play, display, print and
# transfer ⊇ give, sell are modelled; every other action sits directly under ``use``. A finer
# relation we do not model can only make a permission cover *less*, never more.
_UNDER_USE = (
    "acceptTracking", "aggregate", "annotate", "anonymize", "archive", "attribute",
    "compensate", "concurrentUse", "delete", "derive", "digitize", "distribute",
    "ensureExclusivity", "execute", "extract", "grantUse", "include", "index", "inform",
    "install", "modify", "move", "nextPolicy", "obtainConsent", "present", "read",
    "reproduce", "reviewPolicy", "stream", "synchronize", "textToSpeech", "transform",
    "translate", "uninstall", "watermark",
    # Not in the Common Vocabulary: Rhenus's compute-to-data (an aggregate computed next to the
    # data, which never leaves the provider), a kind of use.
    "compute",
)  # fmt: skip
_PARENT: Mapping[str, str | None] = {
    "use": None,
    "transfer": None,
    **dict.fromkeys(_UNDER_USE, "use"),
    **dict.fromkeys(("play", "display", "print"), "present"),
    **dict.fromkeys(("give", "sell"), "transfer"),
}
ACTIONS = frozenset(_PARENT)

# IM §2.5.1 and the Common Vocabulary's constraint operators: relational and set-based.
OPERATORS = frozenset(
    {"eq", "neq", "lt", "lteq", "gt", "gteq", "isA", "hasPart", "isPartOf", "isAllOf",
     "isAnyOf", "isNoneOf"}
)  # fmt: skip
ORDERED = frozenset({"eq", "neq", "lt", "lteq", "gt", "gteq"})

# IM §2.5.2: the operands of a logical constraint.
LOGICAL = ("and", "andSequence", "or", "xone")

# The Common Vocabulary's constraint left operands, to tell a misspelt operand ("unknown") from
# one ODRL defines but Rhenus does not evaluate ("unsupported").
COMMON_LEFT_OPERANDS = frozenset(
    {"absolutePosition", "absoluteSize", "absoluteSpatialPosition", "absoluteTemporalPosition",
     "count", "dateTime", "delayPeriod", "deliveryChannel", "device", "elapsedTime", "event",
     "fileFormat", "industry", "language", "media", "meteredTime", "payAmount", "percentage",
     "product", "purpose", "recipient", "relativePosition", "relativeSize",
     "relativeSpatialPosition", "relativeTemporalPosition", "resolution", "spatial",
     "spatialCoordinates", "system", "systemDevice", "timeInterval", "unitOfCount", "version",
     "virtualLocation"}
)  # fmt: skip

# IM §2.3: the function sub-properties a party may fill in a rule (Common Vocabulary).
PARTY_FUNCTIONS = frozenset(
    {"assignee", "assigner", "attributedParty", "attributingParty", "compensatedParty",
     "compensatingParty", "consentedParty", "consentingParty", "contractedParty",
     "contractingParty", "informedParty", "informingParty", "payeeParty", "trackedParty",
     "trackingParty"}
)  # fmt: skip


def includes(broader: str, narrower: str) -> bool:
    """Whether a rule on ``broader`` covers ``narrower`` (``includedIn``, transitively)."""
    current: str | None = narrower
    while current is not None:
        if current == broader:
            return True
        current = _PARENT.get(current)
    return False


def declared_prefixes(context: Any) -> dict[str, str]:
    """The prefixes a policy's own ``@context`` declares (JSON-LD 1.1 §4.1.5), added to the DSP
    ones. Only prefix definitions are read: a context that redefines terms is not interpreted,
    and a remote context (a URL) is never fetched."""
    prefixes = dict(PREFIXES)
    for part in context if isinstance(context, list) else [context]:
        if not isinstance(part, dict):
            continue
        for key, value in part.items():
            if key.startswith("@"):
                continue
            if isinstance(value, dict) and value.get("@prefix") is True:
                value = value.get("@id")
            if isinstance(value, str) and value.endswith(("/", "#", ":")):
                prefixes[key] = value
    return prefixes


class Names:
    """Resolves the terms of one policy: an ODRL term to its local name (``purpose``), anything
    else to its full IRI, or as written when it is neither (a DID, a URN)."""

    def __init__(self, prefixes: Mapping[str, str] = PREFIXES) -> None:
        self._prefixes = prefixes

    def name(self, term: str) -> str:
        if term.startswith("@"):
            return term
        iri = self.expand(term)
        return iri[len(ODRL) :] if iri.startswith(ODRL) else iri

    def expand(self, term: str) -> str:
        if ":" not in term:
            # A bare term: the DSP 2025-1 context maps its policy terms into the ODRL namespace.
            return ODRL + term
        prefix, _, rest = term.partition(":")
        if rest.startswith("//"):
            return term
        return self._prefixes[prefix] + rest if prefix in self._prefixes else term
