"""The replay guard: each signature nonce is accepted once, recorded in the database.

Requests that arrive together share one write unit: a request waits for the database's
writer turn anyway, and every nonce that arrived meanwhile is recorded with it (one
``INSERT … ON CONFLICT DO NOTHING RETURNING``), instead of one write unit each. The answer
for each nonce is still only given once the unit that recorded it has committed.
"""

from __future__ import annotations

import asyncio
import weakref
from datetime import timedelta

from rhenus.core.db import Database
from rhenus.trust import service


class ReplayGuard:
    """Accepts each nonce once, across this node's workers (the primary key decides)."""

    def __init__(self, db: Database, window: timedelta) -> None:
        self.db, self.window = db, window
        self._waiting: dict[str, tuple[str, asyncio.Future[bool]]] = {}
        self._writer: asyncio.Task[None] | None = None

    async def accept(self, nonce: str, sender: str) -> bool:
        """True if ``nonce`` is fresh (now recorded), False if it was seen before."""
        if nonce in self._waiting:
            return False  # the same nonce twice in one batch: the second is the replay
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiting[nonce] = (sender, future)
        if self._writer is None or self._writer.done():
            self._writer = asyncio.get_running_loop().create_task(self._record())
        # shield: one request giving up (its client went away) must not cancel the batch
        return await asyncio.shield(future)

    async def _record(self) -> None:
        while self._waiting:
            batch: dict[str, tuple[str, asyncio.Future[bool]]] = {}
            try:
                async with self.db.transaction() as session:
                    # taken inside the writer turn: whatever arrived while it was awaited joins
                    batch, self._waiting = self._waiting, {}
                    fresh = await service.accept_nonces(
                        session, {nonce: sender for nonce, (sender, _) in batch.items()},
                        window=self.window,
                    )  # fmt: skip
            except Exception as exc:  # every waiter learns it; the next batch tries anew
                for _, future in batch.values():
                    if not future.done():
                        future.set_exception(exc)
                continue
            for nonce, (_, future) in batch.items():
                if not future.done():
                    future.set_result(nonce in fresh)


_GUARDS: weakref.WeakKeyDictionary[Database, ReplayGuard] = weakref.WeakKeyDictionary()


def replay_guard(db: Database, window: timedelta) -> ReplayGuard:
    """The guard of this database in this process."""
    guard = _GUARDS.get(db)
    if guard is None:
        guard = _GUARDS[db] = ReplayGuard(db, window)
    return guard
