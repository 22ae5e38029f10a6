"""Wire formats of the Matrix Client-Server API v3 (spec v1.6 section named on each class), the
identifier grammar (spec: "Appendices" → "Identifier Grammar"), and the admin API's tokens."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from rhenus.messaging.errors import MatrixError

ROOM_VERSION = "11"
# Matrix versions whose features this slice serves (``GET /_matrix/client/versions``).
SPEC_VERSIONS = ["v1.1", "v1.2", "v1.3", "v1.4", "v1.5", "v1.6"]
MAX_EVENT_BYTES = 65_536  # spec: "Size limits" of events
_LOCALPART = re.compile(r"^[a-z0-9._=/+-]{1,255}$")
# spec: "Token-authenticated registration"
REGISTRATION_TOKEN = r"^[A-Za-z0-9._~-]{1,64}$"  # noqa: S105 - a grammar, not a secret


def user_id(localpart: str, server_name: str) -> str:
    return f"@{localpart}:{server_name}"


def localpart_of(uid: str, server_name: str) -> str | None:
    """The localpart of a user id of this server, or None if it is not one."""
    if not uid.startswith("@"):
        return None
    local, sep, server = uid[1:].partition(":")
    if not sep or server != server_name or not _LOCALPART.match(local):
        return None
    return local


def is_user_id(value: str) -> bool:
    local, sep, server = value[1:].partition(":")
    return value.startswith("@") and bool(sep and server and _LOCALPART.match(local))


def check_room_id(value: str) -> str:
    if not value.startswith("!") or ":" not in value or len(value) > 255:
        raise MatrixError(400, "M_INVALID_PARAM", f"{value!r} is not a room id")
    return value


class _Body(BaseModel):
    """Request bodies keep unknown fields out of the way (clients send more than we read)."""

    model_config = ConfigDict(extra="ignore")


class UserIdentifier(_Body):
    """Spec: "Identifier types"; this slice takes ``m.id.user``."""

    type: str
    user: str | None = None


class LoginRequest(_Body):
    """``POST /_matrix/client/v3/login`` (spec: "Login")."""

    type: str
    identifier: UserIdentifier | None = None
    user: str | None = None  # deprecated form, still sent by older clients
    password: str | None = Field(default=None, max_length=1024)
    device_id: str | None = Field(default=None, min_length=1, max_length=64)
    initial_device_display_name: str | None = Field(default=None, max_length=255)


class RegisterRequest(_Body):
    """``POST /_matrix/client/v3/register`` (spec: "Account registration and management")."""

    username: str | None = Field(default=None, max_length=255)
    password: str | None = Field(default=None, max_length=1024)
    device_id: str | None = Field(default=None, min_length=1, max_length=64)
    initial_device_display_name: str | None = Field(default=None, max_length=255)
    inhibit_login: bool = False
    auth: dict[str, Any] | None = None


class StateEventIn(_Body):
    type: str = Field(min_length=1, max_length=255)
    state_key: str = Field(default="", max_length=255)
    content: dict[str, Any]


class CreateRoomRequest(_Body):
    """``POST /_matrix/client/v3/createRoom`` (spec: "Creation")."""

    visibility: Literal["public", "private"] = "private"
    room_alias_name: str | None = Field(default=None, pattern=r"^[^:\s#]{1,200}$")
    name: str | None = Field(default=None, max_length=255)
    topic: str | None = Field(default=None, max_length=4096)
    invite: list[str] = Field(default_factory=list, max_length=100)
    room_version: str | None = None
    creation_content: dict[str, Any] = Field(default_factory=dict)
    initial_state: list[StateEventIn] = Field(default_factory=list, max_length=100)
    preset: Literal["private_chat", "public_chat", "trusted_private_chat"] | None = None
    is_direct: bool = False
    power_level_content_override: dict[str, Any] | None = None


class ReasonBody(_Body):
    reason: str | None = Field(default=None, max_length=1024)


class TargetBody(ReasonBody):
    """``invite``, ``kick``, ``ban``, ``unban`` (spec: "Room membership")."""

    user_id: str = Field(min_length=3, max_length=255)


class InviteBody(ReasonBody):
    """``invite``: a user id, or the third-party form (spec: "Invite by third-party id"):
    ``medium`` and ``address`` (``id_server`` and ``id_access_token`` are not used)."""

    user_id: str | None = Field(default=None, min_length=3, max_length=255)
    medium: str | None = Field(default=None, max_length=16)
    address: str | None = Field(default=None, max_length=254)
    id_server: str | None = Field(default=None, max_length=255)
    id_access_token: str | None = Field(default=None, max_length=1024)


class DisplayName(_Body):
    displayname: str | None = Field(default=None, max_length=255)


class AvatarUrl(_Body):
    avatar_url: str | None = Field(default=None, max_length=1024)


class RoomEventFilter(_Body):
    """Spec: "Filtering" → RoomEventFilter (the fields this slice applies)."""

    limit: int | None = Field(default=None, ge=0)
    types: list[str] | None = None
    not_types: list[str] = Field(default_factory=list)
    rooms: list[str] | None = None
    not_rooms: list[str] = Field(default_factory=list)
    lazy_load_members: bool = False


class EventFilter(_Body):
    """Spec: "Filtering" → EventFilter (top-level ``account_data``, ``presence``)."""

    limit: int | None = Field(default=None, ge=0)
    types: list[str] | None = None
    not_types: list[str] = Field(default_factory=list)


class RoomFilter(_Body):
    rooms: list[str] | None = None
    not_rooms: list[str] = Field(default_factory=list)
    include_leave: bool = False
    timeline: RoomEventFilter = Field(default_factory=RoomEventFilter)
    state: RoomEventFilter = Field(default_factory=RoomEventFilter)
    ephemeral: RoomEventFilter = Field(default_factory=RoomEventFilter)
    account_data: RoomEventFilter = Field(default_factory=RoomEventFilter)


class SyncFilter(_Body):
    """Spec: "Filtering" → Filter (``POST /user/{userId}/filter``, ``/sync?filter=``)."""

    event_fields: list[str] | None = None
    event_format: Literal["client", "federation"] = "client"
    room: RoomFilter = Field(default_factory=RoomFilter)
    account_data: EventFilter = Field(default_factory=EventFilter)
    presence: EventFilter = Field(default_factory=EventFilter)


class RedactRequest(_Body):
    """``PUT /rooms/{roomId}/redact/{eventId}/{txnId}`` (spec: "Redactions")."""

    reason: str | None = Field(default=None, max_length=4096)


class TypingRequest(_Body):
    """``PUT /rooms/{roomId}/typing/{userId}`` (spec: "Typing Notifications")."""

    typing: bool
    timeout: int | None = Field(default=None, ge=0)


class ReceiptRequest(_Body):
    """``POST /rooms/{roomId}/receipt/{receiptType}/{eventId}`` (spec: "Receipts")."""

    thread_id: str | None = Field(default=None, min_length=1, max_length=255)


class ReadMarkersRequest(_Body):
    """``POST /rooms/{roomId}/read_markers`` (spec: "Fully read markers")."""

    fully_read: str | None = Field(default=None, alias="m.fully_read", max_length=255)
    read: str | None = Field(default=None, alias="m.read", max_length=255)
    read_private: str | None = Field(default=None, alias="m.read.private", max_length=255)


class UserDirectorySearch(_Body):
    """``POST /user_directory/search`` (spec: "User directory")."""

    search_term: str = Field(max_length=255)
    limit: int = Field(default=10, ge=0)


class KeysUploadRequest(_Body):
    """Spec: ``POST /keys/upload`` (key objects are kept as signed, so not modelled further)."""

    device_keys: dict[str, Any] | None = None
    one_time_keys: dict[str, Any] | None = None
    fallback_keys: dict[str, Any] | None = None


class KeysQueryRequest(_Body):
    """Spec: ``POST /keys/query``: user id → device ids (empty: all)."""

    device_keys: dict[str, list[str]]
    timeout: int | None = None


class KeysClaimRequest(_Body):
    """Spec: ``POST /keys/claim``: user id → device id → algorithm."""

    one_time_keys: dict[str, dict[str, str]]
    timeout: int | None = None


class ToDeviceRequest(_Body):
    """Spec: ``PUT /sendToDevice/{eventType}/{txnId}``: user id → device id (or ``*``) →
    content."""

    messages: dict[str, dict[str, dict[str, Any]]]


class DeviceUpdate(_Body):
    """Spec: ``PUT /devices/{deviceId}``."""

    display_name: str | None = Field(default=None, max_length=255)


class DeleteDevicesRequest(_Body):
    """Spec: ``DELETE /devices/{deviceId}`` and ``POST /delete_devices`` (with UIA ``auth``)."""

    devices: list[str] = Field(default_factory=list)
    auth: dict[str, Any] | None = None


class RegistrationTokenCreate(BaseModel):
    """``POST /api/v1/messaging/registration-tokens`` (admin)."""

    token: str | None = Field(
        default=None, pattern=REGISTRATION_TOKEN, description="Omit to have one generated."
    )
    uses_allowed: int | None = Field(default=None, ge=1, description="Omit for unlimited.")
    expires_at: datetime | None = Field(default=None, description="Omit for no expiry.")


class RegistrationTokenOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    hint: str = Field(description="The token's first characters, to tell tokens apart.")
    uses_allowed: int | None
    completed: int
    expires_at: datetime | None
    created_by: str
    created_at: datetime


class RegistrationTokenCreated(RegistrationTokenOut):
    token: str = Field(description="The token; shown this once, stored only as a hash.")
