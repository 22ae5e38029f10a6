"""End-to-end encryption key exchange and to-device messages (spec: "End-to-End Encryption" →
"Key management API", and "Send-to-Device messaging").

The server never sees plaintext: it keeps the keys devices upload, as signed, hands out
one-time keys (each at most once: a claim deletes the row it returns, and retries with the next
key if a concurrent claim deleted it first), falls back to the device's fallback key when none
is left, and relays to-device messages, which stay until a sync acknowledges them (Synapse's
behaviour: a sync with ``since`` past a message's position deletes it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import bindparam, delete, func, literal, select, union_all, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from rhenus.messaging import devices, events
from rhenus.messaging.auth import Requester
from rhenus.messaging.errors import bad_json, invalid_param
from rhenus.messaging.models import (
    Device,
    DeviceKeys,
    FallbackKey,
    OneTimeKey,
    ToDeviceMessage,
    ToDeviceTxn,
)
from rhenus.messaging.schemas import localpart_of

MAX_TO_DEVICE_PER_SYNC = 100


def _split_key_id(full: str) -> tuple[str, str]:
    algorithm, sep, key_id = full.partition(":")
    if not sep or not algorithm or not key_id:
        raise bad_json(f"{full!r} is not <algorithm>:<key id>")
    return algorithm, key_id


async def one_time_key_counts(session: AsyncSession, *, device_pk: int) -> dict[str, int]:
    """Unclaimed one-time keys per algorithm; ``signed_curve25519`` is always there."""
    rows = await session.execute(
        select(OneTimeKey.algorithm, func.count())
        .where(OneTimeKey.device_pk == device_pk)
        .group_by(OneTimeKey.algorithm)
    )
    return {"signed_curve25519": 0, **{a: n for a, n in rows.all()}}


_SYNC_KEYS = union_all(
    select(OneTimeKey.algorithm, func.count().label("n"))
    .where(OneTimeKey.device_pk == bindparam("device_pk"))
    .group_by(OneTimeKey.algorithm),
    select(FallbackKey.algorithm, literal(-1).label("n")).where(
        FallbackKey.device_pk == bindparam("device_pk"), FallbackKey.used.is_(False)
    ),
)


async def sync_key_counts(
    session: AsyncSession, *, device_pk: int
) -> tuple[dict[str, int], list[str]]:
    """:func:`one_time_key_counts` and the unused fallback key algorithms, in one statement
    (every sync answers both)."""
    counts: dict[str, int] = {"signed_curve25519": 0}
    unused: list[str] = []
    for algorithm, n in (await session.execute(_SYNC_KEYS, {"device_pk": device_pk})).all():
        if n < 0:
            unused.append(algorithm)
        else:
            counts[algorithm] = n
    return counts, sorted(unused)


async def upload(
    session: AsyncSession,
    *,
    requester: Requester,
    device_keys: Mapping[str, Any] | None,
    one_time_keys: Mapping[str, Any],
    fallback_keys: Mapping[str, Any],
) -> dict[str, int]:
    """``POST keys/upload``: store the keys; returns the one-time key counts."""
    if device_keys:
        if (
            device_keys.get("user_id") != requester.user_id
            or device_keys.get("device_id") != requester.device_id
        ):
            raise invalid_param("device_keys must be of this user and device")
        row = await session.get(DeviceKeys, requester.device_pk)
        if row is None:
            session.add(
                DeviceKeys(
                    device_pk=requester.device_pk, user_id=requester.user_id, keys=dict(device_keys)
                )
            )
            await devices.record_change(session, user=requester.user_id)
        elif row.keys != device_keys:
            row.keys = dict(device_keys)
            await devices.record_change(session, user=requester.user_id)
    for full, key in one_time_keys.items():
        algorithm, key_id = _split_key_id(full)
        existing = await session.scalar(
            select(OneTimeKey).where(
                OneTimeKey.device_pk == requester.device_pk,
                OneTimeKey.algorithm == algorithm,
                OneTimeKey.key_id == key_id,
            )
        )
        if existing is None:
            session.add(
                OneTimeKey(
                    device_pk=requester.device_pk, algorithm=algorithm, key_id=key_id, key=key
                )
            )
        elif existing.key != key:
            # Synapse's rule too: a key id is never reused for other key material.
            raise invalid_param(f"one-time key {full} already exists with another key")
    for full, key in fallback_keys.items():
        algorithm, key_id = _split_key_id(full)
        fallback = await session.get(FallbackKey, (requester.device_pk, algorithm))
        if fallback is None:
            session.add(
                FallbackKey(
                    device_pk=requester.device_pk,
                    algorithm=algorithm,
                    key_id=key_id,
                    key=key,
                    used=False,
                )
            )
        elif (fallback.key_id, fallback.key) != (key_id, key):
            fallback.key_id, fallback.key, fallback.used = key_id, key, False
    await session.flush()
    return await one_time_key_counts(session, device_pk=requester.device_pk)


async def _local_devices(
    session: AsyncSession, *, server_name: str, user: str
) -> list[tuple[Device, DeviceKeys]]:
    if localpart_of(user, server_name) is None:
        return []
    rows = await session.execute(
        select(Device, DeviceKeys)
        .join(DeviceKeys, DeviceKeys.device_pk == Device.id)
        .where(DeviceKeys.user_id == user)
        .order_by(Device.id)
    )
    return [(d, k) for d, k in rows.all()]


async def query(
    session: AsyncSession, *, server_name: str, wanted: Mapping[str, list[str]]
) -> dict[str, Any]:
    """``POST keys/query``: the device keys of these users (all devices if the list is empty)."""
    answer: dict[str, dict[str, Any]] = {}
    for user, device_ids in wanted.items():
        found = await _local_devices(session, server_name=server_name, user=user)
        answer[user] = {
            device.device_id: {
                **keys.keys,
                "unsigned": {"device_display_name": device.display_name or None},
            }
            for device, keys in found
            if not device_ids or device.device_id in device_ids
        }
    return {
        "device_keys": answer,
        "failures": {},
        "master_keys": {},
        "self_signing_keys": {},
        "user_signing_keys": {},
    }


async def _claim_one(session: AsyncSession, device_pk: int, algorithm: str) -> dict[str, Any]:
    while True:
        candidate = (
            await session.execute(
                select(OneTimeKey.id, OneTimeKey.key_id, OneTimeKey.key)
                .where(OneTimeKey.device_pk == device_pk, OneTimeKey.algorithm == algorithm)
                .order_by(OneTimeKey.id)
                .limit(1)
            )
        ).first()
        if candidate is None:
            break
        deleted = await session.execute(
            delete(OneTimeKey)
            .where(OneTimeKey.id == candidate.id)
            .execution_options(synchronize_session=False)
        )
        if getattr(deleted, "rowcount", 0) == 1:  # else a concurrent claim took it: next one
            return {f"{algorithm}:{candidate.key_id}": candidate.key}
    fallback = await session.get(FallbackKey, (device_pk, algorithm))
    if fallback is None:
        return {}
    await session.execute(
        update(FallbackKey)
        .where(FallbackKey.device_pk == device_pk, FallbackKey.algorithm == algorithm)
        .values(used=True)
        .execution_options(synchronize_session=False)
    )
    return {f"{algorithm}:{fallback.key_id}": fallback.key}


async def claim(
    session: AsyncSession, *, server_name: str, wanted: Mapping[str, Mapping[str, str]]
) -> dict[str, Any]:
    """``POST keys/claim``: one key per asked device, each one-time key to one claimer only."""
    answer: dict[str, dict[str, Any]] = {}
    for user, asked in wanted.items():
        found = {
            d.device_id: d
            for d, _ in await _local_devices(session, server_name=server_name, user=user)
        }
        for device_id, algorithm in asked.items():
            device = found.get(device_id)
            if device is None:
                continue
            key = await _claim_one(session, device.id, str(algorithm))
            if key:
                answer.setdefault(user, {})[device_id] = key
    return {"one_time_keys": answer, "failures": {}}


# ---- to-device messages -------------------------------------------------------------------


async def send_to_device(
    session: AsyncSession,
    *,
    requester: Requester,
    server_name: str,
    event_type: str,
    txn_id: str,
    messages: Mapping[str, Mapping[str, Any]],
) -> None:
    """``PUT sendToDevice/{eventType}/{txnId}``: queue one message per target device.

    A transaction id already used by this device is answered without sending again.
    """
    try:
        async with session.begin_nested():
            session.add(ToDeviceTxn(device_pk=requester.device_pk, txn_id=txn_id))
    except IntegrityError:
        return
    await events.lock_stream(session)  # positions commit in order, as events' do
    recipients: set[str] = set()
    for user, targets in messages.items():
        if localpart_of(user, server_name) is None:
            continue
        rows = await session.scalars(
            select(Device).where(Device.localpart == localpart_of(user, server_name))
        )
        owned = {d.device_id: d for d in rows.all()}
        for device_id, content in targets.items():
            chosen = list(owned.values()) if device_id == "*" else [owned.get(device_id)]
            for device in chosen:
                if device is None or not isinstance(content, dict):
                    continue
                session.add(
                    ToDeviceMessage(
                        device_pk=device.id,
                        sender=requester.user_id,
                        type=event_type,
                        content=content,
                    )
                )
                recipients.add(user)
    await session.flush()
    events.wake_users(session, recipients)


async def acknowledge(session: AsyncSession, *, device_pk: int, upto: int) -> None:
    """Delete the device's messages up to position ``upto`` (a sync's ``since`` says so)."""
    await session.execute(
        delete(ToDeviceMessage).where(
            ToDeviceMessage.device_pk == device_pk, ToDeviceMessage.position <= upto
        )
    )


async def pending(
    session: AsyncSession, *, device_pk: int, after: int
) -> tuple[list[dict[str, Any]], int]:
    """The device's messages after ``after`` (at most a page); and the position reached."""
    rows = await session.scalars(
        select(ToDeviceMessage)
        .where(ToDeviceMessage.device_pk == device_pk, ToDeviceMessage.position > after)
        .order_by(ToDeviceMessage.position)
        .limit(MAX_TO_DEVICE_PER_SYNC)
    )
    found = list(rows.all())
    reached = found[-1].position if found else after
    return [{"sender": m.sender, "type": m.type, "content": m.content} for m in found], reached
