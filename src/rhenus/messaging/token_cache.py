"""This process's cache of resolved access tokens (Synapse keeps one too).

Every Matrix request resolves its access token; without a cache that is a read session of its
own. An entry lives ``TTL`` seconds. Revocations made in this process take effect at once:
logout, device deletion, a device's new token and an account being disabled drop the entries
of that device or account, both when the change is made and again once it has committed —
together with an epoch that refuses to store a look-up which began before a revocation, so a
look-up that read the database before the commit cannot put the revoked token back.

Other processes (``rhenus run --workers N``, the CLI) do not tell this one: a token revoked
there is refused here once the entry expires, at most ``TTL`` seconds later.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import object_session

from rhenus.accounts.models import User

TTL = 10.0  # seconds; bounds how late a revocation made in another process takes effect
MAX_ENTRIES = 10_000


@dataclass(frozen=True)
class Resolved:
    """What a token resolved to (the fields of :class:`~rhenus.messaging.auth.Requester`)."""

    localpart: str
    account_id: int
    device_pk: int
    device_id: str


class TokenCache:
    """Token hash → :class:`Resolved`, each for ``TTL`` seconds."""

    def __init__(self, ttl: float = TTL, max_entries: int = MAX_ENTRIES) -> None:
        self.ttl, self.max_entries = ttl, max_entries
        self._entries: dict[str, tuple[float, Resolved]] = {}
        self.epoch = 0  # bumped by every revocation

    def get(self, token_hash: str) -> Resolved | None:
        entry = self._entries.get(token_hash)
        if entry is None:
            return None
        if entry[0] < time.monotonic():
            del self._entries[token_hash]
            return None
        return entry[1]

    def put(self, token_hash: str, resolved: Resolved, *, epoch: int) -> None:
        """Keep a look-up that started at ``epoch``, unless a revocation came since."""
        if epoch != self.epoch:
            return
        if len(self._entries) >= self.max_entries:
            self._entries.pop(next(iter(self._entries)))  # the oldest
        self._entries[token_hash] = (time.monotonic() + self.ttl, resolved)

    def forget(self, *, account_id: int, device_pk: int | None = None) -> None:
        """Drop the entries of a device (or of every device of the account)."""
        self.epoch += 1
        stale = [
            key
            for key, (_, r) in self._entries.items()
            if r.account_id == account_id and (device_pk is None or r.device_pk == device_pk)
        ]
        for key in stale:
            del self._entries[key]

    def clear(self) -> None:
        self.epoch += 1
        self._entries.clear()


CACHE = TokenCache()


def _after_commit(info: dict[str, Any], callback: Callable[[], None]) -> None:
    callbacks: list[Callable[[], None]] = info.setdefault("after_commit", [])
    callbacks.append(callback)


def revoke(session: AsyncSession, *, account_id: int, device_pk: int | None = None) -> None:
    """Tokens of a device (or of the whole account) stop resolving from the cache, now and
    once ``session`` has committed (``Database.transaction``'s after-commit callbacks)."""
    CACHE.forget(account_id=account_id, device_pk=device_pk)
    _after_commit(session.info, lambda: CACHE.forget(account_id=account_id, device_pk=device_pk))


@event.listens_for(User.disabled, "set")
def _account_disabled(target: User, value: bool, _old: Any, _initiator: Any) -> None:
    # accounts.service.disable_user knows nothing of Matrix: the attribute event tells us.
    if not value or target.id is None:
        return
    account_id = target.id
    CACHE.forget(account_id=account_id)
    session = object_session(target)
    if session is not None:
        _after_commit(session.info, lambda: CACHE.forget(account_id=account_id))
