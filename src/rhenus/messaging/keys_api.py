"""Matrix routes for end-to-end encryption and devices (Client-Server API, spec v1.6: "End-to-End
Encryption" → "Key management API", "Send-to-Device messaging", "Device Management").

Changes open ``events.writing``, so that room-mates' and recipients' syncs wake once committed.
"""

from __future__ import annotations

import secrets
from typing import Any

from fastapi import Query
from fastapi.responses import JSONResponse

from rhenus.core.http import api_router
from rhenus.core.node import NodeDep
from rhenus.messaging import auth, devices, keys, sync
from rhenus.messaging.deps import MatrixUser, NotifierDep
from rhenus.messaging.events import snapshot, writing
from rhenus.messaging.schemas import (
    DeleteDevicesRequest,
    DeviceUpdate,
    KeysClaimRequest,
    KeysQueryRequest,
    KeysUploadRequest,
    ToDeviceRequest,
)

router = api_router(prefix="/_matrix/client/v3", tags=["messaging"])
PASSWORD = "m.login.password"  # noqa: S105 - a UIA stage name


@router.post("/keys/upload")
async def keys_upload(
    body: KeysUploadRequest, requester: MatrixUser, node: NodeDep, notifier: NotifierDep
) -> dict[str, Any]:
    """POST /keys/upload — device keys, one-time keys, fallback keys; answers the counts."""
    async with writing(node.db, notifier) as session:
        counts = await keys.upload(
            session,
            requester=requester,
            device_keys=body.device_keys,
            one_time_keys=body.one_time_keys or {},
            fallback_keys=body.fallback_keys or {},
        )
    return {"one_time_key_counts": counts}


@router.post("/keys/query")
async def keys_query(body: KeysQueryRequest, _: MatrixUser, node: NodeDep) -> dict[str, Any]:
    """POST /keys/query — the device keys of users, with their signatures as uploaded."""
    async with node.db.session() as session:
        return await keys.query(
            session, server_name=node.settings.matrix_server_name, wanted=body.device_keys
        )


@router.post("/keys/claim")
async def keys_claim(body: KeysClaimRequest, _: MatrixUser, node: NodeDep) -> dict[str, Any]:
    """POST /keys/claim — one one-time key per device (or its fallback key when none is left)."""
    async with node.db.transaction() as session:
        return await keys.claim(
            session, server_name=node.settings.matrix_server_name, wanted=body.one_time_keys
        )


@router.get("/keys/changes")
async def keys_changes(
    requester: MatrixUser, node: NodeDep, from_: str = Query(alias="from"), to: str = Query()
) -> dict[str, Any]:
    """GET /keys/changes?from=&to= — users whose devices changed between two sync tokens."""
    start, end = sync.parse_sync_token(from_), sync.parse_sync_token(to)
    async with snapshot(node.db) as session:
        return await devices.changes(
            session,
            user=requester.user_id,
            since_events=start.events,
            since_devices=start.device_lists,
            upper_events=end.events,
            upper_devices=end.device_lists,
        )


@router.put("/sendToDevice/{event_type}/{txn_id}")
async def send_to_device(
    event_type: str,
    txn_id: str,
    body: ToDeviceRequest,
    requester: MatrixUser,
    node: NodeDep,
    notifier: NotifierDep,
) -> dict[str, Any]:
    """PUT /sendToDevice/{eventType}/{txnId} — idempotent per access token and ``txnId``."""
    async with writing(node.db, notifier) as session:
        await keys.send_to_device(
            session,
            requester=requester,
            server_name=node.settings.matrix_server_name,
            event_type=event_type,
            txn_id=txn_id,
            messages=body.messages,
        )
    return {}


@router.get("/devices")
async def list_devices(requester: MatrixUser, node: NodeDep) -> dict[str, Any]:
    """GET /devices — the requester's devices."""
    async with node.db.session() as session:
        found = await devices.list_devices(session, account_id=requester.account_id)
    return {"devices": [devices.device_body(d) for d in found]}


@router.get("/devices/{device_id}")
async def get_device(device_id: str, requester: MatrixUser, node: NodeDep) -> dict[str, Any]:
    """GET /devices/{deviceId}."""
    async with node.db.session() as session:
        found = await devices.get_device(
            session, account_id=requester.account_id, device_id=device_id
        )
    return devices.device_body(found)


@router.put("/devices/{device_id}")
async def update_device(
    device_id: str, body: DeviceUpdate, requester: MatrixUser, node: NodeDep
) -> dict[str, Any]:
    """PUT /devices/{deviceId} — its ``display_name``."""
    async with node.db.transaction() as session:
        found = await devices.get_device(
            session, account_id=requester.account_id, device_id=device_id
        )
        if body.display_name is not None:
            found.display_name = body.display_name
    return {}


async def _delete(
    device_ids: list[str],
    auth_dict: dict[str, Any] | None,
    requester: MatrixUser,
    node: NodeDep,
    notifier: NotifierDep,
) -> dict[str, Any] | JSONResponse:
    # Spec: deleting devices requires User-Interactive Auth; the one flow is the password.
    # Stateless: the session id is only echoed (the stage is done in the same request).
    challenge: dict[str, Any] = {
        "flows": [{"stages": [PASSWORD]}],
        "params": {},
        "session": (auth_dict or {}).get("session") or secrets.token_urlsafe(18),
    }
    if not auth_dict or auth_dict.get("type") != PASSWORD:
        return JSONResponse(challenge, status_code=401)
    async with writing(node.db, notifier) as session:
        password = auth_dict.get("password")
        if not isinstance(password, str) or not await auth.password_matches(
            session, requester=requester, password=password
        ):
            ok = False
        else:
            ok = True
            await devices.delete_devices(
                session,
                user=requester.user_id,
                account_id=requester.account_id,
                device_ids=device_ids,
            )
    if not ok:
        body = {**challenge, "errcode": "M_FORBIDDEN", "error": "invalid password"}
        return JSONResponse(body, status_code=401)
    return {}


@router.delete("/devices/{device_id}", response_model=None)
async def delete_device(
    device_id: str,
    requester: MatrixUser,
    node: NodeDep,
    notifier: NotifierDep,
    body: DeleteDevicesRequest | None = None,
) -> dict[str, Any] | JSONResponse:
    """DELETE /devices/{deviceId} — User-Interactive Auth with the account's password."""
    async with node.db.session() as session:
        await devices.get_device(session, account_id=requester.account_id, device_id=device_id)
    return await _delete([device_id], body.auth if body else None, requester, node, notifier)


@router.post("/delete_devices", response_model=None)
async def delete_devices(
    body: DeleteDevicesRequest, requester: MatrixUser, node: NodeDep, notifier: NotifierDep
) -> dict[str, Any] | JSONResponse:
    """POST /delete_devices — several devices, with the same User-Interactive Auth."""
    return await _delete(body.devices, body.auth, requester, node, notifier)
