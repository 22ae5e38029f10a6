"""Fixtures of the dataspace tests: an in-process federation of an anchor and three
participants (de-berlin on the parametrized engine)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support.federation import PARTICIPANTS, Federation, certify


@pytest.fixture
async def fed(tmp_path: Path, db_url: str) -> AsyncIterator[Federation]:
    federation = Federation(tmp_path)
    await federation.add("anchor", anchor=True)
    for name in ("fr-mininterieur", "de-berlin", "ch-zurich"):
        member = await federation.add(name, db_url=db_url if name == "de-berlin" else None)
        await certify(member, **PARTICIPANTS[name])
    yield federation
    await federation.close()
