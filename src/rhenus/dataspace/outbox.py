"""Delivering one DSP message to the other party, for the drivers' send jobs."""

from __future__ import annotations

from typing import Any

import httpx


class RetryLater(Exception):
    """The counterparty could not take the message now (5xx); the job is retried."""


def reason_of(answer: Any) -> str:
    """The reason a DSP error (``reason``) or a problem document (``detail``) gives."""
    if not isinstance(answer, dict):
        return ""
    reason = answer.get("reason") or answer.get("detail") or ""
    if isinstance(reason, list):
        reason = "; ".join(map(str, reason))
    return str(reason)[:500]


async def deliver(client: httpx.AsyncClient, url: str, body: dict[str, Any]) -> str | None:
    """POST ``body`` to ``url``: ``None`` once accepted, the counterparty's reason if it
    refused it (4xx: sending again would not help); :class:`RetryLater` or a network error
    otherwise."""
    response = await client.post(url, json=body)
    # 404 is retried too: a counterparty may learn of the process only from its own answer to
    # our previous message, which can still be on its way (the TCK registers its handlers so).
    if response.status_code >= 500 or response.status_code == 404:
        raise RetryLater(f"{url} answered {response.status_code}")
    if not response.is_error:
        return None
    try:
        reason = reason_of(response.json())
    except ValueError:
        reason = ""
    return reason or f"refused with {response.status_code}"
