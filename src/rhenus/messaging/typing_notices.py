"""Typing notifications (spec: "Typing Notifications"), kept in this process's memory.

Who types where is not stored: an entry lives until its timeout (at most two minutes, Synapse's
cap) or until the user says they stopped. Every change of a room's typers — including an
expiry — takes the next ``serial``, the fifth part of sync tokens, and wakes the long-polling
syncs of the room's members. Serials start at this process's start time in microseconds, so a
token from an earlier run of the node is recognised (below ``start``) and answered with every
joined room's typers, which clears what a client still shows from before the restart. Such an
answer is not news by itself (it does not end a long-poll early): with several workers, whose
serials differ, a client going from one to the other would otherwise never wait.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from typing import Any

from rhenus.messaging.events import Notifier

DEFAULT_TIMEOUT_MS = 30_000
MAX_TIMEOUT_MS = 120_000


class Typing:
    """The rooms' typers, their expiry timers, and the serial of changes."""

    def __init__(self, notifier: Notifier) -> None:
        self._notifier = notifier
        self.start = time.time_ns() // 1000
        self.serial = self.start
        self._typers: dict[str, dict[str, asyncio.TimerHandle]] = {}
        self._changed: dict[str, int] = {}  # room → serial of its last change
        self._audience: dict[str, set[str]] = {}  # room → whom its changes wake

    def set(
        self,
        *,
        room_id: str,
        user: str,
        typing: bool,
        timeout_ms: int | None,
        audience: Iterable[str],
    ) -> None:
        """``user`` types (for ``timeout_ms``) or stopped; ``audience``: the room's members."""
        typers = self._typers.setdefault(room_id, {})
        previous = typers.pop(user, None)
        if previous is not None:
            previous.cancel()
        self._audience[room_id] = set(audience)
        if typing:
            delay = min(DEFAULT_TIMEOUT_MS if timeout_ms is None else timeout_ms, MAX_TIMEOUT_MS)
            loop = asyncio.get_running_loop()
            typers[user] = loop.call_later(delay / 1000, self._expire, room_id, user)
        if typing != (previous is not None):  # a refresh of a typer changes nothing
            self._changed_now(room_id)
        self._forget_if_quiet(room_id)

    def _expire(self, room_id: str, user: str) -> None:
        if self._typers.get(room_id, {}).pop(user, None) is not None:
            self._changed_now(room_id)
            self._forget_if_quiet(room_id)

    def _changed_now(self, room_id: str) -> None:
        self.serial += 1
        self._changed[room_id] = self.serial
        self._notifier.wake(self._audience.get(room_id, ()))

    def _forget_if_quiet(self, room_id: str) -> None:
        if not self._typers.get(room_id):
            self._typers.pop(room_id, None)
            self._audience.pop(room_id, None)

    def typers(self, room_id: str) -> list[str]:
        return sorted(self._typers.get(room_id, {}))

    def foreign(self, since: int | None, upper: int) -> bool:
        """Whether a token's typing part is from another run (or another worker) of the node."""
        return since is not None and not self.start <= since <= upper

    def for_sync(
        self, *, rooms: dict[str, bool], since: int | None, upper: int
    ) -> dict[str, dict[str, Any]]:
        """The ``m.typing`` event of each joined room a sync must carry.

        ``rooms`` maps each joined room to whether it is new to this sync (then its typers are
        given if there are any); others are given if they changed in (since, upper], or all of
        them if ``since`` is :meth:`foreign`.
        """
        foreign = self.foreign(since, upper)
        found: dict[str, dict[str, Any]] = {}
        for room_id, new in rooms.items():
            typers = self.typers(room_id)
            if since is None or new:
                wanted = bool(typers)
            else:
                wanted = foreign or since < self._changed.get(room_id, 0) <= upper
            if wanted:
                found[room_id] = {"type": "m.typing", "content": {"user_ids": typers}}
        return found
