"""Backup and restore of a whole node: database rows, encrypted blobs and keys, in one tar file.

Layout of the archive (format ``rhenus-backup/1``)::

    manifest.json           format, node, schema revision, row and blob counts, member digests
    keys.enc                the keys directory as a tar, sealed with AES-256-GCM under a key
                            derived from the backup passphrase (argon2id)
    db/<table>.jsonl.gz     every row of every table, one JSON object per line
    blobs/<sha256>          stored objects exactly as they are (already encrypted by the node)

The rows are read in one repeatable-read transaction (a consistent snapshot). Blobs are immutable
and written before the rows that name them, so every blob the snapshot refers to is present when
they are listed afterwards. Rows are logical, not an engine dump: a backup made on SQLite
restores into PostgreSQL and back.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import secrets
import tarfile
import tempfile
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from argon2.low_level import Type, hash_secret_raw
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import DateTime, LargeBinary, Table, insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from rhenus.config import Settings
from rhenus.core.blobs import BlobStore
from rhenus.core.keys import Keyring
from rhenus.core.node import Node
from rhenus.migrations import current_revision, head_revision, upgrade
from rhenus.tables import Base

FORMAT = "rhenus-backup/1"
Progress = Callable[[str, int, int], None]  # (phase, done, total)


class BackupError(Exception):
    """The archive is unreadable, the passphrase wrong, or the target not empty."""


def _noop(_phase: str, _done: int, _total: int) -> None:
    return None


@dataclass
class Manifest:
    format: str
    created: str
    node_name: str
    revision: str
    tables: dict[str, int] = field(default_factory=dict)
    blobs: int = 0
    digests: dict[str, str] = field(default_factory=dict)


# -- keys under a passphrase ---------------------------------------------------------------------
def _derive(passphrase: str, salt: bytes) -> bytes:
    # argon2id, 64 MiB, 3 passes: the archive may travel, so guessing must be expensive.
    return hash_secret_raw(
        passphrase.encode(),
        salt,
        time_cost=3,
        memory_cost=65536,
        parallelism=2,
        hash_len=32,
        type=Type.ID,
    )


def seal_keys(keys_dir: Path, passphrase: str) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        tar.add(keys_dir, arcname="keys")
    salt, nonce = secrets.token_bytes(16), secrets.token_bytes(12)
    sealed = AESGCM(_derive(passphrase, salt)).encrypt(nonce, buffer.getvalue(), b"rhenus-keys")
    return b"RHK1" + salt + nonce + sealed


def open_keys(blob: bytes, passphrase: str, target: Path) -> None:
    if blob[:4] != b"RHK1":
        raise BackupError("keys.enc is not a Rhenus key archive")
    salt, nonce, sealed = blob[4:20], blob[20:32], blob[32:]
    try:
        plain = AESGCM(_derive(passphrase, salt)).decrypt(nonce, sealed, b"rhenus-keys")
    except InvalidTag as exc:
        raise BackupError("wrong backup passphrase (or damaged keys.enc)") from exc
    target.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(plain), mode="r") as tar:
        tar.extractall(target, filter="data")


# -- rows as JSON --------------------------------------------------------------------------------
def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    return value


def _decoder(table: Table) -> Callable[[dict[str, Any]], dict[str, Any]]:
    kinds = {}
    for column in table.columns:
        impl = getattr(column.type, "impl", column.type)
        if isinstance(impl, DateTime):
            kinds[column.name] = "dt"
        elif isinstance(impl, LargeBinary):
            kinds[column.name] = "bytes"

    def decode(row: dict[str, Any]) -> dict[str, Any]:
        for name, kind in kinds.items():
            value = row.get(name)
            if value is None:
                continue
            if kind == "dt":
                parsed = datetime.fromisoformat(value)
                row[name] = parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
            else:
                row[name] = base64.b64decode(value)
        return row

    return decode


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes, manifest: Manifest) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = int(datetime.now(UTC).timestamp())
    tar.addfile(info, io.BytesIO(data))
    manifest.digests[name] = hashlib.sha256(data).hexdigest()


async def _snapshot(session: AsyncSession) -> None:
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"))


# -- backup --------------------------------------------------------------------------------------
async def backup(
    node: Node, archive: Path, passphrase: str, progress: Progress = _noop
) -> Manifest:
    """Write a consistent backup of ``node`` to ``archive`` (a new file)."""
    revision = await current_revision(node.settings.database_url.get_secret_value())
    manifest = Manifest(
        FORMAT, datetime.now(UTC).isoformat(), node.settings.node_name, revision or ""
    )
    tmp = archive.with_name(archive.name + ".partial")
    with tarfile.open(tmp, mode="w") as tar:
        _add_bytes(tar, "keys.enc", seal_keys(node.settings.keys_dir, passphrase), manifest)
        tables = Base.metadata.sorted_tables
        async with node.db.session() as session:
            await _snapshot(session)
            for done, table in enumerate(tables, 1):
                lines = []
                for row in (await session.execute(select(table))).mappings():
                    lines.append(json.dumps({k: _encode(v) for k, v in row.items()}))
                manifest.tables[table.name] = len(lines)
                data = gzip.compress("\n".join(lines).encode(), mtime=0)
                _add_bytes(tar, f"db/{table.name}.jsonl.gz", data, manifest)
                progress("tables", done, len(tables))
        addresses = [address async for address in node.blobs.list()]
        for done, address in enumerate(addresses, 1):
            await _add_blob(tar, node.blobs, address, manifest)
            progress("blobs", done, len(addresses))
        manifest.blobs = len(addresses)
        _add_bytes(tar, "manifest.json", json.dumps(manifest.__dict__, indent=2).encode(), manifest)
    tmp.replace(archive)
    return manifest


async def _add_blob(tar: tarfile.TarFile, store: BlobStore, address: str, m: Manifest) -> None:
    # Spooled to disk: a tar member needs its size first, and blobs can be large.
    digest = hashlib.sha256()
    with tempfile.TemporaryFile() as spool:
        async for chunk in store.read_raw(address):
            spool.write(chunk)
            digest.update(chunk)
        info = tarfile.TarInfo(f"blobs/{address}")
        info.size = spool.tell()
        spool.seek(0)
        tar.addfile(info, spool)
    m.digests[info.name] = digest.hexdigest()


# -- restore -------------------------------------------------------------------------------------
def read_manifest(archive: Path) -> Manifest:
    try:
        with tarfile.open(archive, mode="r") as tar:
            member = tar.extractfile("manifest.json")
            if member is None:
                raise BackupError("the archive has no manifest.json")
            data = json.loads(member.read())
    except (tarfile.TarError, KeyError, json.JSONDecodeError, OSError) as exc:
        raise BackupError(f"{archive} is not a Rhenus backup: {exc}") from exc
    if data.get("format") != FORMAT:
        raise BackupError(f"unsupported backup format {data.get('format')!r}")
    return Manifest(**data)


def _checked(tar: tarfile.TarFile, name: str, manifest: Manifest) -> IO[bytes]:
    member = tar.extractfile(name)
    if member is None or name not in manifest.digests:
        raise BackupError(f"the archive lacks {name}")
    return member


def restore_keys(settings: Settings, archive: Path, passphrase: str) -> Manifest:
    """First step of a restore (blocking): check the archive, unseal the keys, create the schema."""
    manifest = read_manifest(archive)
    if Keyring.exists(settings.keys_dir):
        raise BackupError(f"{settings.home} already has keys; restore into an empty data dir")
    with tarfile.open(archive, mode="r") as tar:
        data = _checked(tar, "keys.enc", manifest).read()
    if hashlib.sha256(data).hexdigest() != manifest.digests["keys.enc"]:
        raise BackupError("keys.enc does not match its digest in the manifest")
    settings.home.mkdir(parents=True, exist_ok=True)
    open_keys(data, passphrase, settings.home)
    # Rows are loaded into the schema they were read from; `finish_restore` migrates forward.
    upgrade(settings.database_url.get_secret_value(), manifest.revision or "head")
    return manifest


def finish_restore(settings: Settings) -> None:
    """Last step of a restore (blocking): bring the restored schema to this version's head."""
    upgrade(settings.database_url.get_secret_value(), head_revision())


async def restore_data(
    node: Node, archive: Path, manifest: Manifest, progress: Progress = _noop
) -> None:
    """Second step of a restore: load every row and blob into the (empty) node."""
    async with node.db.session() as session:
        for table in Base.metadata.sorted_tables:
            if (await session.execute(select(table).limit(1))).first() is not None:
                raise BackupError(f"table {table.name} is not empty; restore into an empty node")
    tables = [t for t in Base.metadata.sorted_tables if t.name in manifest.tables]
    with tarfile.open(archive, mode="r") as tar:
        async with node.db.transaction() as session:
            for done, table in enumerate(tables, 1):
                name = f"db/{table.name}.jsonl.gz"
                raw = _checked(tar, name, manifest).read()
                if hashlib.sha256(raw).hexdigest() != manifest.digests[name]:
                    raise BackupError(f"{name} does not match its digest in the manifest")
                decode = _decoder(table)
                rows = [decode(json.loads(line)) for line in gzip.decompress(raw).splitlines()]
                for start in range(0, len(rows), 500):
                    await session.execute(insert(table), rows[start : start + 500])
                progress("tables", done, len(tables))
            await _reset_sequences(session)
        names = [n for n in manifest.digests if n.startswith("blobs/")]
        for done, name in enumerate(names, 1):
            member = _checked(tar, name, manifest)
            await node.blobs.write_raw(name.removeprefix("blobs/"), _chunks(member))
            progress("blobs", done, len(names))


async def _chunks(member: IO[bytes]) -> AsyncIterator[bytes]:
    while chunk := member.read(1 << 20):
        yield chunk


async def _reset_sequences(session: AsyncSession) -> None:
    """PostgreSQL serial columns must continue after the restored ids."""
    if session.get_bind().dialect.name != "postgresql":
        return
    for table in Base.metadata.sorted_tables:
        for column in table.primary_key.columns:
            if column.autoincrement is True or (
                column.autoincrement == "auto"
                and column.type.python_type is int
                and len(table.primary_key.columns) == 1
            ):
                await session.execute(
                    text(
                        f"SELECT setval(pg_get_serial_sequence('{table.name}', '{column.name}'), "  # noqa: S608
                        f"COALESCE((SELECT MAX({column.name}) FROM {table.name}), 0) + 1, false)"
                    )
                )
