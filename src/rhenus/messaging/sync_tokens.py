"""Sync and pagination tokens: ``s<N>`` and ``s<N>_<D>_<T>_<A>_<Y>`` (``sync`` module docstring).

Each part is a stream position; a token names a cut of the streams a sync reads.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from rhenus.messaging.errors import invalid_param

_TOKEN = re.compile(r"^s([0-9]+)(?:_([0-9]+)_([0-9]+)(?:_([0-9]+)_([0-9]+))?)?$")


class SyncToken(NamedTuple):
    """A cut of the streams a sync reads: events, device lists, the device's inbox, account
    data and receipts, typing."""

    events: int
    device_lists: int = 0
    to_device: int = 0
    account: int = 0
    typing: int = 0

    def __str__(self) -> str:
        return "s" + "_".join(str(part) for part in self)


def token(position: int) -> str:
    return f"s{position}"


def parse_sync_token(value: str) -> SyncToken:
    match = _TOKEN.match(value)
    if match is None:
        raise invalid_param(f"{value!r} is not a token of this server")
    return SyncToken(*(int(part or 0) for part in match.groups()))


def parse_token(value: str) -> int:
    """The event position of a pagination token (a sync's ``next_batch`` is one too)."""
    return parse_sync_token(value).events
