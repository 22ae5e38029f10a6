"""The TCK's wire: the messages it sends (compacted JSON-LD, each with a top-level ``@id``) and
the checks it makes on every body it receives — its own schema check before JSON-LD expansion
and the expansion itself (``/work/notes/dsp-tck.md`` §2.1, §2.3, §3.4 to 3.6, §10.2 to 10.4).

The schema check here uses the *published* DSP 2025-1 schemas (``../shared/dsp-2025-1``); the
rules the TCK enforces through its JSON-LD processor (bundled contexts only, compact ``@type``
strings, typed nested nodes) are checked by :func:`problems` on top.
"""

from __future__ import annotations

import uuid
from typing import Any

from jsonschema import ValidationError

from tests.dataspace.contracts_support import CONTEXT, SCHEMAS
from tests.dataspace.dsp_schemas import validate

TCK_PARTICIPANT = "TCK_PARTICIPANT"  # API/message/DspConstants.TCK_PARTICIPANT_ID
TOKEN = "tck-secret"
FORMAT = "HttpData-PULL"

# The contexts the TCK bundles (it has no network document loader): any other fails expansion.
KNOWN_CONTEXTS = frozenset({CONTEXT, "https://w3id.org/dspace/2025/1/odrl-profile.jsonld"})

# @type -> published schema: negotiation and transfer (shared with tests/dataspace) + catalog.
ALL_SCHEMAS = {
    **SCHEMAS,
    "Catalog": "catalog/catalog-schema.json",
    "Dataset": "catalog/dataset-schema.json",
    "CatalogError": "catalog/catalog-error-schema.json",
}

# Nested nodes that need their own @type, since type-scoped contexts do not propagate (§2.3).
_NESTED_TYPES = {"offer": "Offer", "agreement": "Agreement", "dataAddress": "DataAddress"}


def uid() -> str:
    """A pid or message id as the TCK makes them: a bare UUID."""
    return str(uuid.uuid4())


def tck_message(kind: str, **fields: Any) -> dict[str, Any]:
    """A DSP message as the TCK serialises it (``MessageSerializer.serialize``)."""
    return {"@context": [CONTEXT], "@id": uid(), "@type": kind, **fields}


def use_policy(kind: str, policy_id: str, **fields: Any) -> dict[str, Any]:
    """An ODRL offer or agreement permitting ``use`` (``NegotiationFunctions``)."""
    return {"@type": kind, "@id": policy_id, "permission": [{"action": "use"}], **fields}


def state_body(kind: str, *, provider_pid: str, consumer_pid: str, state: str) -> dict[str, Any]:
    """The TCK's ``ContractNegotiation`` / ``TransferProcess`` answer to a node's message."""
    return tck_message(kind, providerPid=provider_pid, consumerPid=consumer_pid, state=state)


def problems(body: Any) -> list[str]:
    """Why the TCK would refuse ``body`` (a message the node sent or an answer it gave); empty
    when it would take it."""
    if not isinstance(body, dict):
        return [f"the body is not a JSON object: {body!r:.200}"]
    found: list[str] = []
    context = body.get("@context")
    if not (isinstance(context, list) and all(isinstance(c, str) for c in context)):
        found.append(f"@context must be an array of strings, got {context!r}")
    elif CONTEXT not in context:
        found.append(f"@context {context} lacks {CONTEXT}")
    elif unknown := [c for c in context if c not in KNOWN_CONTEXTS]:
        found.append(f"@context names contexts the TCK cannot load: {unknown}")
    kind = body.get("@type")
    if not isinstance(kind, str) or ":" in kind or "/" in kind:
        found.append(f"@type must be a compact string, got {kind!r}")
        return found
    if kind not in ALL_SCHEMAS:
        found.append(f"no DSP schema for @type {kind!r}")
        return found
    try:
        validate(body, ALL_SCHEMAS[kind])
    except ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "(root)"
        found.append(f"{kind} fails {ALL_SCHEMAS[kind]} at {where}: {exc.message:.300}")
    found.extend(_expansion_problems(body, kind))
    return found


def _expansion_problems(body: dict[str, Any], kind: str) -> list[str]:
    """What would vanish or be misread when the TCK expands ``body``: untyped nested nodes, and
    the negotiation rules of §10.3 and 10.4 that the schemas leave open."""
    found = []
    for key, expected in _NESTED_TYPES.items():
        node = body.get(key)
        if isinstance(node, dict) and node.get("@type") != expected:
            found.append(f'{key} needs "@type": "{expected}", got {node.get("@type")!r}')
    address = body.get("dataAddress")
    if isinstance(address, dict):
        for prop in address.get("endpointProperties") or []:
            if not isinstance(prop, dict) or prop.get("@type") != "EndpointProperty":
                found.append(f'each endpoint property needs "@type": "EndpointProperty": {prop}')
    offer = body.get("offer")
    if kind == "ContractRequestMessage" and isinstance(offer, dict) and "target" not in offer:
        found.append("an offer in a negotiation message needs its target")
    agreement = body.get("agreement")
    if isinstance(agreement, dict) and "timestamp" not in agreement:
        found.append("the agreement needs a timestamp")
    datasets = body.get("dataset") if kind == "Catalog" else [body] if kind == "Dataset" else []
    for dataset in datasets if isinstance(datasets, list) else []:
        if not isinstance(dataset, dict):
            continue
        if dataset.get("@type") != "Dataset":
            found.append(f'dataset {dataset.get("@id")} needs "@type": "Dataset"')
        for dist in dataset.get("distribution") or []:
            if isinstance(dist, dict) and dist.get("@type") != "Distribution":
                found.append(f"a distribution of {dataset.get('@id')} needs @type Distribution")
    return found
