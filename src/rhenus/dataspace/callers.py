"""Who is calling a Dataspace Protocol route: a signed, compliant federation node, or — in
conformance mode only — the black-box checker holding the configured static bearer token.

Conformance mode (``RHENUS_DSP_CONFORMANCE_TOKEN``) exists so that the Eclipse DSP TCK, which
speaks neither RFC 9421 nor Gaia-X compliance, can test the protocol itself; the settings refuse
it unless the node listens on loopback only (see ``docs/conformance.md``).
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import JSONResponse, Response

from rhenus.core.node import Node, NodeDep
from rhenus.dataspace.messages import (
    DspMessage,
    MessageError,
    Refused,
    error_message,
    parse,
)
from rhenus.trust import deps as trust_deps


@dataclass(frozen=True)
class Caller:
    """The authenticated counterparty of a DSP request."""

    did: str
    country: str = ""
    credentials: frozenset[str] = field(default_factory=frozenset)
    signed: bool = True  # by RFC 9421 (answers are then signed too); False in conformance mode


async def dsp_caller(request: Request, node: NodeDep) -> Caller:
    """The counterparty; 401/403 problem naming the reason otherwise."""
    settings = node.settings
    token = settings.dsp_conformance_token.get_secret_value()
    if token:
        presented = request.headers.get("authorization", "")
        presented = presented.removeprefix("Bearer ").removeprefix("bearer ").strip()
        if presented and hmac.compare_digest(presented.encode(), token.encode()):
            return Caller(
                did=settings.dsp_conformance_participant,
                country=settings.dsp_conformance_country,
                signed=False,
            )
    sender = await trust_deps.signed_node(request, node, trust_deps.get_resolver(request))
    peer = await trust_deps.signed_peer(request, sender)
    return Caller(did=peer.did, country=peer.compliance.country, signed=True)


DspCaller = Annotated[Caller, Depends(dsp_caller)]


def answer(
    request: Request,
    node: Node,
    caller: Caller,
    body: Any,
    *,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    """The JSON answer to a DSP request: signed (RFC 9421, bound to the request) when the
    request was; plain for the conformance checker, which signs nothing."""
    if caller.signed:
        return trust_deps.signed_json(request, node, body, status_code=status, headers=headers)
    return JSONResponse(body, status_code=status, headers=headers)


Work = Callable[[DspMessage], Awaitable[tuple[dict[str, Any], int]]]


async def handle(
    request: Request,
    node: Node,
    caller: Caller,
    *,
    expected: str,
    pid: str,
    error_type: str,
    work: Work,
) -> Response:
    """Parse the DSP message ``expected``, run ``work`` (which opens its own unit of work and
    returns the process's state body and status), and answer; a refused or malformed message
    gets ``error_type`` with the pids it named, and changes nothing."""
    parsed: DspMessage | None = None
    try:
        try:
            raw = json.loads(await request.body())
        except ValueError as exc:
            raise MessageError("the body is not JSON") from exc
        parsed = parse(raw, expected)
        body, status = await work(parsed)
    except (MessageError, Refused) as exc:
        found = exc.message if isinstance(exc, MessageError) and exc.message else parsed
        refused = exc if isinstance(exc, Refused) else None
        error = error_message(
            error_type,
            provider_pid=(refused.provider_pid if refused else "")
            or (found.provider_pid if found else None)
            or pid,
            consumer_pid=(refused.consumer_pid if refused else "")
            or (found.consumer_pid if found else None)
            or pid,
            code=refused.code if refused else "bad-message",
            reason=exc.reason,
        )
        return answer(request, node, caller, error, status=refused.status if refused else 400)
    request.app.state.jobs.wake()
    return answer(request, node, caller, body, status=status)
