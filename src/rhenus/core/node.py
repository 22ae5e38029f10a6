"""The running node's shared parts, opened once and handed to routes and commands."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from rhenus.config import Settings
from rhenus.core.audit import AuditLog
from rhenus.core.blobs import BlobStore, open_blob_store
from rhenus.core.db import Database
from rhenus.core.keys import Keyring


@dataclass
class Node:
    """Settings, database, keys, blob store and audit log of one node."""

    settings: Settings
    db: Database
    keyring: Keyring
    blobs: BlobStore
    audit: AuditLog

    @classmethod
    def open(cls, settings: Settings) -> Node:
        """Open the parts of an initialised node (``rhenus init`` made its keys and schema)."""
        keyring = Keyring.load(settings.keys_dir)
        return cls(
            settings=settings,
            db=Database(settings.database_url.get_secret_value()),
            keyring=keyring,
            blobs=open_blob_store(
                settings.blobs_url,
                keyring,
                s3_access_key_id=settings.s3_access_key_id.get_secret_value() or None,
                s3_secret_access_key=settings.s3_secret_access_key.get_secret_value() or None,
            ),
            audit=AuditLog(keyring, checkpoint_every=settings.audit_checkpoint_every),
        )

    async def close(self) -> None:
        await self.blobs.close()
        await self.db.dispose()


async def get_node(request: Request) -> Node:
    # async on purpose, as every dependency here: FastAPI runs a plain ``def`` dependency in
    # its thread pool, a thread hop per request for a dictionary look-up.
    node: Node = request.app.state.node
    return node


NodeDep = Annotated[Node, Depends(get_node)]
