"""Pool files (``pool.toml``): the providers one federated query goes to, named once and kept
with the project that queries them — what ``POST /api/v1/pools/federated-queries`` takes, in
TOML, each provider by its agreement, or by the dataset it was agreed for (the newest of this
node's agreements for it). ``rhenus pools query --pool pool.toml "SELECT …"`` reads one.

```toml
purpose = "statistics"           # optional; default: each agreement's own
# epsilon = "0.1"                # under differential privacy, with the clamping bounds:
# [bounds]
# age = [0, 120]

[[providers]]
name = "de-berlin"                                   # a label for the output (optional)
agreement_id = "urn:uuid:…"
did = "did:web:de-berlin.example.eu"                 # checked against the agreement (optional)

[[providers]]
url = "https://de-bayern.example.eu"                 # checked as its did:web (optional)
dataset_id = "urn:uuid:…"                            # the newest agreement for this dataset
```

A ``did``, ``url`` or ``dataset_id`` given with an ``agreement_id`` must match it: a pool file
edited by hand that names one provider and the agreement of another is an error, not a query
sent to the wrong place.
"""

from __future__ import annotations

import tomllib
from decimal import Decimal
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from rhenus.core.errors import NotFound, Problem
from rhenus.dataspace.contracts.models import Agreement
from rhenus.dataspace.machine import Role
from rhenus.dataspace.pools.schemas import check_bounds
from rhenus.trust.did import did_for_url


class PoolProvider(BaseModel):
    """One provider of a pool: which of this node's agreements the query goes under."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, min_length=1, max_length=120)
    agreement_id: str | None = Field(None, min_length=1, max_length=255)
    dataset_id: str | None = Field(None, min_length=1, max_length=255)
    did: str | None = Field(None, pattern=r"^did:web:\S+$", max_length=255)
    url: str | None = Field(None, pattern=r"^https?://\S+$", max_length=2000)

    @model_validator(mode="after")
    def _located(self) -> PoolProvider:
        if self.agreement_id is None and self.dataset_id is None:
            raise ValueError("name its agreement_id, or the dataset_id it was agreed for")
        return self

    @property
    def provider_did(self) -> str | None:
        """The DID the file expects (from ``did``, else ``url``)."""
        return self.did or (did_for_url(self.url) if self.url else None)

    @property
    def label(self) -> str:
        return self.name or self.did or self.url or self.agreement_id or self.dataset_id or "?"


class PoolFile(BaseModel):
    """A pool file: ``FederatedIn`` without the SQL, its providers named."""

    model_config = ConfigDict(extra="forbid")

    purpose: str | None = Field(None, min_length=1, max_length=255)
    epsilon: Decimal | None = Field(None, gt=0, le=100, max_digits=12, decimal_places=6)
    bounds: dict[str, list[float]] | None = None
    providers: list[PoolProvider] = Field(min_length=1, max_length=50)

    _check_bounds = field_validator("bounds")(check_bounds)


def load(path: Path) -> PoolFile:
    """The pool file at ``path``; :class:`ValueError` saying what is wrong with it."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path} is not TOML: {exc}") from exc
    try:
        return PoolFile.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'the file'}: {e['msg']}" for e in exc.errors()
        )
        raise ValueError(f"{path}: {problems}") from exc


async def agreements_of(session: AsyncSession, pool: PoolFile) -> list[Agreement]:
    """This node's agreement (as consumer) for each provider of ``pool``, in its order; a
    problem naming the provider whose agreement is missing or does not match the file."""
    found = []
    for provider in pool.providers:
        expected = provider.provider_did
        if provider.agreement_id is not None:
            agreement = await session.get(Agreement, provider.agreement_id)
            if agreement is None or agreement.role != Role.CONSUMER.value:
                raise NotFound(
                    f"{provider.label}: no agreement {provider.agreement_id[:120]} as consumer"
                )
        else:
            query = select(Agreement).where(
                Agreement.role == Role.CONSUMER.value, Agreement.dataset_id == provider.dataset_id
            )
            if expected is not None:
                query = query.where(Agreement.provider == expected)
            newest = query.order_by(Agreement.signed_at.desc()).limit(1)
            agreement = (await session.scalars(newest)).first()
            if agreement is None:
                raise NotFound(
                    f"{provider.label}: no agreement for the dataset {provider.dataset_id}"
                )
        if expected is not None and agreement.provider != expected:
            raise Problem(
                f"{provider.label}: the agreement {agreement.id} is with {agreement.provider}, "
                f"not {expected}"
            )
        if provider.dataset_id is not None and agreement.dataset_id != provider.dataset_id:
            raise Problem(
                f"{provider.label}: the agreement {agreement.id} is for the dataset "
                f"{agreement.dataset_id}, not {provider.dataset_id}"
            )
        found.append(agreement)
    return found
