"""Collections and documents: who may see and change them, and their life cycle (no HTTP).

A private collection is its owner's alone; a shared one is readable (listed, searched, cited)
by every user of the node — the organisation the node belongs to — and changed by its owner
only. A collection the caller may not read is *not found* (404), never *forbidden*, so that
its existence does not leak; one the caller may read but not change is 403.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from rhenus.accounts.models import User
from rhenus.accounts.service import Principal
from rhenus.assistant.errors import OpenAIError
from rhenus.assistant.models import PRIVATE, SHARED, Collection, Document
from rhenus.core.db import utcnow


def collection_not_found(collection_id: int) -> OpenAIError:
    return OpenAIError(
        404,
        f"The collection {collection_id} does not exist or you do not have access to it.",
        param="collection",
        code="collection_not_found",
    )


def document_not_found(document_id: int) -> OpenAIError:
    return OpenAIError(
        404,
        f"The document {document_id} does not exist or you do not have access to it.",
        param="document",
        code="document_not_found",
    )


def _readable(principal: Principal) -> ColumnElement[bool]:
    return or_(Collection.owner_id == principal.user_id, Collection.visibility == SHARED)


async def create_collection(
    session: AsyncSession, *, principal: Principal, name: str, description: str, visibility: str
) -> Collection:
    """A new, empty collection owned by the caller."""
    now = utcnow()
    collection = Collection(
        name=name,
        description=description,
        owner_id=principal.user_id,
        visibility=visibility if visibility in (PRIVATE, SHARED) else PRIVATE,
        created_at=now,
        updated_at=now,
    )
    session.add(collection)
    await session.flush()
    return collection


async def readable_collection(
    session: AsyncSession, *, principal: Principal, collection_id: int
) -> Collection:
    """The collection if the caller may read it; 404 otherwise."""
    collection = await session.scalar(
        select(Collection).where(Collection.id == collection_id, _readable(principal))
    )
    if collection is None:
        raise collection_not_found(collection_id)
    return collection


async def owned_collection(
    session: AsyncSession, *, principal: Principal, collection_id: int
) -> Collection:
    """The collection if the caller owns it; 404 if unreadable, 403 if only readable."""
    collection = await readable_collection(
        session, principal=principal, collection_id=collection_id
    )
    if collection.owner_id != principal.user_id:
        raise OpenAIError(
            403,
            f"The collection {collection_id} is shared with you, but only its owner changes it.",
            type="permission_error",
            param="collection",
        )
    return collection


async def readable_collections(
    session: AsyncSession, *, principal: Principal, collection_ids: Sequence[int]
) -> list[int]:
    """``collection_ids``, each checked readable (404 naming the first that is not)."""
    found = set(
        await session.scalars(
            select(Collection.id).where(Collection.id.in_(collection_ids), _readable(principal))
        )
    )
    for collection_id in collection_ids:
        if collection_id not in found:
            raise collection_not_found(collection_id)
    return list(dict.fromkeys(collection_ids))


async def list_collections(
    session: AsyncSession, *, principal: Principal
) -> list[tuple[Collection, str, int]]:
    """The collections the caller may read, each with its owner's username and document count."""
    counts = (
        select(Document.collection_id, func.count().label("n"))
        .group_by(Document.collection_id)
        .subquery()
    )
    rows = await session.execute(
        select(Collection, User.username, func.coalesce(counts.c.n, 0))
        .join(User, User.id == Collection.owner_id)
        .outerjoin(counts, counts.c.collection_id == Collection.id)
        .where(_readable(principal))
        .order_by(Collection.id)
    )
    return [(c, username, int(n)) for c, username, n in rows]


async def describe(session: AsyncSession, collection: Collection) -> tuple[str, int]:
    """A collection's owner username and document count."""
    username = await session.scalar(select(User.username).where(User.id == collection.owner_id))
    count = await session.scalar(
        select(func.count()).select_from(Document).where(Document.collection_id == collection.id)
    )
    return username or "", int(count or 0)


async def delete_collection(
    session: AsyncSession, *, principal: Principal, collection_id: int
) -> None:
    """Delete an owned collection with its documents and chunks (the foreign keys cascade)."""
    collection = await owned_collection(session, principal=principal, collection_id=collection_id)
    await session.delete(collection)


async def readable_document(
    session: AsyncSession, *, principal: Principal, document_id: int
) -> Document:
    """The document if the caller may read its collection; 404 otherwise."""
    document = await session.scalar(
        select(Document)
        .join(Collection, Collection.id == Document.collection_id)
        .where(Document.id == document_id, _readable(principal))
    )
    if document is None:
        raise document_not_found(document_id)
    return document


async def list_documents(
    session: AsyncSession,
    *,
    principal: Principal,
    collection_id: int | None,
    limit: int = 100,
    offset: int = 0,
) -> list[Document]:
    """A page of the documents of one readable collection, or of every readable one, oldest
    first."""
    statement = select(Document).join(Collection, Collection.id == Document.collection_id)
    if collection_id is not None:
        await readable_collection(session, principal=principal, collection_id=collection_id)
        statement = statement.where(Document.collection_id == collection_id)
    statement = statement.where(_readable(principal)).order_by(Document.id)
    return list(await session.scalars(statement.limit(limit).offset(offset)))


async def delete_document(session: AsyncSession, *, principal: Principal, document_id: int) -> None:
    """Delete a document of an owned collection, with its chunks.

    The original stays in the blob store: objects there are addressed by their content and may
    be shared with another document, a dataset or a media upload of the same bytes.
    """
    document = await readable_document(session, principal=principal, document_id=document_id)
    await owned_collection(session, principal=principal, collection_id=document.collection_id)
    await session.delete(document)
