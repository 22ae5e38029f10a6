"""Catalogue logic: register, fill, offer, publish and withdraw datasets; decide who sees what."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Text, and_, cast, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from rhenus.core.audit import AuditLog
from rhenus.core.db import utcnow
from rhenus.core.errors import Conflict, NotFound, Problem
from rhenus.core.geo import EU_MEMBER_STATES
from rhenus.dataspace.catalogue import dsp, entries
from rhenus.dataspace.catalogue.models import Dataset, Offer
from rhenus.dataspace.catalogue.schemas import DatasetIn
from rhenus.dataspace.policy import service as odrl
from rhenus.trust.did import did_for_url
from rhenus.trust.service import own_country


def new_id() -> str:
    return f"urn:uuid:{uuid.uuid4()}"


async def create_dataset(
    session: AsyncSession,
    *,
    audit: AuditLog,
    actor: str,
    data: DatasetIn,
    dataset_id: str | None = None,
) -> Dataset:
    """A new dataset in draft: it is published once it has content (or an endpoint) and offers.
    Its id is a new ``urn:uuid`` unless given (conformance fixtures have fixed ids)."""
    if data.kind == "service" and not data.endpoint_url:
        raise Conflict("a service needs its endpoint_url")
    now = utcnow()
    fields = data.model_dump()
    fields["access"] = data.access.model_dump()
    dataset = Dataset(
        id=dataset_id or new_id(),
        **fields,
        byte_size=None,
        sha256=None,
        version=1,
        status="draft",
        created_at=now,
        updated_at=now,
    )
    session.add(dataset)
    await session.flush()
    await audit.record(
        session,
        actor=actor,
        action="catalogue.dataset.created",
        object_type="dataset",
        object_id=dataset.id,
        payload=fields,
    )
    return dataset


async def get_dataset(session: AsyncSession, *, dataset_id: str) -> Dataset:
    """The dataset, or :class:`NotFound`."""
    dataset = await session.get(Dataset, dataset_id)
    if dataset is None:
        raise NotFound(f"no dataset {dataset_id[:80]!r}")
    return dataset


async def set_content(
    session: AsyncSession,
    *,
    audit: AuditLog,
    actor: str,
    public_url: str,
    dataset_id: str,
    sha256: str,
    size: int,
    media_type: str,
) -> Dataset:
    """Point a file dataset at its stored (encrypted) content; new content is a new version."""
    dataset = await get_dataset(session, dataset_id=dataset_id)
    if dataset.kind != "file":
        raise Conflict("a service has an endpoint, not content")
    if dataset.status == "withdrawn":
        raise Conflict("the dataset was withdrawn")
    if dataset.sha256 and dataset.sha256 != sha256:
        dataset.version += 1
    dataset.sha256, dataset.byte_size = sha256, size
    dataset.media_type = media_type or dataset.media_type
    dataset.updated_at = utcnow()
    await audit.record(
        session,
        actor=actor,
        action="catalogue.dataset.content",
        object_type="dataset",
        object_id=dataset_id,
        details={"sha256": sha256, "size": size, "version": dataset.version},
    )
    await refresh_own_entry(session, dataset=dataset, public_url=public_url)
    return dataset


def check_offer(policy: dict[str, Any]) -> None:
    """Refuse an offer the policy engine could never permit anything under (unknown operands,
    operators or actions, malformed constraints, no rule): 422 listing each problem."""
    problems = odrl.check(policy=policy)
    if problems:
        raise Problem(
            "the ODRL offer cannot be evaluated: " + "; ".join(problems),
            status=422,
            kind="invalid-policy",
            title="Invalid policy",
            problems=problems,
        )


async def add_offer(
    session: AsyncSession,
    *,
    audit: AuditLog,
    actor: str,
    public_url: str,
    dataset_id: str,
    policy: dict[str, Any],
    offer_id: str | None = None,
) -> Offer:
    """Attach an ODRL offer. In a DSP catalog an offer has an ``@id`` and no ``target``."""
    check_offer(policy)
    dataset = await get_dataset(session, dataset_id=dataset_id)
    if dataset.status == "withdrawn":
        raise Conflict("the dataset was withdrawn")
    offer_id = offer_id or new_id()
    stored = {k: v for k, v in policy.items() if k not in ("target", "@id")}
    stored = {
        "@id": offer_id,
        "@type": "Offer",
        **{k: v for k, v in stored.items() if k != "@type"},
    }
    offer = Offer(id=offer_id, dataset_id=dataset_id, policy=stored, created_at=utcnow())
    session.add(offer)
    await session.flush()
    await audit.record(
        session,
        actor=actor,
        action="catalogue.offer.added",
        object_type="offer",
        object_id=offer_id,
        payload=stored,
        details={"dataset": dataset_id},
    )
    await refresh_own_entry(session, dataset=dataset, public_url=public_url)
    return offer


async def offers_of(session: AsyncSession, *, dataset_ids: Sequence[str]) -> dict[str, list[Offer]]:
    rows = await session.scalars(
        select(Offer).where(Offer.dataset_id.in_(dataset_ids)).order_by(Offer.created_at)
    )
    found: dict[str, list[Offer]] = {d: [] for d in dataset_ids}
    for offer in rows.all():
        found[offer.dataset_id].append(offer)
    return found


async def publish(
    session: AsyncSession, *, audit: AuditLog, actor: str, public_url: str, dataset_id: str
) -> Dataset:
    """Make the dataset visible in the catalog (to those its access policy admits)."""
    dataset = await get_dataset(session, dataset_id=dataset_id)
    if dataset.status == "withdrawn":
        raise Conflict("a withdrawn dataset cannot be published again; register a new one")
    if dataset.kind == "file" and not dataset.sha256:
        raise Conflict("upload the dataset's content first")
    if not (await offers_of(session, dataset_ids=[dataset_id]))[dataset_id]:
        raise Conflict("add at least one offer (a usage policy) first")
    dataset.status, dataset.updated_at = "published", utcnow()
    await audit.record(
        session,
        actor=actor,
        action="catalogue.dataset.published",
        object_type="dataset",
        object_id=dataset_id,
    )
    await refresh_own_entry(session, dataset=dataset, public_url=public_url)
    return dataset


async def withdraw(
    session: AsyncSession, *, audit: AuditLog, actor: str, public_url: str, dataset_id: str
) -> Dataset:
    """Take a dataset out of the catalog for good (agreements already made keep their record)."""
    dataset = await get_dataset(session, dataset_id=dataset_id)
    dataset.status, dataset.updated_at = "withdrawn", utcnow()
    dataset.version += 1
    await audit.record(
        session,
        actor=actor,
        action="catalogue.dataset.withdrawn",
        object_type="dataset",
        object_id=dataset_id,
    )
    await refresh_own_entry(session, dataset=dataset, public_url=public_url)
    return dataset


def visible_to(dataset: Dataset, *, did: str, country: str) -> bool:
    """Whether a participant (certified DID and headquarters country) may see the dataset."""
    return dataset.status == "published" and admits(dataset.access, did=did, country=country)


def admits(access: dict[str, Any] | None, *, did: str, country: str) -> bool:
    """Whether an access policy admits a participant."""
    access = access or {}
    if access.get("eu_only") and country not in EU_MEMBER_STATES:
        return False
    countries = access.get("countries")
    if countries is not None and country not in countries:
        return False
    participants = access.get("participants")
    return participants is None or did in participants


async def find_offer(session: AsyncSession, *, offer_id: str) -> Offer | None:
    return await session.get(Offer, offer_id)


async def find_dataset(session: AsyncSession, *, dataset_id: str) -> Dataset | None:
    return await session.get(Dataset, dataset_id)


async def list_datasets(session: AsyncSession, *, status: str | None = None) -> list[Dataset]:
    query = select(Dataset).order_by(Dataset.created_at)
    if status:
        query = query.where(Dataset.status == status)
    return list((await session.scalars(query)).all())


async def catalog_for(
    session: AsyncSession, *, did: str, country: str, offset: int, limit: int
) -> tuple[list[Dataset], int]:
    """The page of published datasets this participant may see, and how many there are.

    A catalog has many datasets but few distinct access policies: each distinct policy is
    judged once, and the database then pages through the datasets whose policy admits the
    participant (policies compared as stored text), so a page costs the page, not the catalog.
    """
    policy = cast(Dataset.access, Text)
    published = Dataset.status == "published"
    counts = await session.execute(select(policy, func.count()).where(published).group_by(policy))
    admitted = {
        text: count
        for text, count in counts.all()
        if admits(json.loads(text), did=did, country=country)
    }
    if not admitted:
        return [], 0
    visible = and_(published, policy.in_(list(admitted)))
    page_ids = (
        await session.scalars(
            select(Dataset.id)
            .where(visible)
            .order_by(Dataset.created_at, Dataset.id)
            .offset(offset)
            .limit(limit)
        )
    ).all()
    found = await session.scalars(select(Dataset).where(Dataset.id.in_(page_ids)))
    by_id = {d.id: d for d in found.all()}
    return [by_id[i] for i in page_ids], sum(admitted.values())


async def count_published(session: AsyncSession) -> int:
    return int(
        await session.scalar(
            select(func.count()).select_from(Dataset).where(Dataset.status == "published")
        )
        or 0
    )


async def refresh_own_entry(session: AsyncSession, *, dataset: Dataset, public_url: str) -> None:
    """Keep the search entry of one of our datasets as its catalog shows it (or remove it)."""
    origin = did_for_url(public_url)
    if dataset.status != "published":
        await entries.remove_entry(session, origin=origin, dataset_id=dataset.id)
        return
    await session.flush()
    offers = (await offers_of(session, dataset_ids=[dataset.id]))[dataset.id]
    fields = entries.entry_fields(
        dsp.dataset(dataset, offers, public_url),
        origin=origin,
        country=await own_country(session),
        fetched_at=utcnow(),
    )
    await entries.put_entry(session, fields)
